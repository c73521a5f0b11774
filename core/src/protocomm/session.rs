//! A secure session with one device: `proto-ver`, the security handshake, then encrypted exchanges.
//!
//! Rules that keep the cipher state honest:
//! * one request in flight (a lock around encrypt → exchange → decrypt);
//! * an exchange that fails after its request was encrypted is **never retried**: the session is
//!   marked broken and every later call fails with [`ProtocolError::SessionBroken`].

use std::sync::Arc;

use prost::Message;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::cipher::{CipherError, Sec1Cipher, Sec2Cipher, SessionCipher};
use super::proto::{self, session_data, Status};
use super::{
    srp, DeviceCapabilities, DeviceCredentials, InvalidInputReason, MalformedReason, ProtocolError,
    SecurityPolicy, SecurityScheme,
};
use crate::endpoint;
use crate::transport::{DeviceLink, LinkError};

struct State {
    cipher: SessionCipher,
    broken: bool,
}

/// An established session.
pub struct DeviceSession {
    link: Arc<dyn DeviceLink>,
    capabilities: DeviceCapabilities,
    state: Mutex<State>,
}

impl std::fmt::Debug for DeviceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSession")
            .field("link", &self.link.describe())
            .field("security", &self.capabilities.security)
            .finish_non_exhaustive()
    }
}

pub(crate) fn malformed(endpoint: &str, reason: MalformedReason) -> ProtocolError {
    ProtocolError::Malformed {
        endpoint: endpoint.to_owned(),
        reason,
    }
}

/// A handshake answer that is not the expected message.
fn unexpected(expected: &'static str) -> ProtocolError {
    malformed(
        endpoint::SESSION,
        MalformedReason::UnexpectedMessage { expected },
    )
}

/// A handshake field of the wrong size.
fn field_length(field: &'static str, expected: usize, actual: usize) -> ProtocolError {
    malformed(
        endpoint::SESSION,
        MalformedReason::FieldLength {
            field,
            expected,
            actual,
        },
    )
}

fn decode<M: Message + Default>(endpoint: &str, bytes: &[u8]) -> Result<M, ProtocolError> {
    M::decode(bytes).map_err(|e| malformed(endpoint, MalformedReason::Protobuf(e)))
}

/// Names a protocomm status for errors.
pub(crate) fn status_name(status: i32) -> String {
    Status::try_from(status).map_or_else(|_| format!("status {status}"), |s| format!("{s:?}"))
}

/// During the handshake's second step, a device that rejects the proof fails the request rather
/// than answering (ESP-IDF closes the socket without an answer over HTTP — the link reports that as
/// a refusal only while the device still takes connections — and fails the ATT read over BLE; other
/// servers answer HTTP 500): that is a wrong password/PoP.
fn proof_step_error(e: ProtocolError) -> ProtocolError {
    match e {
        ProtocolError::Link(LinkError::DeviceError(_)) => ProtocolError::WrongCredentials,
        other => other,
    }
}

/// One handshake step. Bytes that do not decode are the device's fault (`Malformed`), not the link's.
async fn session_exchange(
    link: &dyn DeviceLink,
    request: proto::SessionData,
) -> Result<proto::SessionData, ProtocolError> {
    let answer = link
        .exchange(endpoint::SESSION, &request.encode_to_vec())
        .await?;
    decode(endpoint::SESSION, &answer)
}

