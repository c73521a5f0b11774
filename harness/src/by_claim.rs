//! Provisioning by claim, the first flow of AWS's fleet-provisioning guide, end to end on the
//! embedded emulator (`claimlink-harness by-claim`):
//!
//! 1. **The manufacturer** makes a claim certificate with its own factory CA (long-lived: devices
//!    sit on shelves), registers it in the account (`RegisterCertificateWithoutCA`, `ACTIVE`), creates
//!    the guide's claim policy for the template and attaches it — over AWS's SigV4 API ([`iot_api`]).
//! 2. **Each device** boots with that claim and the template name and provisions itself over MQTT
//!    ([`FactoryDevice`]): no app, no BLE session.
//! 3. **The account** is asked (DescribeThing, ListThingPrincipals, DescribeCertificate through
//!    claimlink-core's `AwsClaimSource`) whether each thing holds its device's certificate, `ACTIVE`.
//!
//! [`iot_api`]: crate::iot_api

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimlink_core::{AwsClaimSource, ThingDirectory, ThingName};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::device::cloud::{CloudEndpoint, FlowStage};
use crate::device::factory_claim::{FactoryClaim, FactoryDevice};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::iot_api::{IotApi, IotApiError};

/// The template `by-claim` provisions with.
pub const TEMPLATE: &str = "claimlink-demo";

/// The claim policy of AWS's fleet-provisioning guide for `template`: connect, and the certificate
/// and `template`'s provision topics only. `allow_csr` adds `create-from-csr` (the guide's policy
/// allows only `CreateKeysAndCertificate`).
pub fn claim_policy(region: &str, account: &str, template: &str, allow_csr: bool) -> Value {
    let arn = |kind: &str, rest: &str| format!("arn:aws:iot:{region}:{account}:{kind}/{rest}");
    let mut topics = vec!["$aws/certificates/create/*".to_owned()];
    if allow_csr {
        topics.push("$aws/certificates/create-from-csr/*".to_owned());
    }
    topics.push(format!(
        "$aws/provisioning-templates/{template}/provision/*"
    ));
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": topics.iter().map(|t| arn("topic", t)).collect::<Vec<_>>()},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": topics.iter().map(|t| arn("topicfilter", t)).collect::<Vec<_>>()},
        ]
    })
}

/// A factory's claim: a certificate from the manufacturer's own CA (ECDSA P-256), valid `validity`
/// from now, and its key, for `template`.
pub fn make_factory_claim(template: &str, validity: Duration) -> Result<FactoryClaim, String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let e = |e: rcgen::Error| format!("factory claim: {e}");
    let now = time::OffsetDateTime::now_utc();
    let validity = time::Duration::try_from(validity).map_err(|e| e.to_string())?;
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.distinguished_name
        .push(DnType::CommonName, "claimlink factory CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + validity;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        format!("claimlink factory claim for {template}"),
    );
    leaf.not_before = now - time::Duration::minutes(5);
    leaf.not_after = now + validity;
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).map_err(e)?;
    Ok(FactoryClaim {
        certificate_pem: cert.pem(),
        private_key_pem: Zeroizing::new(key.serialize_pem()),
        template: template.to_owned(),
    })
}

/// A factory claim as registered in the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredClaim {
    /// Its certificate id.
    pub certificate_id: String,
    /// Its certificate ARN.
    pub certificate_arn: String,
    /// The claim policy attached to it.
    pub policy_name: String,
}

/// Registers `claim` in the account behind `api` (`ACTIVE`) with the claim policy for its template
/// (created as `<template>-claim-policy` unless it exists).
pub async fn register_factory_claim(
    api: &IotApi,
    account: &str,
    claim: &FactoryClaim,
    allow_csr: bool,
) -> Result<RegisteredClaim, IotApiError> {
    let policy_name = format!("{}-claim-policy", claim.template);
    let document = claim_policy(api.region(), account, &claim.template, allow_csr);
    match api.create_policy(&policy_name, &document).await {
        Ok(()) => {}
        Err(e) if e.code == "ResourceAlreadyExistsException" => {}
        Err(e) => return Err(e),
    }
    let (certificate_arn, certificate_id) = api
        .register_certificate_without_ca(&claim.certificate_pem, true)
        .await?;
    api.attach_policy(&policy_name, &certificate_arn).await?;
    Ok(RegisteredClaim {
        certificate_id,
        certificate_arn,
        policy_name,
    })
}

