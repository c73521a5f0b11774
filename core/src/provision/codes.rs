//! Stable failure codes (`CL-xxx`) and their English messages: one code per action an app takes about
//! a failure (the FFI crate's `ProvisioningFailure` has one variant per code), for support tickets,
//! dashboards and translations. A code, once published, keeps its meaning; a new kind of failure gets
//! a new code. docs/bindings.md lists the table.

use crate::claim::ClaimError;
use crate::protocomm::ProtocolError;
use crate::transport::LinkError;

use super::ProvisionError;

/// The stable code of a failure. The first digit groups them: 1 the device and the link to it, 2 the
/// device's Wi-Fi, 3 the claim and the services that issue it, 4 the cloud and the deadlines, 5 the
/// app and the platform, 6 cancellation, 9 a bug in claimlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
// Exhaustive on purpose: the FFI crate maps each of its failures to one code.
pub enum FailureCode {
    /// `CL-101`: the device refused the password.
    WrongDevicePassword,
    /// `CL-102`: the device failed to prove it knows the password.
    DeviceNotAuthentic,
    /// `CL-103`: a message from the device failed authentication.
    MessageTampered,
    /// `CL-104`: the connection to the device was lost.
    ConnectionLost,
    /// `CL-105`: the device was not found.
    DeviceNotFound,
    /// `CL-106`: the device answered with something that does not decode, or refused a request.
    DeviceMisbehaved,
    /// `CL-107`: the device cannot be provisioned by this app.
    UnsupportedDevice,
    /// `CL-108`: the device is already provisioned (`provision` would register it again).
    AlreadyProvisioned,
    /// `CL-109`: the device is not provisioned (it cannot be reconfigured without a claim).
    NotProvisioned,
    /// `CL-201`: the Wi-Fi network refused the passphrase.
    WifiPasswordRejected,
    /// `CL-202`: the device cannot find the Wi-Fi network.
    WifiNetworkNotFound,
    /// `CL-203`: the device did not get onto Wi-Fi in time.
    WifiTimeout,
    /// `CL-301`: the installer must sign in again.
    SignInRequired,
    /// `CL-302`: the backend or AWS could not be reached or kept failing.
    ServiceUnavailable,
    /// `CL-303`: the service refused the request.
    ServiceRejected,
    /// `CL-304`: the claim could not be used.
    ClaimUnusable,
    /// `CL-305`: the provisioning template does not exist or is disabled.
    TemplateNotFound,
    /// `CL-401`: the claim expired before the device obtained its certificate.
    DeadlineMissed,
    /// `CL-402`: a stage, or the whole run, took too long.
    StageTimeout,
    /// `CL-403`: AWS IoT refused the device.
    CloudRejected,
    /// `CL-404`: the cloud does not confirm the thing.
    NotConfirmed,
    /// `CL-405`: the device finished, but the phone could not reach the cloud to confirm it.
    PhoneOffline,
    /// `CL-501`: the app passed something unusable.
    InvalidInput,
    /// `CL-502`: this build or this phone lacks what the call needs.
    NotAvailable,
    /// `CL-601`: the run was cancelled.
    Cancelled,
    /// `CL-901`: a bug in claimlink.
    Internal,
}

impl FailureCode {
    /// Every code, in the order of the table.
    pub const ALL: [FailureCode; 26] = [
        Self::WrongDevicePassword,
        Self::DeviceNotAuthentic,
        Self::MessageTampered,
        Self::ConnectionLost,
        Self::DeviceNotFound,
        Self::DeviceMisbehaved,
        Self::UnsupportedDevice,
        Self::AlreadyProvisioned,
        Self::NotProvisioned,
        Self::WifiPasswordRejected,
        Self::WifiNetworkNotFound,
        Self::WifiTimeout,
        Self::SignInRequired,
        Self::ServiceUnavailable,
        Self::ServiceRejected,
        Self::ClaimUnusable,
        Self::TemplateNotFound,
        Self::DeadlineMissed,
        Self::StageTimeout,
        Self::CloudRejected,
        Self::NotConfirmed,
        Self::PhoneOffline,
        Self::InvalidInput,
        Self::NotAvailable,
        Self::Cancelled,
        Self::Internal,
    ];

