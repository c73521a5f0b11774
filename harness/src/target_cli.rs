//! The external-target options `demo`, `serve` and `chaos` share: simulated devices against a real
//! AWS account (or any AWS IoT endpoint) instead of the embedded emulator.

use std::path::PathBuf;

use claimlink_harness::device::http::HttpDevice;
use claimlink_harness::external::{ClaimsFrom, ExternalTarget};

/// Where the simulated devices provision: the embedded emulator (no option given) or an external
/// AWS IoT endpoint.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Provision against this AWS IoT data endpoint (HOST[:PORT], port 8883 by default; `aws iot
    /// describe-endpoint --endpoint-type iot:Data-ATS`) instead of the embedded emulator. Claims come
    /// from AWS (--aws-region, credentials from the standard chain: AWS_ACCESS_KEY_ID... or the
    /// shared profile files) or from --backend-url.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub iot_endpoint: Option<String>,
    /// The AWS region of the account (claims from AWS, DescribeThing, --cleanup).
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// The AWS IoT control plane, when not https://iot.<region>.amazonaws.com (a VPC endpoint).
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// Trust the CA certificates in FILE (PEM) for the endpoint and the control plane instead of
    /// Amazon's root CAs.
    #[arg(long, value_name = "FILE")]
    pub iot_ca: Option<PathBuf>,
    /// Get claims from the maker's backend at URL (docs/backend-api.md) instead of AWS; its bearer
    /// token comes from CLAIMLINK_TOKEN, never from the command line.
    #[arg(long, value_name = "URL")]
    pub backend_url: Option<String>,
    /// The provisioning template (it must name the thing after the SerialNumber parameter).
    #[arg(long, value_name = "NAME", default_value = "claimlink-demo")]
    pub template: String,
    /// After the run, delete the things and certificates it created (needs --aws-region and AWS
    /// credentials allowed to, see docs/external-target.md), and say what was deleted.
    #[arg(long)]
    pub cleanup: bool,
}

impl TargetArgs {
    /// The external target, or `None` for the embedded emulator; an error for options that do not go
    /// together.
    pub fn target(&self) -> Result<Option<ExternalTarget>, String> {
        let Some(iot_endpoint) = self.iot_endpoint.clone() else {
            let stray = [
                ("--aws-region", self.aws_region.is_some()),
                ("--aws-endpoint-url", self.aws_endpoint_url.is_some()),
                ("--iot-ca", self.iot_ca.is_some()),
                ("--backend-url", self.backend_url.is_some()),
                ("--cleanup", self.cleanup),
                ("--template", self.template != "claimlink-demo"),
            ];
            if let Some((name, _)) = stray.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{name} is for an external target: give --iot-endpoint as well"
                ));
            }
            return Ok(None);
        };
        if self.cleanup && self.aws_region.is_none() {
            return Err("--cleanup needs --aws-region (and AWS credentials)".into());
        }
        let ca_pem = match &self.iot_ca {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read the CA certificates in {}: {e}", path.display())
            })?),
            None => None,
        };
        let claims = match &self.backend_url {
            Some(url) => {
                let token = std::env::var("CLAIMLINK_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
                    .ok_or("--backend-url needs the bearer token in CLAIMLINK_TOKEN")?;
                ClaimsFrom::Backend {
                    url: url.clone(),
                    token: claimlink_core::SecretString::new(token),
                }
            }
            None if self.aws_region.is_some() => ClaimsFrom::Aws,
            None => return Err(
                "--iot-endpoint needs where claims come from: --aws-region (AWS) or --backend-url"
                    .into(),
            ),
        };
        Ok(Some(ExternalTarget {
            region: self.aws_region.clone(),
            control_plane_url: self.aws_endpoint_url.clone(),
            iot_endpoint,
            ca_pem,
            claims,
            template: self.template.clone(),
        }))
    }
}

/// `chaos` against an external target: refused, with why.
pub fn refuse_for_chaos(args: &TargetArgs) -> Result<(), String> {
    match args.target() {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(
            "error: chaos cannot run against an external target: its faults (the emulator's scripted \
             answers, its broker going down, its clock) are injected into the embedded emulator, \
             which an external endpoint is not. Run `chaos` without --iot-endpoint, or `demo \
             --iot-endpoint …` to provision against the endpoint."
                .into(),
        ),
        Err(e) => Err(format!("error: {e}")),
    }
}

/// `serve` against an external target: N simulated devices over HTTP on 127.0.0.1 that provision
/// against it, until interrupted. The app brings its own claims (its backend or AWS credentials).
pub async fn serve_external(
    target: ExternalTarget,
    cleanup: bool,
    devices: u16,
    wifi_join: std::time::Duration,
    json: bool,
) -> Result<(), String> {
    if cleanup {
        return Err(
            "error: serve does not know what the apps provisioned: --cleanup is for demo".into(),
        );
    }
    let run = claimlink_harness::external::run_id();
    let (servers, listed) = serve_devices(
        devices,
        wifi_join,
        |i| target.device_config(i),
        |i| format!("claimlink-{run}-{i:03}"),
    )
    .await?;
    let info = serde_json::json!({
        "target": target.describe(),
        "iot_endpoint": target.iot_endpoint,
        "region": target.region,
        "control_plane": target.control_plane_url,
        "template": target.template,
        "devices": listed,
    });
    if json {
        println!("{info}");
    } else {
        println!("{}", target.describe());
        print_devices(&listed);
        println!("Ctrl-C to stop.");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(servers);
    Ok(())
}

/// `serve`'s devices: `devices` simulated devices (built from `config(i)`, joining Wi-Fi in
/// `wifi_join`) over HTTP on 127.0.0.1, and their listing (name, URL, Sec2 credentials, Wi-Fi, and
/// the template's `SerialNumber` `serial(i)`). A device's server stops when dropped.
pub async fn serve_devices(
    devices: u16,
    wifi_join: std::time::Duration,
    config: impl Fn(u16) -> claimlink_harness::device::SimDeviceConfig,
    serial: impl Fn(u16) -> String,
) -> Result<(Vec<HttpDevice>, Vec<serde_json::Value>), String> {
    let mut servers = Vec::new();
    let mut listed = Vec::new();
    for i in 0..devices {
        let mut config = config(i);
        config.world.connect_time = wifi_join;
        let device = std::sync::Arc::new(claimlink_harness::device::SimDevice::new(config));
        let server = HttpDevice::serve(device.clone())
            .await
            .map_err(|e| e.to_string())?;
        listed.push(serde_json::json!({
            "name": device.config().name,
            "url": server.base_url(),
            "username": "wifiprov",
            "password": "abcd1234",
            "wifi": {"ssid": "claimlink-lab", "passphrase": "correct horse battery"},
            "template_parameters": {"SerialNumber": serial(i)},
        }));
        servers.push(server);
    }
    Ok((servers, listed))
}

/// `serve`'s human-readable line for each device [`serve_devices`] listed.
pub fn print_devices(listed: &[serde_json::Value]) {
    for d in listed {
        println!(
            "device {} at {} (Sec2 wifiprov / abcd1234), SerialNumber={}",
            d["name"].as_str().unwrap_or(""),
            d["url"].as_str().unwrap_or(""),
            d["template_parameters"]["SerialNumber"]
                .as_str()
                .unwrap_or("")
        );
    }
}
