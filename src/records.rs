//! Plain data crossing the boundary: settings the app fills in, and what the SDK tells about a device
//! (progress is in `progress.rs`).
//! Each is converted from or to its core type here, at the boundary.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use claimlink_core as core;
use claimlink_core::SecretString;
use claimlink_core::{DeviceCapabilities, DeviceCredentials, SecurityPolicy, SecurityScheme};
use claimlink_core::{WifiAuth, WifiNetwork as CoreNetwork};

use super::ProvisioningFailure;

/// What a [`Provisioner`](super::Provisioner) needs to know. Only `template` and `iot_endpoint` have no
/// default.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ProvisionerSettings {
    /// The fleet-provisioning template claims are requested for.
    pub template: String,
    /// The AWS IoT data endpoint devices connect to (`xxxx-ats.iot.<region>.amazonaws.com`).
    pub iot_endpoint: String,
    /// Extra trust anchors (PEM) for the backend or AWS endpoint, added to the public roots: for a
    /// backend behind a private CA, or the harness's emulator. TLS verification cannot be turned off.
    #[uniffi(default)]
    pub extra_root_certificates_pem: Vec<String>,
    /// Device security the app accepts (default: Security 2 patch 1 only).
    #[uniffi(default = None)]
    pub security: Option<SecuritySettings>,
    /// Never hand over a claim with less than this left, in seconds (10–240).
    #[uniffi(default = 60)]
    pub safety_margin_secs: i32,
    /// How often the device's status is read while it works, in milliseconds (100–1000).
    #[uniffi(default = 500)]
    pub poll_interval_millis: i32,
    /// Time allowed from "join Wi-Fi" to a Wi-Fi outcome, in seconds (1–600).
    #[uniffi(default = 45)]
    pub wifi_timeout_secs: i32,
    /// Time allowed for the cloud stages after the certificate is issued, and for the cloud's
    /// confirmation, in seconds (1–600).
    #[uniffi(default = 60)]
    pub cloud_timeout_secs: i32,
    /// Time allowed for one whole `provision` call, in seconds (1–3600).
    #[uniffi(default = 420)]
    pub overall_timeout_secs: i32,
    /// Over SoftAP, the time budgeted, in seconds (1–240), from `prepare_claim` to the hand-over
    /// (joining the device's access point, opening the session): a prepared claim must have the
    /// safety margin plus this left, and one that runs shorter by the hand-over is renewed.
    #[uniffi(default = 30)]
    pub ap_join_budget_secs: i32,
    /// The platform's proxy for the backend and AWS (`http://host:port`; Android:
    /// `ConnectivityManager.getDefaultProxy()`, iOS: the system proxy settings). `None`: the
    /// environment's `HTTPS_PROXY` / `NO_PROXY`. Never used for a device link.
    #[uniffi(default = None)]
    pub proxy_url: Option<String>,
}

/// Which device security the app accepts: a floor under every connection. Everything off = Security 2
/// patch 1 only. The scheme a connection uses is the one its [`DeviceSecret`] is for; these settings
/// can only refuse it.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct SecuritySettings {
    /// Accept Security 1 devices (no message integrity; a captured handshake lets the PoP be guessed
    /// offline), when a connection's [`DeviceSecret`] is for Security 1 (a PoP): a Security 2
    /// password never opens a Security 1 device.
    #[uniffi(default = false)]
    pub allow_sec1: bool,
    /// Accept Security 2 patch 0 devices, which reuse one GCM IV for every message of a session.
    #[uniffi(default = false)]
    pub danger_allow_sec2_patch0: bool,
    /// Accept Security 0 devices: the claim's private key and the Wi-Fi passphrase cross the air in
    /// clear text.
    #[uniffi(default = false)]
    pub danger_allow_sec0: bool,
}

impl From<SecuritySettings> for SecurityPolicy {
    fn from(s: SecuritySettings) -> Self {
        SecurityPolicy {
            allow_sec1: s.allow_sec1,
            danger_allow_sec2_patch0: s.danger_allow_sec2_patch0,
            danger_allow_sec0: s.danger_allow_sec0,
        }
    }
}

