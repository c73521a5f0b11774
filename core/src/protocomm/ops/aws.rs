//! The AWS half of the operations: the claim transfer on `aws-claim` (the [`ClaimBundle`] this layer
//! takes, its encoding into the wire message, the chunks, the abort) and the device's cloud status on
//! `aws-status`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use prost::Message;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{check_status, unexpected};
use crate::endpoint;
use crate::protocomm::proto::{self, Status};
use crate::protocomm::session::{malformed, status_name};
use crate::protocomm::{
    DeviceSession, InvalidInputReason, MalformedReason, ProtocolError, UnsupportedReason,
};
use crate::secret::{SecretString, WipedOnDrop};

/// Bytes of the claim-chunk envelope around the data.
const CLAIM_CHUNK_ENVELOPE: usize = 24;
/// Bytes of the claim-begin envelope around the data (SHA-256 included).
const CLAIM_BEGIN_ENVELOPE: usize = 56;

impl DeviceSession {
    async fn claim_call(
        &self,
        payload: proto::aws_claim_payload::Payload,
        msg: proto::AwsClaimMsgType,
    ) -> Result<proto::aws_claim_payload::Payload, ProtocolError> {
        // Claim bytes (the private key among them) are wiped when the request is dropped.
        let request = WipedOnDrop(
            proto::AwsClaimPayload {
                msg: msg as i32,
                status: 0,
                error: 0,
                payload: Some(payload),
            },
            |m: &mut proto::AwsClaimPayload| {
                use proto::aws_claim_payload::Payload as P;
                match m.payload.as_mut() {
                    Some(P::CmdBegin(b)) => b.data.zeroize(),
                    Some(P::CmdChunk(c)) => c.data.zeroize(),
                    _ => {}
                }
            },
        );
        let answer: proto::AwsClaimPayload = self.call(endpoint::AWS_CLAIM, &request.0).await?;
        if answer.status != Status::Success as i32
            || answer.error != proto::ClaimTransferError::None as i32
        {
            let reason = proto::ClaimTransferError::try_from(answer.error)
                .map_or_else(|_| format!("error {}", answer.error), |e| format!("{e:?}"));
            return Err(ProtocolError::DeviceRefused {
                endpoint: endpoint::AWS_CLAIM.into(),
                status: format!("{} / {reason}", status_name(answer.status)),
            });
        }
        answer
            .payload
            .ok_or_else(|| malformed(endpoint::AWS_CLAIM, MalformedReason::EmptyAnswer))
    }

    /// Transfers the claim (certificate and key as DER, with the IoT endpoint and template) in chunks
    /// that fit the message cap; the last chunk commits, and the device checks the SHA-256.
    pub async fn send_claim(
        &self,
        claim: &ClaimBundle<'_>,
    ) -> Result<ClaimTransfer, ProtocolError> {
        let caps = self.capabilities();
        if !caps.aws.as_ref().is_some_and(|a| a.claim) {
            return Err(ProtocolError::Unsupported(
                UnsupportedReason::AwsClaimEndpoint,
            ));
        }
        let bundle = encode_bundle(claim)?;
        let digest = Sha256::digest(bundle.as_slice());
        let total = u32::try_from(bundle.len())
            .map_err(|_| ProtocolError::ClaimBundleTooLarge { len: bundle.len() })?;
        let max = self.max_plaintext().await;
        let first_len = max.saturating_sub(CLAIM_BEGIN_ENVELOPE).min(bundle.len());
        let chunk_len = max.saturating_sub(CLAIM_CHUNK_ENVELOPE).max(1);
        let mut exchanges = 1;
        use proto::aws_claim_payload::Payload as P;
        let begin = proto::CmdClaimBegin {
            total_length: total,
            sha256: digest.to_vec(),
            data: bundle[..first_len].to_vec(),
            commit: first_len == bundle.len(),
        };
        let mut committed = match self
            .claim_call(P::CmdBegin(begin), proto::AwsClaimMsgType::TypeCmdBegin)
            .await?
        {
            P::RespBegin(r) if r.received as usize == first_len => r.committed,
            P::RespBegin(r) => {
                return Err(malformed(
                    endpoint::AWS_CLAIM,
                    MalformedReason::ClaimLengthAcknowledged {
                        sent: first_len,
                        acknowledged: r.received,
                    },
                ))
            }
            _ => return Err(unexpected(endpoint::AWS_CLAIM, "RespClaimBegin")),
        };
        let mut offset = first_len;
        while offset < bundle.len() {
            let end = (offset + chunk_len).min(bundle.len());
            let chunk = proto::CmdClaimChunk {
                offset: u32::try_from(offset).unwrap_or(u32::MAX),
                data: bundle[offset..end].to_vec(),
                commit: end == bundle.len(),
            };
            exchanges += 1;
            committed = match self
                .claim_call(P::CmdChunk(chunk), proto::AwsClaimMsgType::TypeCmdChunk)
                .await?
            {
                P::RespChunk(r) if r.received as usize == end => r.committed,
                P::RespChunk(r) => {
                    return Err(malformed(
                        endpoint::AWS_CLAIM,
                        MalformedReason::ClaimLengthAcknowledged {
                            sent: end,
                            acknowledged: r.received,
                        },
                    ))
                }
                _ => return Err(unexpected(endpoint::AWS_CLAIM, "RespClaimChunk")),
            };
            offset = end;
        }
        if !committed {
            return Err(malformed(
                endpoint::AWS_CLAIM,
                MalformedReason::ClaimNotCommitted,
            ));
        }
        Ok(ClaimTransfer {
            bytes: bundle.len(),
            exchanges,
        })
    }

