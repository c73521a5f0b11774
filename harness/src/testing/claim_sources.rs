//! Test support for the claim sources' end-to-end tests (tests/claim_*.rs): the emulator with the
//! SDK's backend and AWS sources built against it, retrying fast, and the check that a claim is the
//! one the emulator issued.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{AwsClaimSource, BackendClaimSource, Claim, ClaimRequest, TemplateName};
use claimlink_core::{Clock, HttpConfig, RetryPolicy, SystemClock};

use super::TEMPLATE;
use crate::emulator::{Emulator, RequestRecord};
use crate::providers::{CredentialsSequence, TokenSequence};

/// Three attempts, 5–20 ms apart: a test sees retries without waiting for them.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

/// An emulator, and the SDK's claim sources built against it (its endpoint, its CA trusted,
/// [`fast_retries`]).
pub struct ClaimSourceWorld {
    /// The emulator the sources ask.
    pub emulator: Emulator,
}

impl ClaimSourceWorld {
    /// Starts the emulator with its default settings; panics if it cannot start.
    pub async fn start() -> Self {
        let emulator = super::emulator().await;
        Self { emulator }
    }

    /// The HTTP settings that reach the emulator.
    pub fn http(&self) -> HttpConfig {
        self.emulator.http_config()
    }

    /// The backend source, asking `tokens` for its bearer tokens and reading time from `clock`.
    pub fn backend_with(
        &self,
        tokens: Arc<TokenSequence>,
        clock: Arc<dyn Clock>,
    ) -> BackendClaimSource {
        BackendClaimSource::builder(self.emulator.base_url(), tokens)
            .http_config(self.http())
            .retry_policy(fast_retries())
            .clock(clock)
            .build()
            .expect("backend source builds")
    }

    /// The backend source with one valid token and the system clock, and its token provider.
    pub fn backend(&self) -> (BackendClaimSource, Arc<TokenSequence>) {
        let tokens = Arc::new(TokenSequence::new(vec![self.emulator.issue_bearer_token()]));
        (
            self.backend_with(tokens.clone(), Arc::new(SystemClock)),
            tokens,
        )
    }

    /// The AWS source, signing with `creds` and reading time from `clock`.
    pub fn aws_with(
        &self,
        creds: Arc<CredentialsSequence>,
        clock: Arc<dyn Clock>,
    ) -> AwsClaimSource {
        super::aws_source(&self.emulator, creds)
            .retry_policy(fast_retries())
            .clock(clock)
            .build()
            .expect("AWS source builds")
    }

    /// The AWS source with one set of valid credentials and the system clock, and its provider.
    pub fn aws(&self) -> (AwsClaimSource, Arc<CredentialsSequence>) {
        let creds = Arc::new(CredentialsSequence::new(vec![self
            .emulator
            .issue_credentials()]));
        (self.aws_with(creds.clone(), Arc::new(SystemClock)), creds)
    }

    /// The HTTP status of every request the emulator answered, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.emulator
            .request_log()
            .iter()
            .map(|r: &RequestRecord| r.status)
            .collect()
    }
}

/// A claim request for `template`, no device hint.
pub fn claim_request(template: &str) -> ClaimRequest {
    ClaimRequest::new(TemplateName::new(template).expect("valid template name"))
}

/// Asserts the claim is the last one the emulator issued, whole and sound.
pub fn assert_sound_claim(world: &ClaimSourceWorld, claim: &Claim) {
    let issued = world.emulator.issued_claims();
    let last = issued.last().expect("the emulator issued a claim");
    assert_eq!(claim.certificate_id(), last.certificate_id);
    assert_eq!(claim.certificate().der(), last.certificate_der.as_slice());
    assert_eq!(claim.private_key().expose(), last.private_key_pem.as_str());
    assert_eq!(claim.certificate().key_bits(), 2048);
    assert!(claim
        .certificate()
        .subject()
        .contains("AWS IoT Certificate"));
    assert_eq!(claim.certificate().not_after(), last.not_after);
    // Five minutes, less the time the request took (seconds on a loaded machine).
    let left = claim.deadline().remaining();
    assert!(
        left > Duration::from_secs(290) && left <= Duration::from_secs(300),
        "{left:?}"
    );
    assert_eq!(claim.template().as_str(), TEMPLATE);
}
