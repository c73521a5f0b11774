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
    /// The backend's answer to this many claim requests never comes (the emulator holds it until the
    /// client gives up: past the client's timeout by construction); 4: every attempt.
    BackendTimeout(u8),
    /// The pre-provisioning hook never answers (the emulator gives up after 1 s, as AWS after 5 s).
    HookTimeout,
    /// The MQTT broker drops the device's claim connection at its first request (no answer), and
    /// refuses new connections: defined by the protocol, not by when the phone hears of the connect.
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
    /// An impostor offers Security 1 (with the app's password as its PoP, as if cracked) to an app
    /// whose credentials are for Security 2; `allow_sec1`: the provisioner's policy accepts Security 1
    /// devices. Nothing but `proto-ver` may be sent to it.
    ImpostorSec1 {
        /// The provisioner's policy has `allow_sec1`.
        allow_sec1: bool,
    },
    /// Once on Wi-Fi (its cloud half never runs), the device says `Done` with a lie.
    LyingDone(DoneLie),
    /// The device's answer to read number N (1: `proto-ver`) over the simulated BLE link is larger
    /// than the link's cap.
    OversizeAnswer(u64),
    /// The device handles request number N, but its answer comes long after the link's exchange
    /// timeout.
    SlowAnswer(u64),
}

/// What a lying device claims when it says `Done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoneLie {
    /// It is another thing that exists, with that thing's ACTIVE certificate.
    AsOtherThing,
    /// It is the expected thing, with the certificate that thing had ACTIVE before the run.
    WithOldCertificate,
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

/// The reads an oversize or slow answer may hit: the handshake's (2, 3: `prov-session`, capped)
/// through the watch (`proto-ver`, read 1, is exempt from the cap and outside the session).
const ANSWER_FAULT_READS: std::ops::RangeInclusive<u64> = 2..=14;

impl Fault {
    pub(super) fn draw(rng: &mut ChaCha20Rng) -> Self {
        match rng.gen_range(0..24) {
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
            20 => Fault::ImpostorSec1 {
                allow_sec1: rng.gen_bool(0.5),
            },
            21 => Fault::LyingDone(
                [DoneLie::AsOtherThing, DoneLie::WithOldCertificate][rng.gen_range(0..2)],
            ),
            22 => Fault::OversizeAnswer(rng.gen_range(ANSWER_FAULT_READS)),
            23 => Fault::SlowAnswer(rng.gen_range(ANSWER_FAULT_READS)),
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
            Fault::ImpostorSec1 { allow_sec1: false } => "impostor-sec1",
            Fault::ImpostorSec1 { allow_sec1: true } => "impostor-sec1-allowed",
            Fault::LyingDone(DoneLie::AsOtherThing) => "lying-done-other-thing",
            Fault::LyingDone(DoneLie::WithOldCertificate) => "lying-done-old-certificate",
            Fault::OversizeAnswer(_) => "oversize-answer",
            Fault::SlowAnswer(_) => "slow-answer",
        }
    }
}
