//! Getting a provisioning claim, and asking the cloud about a thing.
//!
//! A [`Claim`] is what AWS IoT's `CreateProvisioningClaim` returns: a certificate and RSA private key
//! that let a device call the fleet-provisioning APIs, valid for five minutes. A [`ClaimSource`]
//! issues claims; a [`ThingDirectory`] says what the cloud knows about a thing (for the provisioner's
//! confirmation). Two built-in sources are both:
//!
//! * [`BackendClaimSource`] — the app maker's backend (the common deployment), through the contract in
//!   `docs/backend-api.md`, authenticated with the app's bearer token;
//! * [`AwsClaimSource`] — AWS IoT directly, SigV4-signed with temporary credentials the app supplies
//!   (for example from Amazon Cognito).
//!
//! Both parse the answer once into a [`Claim`] whose invariants hold: the certificate parses, its id is
//! its SHA-256, the key belongs to it, and it has not expired. Its [`Deadline`] is measured from the
//! server's clock, not the phone's, and never exceeds the certificate's lifetime.
//!
//! Adding a claim source: implement [`ClaimSource`] (and [`ThingDirectory`] if it can also read the
//! registry) in a file of this module, building claims with [`Claim::new`] or, for a service answering
//! in AWS's `CreateProvisioningClaim` shape, the shared answer parser (`answer.rs`). An app plugs its
//! own in through the FFI crate's `ClaimSource` / `ThingDirectory` foreign traits.

mod answer;
mod aws;
mod backend;
mod cert;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

/// The services' answer decoders, exposed for the fuzz targets only (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// `CreateProvisioningClaim` / backend claim answer.
    pub fn claim_answer(body: &[u8]) -> bool {
        super::answer::claim_answer(body).is_ok()
    }
    /// A claim answer all the way to a checked claim, as the built-in sources take it: the JSON, then
    /// the certificate's PEM and X.509, the key's PEM and DER, and the key-matches-certificate and
    /// expiry checks, on a phone whose clock reads `phone_now`.
    pub fn claim(body: &[u8], phone_now: std::time::SystemTime) -> bool {
        /// A phone whose wall clock reads `phone_now` for the whole run.
        #[derive(Debug)]
        struct StoppedWallClock(std::time::SystemTime);
        impl crate::time::Clock for StoppedWallClock {
            fn now(&self) -> std::time::SystemTime {
                self.0
            }
        }
        let Ok(template) = super::TemplateName::new("fuzz") else {
            return false;
        };
        super::answer::claim_answer(body)
            .and_then(|answer| {
                super::claim_from_answer(
                    answer,
                    template,
                    None,
                    std::sync::Arc::new(StoppedWallClock(phone_now)),
                    std::time::Instant::now(),
                )
            })
            .is_ok()
    }
    /// Error answers (never fails).
    pub fn error_answer(body: &[u8]) {
        let _ = super::answer::error_answer(&http::HeaderMap::new(), body);
    }
    /// The backend's thing description.
    pub fn backend_thing(body: &[u8]) -> bool {
        super::answer::backend_thing(body).is_ok()
    }
    /// DescribeThing, ListThingPrincipals, DescribeCertificate.
    pub fn aws_answers(body: &[u8]) {
        let _ = super::answer::aws_describe_thing(body);
        let _ = super::answer::aws_thing_principals(body);
        let _ = super::answer::aws_certificate_status(body);
    }
}

pub use aws::{AwsClaimSource, AwsClaimSourceBuilder, AwsCredentials, CredentialsProvider};
pub use backend::{BackendClaimSource, BackendClaimSourceBuilder, TokenProvider};
pub use cert::ClaimCertificate;

use crate::net::NetError;
use crate::secret::SecretString;
use crate::time::{Clock, Deadline, SystemClock};

/// Where claims come from: issues a fresh [`Claim`] for a template. Implementations must be cheap to
/// share between sessions.
///
/// The two built in ([`BackendClaimSource`], [`AwsClaimSource`]) are also [`ThingDirectory`]s; an app
/// with its own way of obtaining claims implements this (through the FFI: the `ClaimSource` foreign
/// trait) and builds each claim with [`Claim::new`], which checks it like the built-in sources do.
#[async_trait]
pub trait ClaimSource: Send + Sync + fmt::Debug {
    /// Obtains a fresh claim for `request.template`. Every call creates a new claim.
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError>;
}

