//! The faults a chaos run can meet, and how a run draws one from its seed.

use rand::Rng;
use rand_chacha::ChaCha20Rng;

/// What goes wrong in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The BLE connection drops when this exchange starts.
    BleDisconnect(u64),
    /// The device's answer number N (after the handshake) arrives damaged: a flipped bit, cut short,
    /// the previous answer again (a late duplicate), or with its pieces out of order.
    BadFrame(FrameFault, usize),
    /// The backend takes longer than the SDK's request timeout this many times (4: every attempt).
    BackendTimeout(u8),
    /// The pre-provisioning hook never answers (the emulator gives up after 1 s, as AWS after 5 s).
    HookTimeout,
    /// The MQTT broker drops the device's connection once it is connected with the claim (and refuses
    /// new ones).
    MqttDropMidFlow,
    /// The backend answers 503 this many times first.
    Backend5xx(u8),
    /// The backend's claim answer is not JSON.
    BackendMalformed,
    /// The installer types a wrong passphrase first.
    WrongPassphrase,
    /// The chosen network is not in range.
    NetworkNotFound,
    /// The template's RegisterThing is rejected (a thing group is missing).
    TemplateRejection,
    /// The pre-provisioning hook denies.
    HookDenied,
    /// The claim expires while the device is still getting online.
    ClaimExpires,
    /// The device reboots right after the claim was handed over.
    DeviceReboot,
    /// The MQTT endpoint is down.
    MqttDown,
    /// The phone's clock is off by this many seconds.
    ClockSkew(i64),
    /// The backend answers slowly (2 s).
    BackendSlow,
    /// The network's DHCP server never answers.
    DhcpTimeout,
    /// The credentials provider refuses the new certificate (no such role alias).
    CredentialsRefused,
    /// The thing already exists with an ACTIVE certificate (provisioned before, or a reused serial),
    /// and the device goes quiet on BLE right after it gets its address; if `device_fails`, it then
    /// cannot reach AWS IoT either.
    PreExistingThing {
        /// The device never gets its own certificate.
        device_fails: bool,
    },
}

/// How a frame from the device is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// One bit flipped.
    Flipped,
    /// The last bytes missing.
    Truncated,
    /// The previous answer delivered again instead.
    Duplicated,
    /// The two halves swapped (pieces of a long read delivered out of order).
    Reordered,
}

impl Fault {
    pub(super) fn draw(rng: &mut ChaCha20Rng) -> Self {
        match rng.gen_range(0..20) {
            0 => Fault::None,
            1 => Fault::BleDisconnect(rng.gen_range(1..=14)),
            2 => Fault::BadFrame(
                [
                    FrameFault::Flipped,
                    FrameFault::Truncated,
                    FrameFault::Duplicated,
                    FrameFault::Reordered,
                ][rng.gen_range(0..4)],
                rng.gen_range(4..=9),
            ),
            16 => Fault::BackendTimeout([1, 4][rng.gen_range(0..2)]),
            17 => Fault::HookTimeout,
            18 => Fault::MqttDropMidFlow,
            19 => Fault::PreExistingThing {
                device_fails: rng.gen_bool(0.5),
            },
            3 => Fault::Backend5xx(rng.gen_range(1..=2)),
            4 => Fault::BackendMalformed,
            5 => Fault::WrongPassphrase,
            6 => Fault::NetworkNotFound,
            7 => Fault::TemplateRejection,
            8 => Fault::HookDenied,
            9 => Fault::ClaimExpires,
            10 => Fault::DeviceReboot,
            11 => Fault::MqttDown,
            12 => Fault::ClockSkew(rng.gen_range(-600..=600)),
            13 => Fault::BackendSlow,
            14 => Fault::DhcpTimeout,
            _ => Fault::CredentialsRefused,
        }
    }

    /// A short name for the table.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::BleDisconnect(_) => "ble-disconnect",
            Fault::BadFrame(FrameFault::Flipped, _) => "frame-flipped",
            Fault::BadFrame(FrameFault::Truncated, _) => "frame-truncated",
            Fault::BadFrame(FrameFault::Duplicated, _) => "frame-duplicated",
            Fault::BadFrame(FrameFault::Reordered, _) => "frame-reordered",
            Fault::BackendTimeout(_) => "backend-timeout",
            Fault::HookTimeout => "hook-timeout",
            Fault::MqttDropMidFlow => "mqtt-drop-mid-flow",
            Fault::Backend5xx(_) => "backend-5xx",
            Fault::BackendMalformed => "backend-malformed",
            Fault::WrongPassphrase => "wrong-passphrase",
            Fault::NetworkNotFound => "network-not-found",
            Fault::TemplateRejection => "template-rejection",
            Fault::HookDenied => "hook-denied",
            Fault::ClaimExpires => "claim-expires",
            Fault::DeviceReboot => "device-reboot",
            Fault::MqttDown => "mqtt-down",
            Fault::ClockSkew(_) => "clock-skew",
            Fault::BackendSlow => "backend-slow",
            Fault::DhcpTimeout => "dhcp-timeout",
            Fault::CredentialsRefused => "credentials-refused",
            Fault::PreExistingThing {
                device_fails: false,
            } => "thing-exists",
            Fault::PreExistingThing { device_fails: true } => "thing-exists-device-fails",
        }
    }
}