impl DeviceSession {
    /// Reads `proto-ver`; refuses a device that offers another scheme than `credentials` are for, or
    /// one `policy` does not accept; then runs the handshake. Nothing but `proto-ver` is sent to a
    /// refused device.
    pub async fn establish(
        link: Arc<dyn DeviceLink>,
        credentials: &DeviceCredentials,
        policy: &SecurityPolicy,
        rng: &mut (dyn CryptoRngCore + Send),
    ) -> Result<Self, ProtocolError> {
        let version = link.exchange(endpoint::VERSION, b"ESP").await?;
        let capabilities = DeviceCapabilities::parse(&version)?;
        tracing::debug!(
            version = %capabilities.version,
            security = ?capabilities.security,
            patch = capabilities.security_patch,
            aws = ?capabilities.aws.as_ref().map(|a| a.version.to_string()),
            "device capabilities"
        );
        // The scheme comes from the credentials, never from the device's unauthenticated answer:
        // an impostor offering a weaker scheme gets no handshake command at all.
        if capabilities.security != credentials.security {
            return Err(ProtocolError::UnexpectedSecurity {
                expected: credentials.security,
                offered: capabilities.security,
            });
        }
        policy.check(&capabilities)?;
        // A major version of the extension this SDK does not speak: stop here, as for a refused
        // security scheme, before anything else is sent.
        if let Some(aws) = &capabilities.aws {
            aws.dialect()?;
        }
        let cipher = match capabilities.security {
            SecurityScheme::Sec0 => sec0(link.as_ref()).await?,
            SecurityScheme::Sec1 => sec1(link.as_ref(), credentials, rng).await?,
            SecurityScheme::Sec2 => {
                sec2(link.as_ref(), credentials, capabilities.security_patch, rng).await?
            }
        };
        tracing::info!(link = %link.describe(), security = ?capabilities.security, "secure session established");
        Ok(Self {
            link,
            capabilities,
            state: Mutex::new(State {
                cipher,
                broken: false,
            }),
        })
    }

    /// What the device said about itself.
    pub fn capabilities(&self) -> &DeviceCapabilities {
        &self.capabilities
    }

    /// The link this session runs on.
    pub fn link(&self) -> &Arc<dyn DeviceLink> {
        &self.link
    }

    /// The largest plaintext one request may carry.
    pub async fn max_plaintext(&self) -> usize {
        let overhead = self.state.lock().await.cipher.overhead();
        self.link.max_message_bytes().saturating_sub(overhead)
    }

    /// Whether an earlier failure broke the session.
    pub async fn is_broken(&self) -> bool {
        self.state.lock().await.broken
    }

    /// One encrypted request/response on `endpoint`. Any failure after encryption breaks the session.
    pub async fn request(
        &self,
        endpoint: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut state = self.state.lock().await;
        if state.broken {
            return Err(ProtocolError::SessionBroken);
        }
        let max = self.link.max_message_bytes();
        let len = plaintext.len() + state.cipher.overhead();
        if len > max {
            // Refused before encrypting: the cipher state is untouched, the session stays usable.
            return Err(ProtocolError::TooLarge { len, max });
        }
        let sealed = match state.cipher.encrypt(plaintext) {
            Ok(s) => s,
            Err(_) => {
                state.broken = true;
                return Err(ProtocolError::SessionBroken);
            }
        };
        // Pessimistic until the answer is decrypted: if this future is dropped mid-exchange (a
        // cancelled task), the cipher states have diverged and the session must not be used again.
        state.broken = true;
        let answer = match self.link.exchange(endpoint, &sealed).await {
            Ok(a) => a,
            Err(e) => {
                state.broken = true;
                tracing::warn!(endpoint, error = %e, "exchange failed; session dropped (encrypted requests are never retried)");
                return Err(ProtocolError::Link(e));
            }
        };
        match state.cipher.decrypt(&answer) {
            Ok(plain) => {
                state.broken = false;
                tracing::trace!(
                    endpoint,
                    sent = sealed.len(),
                    received = answer.len(),
                    "exchange"
                );
                Ok(plain)
            }
            Err(CipherError::Tampered) | Err(CipherError::Truncated) => {
                state.broken = true;
                tracing::warn!(endpoint, "answer failed authentication; session dropped");
                Err(ProtocolError::Tampered)
            }
            Err(CipherError::Exhausted) => {
                state.broken = true;
                Err(ProtocolError::SessionBroken)
            }
        }
    }

    /// Decodes an answer of `endpoint`.
    pub(crate) async fn call<Req: Message, Resp: Message + Default>(
        &self,
        endpoint: &str,
        request: &Req,
    ) -> Result<Resp, ProtocolError> {
        // The encoded request may hold a passphrase or claim bytes: wiped when dropped.
        let plaintext = zeroize::Zeroizing::new(request.encode_to_vec());
        let answer = self.request(endpoint, &plaintext).await?;
        decode(endpoint, &answer)
    }

