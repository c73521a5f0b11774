//! `scan` and `provision`: real devices over real Bluetooth (feature `ble`). Without an adapter (or
//! without the feature) each says so in one line.

/// What `provision` was asked to do.
#[cfg_attr(not(feature = "ble"), allow(dead_code))]
pub struct ProvisionRequest {
    pub ble: Option<String>,
    pub qr_file: Option<std::path::PathBuf>,
    pub ssid: String,
    pub passphrase_stdin: bool,
    pub backend_url: String,
    pub template: String,
    pub iot_endpoint: String,
    pub params: Vec<String>,
    /// Where to write the support report (JSON) of the run, whatever its outcome.
    pub report: Option<std::path::PathBuf>,
}

#[cfg(not(feature = "ble"))]
const NO_BLE: &str = "this claimlink-harness was built without Bluetooth: rebuild with `--features ble` (Linux: needs libdbus-1-dev and pkg-config)";

#[cfg(not(feature = "ble"))]
pub async fn scan(_seconds: u64, _prefix: &str) -> Result<(), String> {
    Err(NO_BLE.to_owned())
}

#[cfg(not(feature = "ble"))]
pub async fn provision(_request: ProvisionRequest) -> Result<(), String> {
    Err(NO_BLE.to_owned())
}

#[cfg(feature = "ble")]
pub async fn scan(seconds: u64, prefix: &str) -> Result<(), String> {
    use claimlink_core::btle;
    let found = btle::scan(None, Some(prefix), std::time::Duration::from_secs(seconds))
        .await
        .map_err(|e| e.to_string())?;
    if found.is_empty() {
        println!("no device whose name starts with {prefix:?} was seen in {seconds} s");
    }
    for d in found {
        println!(
            "{:<24} rssi {:>5}  services {}",
            d.name,
            d.rssi.map_or("?".to_owned(), |r| r.to_string()),
            d.services.len()
        );
    }
    Ok(())
}

/// Scans five seconds for the device advertising exactly `name` and opens the SDK's BLE link to it.
#[cfg(feature = "ble")]
pub async fn open_by_name(
    name: &str,
) -> Result<std::sync::Arc<dyn claimlink_core::DeviceLink>, String> {
    use claimlink_core::{btle, BleConfig, BleLink};
    let found = btle::scan(None, Some(name), std::time::Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let device = found
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| format!("device {name:?} not found"))?;
    let link = BleLink::open(device.peripheral, BleConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(std::sync::Arc::new(link))
}

#[cfg(feature = "ble")]
pub async fn provision(request: ProvisionRequest) -> Result<(), String> {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use claimlink_core::DeviceCredentials;
    use claimlink_core::ProvisioningQr;
    use claimlink_core::SecretString;
    use claimlink_core::WifiCredentials;
    use claimlink_core::{BackendClaimSource, TemplateName};
    use claimlink_core::{
        ProvisionOptions, Provisioner, ProvisionerConfig, ProvisioningEvent, ProvisioningListener,
    };
    use claimlink_harness::providers::TokenSequence;

    struct Print;
    impl ProvisioningListener for Print {
        fn on_event(&self, e: ProvisioningEvent) {
            let left = e
                .claim_time_left
                .map(|d| format!("  claim: {:.1} s left", d.as_secs_f64()))
                .unwrap_or_default();
            println!(
                "[{:>7.3} s] {}{left}",
                e.elapsed.as_secs_f64(),
                e.stage.name()
            );
        }
    }

    let (name, credentials) = match (&request.qr_file, &request.ble) {
        (Some(path), _) => {
            let payload =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read the QR payload from {}: {e}", path.display())
                })?);
            let qr = ProvisioningQr::parse(payload.trim()).map_err(|e| e.to_string())?;
            (qr.name, qr.credentials)
        }
        (None, Some(name)) => {
            let pop = std::env::var("CLAIMLINK_POP").map_err(|_| {
                "set CLAIMLINK_POP to the device's proof of possession / password".to_owned()
            })?;
            (
                name.clone(),
                DeviceCredentials::password(SecretString::new(pop)),
            )
        }
        (None, None) => return Err("give --ble NAME or --qr-file PATH".into()),
    };
    let passphrase = if request.passphrase_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        SecretString::new(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        SecretString::default()
    };
    let token = std::env::var("CLAIMLINK_TOKEN")
        .map_err(|_| "set CLAIMLINK_TOKEN to the backend bearer token".to_owned())?;
    let claims = Arc::new(
        BackendClaimSource::builder(
            request.backend_url,
            Arc::new(TokenSequence::new(vec![token])),
        )
        .build()
        .map_err(|e| e.to_string())?,
    );
    let template = TemplateName::new(request.template).map_err(|e| e.to_string())?;
    let provisioner = Provisioner::new(
        claims,
        ProvisionerConfig::new(template, request.iot_endpoint),
    );
    let link = open_by_name(&name).await?;
    let session = match provisioner.connect(link.clone(), credentials, &Print).await {
        Ok(session) => session,
        Err(e) => {
            let failure = claimlink_core::FailureReport::from_error(&e);
            let report = claimlink_core::SupportReport::without_session(failure, Some(&*link));
            claimlink_harness::demo::write_report(request.report.as_deref(), &report.to_json())?;
            return Err(e.to_string());
        }
    };
    let wifi = WifiCredentials::new(request.ssid, passphrase).map_err(|e| e.to_string())?;
    let params: BTreeMap<String, String> = request
        .params
        .iter()
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let done = session
        .provision(
            &wifi,
            &ProvisionOptions {
                template_parameters: params,
                ..ProvisionOptions::default()
            },
            &Print,
        )
        .await;
    let report = session.support_report().await.to_json();
    claimlink_harness::demo::write_report(request.report.as_deref(), &report)?;
    let done = done.map_err(|e| e.to_string())?;
    println!(
        "provisioned as {} (certificate {:?})",
        done.thing_name, done.certificate_id
    );
    Ok(())
}
