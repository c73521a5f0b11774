//! The errors the apps see, mapped from the core's errors in one place.
//!
//! [`ProvisioningFailure`] is the one error of the public API. Its variants are what the app can do
//! about a failure (ask for a password again, rescan, sign in again, retry, give up on this device),
//! not where in the SDK it happened; no reqwest, prost or btleplug type crosses the boundary. Messages
//! never contain a secret (the core's errors already guarantee it; nothing here adds one).
//!
//! [`ProviderFailure`] and [`LinkFailure`] are what an app's own token/credentials provider and its own
//! [`DeviceLink`](super::DeviceLink) throw back into the SDK.

use claimlink_core::ClaimError;
use claimlink_core::ProtocolError;
use claimlink_core::ProvisionError;
use claimlink_core::{DeviceRefusal, LinkError, LinkFault};

use super::progress::{CloudStep, Stage};

/// Why an SDK call failed, as an action the app can take. (Kotlin: `ProvisioningFailure` is an
/// exception; Swift: an `Error`; Python: an exception class.)
///
/// Its English sentence (the Rust `Display`) is exported: Kotlin's `toString()` (so `"$failure"`) and
/// Swift's `description` property give it, which reads well in a log even for the variants without
/// fields, whose generated Kotlin `message` is empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
#[non_exhaustive]
pub enum ProvisioningFailure {
    /// The device refused the password / proof of possession: ask the installer again (or rescan the
    /// device's QR code) and connect again.
    #[error("the device refused the password")]
    WrongDevicePassword,
    /// The Wi-Fi network refused the passphrase: ask for it again and call `provision` again on the same
    /// session.
    #[error("the Wi-Fi network refused the passphrase")]
    WifiPasswordRejected,
    /// The device cannot see the chosen network: rescan, or pick another network, on the same session.
    #[error("the device cannot find the Wi-Fi network")]
    WifiNetworkNotFound,
    /// The device did not get onto Wi-Fi in time (DHCP, weak signal): move closer to the access point
    /// and try again.
    #[error("the device did not connect to Wi-Fi in time")]
    WifiTimeout,
    /// The backend or AWS no longer accepts the app's sign-in: sign the installer in again.
    #[error("sign-in required: {detail}")]
    SignInRequired {
        /// What the service said.
        detail: String,
    },
    /// The backend or AWS could not be reached or kept failing: try again later.
    #[error("the service is unavailable: {detail}")]
    ServiceUnavailable {
        /// What went wrong.
        detail: String,
    },
    /// The service refused the request for a reason the app can show or log (a 4xx with a code).
    #[error("the service refused the request (HTTP {status}): {detail}")]
    ServiceRejected {
        /// The HTTP status.
        status: i32,
        /// The service's error code, when given.
        code: Option<String>,
        /// The explanation.
        detail: String,
    },
    /// The claim could not be used (it had expired, the service's answer did not make sense, or its
    /// claims arrive with less time left than the safety margin): try again; if it persists, the
    /// backend (or the margin) is misconfigured.
    #[error("no usable claim: {detail}")]
    ClaimUnusable {
        /// What is wrong.
        detail: String,
    },
    /// The template does not exist or is disabled: the app is misconfigured.
    #[error("no enabled provisioning template named {template:?}")]
    TemplateNotFound {
        /// The template asked for.
        template: String,
    },
    /// The app passed something unusable (a bad URL, template name, SSID, CA certificate…).
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// What is wrong.
        detail: String,
    },
    /// The device cannot be provisioned by this app (its security is below the app's policy, or its
    /// firmware lacks the claim extension).
    #[error("unsupported device: {reason}")]
    UnsupportedDevice {
        /// Why.
        reason: String,
    },
    /// This build or this phone lacks what the call needs (no Bluetooth adapter, BLE not compiled in):
    /// use another transport or the app's own [`DeviceLink`](super::DeviceLink).
    #[error("not available: {reason}")]
    NotAvailable {
        /// What is missing.
        reason: String,
    },
    /// The device could not prove it knows the password, or offered another security scheme than the
    /// `DeviceSecret` is for: not the expected device, or someone relaying. Do not retry blindly.
    #[error("the device failed to prove it knows the password (impostor or relay?)")]
    DeviceNotAuthentic,
    /// A message from the device failed authentication (interference or an attack); the session was
    /// dropped: connect again.
    #[error("a message from the device failed authentication; the session was dropped")]
    MessageTampered,
    /// The connection to the device was lost or timed out; the session is gone: connect again.
    #[error("lost the connection to the device: {detail}")]
    ConnectionLost {
        /// What happened.
        detail: String,
    },
    /// No device of that name was found, or the device went away before a connection (it is off,
    /// out of range, or no longer in provisioning mode): check the device, move closer, scan again.
    #[error("the device was not found (off, out of range, or no longer advertising)")]
    DeviceNotFound,
    /// The device answered with something that does not decode, or refused a request: disconnect,
    /// connect again (a new session) and retry; if it persists, the firmware is at fault. A device that
    /// restarted mid-run lands here too: it refuses the old session's messages and lost the claim.
    #[error("the device misbehaved: {detail}")]
    DeviceMisbehaved {
        /// What it did.
        detail: String,
    },
    /// The claim expired before the device obtained its certificate; `stage` is where it was. Retry
    /// (a fresh claim is fetched) and check the device's connectivity.
    #[error("the claim expired while the device was at stage {stage:?}")]
    DeadlineMissed {
        /// Where the device was.
        stage: Stage,
    },
    /// A stage, or the whole run, took longer than the provisioner allows; `stage` is where the run
    /// was.
    #[error("stage {stage:?} timed out")]
    StageTimeout {
        /// The stage.
        stage: Stage,
    },
    /// AWS IoT refused the device, in AWS's words. When the failure came after registration, the thing
    /// and its ACTIVE certificate exist and are named, so the app can clean up.
    #[error("{}", cloud_sentence(*step, *status_code, error_code, error_message, thing_name, certificate_id))]
    CloudRejected {
        /// Which step failed.
        step: CloudStep,
        /// AWS's statusCode.
        status_code: i32,
        /// AWS's errorCode.
        error_code: String,
        /// AWS's errorMessage.
        error_message: String,
        /// The thing, if the device had registered it.
        thing_name: Option<String>,
        /// Its certificate, if the device had one.
        certificate_id: Option<String>,
    },
    /// The cloud does not show this device's certificate ACTIVE on the thing: the device reported
    /// success the cloud does not show, or it went quiet before naming its certificate and no new one
    /// appeared (a certificate the thing already had never counts).
    #[error("the cloud does not confirm thing {thing_name:?}")]
    NotConfirmed {
        /// The thing the device named.
        thing_name: String,
    },
    /// The device finished, but the phone could not reach the cloud to confirm it before the
    /// confirmation's deadline: on SoftAP, typically the phone still on the device's access point.
    /// The device may well be provisioned: check the thing again once the phone is online. The SDK's
    /// copy of the claim is wiped as after every run.
    #[error("the phone could not reach the cloud to confirm thing {thing_name:?} in time (it is offline, or still on the device's access point): check the thing again once the phone is online")]
    PhoneOffline {
        /// The expected thing when the options name one, else the thing the device named.
        thing_name: String,
    },
    /// The device is already provisioned (it reports its thing and certificate): `provision` would
    /// register it a second time, so nothing was sent. Change its Wi-Fi with `reconfigure_wifi`; to
    /// onboard it for a new owner, factory-reset it first (docs/protocol.md, "Reprovisioning").
    #[error("the device is already provisioned as thing {thing_name:?} (certificate {certificate_id}): change its Wi-Fi with reconfigure_wifi, or factory-reset it to provision it anew")]
    AlreadyProvisioned {
        /// The thing it reports.
        thing_name: String,
        /// The certificate it reports.
        certificate_id: String,
    },
    /// The device reports no permanent identity, so its Wi-Fi cannot be changed without a claim:
    /// provision it.
    #[error("the device is not provisioned: provision it")]
    NotProvisioned,
    /// The run was cancelled (`cancel()`, a cancelled coroutine or task, the handle's `cancel()`); the
    /// claim was wiped from the device when the link allowed it.
    #[error("the run was cancelled")]
    Cancelled,
    /// A bug in claimlink (a panic, or a state that should not happen). Please report it.
    #[error("internal error in claimlink: {detail}")]
    Internal {
        /// What happened (never a secret).
        detail: String,
    },
}

