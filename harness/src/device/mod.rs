//! The device simulator: the device side of the protocomm / network-provisioning protocol and of
//! claimlink's `aws-claim` / `aws-status` extension, written from `docs/protocol.md`, reachable over a
//! simulated BLE link ([`ble`]) or HTTP on 127.0.0.1 ([`http`], like an ESP32 in SoftAP mode).
//!
//! * [`firmware`] — what runs on the device: [`SimDevice`], its endpoints (one file each), the
//!   handshakes ([`security`]) and the cloud half (MQTT fleet provisioning, [`cloud`]) it runs once
//!   online;
//! * [`links`] — how the phone reaches it: the fake GATT table ([`gatt`]), the simulated BLE link
//!   ([`ble`]) and HTTP ([`http`]);
//! * [`wifi`] — the radio world around it;
//! * [`c_firmware`] — the C component's host program as a device's firmware (built with CMake);
//! * [`broken`] — contract rules a test device can be told to break (for the device checker);
//! * [`factory_claim`] — the factory-claim mode: a device that provisions itself by claim at first
//!   boot, with no app.

pub mod broken;
pub mod c_firmware;
pub mod cloud;
pub mod factory_claim;
pub mod firmware;
pub mod links;
pub mod wifi;

pub use firmware::security;
pub use firmware::{DeviceFailure, ReceivedClaim, SimDevice, SimWifiState};
pub use links::{ble, gatt, http};

use std::time::Duration;

use security::DeviceSecurity;
use wifi::WifiWorld;

/// How a simulated device is built.
#[derive(Clone, Debug)]
pub struct SimDeviceConfig {
    /// Its advertised name (`PROV_xxxx`).
    pub name: String,
    /// Its security.
    pub security: DeviceSecurity,
    /// The Wi-Fi world around it.
    pub world: WifiWorld,
    /// Whether its firmware has claimlink's extension.
    pub aws_extension: bool,
    /// The largest claim bundle it accepts.
    pub max_claim_bundle: usize,
    /// Seed for its randomness (keys, nonces): the same seed, the same bytes.
    pub seed: u64,
    /// Index used to give each device its own IP address.
    pub index: u16,
    /// ESP-IDF's auto-stop, on by default in stock firmware: provisioning (SoftAP or BLE) stops this
    /// long after the device got an IP (`CONFIG_NETWORK_PROV_AUTOSTOP_TIMEOUT`, 30 s), and
    /// [`auto_stop_cleanup_delay`](Self::auto_stop_cleanup_delay) after a `GetStatus` answered
    /// `Connected` (network_provisioning's `handlers.c` calls `network_prov_mgr_done()`); a `Reprov` is
    /// refused (`manager.c`, `network_prov_mgr_reset_wifi_sm_state_for_reprovision`). `None`: the
    /// firmware called `network_prov_mgr_disable_auto_stop()`, as claimlink devices must until their
    /// cloud half ends (docs/protocol.md, firmware settings): the service runs on, `Reprov` is accepted.
    pub auto_stop_after_ip: Option<Duration>,
    /// With auto-stop on: how long after the `GetStatus` that answered `Connected` the service is gone
    /// (network_provisioning's `cleanup_delay`, 1000 ms by default, at least 100 ms).
    pub auto_stop_cleanup_delay: Duration,
    /// Failure injection: the handler of these endpoints fails (HTTP: the socket is closed without an
    /// answer; BLE: an ATT error), as ESP-IDF does when a handler returns an error.
    pub failing_endpoints: Vec<String>,
    /// The cloud half: `None` for a device that stops at Wi-Fi.
    pub cloud: Option<DeviceCloud>,
    /// Run the claim extension (`aws-claim`, `aws-status`) and the cloud half in this program
    /// instead of the simulator's own code: the C component's POSIX host,
    /// `claimlink-device-host` (firmware/esp-idf/claimlink_device/port/posix/PIPE.md). The simulator
    /// keeps the link, protocomm security and the Wi-Fi endpoints; [`cloud`](Self::cloud) becomes
    /// the program's command line. `None`: the simulator's own firmware.
    pub external_firmware: Option<std::path::PathBuf>,
    /// **Test fault, not firmware behaviour**: once on Wi-Fi, `aws-status` says `Done` as this thing
    /// with this certificate id, whatever the cloud half did (a hostile or broken device claiming a
    /// success it did not earn). Set with [`danger_lie_done_as`](Self::danger_lie_done_as).
    pub lie_done_as: Option<DoneLie>,
    /// **Test faults, not firmware behaviour**: contract rules this device breaks, to show that the
    /// device checker catches each (`serve-device --danger-broken <name>`). Empty for a faithful device.
    pub danger_broken: Vec<broken::BrokenBehaviour>,
}

/// What a lying device reports as done ([`SimDeviceConfig::danger_lie_done_as`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoneLie {
    /// The thing it names.
    pub thing_name: String,
    /// The certificate id it names.
    pub certificate_id: String,
}