impl ProvisionerSettings {
    pub(crate) fn core(&self) -> Result<core::ProvisionerConfig, ProvisioningFailure> {
        let template = claimlink_core::TemplateName::new(self.template.clone())?;
        if self.iot_endpoint.trim().is_empty() {
            return Err(ProvisioningFailure::InvalidInput {
                detail: "iot_endpoint is empty".into(),
            });
        }
        // A claim lives 300 s: a margin of more than 240 s would refuse nearly every claim.
        for (name, value, range) in [
            (
                "poll_interval_millis",
                self.poll_interval_millis,
                100..=1000,
            ),
            ("safety_margin_secs", self.safety_margin_secs, 10..=240),
            ("wifi_timeout_secs", self.wifi_timeout_secs, 1..=600),
            ("cloud_timeout_secs", self.cloud_timeout_secs, 1..=600),
            ("overall_timeout_secs", self.overall_timeout_secs, 1..=3600),
            ("ap_join_budget_secs", self.ap_join_budget_secs, 1..=240),
        ] {
            if !range.contains(&value) {
                return Err(ProvisioningFailure::InvalidInput {
                    detail: format!(
                        "{name} must be {}..={}, not {value}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        }
        let mut config = core::ProvisionerConfig::new(template, self.iot_endpoint.trim());
        config.security = self.security.clone().unwrap_or_default().into();
        // Every value is positive here (checked above): unsigned_abs is the value.
        config.safety_margin = Duration::from_secs(self.safety_margin_secs.unsigned_abs().into());
        config.poll_interval =
            Duration::from_millis(self.poll_interval_millis.unsigned_abs().into());
        config.wifi_timeout = Duration::from_secs(self.wifi_timeout_secs.unsigned_abs().into());
        config.cloud_timeout = Duration::from_secs(self.cloud_timeout_secs.unsigned_abs().into());
        config.overall_timeout =
            Duration::from_secs(self.overall_timeout_secs.unsigned_abs().into());
        config.ap_join_budget = Duration::from_secs(self.ap_join_budget_secs.unsigned_abs().into());
        Ok(config)
    }

    pub(crate) fn http(&self) -> claimlink_core::HttpConfig {
        claimlink_core::HttpConfig {
            extra_root_certificates_pem: self.extra_root_certificates_pem.clone(),
            proxy: self.proxy_url.clone(),
            ..claimlink_core::HttpConfig::default()
        }
    }
}

/// What the installer proves to the device, and which security scheme it is for: from its QR code
/// (`parseProvisioningQr`, whose `security` field it carries) or label. A device offering another
/// scheme is refused before anything but `proto-ver` is sent (an impostor cannot downgrade the
/// session; a Security 2 password is never used as a Security 1 PoP). Built by the app, held by the
/// SDK in a zeroizing buffer; its `toString()` / `description` / `str()` never shows the secret.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct DeviceSecret {
    pub(crate) inner: DeviceCredentials,
}

impl fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DeviceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.secret, self.inner.username.is_empty()) {
            (None, _) => f.write_str("DeviceSecret(none)"),
            (Some(_), true) => f.write_str("DeviceSecret(proof of possession: <redacted>)"),
            (Some(_), false) => write!(
                f,
                "DeviceSecret(username: {}, password: <redacted>)",
                self.inner.username
            ),
        }
    }
}

#[uniffi::export]
impl DeviceSecret {
    /// Security 2: username (ESP-IDF's default is `wifiprov`) and password.
    #[uniffi::constructor]
    pub fn password(username: String, password: String) -> Arc<Self> {
        Arc::new(DeviceSecret {
            inner: DeviceCredentials::username_password(username, SecretString::new(password)),
        })
    }

    /// Security 1: the proof of possession. Also needs `allow_sec1` in the provisioner's
    /// [`SecuritySettings`] (the floor).
    #[uniffi::constructor]
    pub fn proof_of_possession(pop: String) -> Arc<Self> {
        Arc::new(DeviceSecret {
            inner: DeviceCredentials::pop(pop),
        })
    }