/// What `by-claim` reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByClaimEvent {
    /// A step of the manufacturer's (a line for a person).
    Factory(String),
    /// A device reached a stage.
    Stage {
        /// Its serial.
        device: String,
        /// The stage.
        stage: FlowStage,
    },
    /// A device finished: its thing and certificate, or why it failed.
    Finished {
        /// Its serial.
        device: String,
        /// `Ok((thing, certificate id))` or the failure.
        outcome: Result<(String, String), String>,
    },
}

/// One device's run.
#[derive(Clone, Debug)]
pub struct DeviceOutcome {
    /// Its serial.
    pub serial: String,
    /// `Ok((thing, certificate id))` or the failure.
    pub outcome: Result<(String, String), String>,
    /// The stages reached, with the time since the device booted.
    pub stages: Vec<(FlowStage, Duration)>,
    /// Whether DescribeThing showed the thing holding the device's certificate, `ACTIVE`.
    pub confirmed: bool,
}

/// A whole `by-claim` run.
#[derive(Clone, Debug)]
pub struct ByClaimReport {
    /// The registered claim.
    pub claim: RegisteredClaim,
    /// Each device, in order.
    pub devices: Vec<DeviceOutcome>,
    /// Wall time of the devices' part.
    pub took: Duration,
}

/// `by-claim`'s options.
#[derive(Clone, Debug)]
pub struct ByClaimOptions {
    /// How many devices boot (concurrently).
    pub devices: u16,
    /// Devices use CreateCertificateFromCsr (the claim policy then allows it too).
    pub use_csr: bool,
    /// How long the factory claim is valid.
    pub claim_validity: Duration,
}

impl Default for ByClaimOptions {
    fn default() -> Self {
        Self {
            devices: 1,
            use_csr: false,
            claim_validity: Duration::from_secs(10 * 365 * 24 * 3600),
        }
    }
}

/// Runs provisioning by claim on a fresh embedded emulator.
pub async fn run(
    options: &ByClaimOptions,
    on_event: Arc<dyn Fn(ByClaimEvent) + Send + Sync>,
) -> Result<ByClaimReport, String> {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    run_on(&emulator, options, on_event).await
}

/// The manufacturer's signed client for `emulator`'s AWS API, with fresh credentials it accepts.
pub fn manufacturer_api(
    emulator: &Emulator,
) -> Result<(IotApi, crate::emulator::TemporaryCredentials), String> {
    let manufacturer = emulator.issue_credentials();
    let credentials = claimlink_core::AwsCredentials {
        access_key_id: manufacturer.access_key_id.clone(),
        secret_access_key: claimlink_core::SecretString::new(
            manufacturer.secret_access_key.clone(),
        ),
        session_token: Some(claimlink_core::SecretString::new(
            manufacturer.session_token.clone(),
        )),
    };
    let api = IotApi::new(
        &emulator.base_url(),
        emulator.region(),
        credentials,
        Some(emulator.ca_pem()),
    )?;
    Ok((api, manufacturer))
}

/// The MQTT endpoint of `emulator` as a device is told it, trusting the emulator's CA.
pub fn device_endpoint(emulator: &Emulator) -> CloudEndpoint {
    CloudEndpoint {
        host: "127.0.0.1".into(),
        port: emulator.mqtt_addr().port(),
        ca_pem: emulator.ca_pem().to_owned(),
        timeout: Duration::from_secs(20),
    }
}

