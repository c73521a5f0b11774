//! `claimlink-harness serve-device`: one simulated device over HTTP on 127.0.0.1, configured from the
//! command line so that any protocomm client (ESP-IDF's `esp_prov.py`, the apps, a checker) can be
//! pointed at every behaviour: the security scheme (0, 1 with or without a PoP, 2 with patch 0 or 1),
//! the Wi-Fi world (networks, join time, retries), auto-stop, and injected handler failures.

use std::sync::Arc;
use std::time::Duration;

use claimlink_harness::device::http::HttpDevice;
use claimlink_harness::device::security::DeviceSecurity;
use claimlink_harness::device::wifi::SimNetwork;
use claimlink_harness::device::{SimDevice, SimDeviceConfig};

/// How the served device is built.
#[derive(clap::Args, Debug)]
pub struct ServeDeviceArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Security scheme: 0 (none), 1 (X25519 + PoP), 2 (SRP6a).
    #[arg(long = "sec", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    sec: u8,
    /// Sec2 patch version: 1 (counter IVs, current ESP-IDF) or 0 (the original fixed IV).
    #[arg(long = "sec-patch", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
    sec_patch: u32,
    /// The Sec2 username.
    #[arg(long, default_value = "wifiprov")]
    username: String,
    /// The Sec2 password.
    #[arg(long, default_value = "abcd1234")]
    password: String,
    /// The Sec1 proof of possession (without one, Sec1 advertises `no_pop`).
    #[arg(long)]
    pop: Option<String>,
    /// How long a Wi-Fi join takes, in milliseconds (each attempt).
    #[arg(long, default_value_t = 300)]
    join_ms: u64,
    /// Attempts after the first before the device gives up (`wifi_conn_attempts` - 1).
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// A visible network, `SSID` (open) or `SSID:PASSPHRASE`; repeat for more. Without any, the
    /// default world: claimlink-lab / "correct horse battery", neighbours-wifi, cafe-guest (open).
    #[arg(long = "network", value_name = "SSID[:PASSPHRASE]")]
    networks: Vec<String>,
    /// ESP-IDF's default auto-stop (on): provisioning stops 1 s after a GetStatus answered
    /// Connected (30 s after the IP at the latest) and Reprov is refused. Without it the device
    /// runs as claimlink devices must, auto-stop disabled.
    #[arg(long)]
    stock_auto_stop: bool,
    /// Failure injection: the handler of this endpoint fails (the socket is closed without an
    /// answer, as ESP-IDF's httpd does); repeat for more.
    #[arg(long = "fail-endpoint", value_name = "ENDPOINT")]
    fail_endpoints: Vec<String>,
    /// Without claimlink's firmware extension (aws-claim, aws-status): a stock ESP-IDF device.
    #[arg(long)]
    no_aws_extension: bool,
    /// **Test fault**: make the device break one contract rule (repeatable), to see
    /// `check-device` catch it. Names: see `claimlink_harness::device::broken`.
    #[arg(long = "danger-broken", value_name = "NAME")]
    danger_broken: Vec<claimlink_harness::device::broken::BrokenBehaviour>,
    /// Give the device a cloud half that trusts the CA in this file, read when the cloud half
    /// starts (after the Wi-Fi join): `check-device --cloud --cloud-ca` the same path writes the
    /// emulator's CA there, so the two may start in either order.
    #[arg(long, value_name = "PATH")]
    trust_ca: Option<std::path::PathBuf>,
    /// The device's firmware for the claim extension and the cloud half: `rust` (the simulator's
    /// own), `c` (the C component, firmware/esp-idf/claimlink_device, built with CMake on first use:
    /// needs cmake and the Debian packages ./scripts/test installs), or the path of a program that
    /// speaks its pipe protocol (firmware/esp-idf/claimlink_device/port/posix/PIPE.md).
    #[arg(long, value_name = "rust|c|PATH", default_value = "rust")]
    firmware: String,
}

impl ServeDeviceArgs {
    /// The device these arguments describe.
    fn config(&self) -> Result<SimDeviceConfig, String> {
        let security = match self.sec {
            0 => DeviceSecurity::Sec0,
            1 => DeviceSecurity::Sec1 {
                pop: self.pop.clone(),
            },
            _ => {
                if self.password.is_empty() || self.username.is_empty() {
                    return Err("Sec2 needs a username and a password".into());
                }
                DeviceSecurity::Sec2 {
                    username: self.username.clone(),
                    password: self.password.clone(),
                    patch: self.sec_patch,
                }
            }
        };
        let mut config = SimDeviceConfig {
            security,
            aws_extension: !self.no_aws_extension,
            failing_endpoints: self.fail_endpoints.clone(),
            danger_broken: self.danger_broken.clone(),
            ..SimDeviceConfig::default()
        };
        if self.stock_auto_stop {
            config.stock_auto_stop();
        }
        config.external_firmware =
            claimlink_harness::device::c_firmware::firmware_program(&self.firmware)?;
        config.cloud = self
            .trust_ca
            .as_deref()
            .map(claimlink_harness::device::DeviceCloud::trusting_file);
        config.world.connect_time = Duration::from_millis(self.join_ms.max(1));
        config.world.retries = self.retries;
        if !self.networks.is_empty() {
            config.world.networks = self
                .networks
                .iter()
                .map(|spec| network(spec))
                .collect::<Result<_, _>>()?;
        }
        Ok(config)
    }
}

