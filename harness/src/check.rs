//! `check-device`: runs the device checker ([`claimlink_harness::check_device`]) against a device over
//! SoftAP HTTP or real Bluetooth and prints one line per case.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{DeviceCredentials, SecretString, WifiCredentials};
use claimlink_harness::check_device::{self, CheckOptions, HttpOpener, LinkOpener};

/// What `check-device` was asked to do.
pub struct Request {
    pub http: Option<String>,
    pub ble: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
    pub pop_file: Option<std::path::PathBuf>,
    pub username: String,
    pub wifi_ssid: Option<String>,
    pub wifi_passphrase_file: Option<std::path::PathBuf>,
    /// `--cloud` and its options.
    pub cloud: Option<CloudRequest>,
}

/// What `--cloud` was asked to do: where the emulator's CA goes, where it listens, its host name.
pub struct CloudRequest {
    pub ca_file: std::path::PathBuf,
    pub bind: std::net::IpAddr,
    pub host: Option<String>,
}

/// The first line of `path`, a secret.
fn secret_from_file(path: &std::path::Path) -> Result<SecretString, String> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    Ok(SecretString::new(
        text.lines().next().unwrap_or_default().to_owned(),
    ))
}

fn credentials(request: &Request) -> Result<DeviceCredentials, String> {
    if let Some(path) = &request.pop_file {
        return Ok(DeviceCredentials::pop(secret_from_file(path)?));
    }
    if let Some(path) = &request.password_file {
        return Ok(DeviceCredentials::username_password(
            request.username.clone(),
            secret_from_file(path)?,
        ));
    }
    if let Ok(password) = std::env::var("CLAIMLINK_DEVICE_PASSWORD") {
        return Ok(DeviceCredentials::username_password(
            request.username.clone(),
            SecretString::new(password),
        ));
    }
    if let Ok(pop) = std::env::var("CLAIMLINK_DEVICE_POP") {
        return Ok(DeviceCredentials::pop(SecretString::new(pop)));
    }
    Err("give the device's password with --password-file PATH or CLAIMLINK_DEVICE_PASSWORD (Sec1: --pop-file or CLAIMLINK_DEVICE_POP)".into())
}

/// The network for the `wifi-retry` case: its passphrase from a file or CLAIMLINK_WIFI_PASSPHRASE.
fn wifi(request: &Request) -> Result<Option<WifiCredentials>, String> {
    let Some(ssid) = &request.wifi_ssid else {
        return Ok(None);
    };
    let passphrase = match &request.wifi_passphrase_file {
        Some(path) => secret_from_file(path)?,
        None => SecretString::new(std::env::var("CLAIMLINK_WIFI_PASSPHRASE").map_err(|_| {
            "give the network's passphrase with --wifi-passphrase-file PATH or CLAIMLINK_WIFI_PASSPHRASE".to_owned()
        })?),
    };
    WifiCredentials::new(ssid.as_bytes().to_vec(), passphrase)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(feature = "ble")]
async fn ble_opener(name: &str) -> Result<Arc<dyn LinkOpener>, String> {
    use claimlink_core::{btle, BleConfig, BleLink};
    let found = btle::scan(None, Some(name), Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let device = found
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| format!("device {name:?} not found"))?;
    let link = Arc::new(
        BleLink::open(device.peripheral, BleConfig::default())
            .await
            .map_err(|e| e.to_string())?,
    );
    Ok(Arc::new(check_device::ReconnectOpener::new(link)))
}

#[cfg(not(feature = "ble"))]
async fn ble_opener(_name: &str) -> Result<Arc<dyn LinkOpener>, String> {
    Err("this claimlink-harness was built without Bluetooth: rebuild with `--features ble` (Linux: needs libdbus-1-dev and pkg-config)".into())
}

/// Runs the checker; exit code 1 on any FAIL (or when it cannot start).
pub async fn run(request: Request) -> ExitCode {
    let setup = async {
        let wifi = wifi(&request)?;
        let cloud = match (&request.cloud, &wifi) {
            (None, _) => None,
            (Some(cloud), Some(wifi)) => Some(check_device::CloudOptions {
                wifi: wifi.clone(),
                bind: cloud.bind,
                host: cloud.host.clone(),
                ca_file: cloud.ca_file.clone(),
            }),
            (Some(_), None) => return Err("--cloud needs --wifi-ssid".to_owned()),
        };
        let options = CheckOptions {
            credentials: credentials(&request)?,
            wifi,
            cloud,
        };
        let opener: Arc<dyn LinkOpener> = match (&request.http, &request.ble) {
            (Some(url), _) => Arc::new(HttpOpener::new(url, Duration::from_secs(10))?),
            (None, Some(name)) => ble_opener(name).await?,
            (None, None) => return Err("give --http URL or --ble NAME".to_owned()),
        };
        Ok::<_, String>((options, opener))
    };
    let (options, opener) = match setup.await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = check_device::check(opener, options, |line| println!("{line}")).await;
    println!(
        "{} cases: {} passed, {} failed",
        report.cases.len(),
        report.passed(),
        report.failed()
    );
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
