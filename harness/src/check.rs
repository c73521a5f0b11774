//! `check-device`: runs the device checker ([`claimlink_harness::check_device`]) against a device over
//! SoftAP HTTP or real Bluetooth and prints one line per case.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{DeviceCredentials, SecretString, WifiCredentials};
use claimlink_harness::check_device::{self, CheckOptions, HttpOpener, LinkOpener};

/// What `check-device` was asked to do (its command-line options).
#[derive(clap::Args, Debug)]
pub struct CheckDeviceArgs {
    /// The device's SoftAP base URL (`http://192.168.4.1:80`).
    #[arg(long, conflicts_with = "ble", required_unless_present = "ble")]
    pub http: Option<String>,
    /// The device's BLE name (needs the `ble` feature).
    #[arg(long)]
    pub ble: Option<String>,
    /// Read the Sec2 password from the first line of this file.
    #[arg(long, value_name = "PATH", conflicts_with = "pop_file")]
    pub password_file: Option<std::path::PathBuf>,
    /// Read a Sec1 proof of possession from the first line of this file (a Sec1 device).
    #[arg(long, value_name = "PATH")]
    pub pop_file: Option<std::path::PathBuf>,
    /// The Sec2 username.
    #[arg(long, default_value = "wifiprov")]
    pub username: String,
    /// A network the device can join: adds the Wi-Fi retry case (a wrong passphrase, Reset, the
    /// right one), run last. Its passphrase from --wifi-passphrase-file or CLAIMLINK_WIFI_PASSPHRASE.
    #[arg(long)]
    pub wifi_ssid: Option<String>,
    /// Read the network's passphrase from the first line of this file.
    #[arg(long, value_name = "PATH", requires = "wifi_ssid")]
    pub wifi_passphrase_file: Option<std::path::PathBuf>,
    /// Also run the whole flow through the SDK against the embedded AWS IoT emulator (the
    /// `cloud` case, last): the device joins --wifi-ssid and provisions itself on the emulator.
    /// The device must trust the emulator's CA, written to --cloud-ca.
    #[arg(long, requires = "wifi_ssid")]
    pub cloud: bool,
    /// Where to write the emulator's CA certificate for the device to trust
    /// (`serve-device --trust-ca` the same path).
    #[arg(long, value_name = "PATH", default_value = "claimlink-emulator-ca.pem")]
    pub cloud_ca: std::path::PathBuf,
    /// The address the emulator's MQTT broker listens on: 127.0.0.1 for the simulator; this
    /// machine's address on the device's network (or 0.0.0.0) for a real device.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub cloud_bind: std::net::IpAddr,
    /// The host name or IP the device is told to reach the emulator by (default: --cloud-bind).
    #[arg(long, value_name = "HOST")]
    pub cloud_host: Option<String>,
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

fn credentials(request: &CheckDeviceArgs) -> Result<DeviceCredentials, String> {
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
fn wifi(request: &CheckDeviceArgs) -> Result<Option<WifiCredentials>, String> {
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
    let link = crate::real_ble::open_by_name(name).await?;
    Ok(Arc::new(check_device::ReconnectOpener::new(link)))
}

#[cfg(not(feature = "ble"))]
async fn ble_opener(_name: &str) -> Result<Arc<dyn LinkOpener>, String> {
    Err("this claimlink-harness was built without Bluetooth: rebuild with `--features ble` (Linux: needs libdbus-1-dev and pkg-config)".into())
}

/// Runs the checker; exit code 1 on any FAIL (or when it cannot start).
pub async fn run(request: CheckDeviceArgs) -> ExitCode {
    let setup = async {
        let wifi = wifi(&request)?;
        let cloud = match (request.cloud, &wifi) {
            (false, _) => None,
            (true, Some(wifi)) => Some(check_device::CloudOptions {
                wifi: wifi.clone(),
                bind: request.cloud_bind,
                host: request.cloud_host.clone(),
                ca_file: request.cloud_ca.clone(),
            }),
            (true, None) => return Err("--cloud needs --wifi-ssid".to_owned()),
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