/// Runs provisioning by claim on `emulator` (its template [`TEMPLATE`]).
pub async fn run_on(
    emulator: &Emulator,
    options: &ByClaimOptions,
    on_event: Arc<dyn Fn(ByClaimEvent) + Send + Sync>,
) -> Result<ByClaimReport, String> {
    let (api, manufacturer) = manufacturer_api(emulator)?;
    let claim = Arc::new(make_factory_claim(TEMPLATE, options.claim_validity)?);
    on_event(ByClaimEvent::Factory(format!(
        "factory: claim certificate made by the factory CA, valid {} days, for template {TEMPLATE}",
        options.claim_validity.as_secs() / 86_400
    )));
    let registered = register_factory_claim(&api, emulator.account_id(), &claim, options.use_csr)
        .await
        .map_err(|e| e.to_string())?;
    on_event(ByClaimEvent::Factory(format!(
        "factory: claim registered (RegisterCertificateWithoutCA, ACTIVE) as {}, policy {} attached",
        registered.certificate_id, registered.policy_name
    )));
    let endpoint = device_endpoint(emulator);
    // The RSA keys CreateKeysAndCertificate hands out, generated ahead: AWS makes them in hardware in
    // no time; here each costs tens of milliseconds of CPU, which many devices at once would wait for,
    // timing out (the demo does the same for claims).
    if !options.use_csr {
        let keys = usize::from(options.devices);
        emulator.reserve_keys(keys);
        if keys > 1 {
            let started = Instant::now();
            emulator
                .wait_for_keys(keys)
                .await
                .map_err(|e| e.to_string())?;
            on_event(ByClaimEvent::Factory(format!(
                "the emulator generated {keys} RSA-2048 keys ahead for CreateKeysAndCertificate in {:.1} s",
                started.elapsed().as_secs_f64()
            )));
        }
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for i in 0..options.devices {
        let device = FactoryDevice {
            serial: format!("by-claim-{i:03}"),
            claim: claim.clone(),
            endpoint: endpoint.clone(),
            use_csr: options.use_csr,
            retry_for: Duration::from_secs(30),
        };
        let on_event = on_event.clone();
        runs.push(tokio::spawn(async move { boot(device, on_event).await }));
    }
    let mut devices = Vec::new();
    for run in runs {
        devices.push(run.await.map_err(|e| e.to_string())?);
    }
    let took = started.elapsed();
    let directory = AwsClaimSource::builder(
        emulator.region(),
        Arc::new(crate::providers::CredentialsSequence::new(vec![
            manufacturer,
        ])),
    )
    .endpoint_url(emulator.base_url())
    .http_config(emulator.http_config())
    .build()
    .map_err(|e| e.to_string())?;
    for d in &mut devices {
        d.confirmed = confirmed(&directory, &d.outcome).await;
    }
    Ok(ByClaimReport {
        claim: registered,
        devices,
        took,
    })
}

async fn boot(
    device: FactoryDevice,
    on_event: Arc<dyn Fn(ByClaimEvent) + Send + Sync>,
) -> DeviceOutcome {
    let booted = Instant::now();
    let mut stages = Vec::new();
    let result = device
        .first_boot(|stage| {
            stages.push((stage.clone(), booted.elapsed()));
            on_event(ByClaimEvent::Stage {
                device: device.serial.clone(),
                stage,
            });
        })
        .await;
    let outcome = result
        .map(|p| (p.thing_name, p.certificate_id))
        .map_err(|f| {
            let code = if f.error_code.is_empty() {
                String::new()
            } else {
                format!("{} {}: ", f.status_code, f.error_code)
            };
            format!("{:?}: {code}{}", f.kind, f.error_message)
        });
    on_event(ByClaimEvent::Finished {
        device: device.serial.clone(),
        outcome: outcome.clone(),
    });
    DeviceOutcome {
        serial: device.serial,
        outcome,
        stages,
        confirmed: false,
    }
}

/// Whether the account shows the thing holding the certificate, `ACTIVE`.
pub async fn confirmed(
    directory: &dyn ThingDirectory,
    outcome: &Result<(String, String), String>,
) -> bool {
    let Ok((thing, certificate_id)) = outcome else {
        return false;
    };
    let Ok(name) = ThingName::new(thing.clone()) else {
        return false;
    };
    matches!(directory.describe_thing(&name).await,
        Ok(Some(d)) if d.has_active_certificate(certificate_id))
}

/// The run as JSON (`by-claim --json`).
pub fn json_report(report: &ByClaimReport) -> Value {
    json!({
        "claim_certificate_id": report.claim.certificate_id,
        "claim_policy": report.claim.policy_name,
        "took_ms": report.took.as_millis() as u64,
        "devices": report.devices.iter().map(|d| json!({
            "serial": d.serial,
            "outcome": match &d.outcome { Ok(_) => "provisioned".to_owned(), Err(e) => format!("failed: {e}") },
            "thing_name": d.outcome.as_ref().ok().map(|o| o.0.clone()),
            "certificate_id": d.outcome.as_ref().ok().map(|o| o.1.clone()),
            "confirmed_by_describe_thing": d.confirmed,
            "stages": d.stages.iter().map(|(s, at)| json!({"stage": s.name(), "at_ms": at.as_millis() as u64})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
