//! What the SDK reports back while and after it provisions: the stages (declared from the core's stage
//! table), the cloud steps a failure names, progress events, and the provisioned device. Each is
//! converted from its core type here, at the boundary.

use std::time::Duration;

use claimlink_core as core;
use claimlink_core::CloudFailureKind;

/// Declares the FFI's [`Stage`] and its conversion from the core's from one list of variants: the
/// core's stage table (`core/src/provision/stages.rs`) is where a stage is defined; here it only gets
/// its variant (uniffi needs the enum), and the conversion follows. A core stage missing here fails
/// the build (the generated `match` is exhaustive).
macro_rules! ffi_stages {
    ($( $(#[doc = $doc:literal])+ $stage:ident, )+) => {
        /// The stages of a run, in order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, uniffi::Enum)]
        pub enum Stage {
            $( $(#[doc = $doc])+ $stage, )+
        }

        impl From<core::Stage> for Stage {
            fn from(s: core::Stage) -> Self {
                match s {
                    $( core::Stage::$stage => Stage::$stage, )+
                }
            }
        }
    };
}

ffi_stages! {
    /// Connecting to the device.
    Connecting,
    /// Establishing the secure session.
    Securing,
    /// Asking for a claim (only now: session up, network chosen). Reported a second time, with a
    /// detail, when the first claim arrived too close to expiry. Every other stage is reported once
    /// per run, except `WifiFailed` and `WaitingForNetwork`.
    ClaimRequested,
    /// A claim is in hand.
    ClaimIssued,
    /// The claim is on the device.
    ClaimSent,
    /// The device was told to join Wi-Fi.
    WifiApplied,
    /// The device is joining Wi-Fi.
    WifiConnecting,
    /// The device failed to join Wi-Fi.
    WifiFailed,
    /// The device is on Wi-Fi with an address.
    WifiConnected,
    /// The device is connected to AWS IoT with the claim.
    MqttConnectedWithClaim,
    /// The device has its permanent certificate.
    CertificateIssued,
    /// Its thing is registered.
    ThingRegistered,
    /// It reconnected with its permanent certificate.
    ReconnectedWithPermanent,
    /// The phone cannot reach the cloud to confirm the device (on SoftAP, typically still on the
    /// device's access point, which has no route out): the SDK keeps trying, with backoff, until the
    /// confirmation's deadline (`cloud_timeout`), and fails with `PhoneOffline` if the phone is still
    /// offline then. Reported each time the phone is found offline after it was reachable.
    WaitingForNetwork,
    /// The cloud confirms the thing with its certificate.
    ConfirmedByCloud,
}

/// Which step of the device's cloud flow AWS refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CloudStep {
    /// Joining Wi-Fi (passphrase).
    WifiAuth,
    /// Finding the network.
    WifiNotFound,
    /// Getting an address.
    DhcpTimeout,
    /// Setting the clock.
    TimeSync,
    /// The claim had expired.
    ClaimExpired,
    /// The TLS handshake with the claim.
    TlsRejected,
    /// The MQTT connection.
    MqttRejected,
    /// CreateCertificateFromCsr / CreateKeysAndCertificate.
    CertificateRejected,
    /// RegisterThing (template, pre-provisioning hook).
    RegisterThingRejected,
    /// Reconnecting with the permanent certificate.
    ReconnectFailed,
    /// The credentials provider refused the new certificate.
    CredentialsProvider,
    /// The device's own failure.
    Internal,
}

impl From<CloudFailureKind> for CloudStep {
    fn from(k: CloudFailureKind) -> Self {
        use CloudFailureKind as K;
        match k {
            K::WifiAuth => CloudStep::WifiAuth,
            K::WifiNotFound => CloudStep::WifiNotFound,
            K::DhcpTimeout => CloudStep::DhcpTimeout,
            K::TimeSync => CloudStep::TimeSync,
            K::ClaimExpired => CloudStep::ClaimExpired,
            K::TlsRejected => CloudStep::TlsRejected,
            K::MqttRejected => CloudStep::MqttRejected,
            K::CertificateRejected => CloudStep::CertificateRejected,
            K::RegisterThingRejected => CloudStep::RegisterThingRejected,
            K::ReconnectFailed => CloudStep::ReconnectFailed,
            K::CredentialsProvider => CloudStep::CredentialsProvider,
            K::Internal | K::NoFailure => CloudStep::Internal,
        }
    }
}

impl From<CloudStep> for CloudFailureKind {
    fn from(step: CloudStep) -> Self {
        use CloudFailureKind as K;
        match step {
            CloudStep::WifiAuth => K::WifiAuth,
            CloudStep::WifiNotFound => K::WifiNotFound,
            CloudStep::DhcpTimeout => K::DhcpTimeout,
            CloudStep::TimeSync => K::TimeSync,
            CloudStep::ClaimExpired => K::ClaimExpired,
            CloudStep::TlsRejected => K::TlsRejected,
            CloudStep::MqttRejected => K::MqttRejected,
            CloudStep::CertificateRejected => K::CertificateRejected,
            CloudStep::RegisterThingRejected => K::RegisterThingRejected,
            CloudStep::ReconnectFailed => K::ReconnectFailed,
            CloudStep::CredentialsProvider => K::CredentialsProvider,
            CloudStep::Internal => K::Internal,
        }
    }
}

/// One step of progress. Events of one run arrive in order, on an SDK thread.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ProvisioningEvent {
    /// The stage reached.
    pub stage: Stage,
    /// Time left on the claim, once there is one (measured on the phone's monotonic clock from the
    /// server's expiry and `Date`: right even when the phone's clock is wrong).
    pub claim_time_left: Option<Duration>,
    /// Time since the session was opened.
    pub elapsed: Duration,
    /// A short human-readable detail (never a secret), for logs: read the typed fields below rather
    /// than parse it.
    pub detail: Option<String>,
    /// The device's IPv4 address on the Wi-Fi network (`"192.168.1.23"`), from `WifiConnected` on.
    pub device_ip: Option<String>,
    /// The thing, as soon as the device (or the cloud) names it.
    pub thing_name: Option<String>,
    /// The device's permanent certificate id, as soon as the device (or the cloud) names it.
    pub certificate_id: Option<String>,
}

impl From<core::ProvisioningEvent> for ProvisioningEvent {
    fn from(e: core::ProvisioningEvent) -> Self {
        ProvisioningEvent {
            stage: e.stage.into(),
            claim_time_left: e.claim_time_left,
            elapsed: e.elapsed,
            detail: e.detail,
            device_ip: e.device_ip.map(|ip| ip.to_string()),
            thing_name: e.thing_name,
            certificate_id: e.certificate_id,
        }
    }
}

/// When a stage was reached.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StageTiming {
    /// The stage.
    pub stage: Stage,
    /// Since the session was opened.
    pub at: Duration,
}

/// A device brought onto AWS IoT, as the cloud confirmed it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ProvisionedDevice {
    /// The thing.
    pub thing_name: String,
    /// Its permanent certificate (confirmed ACTIVE and attached), when known.
    pub certificate_id: Option<String>,
    /// Time left on the claim when it was handed over.
    pub claim_time_left_at_handover: Duration,
    /// When each stage was reached.
    pub timings: Vec<StageTiming>,
}

impl From<core::ProvisionedDevice> for ProvisionedDevice {
    fn from(d: core::ProvisionedDevice) -> Self {
        ProvisionedDevice {
            thing_name: d.thing_name,
            certificate_id: d.certificate_id,
            claim_time_left_at_handover: d.claim_time_left_at_handover,
            timings: d
                .timings
                .into_iter()
                .map(|(stage, at)| StageTiming {
                    stage: stage.into(),
                    at,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FFI's stages are the core table's, with the same names, in the same order (apps sort
    /// progress by the enum's order: Kotlin's `ordinal`, Swift's declaration order).
    #[test]
    fn stages_follow_the_core_table() {
        let converted: Vec<(Stage, &str)> = core::Stage::all()
            .map(|s| (Stage::from(s), s.name()))
            .collect();
        for (stage, name) in &converted {
            assert_eq!(format!("{stage:?}"), *name);
        }
        assert!(
            converted.windows(2).all(|w| w[0].0 < w[1].0),
            "{converted:?}"
        );
    }
}
