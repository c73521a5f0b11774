//! The `aws-claim` cases (docs/protocol.md §5): the SDK's transfer at the 480-byte cap, and what a
//! device must refuse and wipe — a wrong SHA-256, a corrupted chunk, an oversize bundle, a partial
//! claim whose session dropped — plus Abort and a Begin while a claim is held.

use claimlink_core::internal::DeviceSession;
use claimlink_core::CloudStage;
use sha2::{Digest, Sha256};

use super::raw::{self, OversizeAnswer};
use super::{CaseResult, Checker};
use claimlink_core::internal::proto::ClaimTransferError as E;

/// Bytes of a begin message around its data (SHA-256 included), as the SDK budgets them.
const BEGIN_ENVELOPE: usize = 56;
/// Bytes of a chunk message around its data.
const CHUNK_ENVELOPE: usize = 24;

impl Checker {
    /// How many bundle bytes a begin and a chunk carry on `session` (under the 480-byte cap).
    async fn sizes(&self, session: &DeviceSession) -> (usize, usize) {
        let max = session.max_plaintext().await;
        (
            max.saturating_sub(BEGIN_ENVELOPE).max(1),
            max.saturating_sub(CHUNK_ENVELOPE).max(1),
        )
    }

    fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.claim.bundle.as_slice()).to_vec()
    }

    /// Sends the whole test claim the SDK's way and commits it.
    pub(super) async fn commit_claim(&self, session: &DeviceSession) -> Result<(), String> {
        session
            .send_claim(&self.claim.sdk_bundle())
            .await
            .map(|_| ())
            .map_err(|e| format!("the transfer failed: {e}"))
    }

    /// A Begin of the test claim with as many bytes as one message carries, not committed: the
    /// device's answer, and how many bytes of the claim it carried.
    async fn begin_partial(
        &self,
        session: &DeviceSession,
    ) -> Result<(raw::ClaimAnswer, usize), String> {
        let (first, _) = self.sizes(session).await;
        let data = &self.claim.bundle[..first.min(self.claim.bundle.len())];
        let answer = raw::begin(
            session,
            self.claim.bundle.len(),
            &self.digest(),
            data,
            false,
        )
        .await?;
        Ok((answer, data.len()))
    }

    /// Runs `case` on a new session, then aborts whatever claim it left.
    async fn on_session<'a, F, Fut>(&'a self, case: F) -> CaseResult
    where
        F: FnOnce(&'a Self, DeviceSession) -> Fut,
        Fut: std::future::Future<Output = (DeviceSession, CaseResult)> + 'a,
    {
        let session = self.session().await?;
        let (session, result) = case(self, session).await;
        let _ = raw::abort(&session).await;
        result
    }

    /// The SDK's transfer (`send_claim`): begin, chunks, the last one committing, every message
    /// ≤ 480 bytes; the device answers `committed`.
    pub(super) async fn claim_transfer(&self) -> CaseResult {
        self.on_session(|this, session| async move {
            let result = match session.send_claim(&this.claim.sdk_bundle()).await {
                Ok(t) if t.exchanges >= 2 => Ok(format!(
                    "{} bytes in {} messages of at most 480 bytes, committed",
                    t.bytes, t.exchanges
                )),
                Ok(t) => Err(format!("{} messages: the cap was not applied", t.exchanges)),
                Err(e) => Err(format!("the transfer failed: {e}")),
            };
            (session, result)
        })
        .await
    }

    /// After a committed claim `aws-status` says `ClaimReceived` (docs/protocol.md §6).
    pub(super) async fn status_after(&self) -> CaseResult {
        self.on_session(|this, session| async move {
            let result = async {
                this.commit_claim(&session).await?;
                match raw::stage(&session).await? {
                    CloudStage::ClaimReceived => Ok("ClaimReceived".to_owned()),
                    other => Err(format!(
                        "{other:?} after a committed claim (expected ClaimReceived)"
                    )),
                }
            }
            .await;
            (session, result)
        })
        .await
    }

    /// Abort wipes a committed claim and a partial one (docs/protocol.md §5.3, step 4).
    pub(super) async fn abort(&self) -> CaseResult {
        self.on_session(|this, session| async move {
            let result = async {
                this.commit_claim(&session).await?;
                let answer = raw::abort(&session).await?;
                if !answer.accepted() {
                    return Err(format!("Abort answered {}", answer.describe()));
                }
                let stage = raw::stage(&session).await?;
                if stage != CloudStage::Idle {
                    return Err(format!(
                        "after Abort of a committed claim aws-status says {stage:?} (expected Idle: the claim wiped)"
                    ));
                }
                let (begin, first) = this.begin_partial(&session).await?;
                if !begin.accepted() {
                    return Err(format!("a new Begin answered {}", begin.describe()));
                }
                raw::abort(&session).await?;
                raw::holds_nothing(&session, first)
                    .await
                    .map_err(|e| format!("after Abort of a partial claim: {e}"))?;
                Ok("a committed and a partial claim wiped".to_owned())
            }
            .await;
            (session, result)
        })
        .await
    }

    /// A Begin while a claim is held discards the held claim (docs/protocol.md §5.3, step 1).
    pub(super) async fn begin_while_held(&self) -> CaseResult {
        self.on_session(|this, session| async move {
            let result = async {
                this.commit_claim(&session).await?;
                let (begin, _) = this.begin_partial(&session).await?;
                if !begin.accepted() {
                    return Err(format!(
                        "a Begin while a claim is held answered {} (expected it accepted, the held claim discarded)",
                        begin.describe()
                    ));
                }
                match raw::stage(&session).await? {
                    CloudStage::Idle => Ok("accepted; the held claim was discarded (Idle)".to_owned()),
                    other => Err(format!(
                        "after a new Begin aws-status says {other:?}: the held claim was kept (expected Idle)"
                    )),
                }
            }
            .await;
            (session, result)
        })
        .await
    }

    /// A commit whose SHA-256 does not match is refused with `DigestMismatch` and leaves nothing.
    pub(super) async fn wrong_sha256(&self) -> CaseResult {
        let mut digest = self.digest();
        digest[0] ^= 0x80;
        self.refused_transfer(digest, false, "a wrong SHA-256")
            .await
    }

    /// A chunk whose bytes were corrupted makes the commit fail with `DigestMismatch`, leaving nothing.
    pub(super) async fn corrupted_chunk(&self) -> CaseResult {
        self.refused_transfer(self.digest(), true, "a corrupted chunk")
            .await
    }

    /// Sends the claim with `digest`, one byte of the first chunk flipped when `corrupt_chunk`; the
    /// commit must be refused with `DigestMismatch` and nothing kept.
    async fn refused_transfer(
        &self,
        digest: Vec<u8>,
        corrupt_chunk: bool,
        what: &str,
    ) -> CaseResult {
        self.on_session(|this, session| async move {
            let result = async {
                let (first, per_chunk) = this.sizes(&session).await;
                let mut bundle = zeroize::Zeroizing::new(this.claim.bundle.to_vec());
                if corrupt_chunk {
                    // A byte past the begin's data: in the first chunk.
                    let at = (first + 10).min(bundle.len() - 1);
                    bundle[at] ^= 0x01;
                }
                let answer = raw::transfer(&session, &digest, &bundle, first, per_chunk).await?;
                if answer.accepted() || answer.committed() {
                    return Err(format!(
                        "the device committed a bundle with {what} (answer {}, committed {})",
                        answer.describe(),
                        answer.committed()
                    ));
                }
                if answer.error != E::DigestMismatch {
                    return Err(format!(
                        "{what} was refused with {} (expected DigestMismatch at the commit)",
                        answer.describe()
                    ));
                }
                raw::holds_nothing(&session, bundle.len()).await?;
                Ok(format!("refused ({}), nothing kept", answer.describe()))
            }
            .await;
            (session, result)
        })
        .await
    }

    /// A Begin over the device's `max_bundle_length` is `TooLarge` and leaves nothing; over HTTP a
    /// body over 4096 bytes is not answered 200 (ESP-IDF's `protocomm_httpd.c`: `content_len >
    /// MAX_REQ_BODY_LEN` fails the handler, so the socket is closed) and the device still serves a
    /// new session afterwards.
    pub(super) async fn oversize(&self) -> CaseResult {
        let bundle_part = self
            .on_session(|this, session| async move {
                let result = async {
                    let (probe, sent) = this.begin_partial(&session).await?;
                    let data = &this.claim.bundle[..sent];
                    let max = match probe.max_bundle_length() {
                        Some(m) if m > 0 && probe.accepted() => m,
                        _ => {
                            return Err(format!(
                                "a valid Begin answered {} without max_bundle_length",
                                probe.describe()
                            ))
                        }
                    };
                    raw::abort(&session).await?;
                    let total = max as usize + 1;
                    let answer = raw::begin(&session, total, &this.digest(), data, false).await?;
                    if answer.error != E::TooLarge {
                        return Err(format!(
                            "a Begin of {total} bytes (max_bundle_length {max}) was answered {} (expected TooLarge)",
                            answer.describe()
                        ));
                    }
                    raw::holds_nothing(&session, data.len()).await?;
                    Ok(format!("Begin of {total} bytes refused (TooLarge)"))
                }
                .await;
                (session, result)
            })
            .await?;
        let Some(base) = self.opener.http_base() else {
            return Ok(format!(
                "{bundle_part}; the transport's own limit is not checked over BLE"
            ));
        };
        let http_part = match raw::post_oversize(base, "prov-session", 4097).await? {
            OversizeAnswer::Status(200) => {
                return Err(format!(
                    "{bundle_part}; but a 4097-byte body was answered 200 (ESP-IDF refuses bodies over 4096)"
                ))
            }
            OversizeAnswer::Status(code) => format!("a 4097-byte body answered HTTP {code}"),
            OversizeAnswer::Closed => "a 4097-byte body: connection closed, as ESP-IDF's httpd does".to_owned(),
        };
        let session = self
            .session()
            .await
            .map_err(|e| format!("{bundle_part}; {http_part}; then {e}"))?;
        raw::stage(&session)
            .await
            .map_err(|e| format!("{bundle_part}; {http_part}; then {e}"))?;
        Ok(format!(
            "{bundle_part}; {http_part}; then a new session works"
        ))
    }

    /// A partial claim whose session dropped is gone on the next session: the next connection's
    /// chunk at the old offset is `NotStarted` and `aws-status` is `Idle`.
    pub(super) async fn dropped_session(&self) -> CaseResult {
        let first = {
            let session = self.session().await?;
            let (first, _) = self.sizes(&session).await;
            let first = first.min(self.claim.bundle.len() - 1);
            let begin = raw::begin(
                &session,
                self.claim.bundle.len(),
                &self.digest(),
                &self.claim.bundle[..first],
                false,
            )
            .await?;
            if !begin.accepted() {
                let _ = raw::abort(&session).await;
                return Err(format!("the Begin answered {}", begin.describe()));
            }
            // The drop: the connection closes without an Abort.
            session.close().await;
            first
        };
        self.on_session(|_, session| async move {
            let result = raw::holds_nothing(&session, first)
                .await
                .map(|()| "the partial claim was gone on the next session".to_owned())
                .map_err(|e| format!("on the next session: {e}"));
            (session, result)
        })
        .await
    }
}