    /// Security 0 (plaintext; also needs `danger_allow_sec0`). For a Security 1 device without a
    /// proof of possession, use [`no_proof_of_possession`](Self::no_proof_of_possession).
    #[uniffi::constructor]
    pub fn nothing() -> Arc<Self> {
        Arc::new(DeviceSecret {
            inner: DeviceCredentials::none(),
        })
    }

    /// Security 1 without a proof of possession (a device that advertises `no_pop`; also needs
    /// `allow_sec1`).
    #[uniffi::constructor]
    pub fn no_proof_of_possession() -> Arc<Self> {
        Arc::new(DeviceSecret {
            inner: DeviceCredentials::sec1_without_pop(),
        })
    }

    /// The security scheme these credentials are for: a device offering another is refused.
    pub fn security(&self) -> SecurityLevel {
        self.inner.security.into()
    }

    /// The Security 2 username (empty for a PoP or nothing).
    pub fn username(&self) -> String {
        self.inner.username.clone()
    }
}

/// The network the device should join. The passphrase is a secret: it is moved into a zeroizing
/// buffer when this is built, and `toString()` / `description` / `str()` never show it.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct WifiSettings {
    pub(crate) inner: claimlink_core::WifiCredentials,
}

impl fmt::Debug for WifiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for WifiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WifiSettings(ssid: {:?}, passphrase: <redacted>)",
            String::from_utf8_lossy(self.inner.ssid())
        )
    }
}

#[uniffi::export]
impl WifiSettings {
    /// The network `ssid` (UTF-8) with `passphrase` (empty for an open network). Fails with
    /// `InvalidInput` for an SSID over 32 bytes or a passphrase WPA does not accept.
    #[uniffi::constructor]
    pub fn new(ssid: String, passphrase: String) -> Result<Arc<Self>, ProvisioningFailure> {
        Self::with_ssid_bytes(ssid.into_bytes(), passphrase)
    }

    /// For a network whose SSID is not UTF-8: its exact bytes, from [`WifiNetwork::ssid_bytes`].
    #[uniffi::constructor]
    pub fn with_ssid_bytes(
        ssid: Vec<u8>,
        passphrase: String,
    ) -> Result<Arc<Self>, ProvisioningFailure> {
        Ok(Arc::new(WifiSettings {
            inner: claimlink_core::WifiCredentials::new(ssid, SecretString::new(passphrase))?,
        }))
    }

    /// The SSID, for display.
    pub fn ssid(&self) -> String {
        String::from_utf8_lossy(self.inner.ssid()).into_owned()
    }
}

/// How a Wi-Fi network authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum WifiSecurity {
    /// Open.
    Open,
    /// WEP.
    Wep,
    /// WPA-PSK.
    WpaPsk,
    /// WPA2-PSK.
    Wpa2Psk,
    /// WPA/WPA2-PSK.
    WpaWpa2Psk,
    /// WPA2-Enterprise (not provisionable with a passphrase).
    Wpa2Enterprise,
    /// WPA3-PSK.
    Wpa3Psk,
    /// WPA2/WPA3-PSK.
    Wpa2Wpa3Psk,
    /// Something this SDK does not know.
    Unknown,
}

/// A network the device can see.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct WifiNetwork {
    /// The SSID for display (invalid UTF-8 replaced).
    pub ssid: String,
    /// The SSID's exact bytes (pass them back in [`WifiSettings::ssid_bytes`] when not UTF-8).
    pub ssid_bytes: Vec<u8>,
    /// The BSSID as `aa:bb:cc:dd:ee:ff`, when given.
    pub bssid: Option<String>,
    /// The channel.
    pub channel: i32,
    /// Signal strength, dBm.
    pub rssi: i32,
    /// How it authenticates.
    pub security: WifiSecurity,
}