/// `SSID` or `SSID:PASSPHRASE` as a network (channels 1, 6, 11 in turn by SSID length).
fn network(spec: &str) -> Result<SimNetwork, String> {
    let (ssid, passphrase) = spec.split_once(':').unwrap_or((spec, ""));
    if ssid.is_empty() || ssid.len() > 32 {
        return Err(format!("network {ssid:?}: an SSID has 1 to 32 bytes"));
    }
    if !passphrase.is_empty() && !(8..=63).contains(&passphrase.len()) {
        return Err(format!(
            "network {ssid:?}: a WPA2 passphrase has 8 to 63 characters"
        ));
    }
    Ok(SimNetwork {
        channel: [1, 6, 11][ssid.len() % 3],
        ..SimNetwork::wpa2(ssid, passphrase)
    })
}

/// Serves the device until interrupted.
pub async fn serve_device(args: ServeDeviceArgs) -> Result<(), String> {
    let config = args.config()?;
    let networks: Vec<String> = config
        .world
        .networks
        .iter()
        .map(|n| {
            if n.passphrase.is_empty() {
                format!("{} (open)", n.ssid)
            } else {
                n.ssid.clone()
            }
        })
        .collect();
    let device = Arc::new(SimDevice::new(config));
    let server = HttpDevice::serve_on(device.clone(), args.port)
        .await
        .map_err(|e| format!("error: cannot serve on 127.0.0.1:{}: {e}", args.port))?;
    println!(
        "simulated device {} at {}",
        device.config().name,
        server.base_url()
    );
    println!("proto-ver: {}", device.version_json());
    println!("networks: {}", networks.join(", "));
    if let Some(path) = &args.trust_ca {
        println!(
            "cloud: trusts the CA in {} (read when the cloud half starts)",
            path.display()
        );
    }
    for broken in &device.config().danger_broken {
        println!("danger: this device deliberately breaks the contract: {broken}");
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeDeviceArgs,
    }

    fn parse(args: &[&str]) -> Result<SimDeviceConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("serve-device").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.args.config()
    }

    #[test]
    fn trust_ca_gives_the_device_a_cloud_half_reading_that_file() {
        let config = parse(&["--trust-ca", "/tmp/emulator-ca.pem"]).expect("parses");
        let cloud = config.cloud.expect("a cloud half");
        assert_eq!(
            cloud.ca_pem_file.as_deref(),
            Some(std::path::Path::new("/tmp/emulator-ca.pem"))
        );
        assert!(parse(&[]).expect("parses").cloud.is_none());
    }

    #[test]
    fn every_scheme_and_behaviour_can_be_chosen() {
        let config = parse(&["--sec", "1", "--pop", "secret-pop"]).expect("sec1");
        assert!(
            matches!(config.security, DeviceSecurity::Sec1 { pop: Some(ref p) } if p == "secret-pop")
        );
        let config = parse(&["--sec", "1"]).expect("sec1 no pop");
        assert!(matches!(
            config.security,
            DeviceSecurity::Sec1 { pop: None }
        ));
        let config = parse(&["--sec", "0"]).expect("sec0");
        assert!(matches!(config.security, DeviceSecurity::Sec0));
        let config = parse(&[
            "--sec-patch",
            "0",
            "--password",
            "pw-123456",
            "--join-ms",
            "50",
            "--retries",
            "2",
            "--network",
            "home:passphrase-1",
            "--network",
            "guest",
            "--fail-endpoint",
            "prov-scan",
            "--stock-auto-stop",
        ])
        .expect("sec2");
        assert!(matches!(
            config.security,
            DeviceSecurity::Sec2 { patch: 0, ref password, .. } if password == "pw-123456"
        ));
        assert_eq!(config.world.connect_time, Duration::from_millis(50));
        assert_eq!(config.world.retries, 2);
        let ssids: Vec<_> = config
            .world
            .networks
            .iter()
            .map(|n| n.ssid.as_str())
            .collect();
        assert_eq!(ssids, ["home", "guest"]);
        assert!(config.world.networks[1].passphrase.is_empty());
        assert_eq!(config.failing_endpoints, ["prov-scan"]);
        assert!(config.auto_stop_after_ip.is_some());
    }

    #[test]
    fn hostile_arguments_are_refused() {
        assert!(parse(&["--sec", "3"]).is_err());
        assert!(parse(&["--sec-patch", "2"]).is_err());
        assert!(parse(&["--password", ""]).is_err());
        assert!(parse(&["--network", ":nossid"]).is_err());
        assert!(parse(&["--network", "home:short"]).is_err());
        assert!(parse(&["--network", &"x".repeat(33)]).is_err());
    }
}
