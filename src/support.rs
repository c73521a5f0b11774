//! Support: each [`ProvisioningFailure`]'s stable code (`CL-xxx`) and English message (the table is
//! [`failure_messages`], for apps that translate), its sentence (for Python, whose generated errors
//! print their fields instead), and the support report (JSON, no secret) an app attaches to a ticket:
//! [`ProvisioningSession::support_report`] after any run, [`ProvisioningFailure::support_report`] when
//! there was no session (the connection failed).

use claimlink_core::{CloudWords, FailureCode, FailureReport, SupportReport};

use super::provisioner::ProvisioningSession;
use super::runtime::on_runtime;
use super::ProvisioningFailure;

/// One row of the message table: a stable code and its English message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FailureMessage {
    /// The stable code (`"CL-101"`).
    pub code: String,
    /// The English message an app shows (or translates, keyed by the code).
    pub message: String,
}

/// Every failure code with its English message, in code order: the table an app's translations follow.
#[uniffi::export]
pub fn failure_messages() -> Vec<FailureMessage> {
    FailureCode::ALL
        .iter()
        .map(|c| FailureMessage {
            code: c.code().to_owned(),
            message: c.message().to_owned(),
        })
        .collect()
}

impl ProvisioningFailure {
    /// Its code, as the core names it.
    pub fn failure_code(&self) -> FailureCode {
        use FailureCode as C;
        match self {
            Self::WrongDevicePassword => C::WrongDevicePassword,
            Self::WifiPasswordRejected => C::WifiPasswordRejected,
            Self::WifiNetworkNotFound => C::WifiNetworkNotFound,
            Self::WifiTimeout => C::WifiTimeout,
            Self::SignInRequired { .. } => C::SignInRequired,
            Self::ServiceUnavailable { .. } => C::ServiceUnavailable,
            Self::ServiceRejected { .. } => C::ServiceRejected,
            Self::ClaimUnusable { .. } => C::ClaimUnusable,
            Self::TemplateNotFound { .. } => C::TemplateNotFound,
            Self::InvalidInput { .. } => C::InvalidInput,
            Self::UnsupportedDevice { .. } => C::UnsupportedDevice,
            Self::NotAvailable { .. } => C::NotAvailable,
            Self::DeviceNotAuthentic => C::DeviceNotAuthentic,
            Self::MessageTampered => C::MessageTampered,
            Self::ConnectionLost { .. } => C::ConnectionLost,
            Self::DeviceNotFound => C::DeviceNotFound,
            Self::DeviceMisbehaved { .. } => C::DeviceMisbehaved,
            Self::DeadlineMissed { .. } => C::DeadlineMissed,
            Self::StageTimeout { .. } => C::StageTimeout,
            Self::CloudRejected { .. } => C::CloudRejected,
            Self::NotConfirmed { .. } => C::NotConfirmed,
            Self::PhoneOffline { .. } => C::PhoneOffline,
            Self::AlreadyProvisioned { .. } => C::AlreadyProvisioned,
            Self::NotProvisioned => C::NotProvisioned,
            Self::Cancelled => C::Cancelled,
            Self::Internal { .. } => C::Internal,
        }
    }
}

#[uniffi::export]
impl ProvisioningFailure {
    /// Its stable code (`"CL-104"`): for support tickets and for looking up a translated message.
    pub fn code(&self) -> String {
        self.failure_code().code().to_owned()
    }

    /// The English message of its code (the table's, without this failure's details).
    pub fn code_message(&self) -> String {
        self.failure_code().message().to_owned()
    }

    /// Its sentence, with this failure's details (what `toString()` in Kotlin, `description` in Swift
    /// and `str()` in Python give).
    pub fn sentence(&self) -> String {
        self.to_string()
    }

    /// A support report (JSON) of this failure alone, for failures with no session to report on (the
    /// connection or the secure session failed). After a `provision` call, prefer the session's
    /// [`ProvisioningSession::support_report`], which has the device, the link and every stage.
    pub fn support_report(&self) -> String {
        let mut failure = FailureReport::new(self.failure_code(), self.to_string());
        if let Self::CloudRejected {
            step,
            status_code,
            error_code,
            error_message,
            thing_name,
            certificate_id,
        } = self
        {
            failure.cloud = Some(CloudWords {
                step: format!("{step:?}"),
                status_code: u32::try_from(*status_code).unwrap_or(0),
                error_code: error_code.clone(),
                error_message: error_message.clone(),
                thing_name: thing_name.clone(),
                certificate_id: certificate_id.clone(),
            });
        }
        SupportReport::without_session(failure, None).to_json()
    }
}

#[uniffi::export]
impl ProvisioningSession {
    /// The support report of this session (JSON; no secret): the SDK version, the device's
    /// capabilities, the link (MTU, exchanges, failures, reconnections, bytes), every `provision` call
    /// with each stage's time and the claim's time left, and the outcome: the thing and certificate,
    /// or the failure's code, sentence, causes and the cloud's own words. Attach it to a support
    /// ticket.
    pub async fn support_report(&self) -> Result<String, ProvisioningFailure> {
        let inner = self.inner.clone();
        on_runtime(async move { Ok(inner.support_report().await.to_json()) }).await
    }
}
