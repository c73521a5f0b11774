//! Simulated devices against an external AWS IoT endpoint — a real AWS account, or any endpoint that
//! speaks AWS IoT — instead of the embedded emulator (`demo` and `serve` with `--iot-endpoint`).
//!
//! Nothing of the emulator is used: claims come from AWS's `CreateProvisioningClaim` signed with
//! credentials from the standard chain ([`aws_chain`](crate::aws_chain)), or from the maker's own
//! backend (`--backend-url`, bearer token from `CLAIMLINK_TOKEN`); the simulated devices do real MQTT
//! fleet provisioning against the endpoint, trusting Amazon's root CAs ([`AMAZON_ROOT_CAS`]) unless
//! `--iot-ca` names others; the SDK confirms through the real DescribeThing. `--cleanup` then
//! deletes what the run created ([`cleanup`]): see docs/external-target.md for the IAM permissions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimlink_core::{
    AwsClaimSource, BackendClaimSource, Clock, HttpConfig, ProviderError, Provisioner,
    ProvisionerConfig, SecretString, SkewedClock, SystemClock, TemplateName, TokenProvider,
};

use crate::demo::{DemoOptions, DeviceReport, Progress};
use crate::device::{DeviceCloud, SimDeviceConfig};
use crate::iot_api::IotApi;

/// Amazon Root CA 1 to 4 (PEM): what AWS IoT Core's ATS data endpoints chain to, and so what a
/// device trusts by default (from Mozilla's store; a test checks each is among webpki-roots').
pub const AMAZON_ROOT_CAS: &str = include_str!("amazon_root_cas.pem");

/// Where claims come from.
pub enum ClaimsFrom {
    /// AWS IoT's own API, signed with credentials from the standard chain.
    Aws,
    /// The maker's backend (docs/backend-api.md) at this URL, with this bearer token.
    Backend {
        /// Its base URL.
        url: String,
        /// The bearer token.
        token: SecretString,
    },
}

/// An external AWS IoT target.
pub struct ExternalTarget {
    /// The AWS region (needed for AWS claims and for `--cleanup`).
    pub region: Option<String>,
    /// The AWS IoT control plane, when not `https://iot.<region>.amazonaws.com` (a VPC endpoint,
    /// or another emulator).
    pub control_plane_url: Option<String>,
    /// The MQTT data endpoint devices connect to (`xxxx-ats.iot.<region>.amazonaws.com`, port 8883
    /// unless given).
    pub iot_endpoint: String,
    /// The CA certificates (PEM) to trust for the endpoint and the control plane instead of
    /// Amazon's roots.
    pub ca_pem: Option<String>,
    /// Where claims come from.
    pub claims: ClaimsFrom,
    /// The provisioning template.
    pub template: String,
}

struct FixedToken(SecretString);

#[async_trait]
impl TokenProvider for FixedToken {
    async fn bearer_token(&self, _refresh: bool) -> Result<SecretString, ProviderError> {
        Ok(self.0.clone())
    }
}

impl std::fmt::Debug for FixedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedToken(..)")
    }
}

impl ExternalTarget {
    /// What the devices trust for the MQTT endpoint.
    pub fn device_trust(&self) -> &str {
        self.ca_pem.as_deref().unwrap_or(AMAZON_ROOT_CAS)
    }

    fn http_config(&self) -> HttpConfig {
        HttpConfig {
            extra_root_certificates_pem: self.ca_pem.iter().cloned().collect(),
            ..HttpConfig::default()
        }
    }

    /// One line saying what the run talks to.
    pub fn describe(&self) -> String {
        let claims = match &self.claims {
            ClaimsFrom::Aws => format!(
                "AWS IoT CreateProvisioningClaim at {} (region {})",
                self.control_plane_url.clone().unwrap_or_else(|| format!(
                    "https://iot.{}.amazonaws.com",
                    self.region.as_deref().unwrap_or("?")
                )),
                self.region.as_deref().unwrap_or("?")
            ),
            ClaimsFrom::Backend { url, .. } => format!("the backend at {url}"),
        };
        format!(
            "external target: MQTT {} (trusting {}), claims from {claims}, template {}",
            self.iot_endpoint,
            if self.ca_pem.is_some() {
                "--iot-ca"
            } else {
                "Amazon's root CAs"
            },
            self.template
        )
    }

    /// The SDK's provisioner for this target, with the phone's clock off by `clock_skew_secs`.
    pub fn provisioner(
        &self,
        clock_skew_secs: i64,
        safety_margin: Duration,
    ) -> Result<Provisioner, String> {
        let clock: Arc<dyn Clock> = if clock_skew_secs == 0 {
            Arc::new(SystemClock)
        } else {
            Arc::new(SkewedClock::new(clock_skew_secs))
        };
        let mut config = ProvisionerConfig::new(
            TemplateName::new(self.template.clone()).map_err(|e| e.to_string())?,
            self.iot_endpoint.clone(),
        );
        config.poll_interval = Duration::from_millis(500);
        config.safety_margin = safety_margin;
        Ok(match &self.claims {
            ClaimsFrom::Aws => {
                let region = self
                    .region
                    .clone()
                    .ok_or("claims from AWS need --aws-region")?;
                let mut builder =
                    AwsClaimSource::builder(region, Arc::new(crate::aws_chain::StandardChain))
                        .http_config(self.http_config())
                        .clock(clock);
                if let Some(url) = &self.control_plane_url {
                    builder = builder.endpoint_url(url.clone());
                }
                Provisioner::new(
                    Arc::new(builder.build().map_err(|e| e.to_string())?),
                    config,
                )
            }
            ClaimsFrom::Backend { url, token } => {
                let source =
                    BackendClaimSource::builder(url.clone(), Arc::new(FixedToken(token.clone())))
                        .http_config(self.http_config())
                        .clock(clock)
                        .build()
                        .map_err(|e| e.to_string())?;
                Provisioner::new(Arc::new(source), config)
            }
        })
    }

