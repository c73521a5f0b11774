//! The device side of the protocomm handshakes (Sec0, Sec1, Sec2), written from the protocol
//! description; the SDK's ciphers are reused (they are symmetric), the key agreement is not.

use claimlink_core::internal::cipher::{Sec1Cipher, Sec2Cipher, SessionCipher};
use claimlink_core::internal::proto::{self, session_data, Status};
use claimlink_core::internal::srp;
use num_bigint::BigUint;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};

/// How the simulated device is secured.
#[derive(Clone, Debug)]
pub enum DeviceSecurity {
    /// Plaintext.
    Sec0,
    /// X25519 with an optional proof of possession.
    Sec1 {
        /// The PoP (`None`: the device advertises `no_pop`).
        pop: Option<String>,
    },
    /// SRP-6a with username and password.
    Sec2 {
        /// The username (ESP-IDF default `wifiprov`).
        username: String,
        /// The password.
        password: String,
        /// 1 (counter IVs) or 0 (a fixed IV, the original behaviour).
        patch: u32,
    },
}

/// Where a session's handshake stands.
pub(crate) enum Handshake {
    /// Nothing yet.
    Fresh,
    /// Sec1 after command 0.
    Sec1Pending {
        cipher: Sec1Cipher,
        device_pub: [u8; 32],
        client_pub: [u8; 32],
    },
    /// Sec2 after command 0.
    Sec2Pending {
        username: Vec<u8>,
        a_pub: Vec<u8>,
        b_pub: Vec<u8>,
        key: Vec<u8>,
    },
    /// Established.
    Done(SessionCipher),
}

/// A request the device refuses outright (ESP-IDF fails the transport request: the HTTP socket is closed / an ATT error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn refused(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

/// The device's long-term Sec2 secrets: salt and verifier (a device never stores the password).
pub(crate) struct Sec2Secrets {
    pub salt: [u8; 16],
    pub verifier: BigUint,
    pub patch: u32,
}

impl Sec2Secrets {
    pub fn new(username: &str, password: &str, patch: u32, rng: &mut dyn RngCore) -> Self {
        let group = srp::Group::rfc5054_3072();
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let x = srp::private_key_x(&salt, username.as_bytes(), password.as_bytes());
        Self {
            salt,
            verifier: group.g.modpow(&x, &group.n),
            patch,
        }
    }
}