impl From<ProvisionError> for ProvisioningFailure {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::Protocol(p) => p.into(),
            ProvisionError::Claim(c) => c.into(),
            ProvisionError::WifiAuthFailed => Self::WifiPasswordRejected,
            ProvisionError::WifiNetworkNotFound => Self::WifiNetworkNotFound,
            ProvisionError::WifiTimeout => Self::WifiTimeout,
            ProvisionError::DeadlineMissed { stage } => Self::DeadlineMissed {
                stage: stage.into(),
            },
            ProvisionError::StageTimeout { stage } => Self::StageTimeout {
                stage: stage.into(),
            },
            // What the app saw before the core told the two apart: the stage the run was at.
            ProvisionError::OverallTimeout { stage, .. } => Self::StageTimeout {
                stage: stage.into(),
            },
            ProvisionError::CloudRejected {
                kind,
                status_code,
                error_code,
                error_message,
                thing_name,
                certificate_id,
            } => Self::CloudRejected {
                step: kind.into(),
                status_code: i32::try_from(status_code).unwrap_or(i32::MAX),
                error_code,
                error_message,
                thing_name,
                certificate_id,
            },
            ProvisionError::NotConfirmed { thing_name } => Self::NotConfirmed { thing_name },
            ProvisionError::PhoneOffline { thing_name } => Self::PhoneOffline { thing_name },
            ProvisionError::AlreadyProvisioned {
                thing_name,
                certificate_id,
            } => Self::AlreadyProvisioned {
                thing_name,
                certificate_id,
            },
            ProvisionError::NotProvisioned => Self::NotProvisioned,
            ProvisionError::Cancelled => Self::Cancelled,
        }
    }
}

