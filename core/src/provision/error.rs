//! Why provisioning failed.

use std::time::Duration;

use crate::claim::ClaimError;
use crate::protocomm::proto::CloudFailureKind;
use crate::protocomm::ProtocolError;

use super::Stage;

/// Why provisioning failed. Each variant says what the app can do about it.
#[derive(Debug, thiserror::Error)]
// Exhaustive on purpose: the FFI crate maps every variant to an app action, and a new variant
// must fail its build until it is mapped.
pub enum ProvisionError {
    /// The device protocol failed (wrong password, tampering, unsupported security, link loss…).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// No usable claim could be obtained.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The Wi-Fi passphrase was refused: ask for it again and call `provision` again on the same session.
    #[error("the Wi-Fi network refused the passphrase")]
    WifiAuthFailed,
    /// The device cannot see the network: rescan or pick another.
    #[error("the device cannot find the Wi-Fi network")]
    WifiNetworkNotFound,
    /// The device did not get onto Wi-Fi in time (DHCP, weak signal).
    #[error("the device did not connect to Wi-Fi in time")]
    WifiTimeout,
    /// The claim expired before the device obtained its certificate.
    #[error("the claim expired while the device was at stage {stage:?}")]
    DeadlineMissed {
        /// Where the device was.
        stage: Stage,
    },
    /// A stage took longer than allowed (the cloud stages after the certificate, for instance).
    #[error("stage {stage:?} timed out")]
    StageTimeout {
        /// The stage.
        stage: Stage,
    },
    /// The whole run took longer than [`ProvisionerConfig::overall_timeout`](super::ProvisionerConfig::overall_timeout).
    #[error("the run did not finish within {limit:?} (it was at stage {stage:?})")]
    OverallTimeout {
        /// The stage the run had reached.
        stage: Stage,
        /// The time allowed.
        limit: Duration,
    },
    /// AWS IoT refused the device (template, hook, certificate…), in AWS's words. When the failure came
    /// after registration (the credentials provider refused the new certificate), the thing and its
    /// ACTIVE certificate exist and are named here, so the app can clean up or retry.
    #[error("AWS IoT refused the device ({kind:?}): {status_code} {error_code}: {error_message}{}", issued_note(thing_name.as_deref(), certificate_id.as_deref()))]
    CloudRejected {
        /// Which step failed.
        kind: CloudFailureKind,
        /// AWS's statusCode.
        status_code: u32,
        /// AWS's errorCode.
        error_code: String,
        /// AWS's errorMessage.
        error_message: String,
        /// The thing, if the device had registered it before failing.
        thing_name: Option<String>,
        /// Its certificate, if the device had one before failing.
        certificate_id: Option<String>,
    },
    /// The cloud does not show this device's certificate ACTIVE on the thing: the device reported
    /// success the cloud does not show, named another thing than the expected one, named a
    /// certificate the thing already had before the hand-over, or went quiet before naming its
    /// certificate and no new one appeared (a certificate the thing already had never counts).
    #[error("the cloud does not confirm thing {thing_name:?}")]
    NotConfirmed {
        /// The expected thing when the options name one, else the thing the device named.
        thing_name: String,
    },
    /// The device is already provisioned (it reports its thing and certificate): `provision` would
    /// register it a second time, so nothing was sent. Change its Wi-Fi with
    /// [`reconfigure_wifi`](super::ProvisioningSession::reconfigure_wifi); to onboard it anew (a new
    /// owner), factory-reset it first.
    #[error("the device is already provisioned as thing {thing_name:?} (certificate {certificate_id}): change its Wi-Fi with reconfigure_wifi, or factory-reset it to provision it anew")]
    AlreadyProvisioned {
        /// The thing it reports.
        thing_name: String,
        /// The certificate it reports.
        certificate_id: String,
    },
    /// The device reports no permanent identity: it cannot be reconfigured without a claim; provision
    /// it.
    #[error("the device is not provisioned: provision it")]
    NotProvisioned,
    /// The run was cancelled; the claim was wiped from the device when the link allowed it.
    #[error("cancelled")]
    Cancelled,
}

/// What a [`ProvisionError::CloudRejected`] adds about what AWS had already created.
fn issued_note(thing: Option<&str>, certificate: Option<&str>) -> String {
    match (thing, certificate) {
        (Some(t), Some(c)) => format!(" (thing {t} exists with certificate {c})"),
        (None, Some(c)) => format!(" (AWS had issued certificate {c})"),
        (Some(t), None) => format!(" (thing {t} exists)"),
        (None, None) => String::new(),
    }
}
