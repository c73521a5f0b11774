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
    /// AWS IoT refused the device (template, hook, certificate…), in AWS's words, or the device's cloud
    /// step failed without an answer from AWS (a timeout, an unreachable endpoint: then the message
    /// says "failed", not "refused", and no empty status is printed). When the failure came after
    /// registration (the credentials provider refused the new certificate), the thing and its ACTIVE
    /// certificate exist and are named here, so the app can clean up or retry.
    #[error("{}", cloud_failure_text(*kind, *status_code, error_code, error_message, thing_name.as_deref(), certificate_id.as_deref()))]
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
    /// The device finished, but the phone could not reach the cloud to confirm it before the
    /// confirmation's deadline (`cloud_timeout`): on SoftAP, typically the phone still on the device's
    /// access point, which has no route to the internet. The device may well be provisioned: check
    /// the thing again once the phone is online (the backend's `GET /v1/things/{thingName}`). The
    /// SDK's copy of the claim is wiped as after every run.
    #[error("the phone could not reach the cloud to confirm thing {thing_name:?} in time (it is offline, or still on the device's access point): check the thing again once the phone is online")]
    PhoneOffline {
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

/// The text of a [`ProvisionError::CloudRejected`]: "AWS IoT refused …" with AWS's status and code
/// when AWS answered, "the device failed …" with the device's own words when it did not.
fn cloud_failure_text(
    kind: CloudFailureKind,
    status_code: u32,
    error_code: &str,
    error_message: &str,
    thing: Option<&str>,
    certificate: Option<&str>,
) -> String {
    use CloudFailureKind as K;
    let step = match kind {
        K::TlsRejected | K::MqttRejected => "while connecting to AWS IoT with the claim",
        K::CertificateRejected => "while obtaining its certificate",
        K::RegisterThingRejected => "while registering the thing",
        K::ReconnectFailed => "while reconnecting with its new certificate",
        K::CredentialsProvider => "while getting AWS credentials with its new certificate",
        K::ClaimExpired => "to get online before its claim expired",
        _ => "in its cloud steps",
    };
    let aws: Vec<String> = [
        (status_code != 0).then(|| status_code.to_string()),
        (!error_code.is_empty()).then(|| error_code.to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let message = if error_message.is_empty() {
        "no detail"
    } else {
        error_message
    };
    let note = issued_note(thing, certificate);
    if aws.is_empty() {
        format!("the device failed {step} ({kind:?}): {message}{note}")
    } else {
        format!(
            "AWS IoT refused the device {step} ({kind:?}): {}: {message}{note}",
            aws.join(" ")
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(kind: CloudFailureKind, status: u32, code: &str, message: &str) -> String {
        ProvisionError::CloudRejected {
            kind,
            status_code: status,
            error_code: code.to_owned(),
            error_message: message.to_owned(),
            thing_name: None,
            certificate_id: None,
        }
        .to_string()
    }

    #[test]
    fn a_cloud_failure_says_refused_only_when_aws_answered() {
        assert_eq!(
            rejected(CloudFailureKind::RegisterThingRejected, 400, "InvalidRequest", "no such template"),
            "AWS IoT refused the device while registering the thing (RegisterThingRejected): 400 InvalidRequest: no such template"
        );
        assert_eq!(
            rejected(CloudFailureKind::TlsRejected, 0, "", "timed out awaiting CONNACK (4 attempts over 9.1 s)"),
            "the device failed while connecting to AWS IoT with the claim (TlsRejected): timed out awaiting CONNACK (4 attempts over 9.1 s)"
        );
        assert_eq!(
            rejected(CloudFailureKind::ClaimExpired, 0, "", ""),
            "the device failed to get online before its claim expired (ClaimExpired): no detail"
        );
        assert_eq!(
            rejected(CloudFailureKind::CredentialsProvider, 403, "", "Access Denied"),
            "AWS IoT refused the device while getting AWS credentials with its new certificate (CredentialsProvider): 403: Access Denied"
        );
    }
}