impl From<ProtocolError> for ProvisioningFailure {
    fn from(e: ProtocolError) -> Self {
        let message = e.to_string();
        match e {
            ProtocolError::Link(link) => link.into(),
            ProtocolError::WrongCredentials => Self::WrongDevicePassword,
            // Another scheme than the credentials are for: not the device they belong to.
            ProtocolError::DeviceNotAuthentic | ProtocolError::UnexpectedSecurity { .. } => {
                Self::DeviceNotAuthentic
            }
            ProtocolError::Tampered => Self::MessageTampered,
            ProtocolError::SecurityRefused { .. } | ProtocolError::Unsupported(_) => {
                Self::UnsupportedDevice { reason: message }
            }
            ProtocolError::AwsVersionUnsupported { .. } => {
                Self::UnsupportedDevice { reason: message }
            }
            ProtocolError::Malformed { .. } | ProtocolError::DeviceRefused { .. } => {
                Self::DeviceMisbehaved { detail: message }
            }
            ProtocolError::SessionBroken => Self::ConnectionLost { detail: message },
            ProtocolError::TooLarge { .. } => Self::InvalidInput { detail: message },
            // The reason alone: the variant's own sentence already says "invalid input".
            ProtocolError::InvalidInput(reason) => Self::InvalidInput {
                detail: reason.to_string(),
            },
            ProtocolError::ClaimBundleTooLarge { .. } => Self::Internal { detail: message },
        }
    }
}