    /// Makes the device wipe any claim it holds (whole or partial).
    pub async fn abort_claim(&self) -> Result<(), ProtocolError> {
        use proto::aws_claim_payload::Payload as P;
        match self
            .claim_call(
                P::CmdAbort(proto::CmdClaimAbort {}),
                proto::AwsClaimMsgType::TypeCmdAbort,
            )
            .await?
        {
            P::RespAbort(_) => Ok(()),
            _ => Err(unexpected(endpoint::AWS_CLAIM, "RespClaimAbort")),
        }
    }

    /// The device's progress with the cloud.
    pub async fn cloud_status(&self) -> Result<CloudStatus, ProtocolError> {
        if !self.capabilities().aws.as_ref().is_some_and(|a| a.status) {
            return Err(ProtocolError::Unsupported(
                UnsupportedReason::AwsStatusEndpoint,
            ));
        }
        use proto::aws_status_payload::Payload as P;
        let answer: proto::AwsStatusPayload = self
            .call(
                endpoint::AWS_STATUS,
                &proto::AwsStatusPayload {
                    msg: proto::AwsStatusMsgType::TypeCmdGetCloudStatus as i32,
                    status: 0,
                    payload: Some(P::CmdGet(proto::CmdGetCloudStatus {})),
                },
            )
            .await?;
        check_status(endpoint::AWS_STATUS, answer.status)?;
        let r = match answer.payload {
            Some(P::RespGet(r)) => r,
            _ => return Err(unexpected(endpoint::AWS_STATUS, "RespGetCloudStatus")),
        };
        let stage = proto::CloudStage::try_from(r.stage).map_err(|_| {
            malformed(
                endpoint::AWS_STATUS,
                MalformedReason::UnknownCloudStage(r.stage),
            )
        })?;
        let failure = match r.failure {
            Some(f) if f.kind != proto::CloudFailureKind::NoFailure as i32 => Some(CloudFailure {
                kind: proto::CloudFailureKind::try_from(f.kind)
                    .unwrap_or(proto::CloudFailureKind::Internal),
                status_code: f.status_code,
                error_code: f.error_code,
                error_message: f.error_message,
            }),
            _ => None,
        };
        if stage == proto::CloudStage::Failed && failure.is_none() {
            return Err(malformed(
                endpoint::AWS_STATUS,
                MalformedReason::FailedWithoutReason,
            ));
        }
        Ok(CloudStatus {
            stage,
            ip: r.ip4_addr.parse().ok(),
            thing_name: Some(r.thing_name).filter(|t| !t.is_empty()),
            certificate_id: Some(r.certificate_id).filter(|t| !t.is_empty()),
            failure,
        })
    }
}

/// What a claim transfer took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimTransfer {
    /// Bundle size in bytes.
    pub bytes: usize,
    /// Request/response exchanges used.
    pub exchanges: usize,
}