/// How the device reaches the cloud once online. The endpoint itself comes from the claim bundle.
#[derive(Clone, Debug)]
pub struct DeviceCloud {
    /// Trust anchors for the MQTT server (Amazon's root CA on a real device).
    pub ca_pem: String,
    /// Read the trust anchors from this file instead, when the cloud half starts (not when the
    /// device starts): `serve-device --trust-ca FILE` may be started before `check-device --cloud`
    /// writes the emulator's CA there.
    pub ca_pem_file: Option<std::path::PathBuf>,
    /// Port when the bundle's endpoint has none (AWS IoT: 8883).
    pub default_port: u16,
    /// CSR path (default) or CreateKeysAndCertificate.
    pub use_csr: bool,
    /// Time to sync the clock (SNTP) after getting an address.
    pub time_sync: Duration,
    /// How long to wait for each MQTT answer.
    pub timeout: Duration,
    /// Where to prove the permanent certificate: the credentials provider (`host:port`) and role alias.
    pub credentials: Option<(String, String)>,
    /// The fleet-provisioning API's payload format: JSON (default) or CBOR, as AWS offers both.
    /// The simulator's own cloud half only: the C firmware (`--firmware c`) speaks JSON.
    pub payload_format: cloud::PayloadFormat,
    /// MQTT 3.1.1 (default) or MQTT 5, as AWS IoT Core speaks both. The simulator's own cloud half
    /// only: the C firmware (`--firmware c`) speaks MQTT 3.1.1.
    pub mqtt_protocol: cloud::MqttProtocol,
}

impl DeviceCloud {
    /// A device trusting the CA in the file `path`, read when its cloud half starts; CSR path, quick
    /// time sync.
    pub fn trusting_file(path: &std::path::Path) -> Self {
        Self {
            ca_pem_file: Some(path.to_owned()),
            ..Self::trusting("")
        }
    }

    /// A device trusting `ca_pem`, CSR path, quick time sync.
    pub fn trusting(ca_pem: &str) -> Self {
        Self {
            ca_pem: ca_pem.to_owned(),
            ca_pem_file: None,
            default_port: 8883,
            use_csr: true,
            time_sync: Duration::from_millis(20),
            timeout: Duration::from_secs(20),
            credentials: None,
            payload_format: cloud::PayloadFormat::Json,
            mqtt_protocol: cloud::MqttProtocol::V311,
        }
    }
}

impl Default for SimDeviceConfig {
    fn default() -> Self {
        Self {
            name: "PROV_C1A1".into(),
            security: DeviceSecurity::Sec2 {
                username: "wifiprov".into(),
                password: "abcd1234".into(),
                patch: 1,
            },
            world: WifiWorld::default(),
            aws_extension: true,
            max_claim_bundle: 8 * 1024,
            seed: 1,
            index: 0,
            // A claimlink device: auto-stop disabled until its cloud half ends (docs/protocol.md).
            auto_stop_after_ip: None,
            auto_stop_cleanup_delay: Duration::from_millis(1000),
            failing_endpoints: Vec::new(),
            cloud: None,
            external_firmware: None,
            lie_done_as: None,
            danger_broken: Vec::new(),
        }
    }
}

impl SimDeviceConfig {
    /// Whether this (deliberately broken) device breaks `rule`.
    pub fn breaks(&self, rule: broken::BrokenBehaviour) -> bool {
        self.danger_broken.contains(&rule)
    }

    /// **Test fault**: the device lies. Once on Wi-Fi it reports `Done` as `thing` with `certificate_id`
    /// (another thing's, or an old one of the expected thing), whether or not its cloud half ran: the
    /// SDK must not call that a success unless the cloud shows it (docs/protocol.md, confirmation).
    pub fn danger_lie_done_as(&mut self, thing: &str, certificate_id: &str) {
        self.lie_done_as = Some(DoneLie {
            thing_name: thing.to_owned(),
            certificate_id: certificate_id.to_owned(),
        });
    }

    /// Stock ESP-IDF auto-stop (on, as `wifi_prov_mgr`/`network_prov_mgr` start it): 30 s after the
    /// IP, 1 s after a `GetStatus` answered `Connected`; `Reprov` refused.
    pub fn stock_auto_stop(&mut self) {
        self.auto_stop_after_ip = Some(Duration::from_secs(30));
        self.auto_stop_cleanup_delay = Duration::from_millis(1000);
    }

    /// Stops provisioning (and BLE) 20 ms after the device gets its address and makes it take
    /// `time_sync` before the cloud steps: it goes quiet before it can report its certificate, and the
    /// SDK has to confirm through the cloud.
    pub fn goes_quiet_after_joining(&mut self, time_sync: Duration) {
        self.auto_stop_after_ip = Some(Duration::from_millis(20));
        self.auto_stop_cleanup_delay = Duration::from_millis(20);
        if let Some(cloud) = self.cloud.as_mut() {
            cloud.time_sync = time_sync;
        }
    }
}