impl From<LinkError> for ProvisioningFailure {
    fn from(e: LinkError) -> Self {
        let message = e.to_string();
        match e {
            LinkError::Disconnected
            | LinkError::Timeout { .. }
            | LinkError::Busy
            | LinkError::Other(_) => Self::ConnectionLost { detail: message },
            LinkError::UnknownEndpoint(_) => Self::UnsupportedDevice { reason: message },
            LinkError::DeviceError(_) => Self::DeviceMisbehaved { detail: message },
            LinkError::TooLarge { .. } => Self::InvalidInput { detail: message },
            LinkError::DeviceNotFound => Self::DeviceNotFound,
        }
    }
}

impl From<ClaimError> for ProvisioningFailure {
    fn from(e: ClaimError) -> Self {
        let message = e.to_string();
        match e {
            ClaimError::InvalidInput(detail) => Self::InvalidInput { detail },
            ClaimError::Unauthorized { .. }
            | ClaimError::SignatureRejected { .. }
            | ClaimError::Provider {
                signed_out: true, ..
            } => Self::SignInRequired { detail: message },
            ClaimError::Provider {
                signed_out: false, ..
            } => Self::ServiceUnavailable { detail: message },
            ClaimError::TemplateNotFound { template, .. } => Self::TemplateNotFound { template },
            ClaimError::Rejected {
                status,
                code,
                message: explanation,
                ..
            } => Self::ServiceRejected {
                status: i32::from(status),
                code,
                detail: explanation,
            },
            ClaimError::Throttled { .. }
            | ClaimError::Unavailable { .. }
            | ClaimError::Network { .. } => Self::ServiceUnavailable { detail: message },
            ClaimError::Malformed { .. }
            | ClaimError::Expired { .. }
            | ClaimError::TooShortLived { .. } => Self::ClaimUnusable { detail: message },
        }
    }
}

/// What an app's token or credentials provider throws when it cannot supply a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ProviderFailure {
    /// The installer is not signed in (or the refresh was refused): the SDK reports
    /// [`ProvisioningFailure::SignInRequired`].
    #[error("not signed in: {detail}")]
    NotSignedIn {
        /// Why (no secrets).
        detail: String,
    },
    /// The provider could not reach its service: the phone has no network, or no route out of the
    /// one it is on (still on a device's SoftAP access point). The SDK treats it as its own network
    /// failures: a cloud confirmation waits for the network (`WaitingForNetwork`), a claim request
    /// fails with [`ProvisioningFailure::ServiceUnavailable`].
    #[error("unreachable: {detail}")]
    Unreachable {
        /// Why (no secrets).
        detail: String,
    },
    /// Anything else (an error answer from the identity provider or the backend, …).
    #[error("{detail}")]
    Failed {
        /// Why (no secrets).
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ProviderFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed {
            detail: format!(
                "the app's provider threw an unexpected exception: {}",
                e.reason
            ),
        }
    }
}

impl From<ProviderFailure> for claimlink_core::ProviderError {
    fn from(e: ProviderFailure) -> Self {
        match e {
            ProviderFailure::NotSignedIn { detail } => {
                claimlink_core::ProviderError::signed_out(detail)
            }
            ProviderFailure::Unreachable { detail } => {
                claimlink_core::ProviderError::unreachable(detail)
            }
            ProviderFailure::Failed { detail } => claimlink_core::ProviderError::new(detail),
        }
    }
}