    /// The code (`"CL-101"`), and the English message an app shows when it has no translation: what
    /// happened and what the installer can do, with no detail of the particular run.
    pub fn entry(self) -> (&'static str, &'static str) {
        match self {
            Self::WrongDevicePassword => ("CL-101", "The device refused the password. Check the code on the device's label and try again."),
            Self::DeviceNotAuthentic => ("CL-102", "The device could not prove it is the device on the label. Do not continue with this device."),
            Self::MessageTampered => ("CL-103", "A message from the device was corrupted. Connect to the device again."),
            Self::ConnectionLost => ("CL-104", "The connection to the device was lost. Move closer and connect again."),
            Self::DeviceNotFound => ("CL-105", "The device was not found. Check that it is on, nearby and in setup mode."),
            Self::DeviceMisbehaved => ("CL-106", "The device answered unexpectedly. Restart the device and try again."),
            Self::UnsupportedDevice => ("CL-107", "This device cannot be set up by this app."),
            Self::AlreadyProvisioned => ("CL-108", "This device is already set up. To change its Wi-Fi, use Change Wi-Fi; to set it up for a new owner, factory-reset it first."),
            Self::NotProvisioned => ("CL-109", "This device is not set up yet. Set it up first."),
            Self::WifiPasswordRejected => ("CL-201", "The Wi-Fi network refused the password. Enter it again."),
            Self::WifiNetworkNotFound => ("CL-202", "The device cannot find the Wi-Fi network. Choose another network or move the device closer to the router."),
            Self::WifiTimeout => ("CL-203", "The device could not join the Wi-Fi network in time. Move it closer to the router and try again."),
            Self::SignInRequired => ("CL-301", "Your sign-in has expired. Sign in again."),
            Self::ServiceUnavailable => ("CL-302", "The service cannot be reached right now. Check the phone's internet connection and try again later."),
            Self::ServiceRejected => ("CL-303", "The service refused the request. Contact support with the support report."),
            Self::ClaimUnusable => ("CL-304", "The setup authorisation could not be used. Try again."),
            Self::TemplateNotFound => ("CL-305", "The app is not configured for this fleet. Contact support."),
            Self::DeadlineMissed => ("CL-401", "The device took too long to reach the cloud. Check its Wi-Fi signal and try again."),
            Self::StageTimeout => ("CL-402", "Setup took too long. Try again."),
            Self::CloudRejected => ("CL-403", "The cloud refused the device. Contact support with the support report."),
            Self::NotConfirmed => ("CL-404", "The cloud did not confirm the device. Try again."),
            Self::PhoneOffline => ("CL-405", "The device finished setup, but the phone could not reach the cloud to confirm it. Reconnect the phone to the internet and check the device again."),
            Self::InvalidInput => ("CL-501", "Some of the details entered are not valid. Check them and try again."),
            Self::NotAvailable => ("CL-502", "This phone or app cannot do this (for example, Bluetooth is unavailable)."),
            Self::Cancelled => ("CL-601", "Setup was cancelled."),
            Self::Internal => ("CL-901", "Something went wrong inside the app. Contact support with the support report."),
        }
    }

    /// The code (`"CL-101"`).
    pub fn code(self) -> &'static str {
        self.entry().0
    }

    /// The English message of the table.
    pub fn message(self) -> &'static str {
        self.entry().1
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl ProvisionError {
    /// Its stable code: the same as the FFI crate's `ProvisioningFailure` made from it.
    pub fn code(&self) -> FailureCode {
        match self {
            Self::Protocol(p) => protocol_code(p),
            Self::Claim(c) => claim_code(c),
            Self::WifiAuthFailed => FailureCode::WifiPasswordRejected,
            Self::WifiNetworkNotFound => FailureCode::WifiNetworkNotFound,
            Self::WifiTimeout => FailureCode::WifiTimeout,
            Self::DeadlineMissed { .. } => FailureCode::DeadlineMissed,
            Self::StageTimeout { .. } | Self::OverallTimeout { .. } => FailureCode::StageTimeout,
            Self::CloudRejected { .. } => FailureCode::CloudRejected,
            Self::NotConfirmed { .. } => FailureCode::NotConfirmed,
            Self::PhoneOffline { .. } => FailureCode::PhoneOffline,
            Self::AlreadyProvisioned { .. } => FailureCode::AlreadyProvisioned,
            Self::NotProvisioned => FailureCode::NotProvisioned,
            Self::Cancelled => FailureCode::Cancelled,
        }
    }
}