/// What the cloud knows about a thing: the provisioner asks it before the handover (which
/// certificates the thing already has) and after (whether the device's certificate is ACTIVE on the
/// thing), so that success is what the cloud shows, not only what the device says.
///
/// Separate from [`ClaimSource`] because who issues claims need not be who answers for the registry
/// (a backend that only issues claims, with the registry read through AWS IoT, or the reverse).
#[async_trait]
pub trait ThingDirectory: Send + Sync + fmt::Debug {
    /// What the cloud knows about `thing`: `Ok(None)` when it does not exist.
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError>;
}

/// A name that AWS IoT accepts for a provisioning template: 1–36 characters of `[0-9A-Za-z_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TemplateName(String);

impl TemplateName {
    /// Parses a template name.
    pub fn new(name: impl Into<String>) -> Result<Self, ClaimError> {
        let name = name.into();
        let ok = (1..=36).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(name))
        } else {
            Err(ClaimError::InvalidInput(format!(
                "template name {name:?} is not 1-36 characters of letters, digits, '_' and '-'"
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name that AWS IoT accepts for a thing: 1–128 characters of `[a-zA-Z0-9:_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThingName(String);

impl ThingName {
    /// Parses a thing name.
    pub fn new(name: impl Into<String>) -> Result<Self, ClaimError> {
        let name = name.into();
        let ok = (1..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
        if ok {
            Ok(Self(name))
        } else {
            Err(ClaimError::InvalidInput(format!(
                "thing name {name:?} is not 1-128 characters of letters, digits, ':', '_' and '-'"
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ThingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to ask a claim source for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The fleet-provisioning template the claim is for.
    pub template: TemplateName,
    /// Optional hint for the backend (serial number, QR name…), passed through as `deviceHint`.
    /// Ignored by [`AwsClaimSource`].
    pub device_hint: Option<String>,
}

impl ClaimRequest {
    /// A request for `template` with no device hint.
    pub fn new(template: TemplateName) -> Self {
        Self {
            template,
            device_hint: None,
        }
    }
}

/// A provisioning claim: certificate, private key and deadline, all checked.
///
/// The private key is zeroized when the claim is dropped and never appears in `Debug` output.
#[derive(Clone, Debug)]
pub struct Claim {
    certificate_id: String,
    certificate: ClaimCertificate,
    private_key: SecretString,
    template: TemplateName,
    deadline: Deadline,
}

impl Claim {
    /// A claim obtained some other way (an app's own claim source): `certificate_pem` and its
    /// `private_key` (PKCS#1 or PKCS#8 PEM), usable until `expiration` on the phone's clock, issued for
    /// `template`. Checked like the built-in sources' claims: the certificate parses, the key belongs
    /// to it, and the claim has not expired (it expires at `expiration` or the certificate's end,
    /// whichever comes first).
    pub fn new(
        certificate_pem: &str,
        private_key: SecretString,
        expiration: SystemTime,
        template: TemplateName,
    ) -> Result<Self, ClaimError> {
        let certificate_id = ClaimCertificate::from_pem(certificate_pem)?.id().to_owned();
        let answer = answer::ClaimAnswer {
            certificate_id,
            certificate_pem: certificate_pem.to_owned(),
            private_key,
            expiration,
        };
        claim_from_answer(
            answer,
            template,
            None,
            Arc::new(SystemClock),
            std::time::Instant::now(),
        )
    }

    /// The claim certificate's id (the lowercase hex SHA-256 of its DER, as AWS IoT names it).
    pub fn certificate_id(&self) -> &str {
        &self.certificate_id
    }

    /// The parsed claim certificate.
    pub fn certificate(&self) -> &ClaimCertificate {
        &self.certificate
    }

    /// The template the claim was issued for.
    pub fn template(&self) -> &TemplateName {
        &self.template
    }

    /// When the claim stops working, on the phone's monotonic clock.
    pub fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// The private key (PKCS#1 or PKCS#8 PEM). It leaves the SDK only over the encrypted device session;
    /// the wrapper keeps it out of logs and `Debug`.
    pub fn private_key(&self) -> &SecretString {
        &self.private_key
    }
}

/// What the cloud knows about a thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThingDescription {
    /// The thing's name.
    pub thing_name: String,
    /// Its ARN, when the source tells it.
    pub thing_arn: Option<String>,
    /// Its attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// The certificates attached to it.
    pub certificates: Vec<ThingCertificate>,
}

impl ThingDescription {
    /// Whether `certificate_id` is attached to the thing and ACTIVE.
    pub fn has_active_certificate(&self, certificate_id: &str) -> bool {
        self.active_certificate_ids()
            .any(|id| id.eq_ignore_ascii_case(certificate_id))
    }

    /// The ids of the ACTIVE certificates attached to the thing.
    pub fn active_certificate_ids(&self) -> impl Iterator<Item = &str> {
        self.certificates
            .iter()
            .filter(|c| c.status == CertificateStatus::Active)
            .map(|c| c.certificate_id.as_str())
    }
}

/// A certificate attached to a thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThingCertificate {
    /// The certificate id (hex SHA-256 of its DER).
    pub certificate_id: String,
    /// Its status in the registry.
    pub status: CertificateStatus,
}

/// A certificate's status in the AWS IoT registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Usable for connections.
    Active,
    /// Deactivated.
    Inactive,
    /// Revoked.
    Revoked,
    /// Waiting for a transfer to be accepted.
    PendingTransfer,
    /// Registered but not yet activated.
    PendingActivation,
    /// A status this SDK does not know (kept verbatim).
    Other(String),
}

impl CertificateStatus {
    /// Parses AWS's spelling (`ACTIVE`, `INACTIVE`, …).
    pub fn parse(s: &str) -> Self {
        match s {
            "ACTIVE" => Self::Active,
            "INACTIVE" => Self::Inactive,
            "REVOKED" => Self::Revoked,
            "PENDING_TRANSFER" => Self::PendingTransfer,
            "PENDING_ACTIVATION" => Self::PendingActivation,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Which service answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The app maker's backend.
    Backend,
    /// AWS IoT.
    Aws,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Backend => "the backend",
            Service::Aws => "AWS IoT",
        })
    }
}

/// Why a claim (or a thing description) could not be obtained. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
// Exhaustive on purpose: the FFI crate maps every variant to an app action, and a new variant
// must fail its build until it is mapped.
pub enum ClaimError {
    /// The app passed something unusable (a bad template name, URL, CA certificate…).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The service rejected the app's token or credentials, even after asking the provider for fresh
    /// ones: the user must sign in again.
    #[error("{service} rejected the app's credentials: {message}")]
    Unauthorized {
        /// Who refused.
        service: Service,
        /// The service's explanation.
        message: String,
    },
    /// The signed request was refused (wrong secret key, tampered request, or a clock that could not be
    /// corrected).
    #[error("AWS IoT rejected the request signature: {message}")]
    SignatureRejected {
        /// AWS's explanation.
        message: String,
    },
    /// The service has no enabled provisioning template of that name.
    #[error("{service} has no enabled provisioning template named {template:?}")]
    TemplateNotFound {
        /// Who answered.
        service: Service,
        /// The template asked for.
        template: String,
    },
    /// The service refused the request for another reason (4xx).
    #[error("{service} refused the request (HTTP {status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Rejected {
        /// Who refused.
        service: Service,
        /// The HTTP status.
        status: u16,
        /// AWS's error type or the backend's error code, when given.
        code: Option<String>,
        /// The explanation.
        message: String,
    },
    /// Still throttled after every retry the policy allows.
    #[error("throttled after {attempts} attempts; try again later")]
    Throttled {
        /// Attempts made.
        attempts: u32,
    },
    /// The service kept failing (5xx) after every retry the policy allows.
    #[error("the service failed with HTTP {status} after {attempts} attempts; try again later")]
    Unavailable {
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The service could not be reached.
    #[error("could not reach the service{}: {message}", if *timed_out { " (timed out)" } else { "" })]
    Network {
        /// What went wrong.
        message: String,
        /// Whether it was a timeout.
        timed_out: bool,
    },
    /// The answer could not be understood (bad JSON, a missing field, a certificate that does not
    /// parse, a key that does not match the certificate…).
    #[error("the service's answer is malformed: {problem}")]
    Malformed {
        /// What is wrong (never the offending secret value).
        problem: String,
    },
    /// The claim had already expired when it arrived.
    #[error("the claim expired {overdue_secs} s before it could be used")]
    Expired {
        /// How long ago it expired.
        overdue_secs: u64,
    },
    /// Fresh claims arrive with less time left than the safety margin: the service issues claims
    /// that are too short-lived (or old), or the margin is set too high.
    #[error(
        "the service's claims have {left_secs} s left, less than the {margin_secs} s safety margin"
    )]
    TooShortLived {
        /// Time left on the last claim received.
        left_secs: u64,
        /// The provisioner's safety margin.
        margin_secs: u64,
    },
    /// The app's token or credentials provider failed: the installer is signed out
    /// (`signed_out`, sign in again), or the provider could not produce credentials (retry).
    #[error("{}: {message}", if *signed_out { "the installer is signed out" } else { "the app's credentials provider failed" })]
    Provider {
        /// The provider's explanation.
        message: String,
        /// The provider says the installer must sign in again.
        signed_out: bool,
    },
}

impl From<NetError> for ClaimError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Setup(problem) => ClaimError::InvalidInput(problem),
            NetError::Throttled { attempts } => ClaimError::Throttled { attempts },
            NetError::Unavailable { status, attempts } => {
                ClaimError::Unavailable { status, attempts }
            }
            NetError::Network { message, timed_out } => ClaimError::Network { message, timed_out },
            e @ NetError::BodyTooLarge { .. } => ClaimError::Malformed {
                problem: e.to_string(),
            },
        }
    }
}

/// An error returned by an app-implemented token or credentials provider.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// What went wrong (shown to developers; must not contain secrets).
    pub message: String,
    /// The installer must sign in again (as opposed to a failure worth retrying).
    pub signed_out: bool,
    /// The provider could not reach its service (the phone has no network, or no route from the
    /// network it is on, such as a device's SoftAP access point): treated as the SDK's own network
    /// failures are (the cloud confirmation waits for the network).
    pub unreachable: bool,
}

impl ProviderError {
    /// A provider failure worth retrying (no network to the identity provider, …).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            signed_out: false,
            unreachable: false,
        }
    }

    /// The provider could not reach its service: no network, or no route out of the network the
    /// phone is on.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            signed_out: false,
            unreachable: true,
        }
    }

    /// The installer is signed out (or the refresh was refused): they must sign in again.
    pub fn signed_out(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            signed_out: true,
            unreachable: false,
        }
    }
}

impl From<ProviderError> for ClaimError {
    fn from(e: ProviderError) -> Self {
        if e.unreachable && !e.signed_out {
            return ClaimError::Network {
                message: e.message,
                timed_out: false,
            };
        }
        ClaimError::Provider {
            message: e.message,
            signed_out: e.signed_out,
        }
    }
}

/// Builds a checked claim from a parsed answer; shared by both sources.
pub(crate) fn claim_from_answer(
    answer: answer::ClaimAnswer,
    template: TemplateName,
    server_date: Option<SystemTime>,
    clock: Arc<dyn Clock>,
    received_at: std::time::Instant,
) -> Result<Claim, ClaimError> {
    // The answer arrived `received_at.elapsed()` ago (milliseconds: parsing it): that moment on the
    // suspend-aware clock the deadline is measured on.
    let received_at_boot = clock.since_boot().saturating_sub(received_at.elapsed());
    let phone_now = clock.now();
    let certificate = ClaimCertificate::from_pem(&answer.certificate_pem)?;
    if !certificate
        .id()
        .eq_ignore_ascii_case(&answer.certificate_id)
    {
        return Err(ClaimError::Malformed {
            problem: "certificateId is not the SHA-256 of the certificate".into(),
        });
    }
    cert::check_key_matches(&answer.private_key, &certificate)?;
    // The claim is unusable from whichever comes first: the stated expiration or the certificate's
    // end; and it never has more time left than the certificate's lifetime, whatever `Date` says.
    let deadline = Deadline::from_certificate(
        certificate.not_before(),
        certificate.not_after(),
        answer.expiration,
        server_date,
        phone_now,
        clock,
        received_at_boot,
    );
    if let Some(behind) = deadline.clock_behind_certificate_secs() {
        tracing::warn!(
            certificate_id = %certificate.id(),
            behind_secs = behind,
            server_date = server_date.is_some(),
            "the clock the claim was measured on reads before the certificate's start; time left capped by the certificate's lifetime"
        );
    }
    if deadline.has_passed() {
        return Err(ClaimError::Expired {
            overdue_secs: deadline.overdue().as_secs(),
        });
    }
    tracing::info!(
        certificate_id = %certificate.id(),
        template = %template,
        remaining_secs = deadline.remaining().as_secs(),
        clock_skew_secs = ?deadline.clock_skew_secs(),
        "claim issued"
    );
    Ok(Claim {
        certificate_id: certificate.id().to_owned(),
        certificate,
        private_key: answer.private_key,
        template,
        deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_are_checked() {
        assert!(TemplateName::new("Fleet_template-1").is_ok());
        assert!(TemplateName::new("").is_err());
        assert!(TemplateName::new("has space").is_err());
        assert!(TemplateName::new("../x").is_err());
        assert!(TemplateName::new("a".repeat(37)).is_err());
    }

    #[test]
    fn thing_names_are_checked() {
        assert!(ThingName::new("sensor:42_a-b").is_ok());
        assert!(ThingName::new("a/b").is_err());
        assert!(ThingName::new("").is_err());
    }
}