/// What an app's own [`DeviceLink`](super::DeviceLink) throws, and what the SDK's own links throw when
/// an app calls them. Each kind maps to one [`LinkError`] kind and back, so a failure keeps its kind
/// (and its text, said once) whichever side of the FFI raised it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum LinkFailure {
    /// The device went away (BLE disconnect). The SDK drops the session.
    #[error("the device disconnected")]
    Disconnected,
    /// The device did not answer in time.
    #[error("the device did not answer within {millis} ms")]
    Timeout {
        /// The time waited.
        millis: i64,
    },
    /// The device has no endpoint of that name.
    #[error("the device has no endpoint {name:?}")]
    UnknownEndpoint {
        /// The endpoint asked for.
        name: String,
    },
    /// The device refused the request (an ATT error, HTTP 500).
    #[error("the device refused the request: {detail}")]
    DeviceRefused {
        /// What it said.
        detail: String,
    },
    /// The message is larger than the link (or the device) accepts.
    #[error("a {len}-byte message exceeds the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: i64,
        /// The limit.
        max: i64,
    },
    /// Another exchange is in flight on this link.
    #[error("another exchange is in flight")]
    Busy,
    /// The device is not there (the BLE stack no longer knows it, or it stopped advertising).
    #[error("the device was not found (off, out of range, or no longer advertising)")]
    DeviceNotFound,
    /// Anything else.
    #[error("transport failure: {detail}")]
    Other {
        /// What went wrong.
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for LinkFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Other {
            detail: format!(
                "the app's DeviceLink threw an unexpected exception: {}",
                e.reason
            ),
        }
    }
}

impl From<LinkFailure> for LinkError {
    fn from(e: LinkFailure) -> Self {
        match e {
            LinkFailure::Disconnected => LinkError::Disconnected,
            LinkFailure::Timeout { millis } => LinkError::Timeout {
                millis: u64::try_from(millis).unwrap_or(0),
            },
            LinkFailure::UnknownEndpoint { name } => LinkError::UnknownEndpoint(name),
            LinkFailure::DeviceRefused { detail } => {
                LinkError::DeviceError(DeviceRefusal::Reported(detail))
            }
            LinkFailure::TooLarge { len, max } => LinkError::TooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: usize::try_from(max).unwrap_or(usize::MAX),
            },
            LinkFailure::Busy => LinkError::Busy,
            LinkFailure::DeviceNotFound => LinkError::DeviceNotFound,
            LinkFailure::Other { detail } => LinkError::Other(LinkFault::Reported(detail)),
        }
    }
}

/// The reasons carry over as their text alone: [`LinkFailure`]'s `Display` adds the same prefix
/// [`LinkError`]'s does, so the sentence reads the same on both sides and never says it twice.
impl From<LinkError> for LinkFailure {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Disconnected => LinkFailure::Disconnected,
            LinkError::Timeout { millis } => LinkFailure::Timeout {
                millis: i64::try_from(millis).unwrap_or(i64::MAX),
            },
            LinkError::UnknownEndpoint(name) => LinkFailure::UnknownEndpoint { name },
            LinkError::DeviceError(refusal) => LinkFailure::DeviceRefused {
                detail: refusal.to_string(),
            },
            LinkError::TooLarge { len, max } => LinkFailure::TooLarge {
                len: i64::try_from(len).unwrap_or(i64::MAX),
                max: i64::try_from(max).unwrap_or(i64::MAX),
            },
            LinkError::Busy => LinkFailure::Busy,
            LinkError::DeviceNotFound => LinkFailure::DeviceNotFound,
            LinkError::Other(fault) => LinkFailure::Other {
                detail: fault.to_string(),
            },
        }
    }
}

/// The sentence of [`ProvisioningFailure::CloudRejected`]: the core's, so that it says "refused" only
/// when AWS answered and prints no empty status or code (docs/bindings.md).
fn cloud_sentence(
    step: CloudStep,
    status_code: i32,
    error_code: &str,
    error_message: &str,
    thing_name: &Option<String>,
    certificate_id: &Option<String>,
) -> String {
    claimlink_core::ProvisionError::CloudRejected {
        kind: step.into(),
        status_code: u32::try_from(status_code).unwrap_or(0),
        error_code: error_code.to_owned(),
        error_message: error_message.to_owned(),
        thing_name: thing_name.clone(),
        certificate_id: certificate_id.clone(),
    }
    .to_string()
}