    /// Closes the link.
    pub async fn close(&self) {
        self.state.lock().await.broken = true;
        self.link.disconnect().await;
    }
}

async fn sec0(link: &dyn DeviceLink) -> Result<SessionCipher, ProtocolError> {
    let request = proto::SessionData {
        sec_ver: proto::SecSchemeVersion::SecScheme0 as i32,
        proto: Some(session_data::Proto::Sec0(proto::Sec0Payload {
            msg: proto::Sec0MsgType::S0SessionCommand as i32,
            payload: Some(proto::sec0_payload::Payload::Sc(proto::S0SessionCmd {})),
        })),
    };
    let answer = session_exchange(link, request).await?;
    match answer.proto {
        Some(session_data::Proto::Sec0(proto::Sec0Payload {
            payload: Some(proto::sec0_payload::Payload::Sr(r)),
            ..
        })) if r.status == Status::Success as i32 => Ok(SessionCipher::Plain),
        Some(session_data::Proto::Sec0(proto::Sec0Payload {
            payload: Some(proto::sec0_payload::Payload::Sr(r)),
            ..
        })) => Err(ProtocolError::DeviceRefused {
            endpoint: endpoint::SESSION.into(),
            status: status_name(r.status),
        }),
        _ => Err(unexpected("a Sec0 session response")),
    }
}

async fn sec1(
    link: &dyn DeviceLink,
    credentials: &DeviceCredentials,
    rng: &mut (dyn CryptoRngCore + Send),
) -> Result<SessionCipher, ProtocolError> {
    let mut secret_bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret_bytes.as_mut());
    let secret = StaticSecret::from(*secret_bytes);
    let client_pub = PublicKey::from(&secret);

    let answer = session_exchange(
        link,
        proto::SessionData::sec1(proto::sec1_payload::Payload::Sc0(proto::SessionCmd0 {
            client_pubkey: client_pub.as_bytes().to_vec(),
        })),
    )
    .await?;
    let resp0 = match answer.proto {
        Some(session_data::Proto::Sec1(proto::Sec1Payload {
            payload: Some(proto::sec1_payload::Payload::Sr0(r)),
            ..
        })) => r,
        _ => return Err(unexpected("Sec1 SessionResp0")),
    };
    if resp0.status != Status::Success as i32 {
        return Err(ProtocolError::DeviceRefused {
            endpoint: endpoint::SESSION.into(),
            status: status_name(resp0.status),
        });
    }
    let device_pub: [u8; 32] = resp0
        .device_pubkey
        .as_slice()
        .try_into()
        .map_err(|_| field_length("device public key", 32, resp0.device_pubkey.len()))?;
    let device_random: [u8; 16] = resp0
        .device_random
        .as_slice()
        .try_into()
        .map_err(|_| field_length("device random", 16, resp0.device_random.len()))?;
    let shared = secret.diffie_hellman(&PublicKey::from(device_pub));
    let mut key = Zeroizing::new(*shared.as_bytes());
    // Only a Sec1 PoP (`establish` refused any other credentials): a Sec2 password never is one.
    let pop = match credentials.security {
        SecurityScheme::Sec1 => credentials.secret.as_ref(),
        _ => None,
    };
    if let Some(pop) = pop.filter(|p| !p.is_empty()) {
        let digest = Sha256::digest(pop.expose().as_bytes());
        for (k, d) in key.iter_mut().zip(digest.iter()) {
            *k ^= d;
        }
    }
    let mut cipher = Sec1Cipher::new(&key, &device_random);
    let verify = cipher.apply(&device_pub);
    let answer = session_exchange(
        link,
        proto::SessionData::sec1(proto::sec1_payload::Payload::Sc1(proto::SessionCmd1 {
            client_verify_data: verify,
        })),
    )
    .await
    .map_err(proof_step_error)?;
    let resp1 = match answer.proto {
        Some(session_data::Proto::Sec1(proto::Sec1Payload {
            payload: Some(proto::sec1_payload::Payload::Sr1(r)),
            ..
        })) => r,
        _ => return Err(unexpected("Sec1 SessionResp1")),
    };
    if resp1.status != Status::Success as i32 {
        return Err(ProtocolError::WrongCredentials);
    }
    let echoed = cipher.apply(&resp1.device_verify_data);
    if !bool::from(echoed.as_slice().ct_eq(client_pub.as_bytes())) {
        return Err(ProtocolError::DeviceNotAuthentic);
    }
    Ok(SessionCipher::Sec1(cipher))
}