fn protocol_code(e: &ProtocolError) -> FailureCode {
    match e {
        ProtocolError::Link(link) => link_code(link),
        ProtocolError::WrongCredentials => FailureCode::WrongDevicePassword,
        ProtocolError::DeviceNotAuthentic | ProtocolError::UnexpectedSecurity { .. } => {
            FailureCode::DeviceNotAuthentic
        }
        ProtocolError::Tampered => FailureCode::MessageTampered,
        ProtocolError::SecurityRefused { .. }
        | ProtocolError::Unsupported(_)
        | ProtocolError::AwsVersionUnsupported { .. } => FailureCode::UnsupportedDevice,
        ProtocolError::Malformed { .. } | ProtocolError::DeviceRefused { .. } => {
            FailureCode::DeviceMisbehaved
        }
        ProtocolError::SessionBroken => FailureCode::ConnectionLost,
        ProtocolError::TooLarge { .. } | ProtocolError::InvalidInput(_) => {
            FailureCode::InvalidInput
        }
        ProtocolError::ClaimBundleTooLarge { .. } => FailureCode::Internal,
    }
}

/// The code of a link failure.
pub(crate) fn link_code(e: &LinkError) -> FailureCode {
    match e {
        LinkError::Disconnected
        | LinkError::Timeout { .. }
        | LinkError::Busy
        | LinkError::Other(_) => FailureCode::ConnectionLost,
        LinkError::UnknownEndpoint(_) => FailureCode::UnsupportedDevice,
        LinkError::DeviceError(_) => FailureCode::DeviceMisbehaved,
        LinkError::TooLarge { .. } => FailureCode::InvalidInput,
        LinkError::DeviceNotFound => FailureCode::DeviceNotFound,
    }
}

fn claim_code(e: &ClaimError) -> FailureCode {
    match e {
        ClaimError::InvalidInput(_) => FailureCode::InvalidInput,
        ClaimError::Unauthorized { .. }
        | ClaimError::SignatureRejected { .. }
        | ClaimError::Provider {
            signed_out: true, ..
        } => FailureCode::SignInRequired,
        ClaimError::Provider {
            signed_out: false, ..
        }
        | ClaimError::Throttled { .. }
        | ClaimError::Unavailable { .. }
        | ClaimError::Network { .. } => FailureCode::ServiceUnavailable,
        ClaimError::TemplateNotFound { .. } => FailureCode::TemplateNotFound,
        ClaimError::Rejected { .. } => FailureCode::ServiceRejected,
        ClaimError::Malformed { .. }
        | ClaimError::Expired { .. }
        | ClaimError::TooShortLived { .. } => FailureCode::ClaimUnusable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_well_formed_and_grouped() {
        let mut seen = std::collections::BTreeSet::new();
        for code in FailureCode::ALL {
            let (text, message) = code.entry();
            assert!(seen.insert(text), "{text} is used twice");
            assert!(text.len() == 6 && text.starts_with("CL-"), "{text}");
            assert!(text[3..].chars().all(|c| c.is_ascii_digit()), "{text}");
            assert!(
                message.ends_with('.') && message.len() > 15,
                "{text}: {message}"
            );
        }
        // ALL lists every variant once, in the order of the codes.
        let mut sorted = FailureCode::ALL;
        sorted.sort_by_key(|c| c.code());
        assert_eq!(sorted, FailureCode::ALL);
    }

    #[test]
    fn the_table_in_docs_bindings_md_is_this_one() {
        let docs = include_str!("../../../docs/bindings.md");
        for code in FailureCode::ALL {
            let row = format!("| `{}` | `{code:?}` | {} |", code.code(), code.message());
            assert!(docs.contains(&row), "docs/bindings.md lacks the row {row}");
        }
    }
}