impl From<CoreNetwork> for WifiNetwork {
    fn from(n: CoreNetwork) -> Self {
        WifiNetwork {
            ssid: n.ssid_lossy(),
            bssid: n.bssid.map(|b| {
                b.iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            ssid_bytes: n.ssid,
            channel: i32::try_from(n.channel).unwrap_or(i32::MAX),
            rssi: n.rssi,
            security: match n.auth {
                WifiAuth::Open => WifiSecurity::Open,
                WifiAuth::Wep => WifiSecurity::Wep,
                WifiAuth::WpaPsk => WifiSecurity::WpaPsk,
                WifiAuth::Wpa2Psk => WifiSecurity::Wpa2Psk,
                WifiAuth::WpaWpa2Psk => WifiSecurity::WpaWpa2Psk,
                WifiAuth::Wpa2Enterprise => WifiSecurity::Wpa2Enterprise,
                WifiAuth::Wpa3Psk => WifiSecurity::Wpa3Psk,
                WifiAuth::Wpa2Wpa3Psk => WifiSecurity::Wpa2Wpa3Psk,
                WifiAuth::Unknown(_) => WifiSecurity::Unknown,
            },
        }
    }
}

/// A device security scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SecurityLevel {
    /// Plaintext.
    Sec0,
    /// X25519 + PoP, AES-CTR (no integrity).
    Sec1,
    /// SRP-6a + AES-GCM.
    Sec2,
}

impl From<SecurityScheme> for SecurityLevel {
    fn from(s: SecurityScheme) -> Self {
        match s {
            SecurityScheme::Sec0 => SecurityLevel::Sec0,
            SecurityScheme::Sec1 => SecurityLevel::Sec1,
            SecurityScheme::Sec2 => SecurityLevel::Sec2,
        }
    }
}

/// What a connected device said about itself.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeviceInfo {
    /// The link, for logs (`"ble PROV_1A2B mtu 185"`, `"http 192.168.4.1:80"`).
    pub link: String,
    /// The provisioning protocol version (`"v1.1"`).
    pub protocol_version: String,
    /// The security scheme in use.
    pub security: SecurityLevel,
    /// Its Security 2 patch level.
    pub security_patch: i32,
    /// The raw capability strings.
    pub capabilities: Vec<String>,
    /// It can scan for Wi-Fi networks.
    pub wifi_scan: bool,
    /// The version of claimlink's firmware extension.
    pub claim_extension_version: Option<String>,
}

impl DeviceInfo {
    pub(crate) fn new(caps: DeviceCapabilities, link: String) -> Self {
        DeviceInfo {
            link,
            protocol_version: caps.version,
            security: caps.security.into(),
            security_patch: i32::try_from(caps.security_patch).unwrap_or(i32::MAX),
            capabilities: caps.capabilities,
            wifi_scan: caps.wifi_scan,
            claim_extension_version: caps.aws.map(|a| a.version.to_string()),
        }
    }
}

/// Per-run choices.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct ProvisionOptions {
    /// Parameters for the template's `RegisterThing`.
    #[uniffi(default)]
    pub template_parameters: HashMap<String, String>,
    /// The thing name the template will produce, when the app knows it: lets the SDK confirm through
    /// the cloud even if the device goes away before reporting the name.
    #[uniffi(default = None)]
    pub expected_thing_name: Option<String>,
    /// Passed to the backend as `deviceHint` (for its audit log).
    #[uniffi(default = None)]
    pub device_hint: Option<String>,
}

impl ProvisionOptions {
    pub(crate) fn core(&self) -> Result<core::ProvisionOptions, ProvisioningFailure> {
        Ok(core::ProvisionOptions {
            template_parameters: self
                .template_parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            expected_thing_name: self
                .expected_thing_name
                .clone()
                .map(claimlink_core::ThingName::new)
                .transpose()?,
            device_hint: self.device_hint.clone(),
        })
    }
}

/// How to reach a device, from its QR code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceTransport {
    /// Bluetooth Low Energy, by advertised name.
    Ble,
    /// The device's own access point (SSID = name), then HTTP.
    SoftAp,
}

/// A parsed provisioning QR code (ESP-IDF's `{"ver":"v1","name":…,"pop":…,"transport":…}`).
#[derive(Clone, Debug, uniffi::Record)]
pub struct ProvisioningQrCode {
    /// The advertised BLE name or SoftAP SSID.
    pub name: String,
    /// How to reach it.
    pub transport: DeviceTransport,
    /// The security scheme it uses.
    pub security: SecurityLevel,
    /// What to prove to it (never shown by `toString()`).
    pub secret: Arc<DeviceSecret>,
}