async fn sec2(
    link: &dyn DeviceLink,
    credentials: &DeviceCredentials,
    patch: u32,
    rng: &mut (dyn CryptoRngCore + Send),
) -> Result<SessionCipher, ProtocolError> {
    let password = credentials
        .secret
        .as_ref()
        .filter(|p| !p.is_empty())
        .ok_or(ProtocolError::InvalidInput(
            InvalidInputReason::Sec2Password,
        ))?;
    if credentials.username.is_empty() {
        return Err(ProtocolError::InvalidInput(
            InvalidInputReason::Sec2Username,
        ));
    }
    let mut a = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(a.as_mut());
    let client = srp::Client::new(&a);
    let answer = session_exchange(
        link,
        proto::SessionData::sec2(proto::sec2_payload::Payload::Sc0(proto::S2SessionCmd0 {
            client_username: credentials.username.as_bytes().to_vec(),
            client_pubkey: client.public_key().to_vec(),
        })),
    )
    .await?;
    let resp0 = match answer.proto {
        Some(session_data::Proto::Sec2(proto::Sec2Payload {
            payload: Some(proto::sec2_payload::Payload::Sr0(r)),
            ..
        })) => r,
        _ => return Err(unexpected("Sec2 S2SessionResp0")),
    };
    if resp0.status != Status::Success as i32 {
        return Err(ProtocolError::DeviceRefused {
            endpoint: endpoint::SESSION.into(),
            status: status_name(resp0.status),
        });
    }
    if resp0.device_salt.is_empty() || resp0.device_salt.len() > 64 {
        return Err(malformed(endpoint::SESSION, MalformedReason::SaltLength));
    }
    let round = client
        .respond(
            credentials.username.as_bytes(),
            password.expose().as_bytes(),
            &resp0.device_salt,
            &resp0.device_pubkey,
        )
        .ok_or_else(|| malformed(endpoint::SESSION, MalformedReason::SrpPublicKey))?;
    let answer = session_exchange(
        link,
        proto::SessionData::sec2(proto::sec2_payload::Payload::Sc1(proto::S2SessionCmd1 {
            client_proof: round.proof.to_vec(),
        })),
    )
    .await
    .map_err(proof_step_error)?;
    let resp1 = match answer.proto {
        Some(session_data::Proto::Sec2(proto::Sec2Payload {
            payload: Some(proto::sec2_payload::Payload::Sr1(r)),
            ..
        })) => r,
        _ => return Err(unexpected("Sec2 S2SessionResp1")),
    };
    if resp1.status != Status::Success as i32 {
        return Err(ProtocolError::WrongCredentials);
    }
    if !bool::from(
        resp1
            .device_proof
            .as_slice()
            .ct_eq(&round.expected_device_proof),
    ) {
        return Err(ProtocolError::DeviceNotAuthentic);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&round.key.expose()[..32]);
    let cipher =
        match patch {
            0 => {
                let nonce: [u8; 16] = resp1.device_nonce.as_slice().try_into().map_err(|_| {
                    field_length("patch-0 device nonce", 16, resp1.device_nonce.len())
                })?;
                Sec2Cipher::patch0(&key, nonce)
            }
            _ => {
                let nonce: [u8; 12] = resp1.device_nonce.as_slice().try_into().map_err(|_| {
                    field_length("patch-1 device nonce", 12, resp1.device_nonce.len())
                })?;
                Sec2Cipher::patch1(&key, nonce)
            }
        };
    Ok(SessionCipher::Sec2(cipher))
}