    /// A simulated device that provisions itself against this target.
    pub fn device_config(&self, index: u16) -> SimDeviceConfig {
        let mut config = SimDeviceConfig {
            name: format!("PROV_{index:04X}"),
            seed: u64::from(index) + 1,
            index,
            cloud: Some(DeviceCloud::trusting(self.device_trust())),
            ..SimDeviceConfig::default()
        };
        config.world.connect_time = Duration::from_millis(100);
        config
    }

    /// The signed AWS IoT client `--cleanup` uses (credentials from the standard chain).
    pub fn iot_api(&self) -> Result<IotApi, String> {
        let region = self
            .region
            .clone()
            .ok_or("--cleanup needs --aws-region (and AWS credentials)")?;
        let url = self
            .control_plane_url
            .clone()
            .unwrap_or_else(|| format!("https://iot.{region}.amazonaws.com"));
        let (credentials, _) = crate::aws_chain::load()?;
        IotApi::new(&url, &region, credentials, self.ca_pem.as_deref())
    }
}

/// A run id: six random lower-case letters, so that the things of a run do not collide with
/// anything already in the account.
pub fn run_id() -> String {
    (0..6)
        .map(|_| char::from(b'a' + fastrand::u8(..26)))
        .collect()
}

/// `demo` against `target`: each device gets `SerialNumber` `claimlink-<run>-<index>` (the template
/// must name the thing after it, as the emulator's `claimlink-demo` does).
pub async fn run_demo(
    options: &DemoOptions,
    target: &ExternalTarget,
    progress: Arc<dyn Progress>,
) -> Result<Vec<DeviceReport>, String> {
    let provisioner =
        Arc::new(target.provisioner(options.clock_skew_secs, Duration::from_secs(60))?);
    let run = run_id();
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    for i in 0..options.devices {
        if options.arrivals_per_sec > 0 {
            let due = Duration::from_secs_f64(f64::from(i) / f64::from(options.arrivals_per_sec));
            tokio::time::sleep_until((started + due).into()).await;
        }
        let provisioner = provisioner.clone();
        let progress = progress.clone();
        let options = options.clone();
        let config = target.device_config(i);
        let serial = format!("claimlink-{run}-{i:03}");
        runs.push(tokio::spawn(async move {
            crate::demo::device_run(&provisioner, None, config, serial, &options, progress).await
        }));
    }
    let mut reports = Vec::new();
    for r in runs {
        reports.push(r.await.map_err(|e| e.to_string())?);
    }
    Ok(reports)
}

/// Waits (up to about ten seconds) until `thing` lists no principal.
async fn wait_until_detached(api: &IotApi, thing: &str) {
    let mut pause = Duration::from_millis(100);
    for _ in 0..8 {
        match api.list_thing_principals(thing).await {
            Ok(principals) if !principals.is_empty() => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(3));
            }
            _ => return,
        }
    }
}

/// Deletes what a run created — for each provisioned thing: DetachThingPrincipal of its
/// certificates, DeleteThing, then UpdateCertificate `INACTIVE` and DeleteCertificate (with
/// `forceDelete`, which detaches the template's policies; the policies themselves stay). Returns one
/// line per resource deleted, or why it was not.
pub async fn cleanup(api: &IotApi, reports: &[DeviceReport]) -> Vec<String> {
    let mut lines = Vec::new();
    for report in reports {
        let Ok(thing) = &report.outcome else {
            continue;
        };
        let mut certificates: Vec<String> = report.certificate_id.iter().cloned().collect();
        match api.list_thing_principals(thing).await {
            Ok(principals) => {
                for arn in principals {
                    match api.detach_thing_principal(thing, &arn).await {
                        Ok(()) => {
                            if let Some(id) = arn.rsplit_once("cert/").map(|(_, id)| id.to_owned())
                            {
                                if !certificates.contains(&id) {
                                    certificates.push(id);
                                }
                            }
                        }
                        Err(e) => lines.push(format!("not detached from thing {thing}: {e}")),
                    }
                }
            }
            Err(e) => lines.push(format!("cannot list thing {thing}'s principals: {e}")),
        }
        // AWS detaches eventually: DeleteThing is refused ("still attached to one or more
        // principals") until ListThingPrincipals is empty (aws-iot-device-sdk-python-v2#616 waits too).
        wait_until_detached(api, thing).await;
        match api.delete_thing(thing).await {
            Ok(()) => lines.push(format!("deleted thing {thing}")),
            Err(e) => lines.push(format!("thing {thing} not deleted: {e}")),
        }
        for id in certificates {
            let deleted = async {
                api.update_certificate(&id, "INACTIVE").await?;
                api.delete_certificate(&id).await
            }
            .await;
            match deleted {
                Ok(()) => lines.push(format!("deleted certificate {id}")),
                Err(e) => lines.push(format!("certificate {id} not deleted: {e}")),
            }
        }
    }
    lines
}
