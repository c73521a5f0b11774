//! An app's own claim source and thing directory: the foreign traits an app implements to plug its
//! own way of obtaining claims, or of reading the registry, into a [`Provisioner`], the records they
//! trade, and their adapters to the core's traits.
//!
//! The presets (`Provisioner.withBackend`, `Provisioner.withAws`) need none of this; an app that
//! obtains claims some other way (its own backend protocol, a claim pool, a test double) implements
//! [`ClaimSource`] and [`ThingDirectory`] (one object may implement both) and calls
//! [`Provisioner::with_claim_source`](super::Provisioner::with_claim_source). The SDK checks the
//! claims it receives as it checks its own: the certificate parses, the key belongs to it, and it has
//! not expired.
//!
//! [`Provisioner`]: super::Provisioner

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::ProviderFailure;
use claimlink_core as core;
use claimlink_core::{ClaimError, ProviderError, SecretString, ThingName};

/// What the SDK asks an app's [`ClaimSource`] for.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ClaimRequest {
    /// The fleet-provisioning template the claim is for (`ProvisionerSettings.template`).
    pub template: String,
    /// The run's `ProvisionOptions.deviceHint`, if any (a serial number, the QR code's name…).
    pub device_hint: Option<String>,
}

/// A provisioning claim an app obtained its own way: the claim certificate, its private key and when
/// it stops working. The key is moved into a zeroizing buffer when this is built and never shown by
/// `toString()` / `description` / `str()`.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct ProvisioningClaim {
    certificate_pem: String,
    private_key: SecretString,
    expiration: SystemTime,
}

impl fmt::Debug for ProvisioningClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisioningClaim")
            .field("expiration", &self.expiration)
            .field("private_key", &self.private_key)
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl ProvisioningClaim {
    /// A claim: `certificate_pem` (the claim certificate), `private_key` (its PKCS#1 or PKCS#8 PEM
    /// key) and `expiration` (when the service says it stops working; the certificate's own end
    /// counts too, whichever comes first).
    #[uniffi::constructor]
    pub fn new(certificate_pem: String, private_key: String, expiration: SystemTime) -> Arc<Self> {
        Arc::new(Self {
            certificate_pem,
            private_key: SecretString::new(private_key),
            expiration,
        })
    }
}

/// Issues provisioning claims (what AWS IoT's `CreateProvisioningClaim` returns), for an app that
/// obtains them its own way. Called on an SDK thread, once per run, just before the handover (and
/// again if the claim arrives with less time left than the safety margin).
///
/// Throw [`ProviderFailure::NotSignedIn`] when the installer must sign in again (the run fails with
/// `SignInRequired`) and [`ProviderFailure::Failed`] for anything worth retrying later
/// (`ServiceUnavailable`). A claim that does not check out fails the run with `ClaimUnusable`.
#[uniffi::export(foreign)]
#[async_trait]
pub trait ClaimSource: Send + Sync {
    /// A fresh claim for `request.template`: every call must create a new one.
    async fn request_claim(
        &self,
        request: ClaimRequest,
    ) -> Result<Arc<ProvisioningClaim>, ProviderFailure>;
}

/// What the cloud knows about a thing.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ThingDescription {
    /// The thing's name.
    pub thing_name: String,
    /// Its ARN, when known.
    #[uniffi(default = None)]
    pub thing_arn: Option<String>,
    /// Its attributes.
    #[uniffi(default)]
    pub attributes: HashMap<String, String>,
    /// The certificates attached to it, with their status.
    pub certificates: Vec<ThingCertificate>,
}

/// A certificate attached to a thing.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ThingCertificate {
    /// The certificate id (the lowercase hex SHA-256 of its DER, as AWS IoT names it).
    pub certificate_id: String,
    /// Its status in the registry.
    pub status: CertificateStatus,
}

/// A certificate's status in the AWS IoT registry.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CertificateStatus {
    /// Usable for connections: the only status that confirms a device.
    Active,
    /// Deactivated.
    Inactive,
    /// Revoked.
    Revoked,
    /// Waiting for a transfer to be accepted.
    PendingTransfer,
    /// Registered but not yet activated.
    PendingActivation,
    /// Another status, in AWS's spelling.
    Other {
        /// The status.
        status: String,
    },
}

/// Says what the cloud knows about a thing, for an app that reads the registry its own way. The SDK
/// asks before the handover (which certificates the thing already has) and after it (whether the
/// device's certificate is ACTIVE on the thing): a run succeeds only when the cloud confirms it.
/// Called on an SDK thread. Failures as for [`ClaimSource`].
#[uniffi::export(foreign)]
#[async_trait]
pub trait ThingDirectory: Send + Sync {
    /// The thing named `thing_name`, or `null` / `nil` / `None` when it does not exist.
    async fn describe_thing(
        &self,
        thing_name: String,
    ) -> Result<Option<ThingDescription>, ProviderFailure>;
}

/// The app's [`ClaimSource`] as the core's.
pub(crate) struct AppClaimSource(pub(crate) Arc<dyn ClaimSource>);

impl fmt::Debug for AppClaimSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppClaimSource")
    }
}

#[async_trait]
impl core::ClaimSource for AppClaimSource {
    async fn request_claim(&self, request: &core::ClaimRequest) -> Result<core::Claim, ClaimError> {
        let asked = ClaimRequest {
            template: request.template.to_string(),
            device_hint: request.device_hint.clone(),
        };
        let claim = self
            .0
            .request_claim(asked)
            .await
            .map_err(ProviderError::from)?;
        core::Claim::new(
            &claim.certificate_pem,
            claim.private_key.clone(),
            claim.expiration,
            request.template.clone(),
        )
    }
}

/// The app's [`ThingDirectory`] as the core's.
pub(crate) struct AppThingDirectory(pub(crate) Arc<dyn ThingDirectory>);

impl fmt::Debug for AppThingDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppThingDirectory")
    }
}

#[async_trait]
impl core::ThingDirectory for AppThingDirectory {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<core::ThingDescription>, ClaimError> {
        let described = self
            .0
            .describe_thing(thing.as_str().to_owned())
            .await
            .map_err(ProviderError::from)?;
        Ok(described.map(core::ThingDescription::from))
    }
}

impl From<ThingDescription> for core::ThingDescription {
    fn from(d: ThingDescription) -> Self {
        Self {
            thing_name: d.thing_name,
            thing_arn: d.thing_arn,
            attributes: d.attributes.into_iter().collect(),
            certificates: d
                .certificates
                .into_iter()
                .map(|c| core::ThingCertificate {
                    certificate_id: c.certificate_id,
                    status: c.status.into(),
                })
                .collect(),
        }
    }
}

impl From<CertificateStatus> for core::CertificateStatus {
    fn from(s: CertificateStatus) -> Self {
        match s {
            CertificateStatus::Active => Self::Active,
            CertificateStatus::Inactive => Self::Inactive,
            CertificateStatus::Revoked => Self::Revoked,
            CertificateStatus::PendingTransfer => Self::PendingTransfer,
            CertificateStatus::PendingActivation => Self::PendingActivation,
            // An app spelling a known status as text still means that status.
            CertificateStatus::Other { status } => core::CertificateStatus::parse(&status),
        }
    }
}
