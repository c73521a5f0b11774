//! The `aws-claim` endpoint: the claim bundle's transfer (begin, chunks, commit, abort) and its check.

use claimlink_core::internal::proto::{self, Status};
use prost::Message;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::device::broken::BrokenBehaviour as Broken;

use super::{DeviceFailure, Inner, PendingClaim, ReceivedClaim, SimDevice};

impl SimDevice {
    /// Answers an `aws-claim` request.
    pub(super) fn claim(
        &self,
        inner: &mut Inner,
        req: proto::AwsClaimPayload,
    ) -> Result<proto::AwsClaimPayload, DeviceFailure> {
        use proto::aws_claim_payload::Payload as P;
        use proto::AwsClaimMsgType as T;
        use proto::ClaimTransferError as E;
        let answer = |msg: T, error: E, payload: P| proto::AwsClaimPayload {
            msg: msg as i32,
            status: if error == E::None {
                Status::Success as i32
            } else {
                Status::InvalidArgument as i32
            },
            error: error as i32,
            payload: Some(payload),
        };
        let out = match by_msg_claim(req) {
            Some(P::CmdBegin(cmd)) => {
                if !self.config.breaks(Broken::BeginKeepsHeldClaim) {
                    inner.claim = None;
                }
                inner.pending_claim = None;
                let total = cmd.total_length as usize;
                let max = if self.config.breaks(Broken::AcceptsOversizeBundle) {
                    usize::MAX
                } else {
                    self.config.max_claim_bundle
                };
                let error = if total > max || cmd.data.len() > total {
                    E::TooLarge
                } else if cmd.sha256.len() != 32 {
                    E::BundleInvalid
                } else {
                    inner.pending_claim = Some(PendingClaim {
                        total,
                        sha256: cmd.sha256,
                        data: Zeroizing::new(cmd.data),
                    });
                    E::None
                };
                let (error, committed) = if error == E::None && cmd.commit {
                    self.commit(inner)
                } else {
                    (error, false)
                };
                let received = inner.pending_claim.as_ref().map_or(0, |p| p.data.len());
                let received = if committed { total } else { received };
                answer(
                    T::TypeRespBegin,
                    error,
                    P::RespBegin(proto::RespClaimBegin {
                        received: u32::try_from(received).unwrap_or(0),
                        max_bundle_length: u32::try_from(self.config.max_claim_bundle).unwrap_or(0),
                        committed,
                    }),
                )
            }
            Some(P::CmdChunk(cmd)) => {
                let error = match inner.pending_claim.as_mut() {
                    None => E::NotStarted,
                    Some(p) if cmd.offset as usize != p.data.len() => E::OutOfOrder,
                    Some(p) if p.data.len() + cmd.data.len() > p.total => E::TooLarge,
                    Some(p) => {
                        p.data.extend_from_slice(&cmd.data);
                        E::None
                    }
                };
                let total = inner.pending_claim.as_ref().map_or(0, |p| p.total);
                let (error, committed) = if error == E::None && cmd.commit {
                    self.commit(inner)
                } else {
                    (error, false)
                };
                let received = if committed {
                    total
                } else {
                    inner.pending_claim.as_ref().map_or(0, |p| p.data.len())
                };
                let received = if self.config.breaks(Broken::MiscountsChunks) {
                    received.saturating_sub(1)
                } else {
                    received
                };
                answer(
                    T::TypeRespChunk,
                    error,
                    P::RespChunk(proto::RespClaimChunk {
                        received: u32::try_from(received).unwrap_or(0),
                        committed,
                    }),
                )
            }
            Some(P::CmdAbort(_)) if self.config.breaks(Broken::AbortKeepsClaim) => answer(
                T::TypeRespAbort,
                E::None,
                P::RespAbort(proto::RespClaimAbort {}),
            ),
            Some(P::CmdAbort(_)) => {
                inner.claim = None;
                inner.pending_claim = None;
                answer(
                    T::TypeRespAbort,
                    E::None,
                    P::RespAbort(proto::RespClaimAbort {}),
                )
            }
            _ => {
                return Err(DeviceFailure::Refused(
                    "unexpected aws-claim message".into(),
                ))
            }
        };
        Ok(out)
    }

    /// Checks and keeps the pending bundle. Any failure wipes it.
    pub(super) fn commit(&self, inner: &mut Inner) -> (proto::ClaimTransferError, bool) {
        use proto::ClaimTransferError as E;
        let Some(pending) = inner.pending_claim.take() else {
            return (E::NotStarted, false);
        };
        if pending.data.len() != pending.total {
            return (E::Incomplete, false);
        }
        if Sha256::digest(pending.data.as_slice()).as_slice() != pending.sha256.as_slice()
            && !self.config.breaks(Broken::AcceptsWrongSha)
        {
            if self.config.breaks(Broken::KeepsRefusedClaim) {
                inner.pending_claim = Some(pending);
            }
            return (E::DigestMismatch, false);
        }
        let Ok(mut bundle) = proto::ClaimBundle::decode(pending.data.as_slice()) else {
            return (E::BundleInvalid, false);
        };
        let key = match (bundle.private_key_der.is_empty(), bundle.rsa_key.take()) {
            (false, None) => Some(Zeroizing::new(std::mem::take(&mut bundle.private_key_der))),
            (true, Some(primes)) => rebuild_rsa_key(&primes),
            _ => None,
        };
        let Some(key) =
            key.filter(|_| !bundle.certificate_der.is_empty() && !bundle.iot_endpoint.is_empty())
        else {
            zeroize::Zeroize::zeroize(&mut bundle.private_key_der);
            return (E::BundleInvalid, false);
        };
        inner.claim = Some(ReceivedClaim {
            certificate_der: std::mem::take(&mut bundle.certificate_der),
            private_key_der: key,
            certificate_id: bundle.certificate_id,
            iot_endpoint: bundle.iot_endpoint,
            template_name: bundle.template_name,
            template_parameters: bundle.template_parameters,
            seconds_left: bundle.seconds_left,
            received_at: std::time::Instant::now(),
            bundle: pending.data,
        });
        (E::None, true)
    }
}

/// Rebuilds a PKCS#1 DER private key from its primes and public exponent (what firmware does with
/// `mbedtls_rsa_import_raw` + `mbedtls_rsa_complete`).
fn rebuild_rsa_key(primes: &proto::RsaPrimes) -> Option<Zeroizing<Vec<u8>>> {
    // Untrusted numbers: every implausible one (0, 1, even, equal primes, too large) is an error
    // (found by the fuzzer with the `rsa` crate, which panicked on p = 0:
    // fuzz/regressions/device_claim_bundle).
    let key = crate::rsa_key::RsaKey::from_primes(&primes.p, &primes.q, &primes.e).ok()?;
    Some(key.to_pkcs1_der())
}

fn by_msg_claim(req: proto::AwsClaimPayload) -> Option<proto::aws_claim_payload::Payload> {
    use proto::aws_claim_payload::Payload as P;
    use proto::AwsClaimMsgType as T;
    match (T::try_from(req.msg).ok()?, req.payload) {
        (T::TypeCmdBegin, Some(p @ P::CmdBegin(_))) => Some(p),
        (T::TypeCmdChunk, Some(p @ P::CmdChunk(_))) => Some(p),
        (T::TypeCmdAbort, _) => Some(P::CmdAbort(proto::CmdClaimAbort {})),
        _ => None,
    }
}