/// A failure the device reports from its cloud flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudFailure {
    /// What failed.
    pub kind: proto::CloudFailureKind,
    /// AWS's status code, when AWS answered.
    pub status_code: u32,
    /// AWS's errorCode (e.g. from a RegisterThing rejection).
    pub error_code: String,
    /// AWS's errorMessage.
    pub error_message: String,
}

/// The device's cloud progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudStatus {
    /// The stage reached.
    pub stage: proto::CloudStage,
    /// Its IPv4 address, once it has one.
    pub ip: Option<Ipv4Addr>,
    /// The thing it registered as.
    pub thing_name: Option<String>,
    /// Its permanent certificate id.
    pub certificate_id: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<CloudFailure>,
}

/// What the device gets in the `aws-claim` transfer, as this layer sees it: borrowed from the caller's
/// claim (the orchestrator builds it), encoded here into the wire's `ClaimBundle` message.
#[derive(Clone, Copy)]
pub struct ClaimBundle<'a> {
    /// The claim certificate, DER.
    pub certificate_der: &'a [u8],
    /// The claim's RSA private key, PEM (PKCS#1 or PKCS#8).
    pub private_key_pem: &'a SecretString,
    /// The claim certificate's id.
    pub certificate_id: &'a str,
    /// When the claim expires, on the server's clock.
    pub expires_at: std::time::SystemTime,
    /// Seconds left on the claim when it is sent (for a device whose clock is not yet set).
    pub seconds_left: u32,
    /// The AWS IoT data endpoint the device connects to.
    pub iot_endpoint: &'a str,
    /// The provisioning template's name.
    pub template_name: &'a str,
    /// The template's parameters.
    pub template_parameters: &'a BTreeMap<String, String>,
}

impl std::fmt::Debug for ClaimBundle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimBundle")
            .field("certificate_id", &self.certificate_id)
            .field("iot_endpoint", &self.iot_endpoint)
            .field("template_name", &self.template_name)
            .field("private_key_pem", &self.private_key_pem)
            .finish_non_exhaustive()
    }
}

/// The claim key's primes and exponent (RSA, PKCS#1 or PKCS#8), in zeroizing buffers.
fn rsa_primes(key_pem: &SecretString) -> Result<proto::RsaPrimes, ProtocolError> {
    use der::Decode;
    let (label, doc) = der::SecretDocument::from_pem(key_pem.expose())
        .map_err(|_| ProtocolError::InvalidInput(InvalidInputReason::ClaimKeyNotPem))?;
    let pkcs1_der = match label {
        "RSA PRIVATE KEY" => doc.as_bytes(),
        "PRIVATE KEY" => {
            pkcs8::PrivateKeyInfo::from_der(doc.as_bytes())
                .map_err(|_| ProtocolError::InvalidInput(InvalidInputReason::ClaimKeyNotPkcs8))?
                .private_key
        }
        _ => {
            return Err(ProtocolError::InvalidInput(
                InvalidInputReason::ClaimKeyNotRsa,
            ))
        }
    };
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1_der)
        .map_err(|_| ProtocolError::InvalidInput(InvalidInputReason::ClaimKeyNotRsa))?;
    Ok(proto::RsaPrimes {
        p: key.prime1.as_bytes().to_vec(),
        q: key.prime2.as_bytes().to_vec(),
        e: key.public_exponent.as_bytes().to_vec(),
    })
}

/// Serializes the claim bundle; the buffer is zeroized when dropped.
fn encode_bundle(claim: &ClaimBundle<'_>) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let mut bundle = proto::ClaimBundle {
        certificate_der: claim.certificate_der.to_vec(),
        private_key_der: Vec::new(),
        certificate_id: claim.certificate_id.to_owned(),
        expires_at_epoch: crate::time::epoch_secs(claim.expires_at),
        seconds_left: claim.seconds_left,
        iot_endpoint: claim.iot_endpoint.to_owned(),
        template_name: claim.template_name.to_owned(),
        template_parameters: claim.template_parameters.clone(),
        rsa_key: Some(rsa_primes(claim.private_key_pem)?),
    };
    let bytes = Zeroizing::new(bundle.encode_to_vec());
    if let Some(k) = bundle.rsa_key.as_mut() {
        k.p.zeroize();
        k.q.zeroize();
    }
    Ok(bytes)
}