/// Handles one `prov-session` message. `danger_accepts_wrong_proof` is a test fault
/// ([`crate::device::broken::BrokenBehaviour::AcceptsWrongProof`]): command 1 is answered even when
/// the client's proof (Sec2) or verify data (Sec1) does not match, where ESP-IDF fails the handler.
pub(crate) fn handle_session(
    security: &DeviceSecurity,
    sec2: Option<&Sec2Secrets>,
    state: &mut Handshake,
    request: proto::SessionData,
    rng: &mut dyn RngCore,
    danger_accepts_wrong_proof: bool,
) -> Result<proto::SessionData, Refused> {
    use proto::sec1_payload::Payload as S1;
    use proto::sec2_payload::Payload as S2;
    match (security, request.proto) {
        (DeviceSecurity::Sec0, Some(session_data::Proto::Sec0(_))) => {
            *state = Handshake::Done(SessionCipher::Plain);
            Ok(proto::SessionData {
                sec_ver: proto::SecSchemeVersion::SecScheme0 as i32,
                proto: Some(session_data::Proto::Sec0(proto::Sec0Payload {
                    msg: proto::Sec0MsgType::S0SessionResponse as i32,
                    payload: Some(proto::sec0_payload::Payload::Sr(proto::S0SessionResp {
                        status: Status::Success as i32,
                    })),
                })),
            })
        }
        (DeviceSecurity::Sec1 { pop }, Some(session_data::Proto::Sec1(p))) => match p.payload {
            Some(S1::Sc0(cmd)) => {
                let client_pub: [u8; 32] = cmd
                    .client_pubkey
                    .as_slice()
                    .try_into()
                    .map_err(|_| refused("client public key is not 32 bytes"))?;
                let mut secret = [0u8; 32];
                rng.fill_bytes(&mut secret);
                let secret = StaticSecret::from(secret);
                let device_pub = PublicKey::from(&secret);
                let mut device_random = [0u8; 16];
                rng.fill_bytes(&mut device_random);
                let mut key = *secret
                    .diffie_hellman(&PublicKey::from(client_pub))
                    .as_bytes();
                if let Some(pop) = pop.as_deref().filter(|p| !p.is_empty()) {
                    for (k, d) in key.iter_mut().zip(Sha256::digest(pop.as_bytes()).iter()) {
                        *k ^= d;
                    }
                }
                *state = Handshake::Sec1Pending {
                    cipher: Sec1Cipher::new(&key, &device_random),
                    device_pub: *device_pub.as_bytes(),
                    client_pub,
                };
                Ok(proto::SessionData::sec1(S1::Sr0(proto::SessionResp0 {
                    status: Status::Success as i32,
                    device_pubkey: device_pub.as_bytes().to_vec(),
                    device_random: device_random.to_vec(),
                })))
            }
            Some(S1::Sc1(cmd)) => {
                let Handshake::Sec1Pending {
                    mut cipher,
                    device_pub,
                    client_pub,
                } = std::mem::replace(state, Handshake::Fresh)
                else {
                    return Err(refused("Sec1 command 1 before command 0"));
                };
                let echoed = cipher.apply(&cmd.client_verify_data);
                if !bool::from(echoed.as_slice().ct_eq(&device_pub)) && !danger_accepts_wrong_proof
                {
                    return Err(refused("Sec1 key mismatch (wrong PoP)"));
                }
                let verify = cipher.apply(&client_pub);
                *state = Handshake::Done(SessionCipher::Sec1(cipher));
                Ok(proto::SessionData::sec1(S1::Sr1(proto::SessionResp1 {
                    status: Status::Success as i32,
                    device_verify_data: verify,
                })))
            }
            _ => Err(refused("unexpected Sec1 message")),
        },
        (DeviceSecurity::Sec2 { .. }, Some(session_data::Proto::Sec2(p))) => {
            let secrets = sec2.ok_or_else(|| refused("no Sec2 secrets"))?;
            let group = srp::Group::rfc5054_3072();
            match p.payload {
                Some(S2::Sc0(cmd)) => {
                    if cmd.client_pubkey.len() != srp::N_LEN || cmd.client_username.is_empty() {
                        return Err(refused("invalid client public key or username"));
                    }
                    let a = BigUint::from_bytes_be(&cmd.client_pubkey);
                    if (&a % &group.n) == BigUint::ZERO {
                        return Err(refused("A mod N is zero"));
                    }
                    let mut b_bytes = [0u8; 32];
                    rng.fill_bytes(&mut b_bytes);
                    let b = BigUint::from_bytes_be(&b_bytes);
                    let b_pub =
                        ((&group.k * &secrets.verifier) + group.g.modpow(&b, &group.n)) % &group.n;
                    let b_pub = b_pub.to_bytes_be();
                    let u = srp::scrambler_u(&cmd.client_pubkey, &b_pub);
                    let s = ((a * secrets.verifier.modpow(&u, &group.n)) % &group.n)
                        .modpow(&b, &group.n);
                    let key = srp::session_key(&s).expose().to_vec();
                    *state = Handshake::Sec2Pending {
                        username: cmd.client_username,
                        a_pub: cmd.client_pubkey,
                        b_pub: b_pub.clone(),
                        key,
                    };
                    Ok(proto::SessionData::sec2(S2::Sr0(proto::S2SessionResp0 {
                        status: Status::Success as i32,
                        device_pubkey: b_pub,
                        device_salt: secrets.salt.to_vec(),
                    })))
                }
                Some(S2::Sc1(cmd)) => {
                    let Handshake::Sec2Pending {
                        username,
                        a_pub,
                        b_pub,
                        key,
                    } = std::mem::replace(state, Handshake::Fresh)
                    else {
                        return Err(refused("Sec2 command 1 before command 0"));
                    };
                    let expected =
                        srp::client_proof(&group, &username, &secrets.salt, &a_pub, &b_pub, &key);
                    let mismatch = cmd.client_proof.len() != srp::HASH_LEN
                        || !bool::from(cmd.client_proof.as_slice().ct_eq(&expected));
                    if mismatch && !danger_accepts_wrong_proof {
                        return Err(refused("client proof mismatch (wrong password)"));
                    }
                    let device_proof = srp::device_proof(&a_pub, &expected, &key);
                    let mut aes_key = [0u8; 32];
                    aes_key.copy_from_slice(&key[..32]);
                    let (cipher, nonce) = if secrets.patch >= 1 {
                        let mut nonce = [0u8; 12];
                        rng.fill_bytes(&mut nonce[..8]);
                        nonce[8..].copy_from_slice(&1u32.to_be_bytes());
                        (Sec2Cipher::patch1(&aes_key, nonce), nonce.to_vec())
                    } else {
                        let mut nonce = [0u8; 16];
                        rng.fill_bytes(&mut nonce);
                        (Sec2Cipher::patch0(&aes_key, nonce), nonce.to_vec())
                    };
                    *state = Handshake::Done(SessionCipher::Sec2(cipher));
                    Ok(proto::SessionData::sec2(S2::Sr1(proto::S2SessionResp1 {
                        status: Status::Success as i32,
                        device_proof: device_proof.to_vec(),
                        device_nonce: nonce,
                    })))
                }
                _ => Err(refused("unexpected Sec2 message")),
            }
        }
        _ => Err(refused("security scheme does not match the device's")),
    }
}
