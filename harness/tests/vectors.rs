//! The language-neutral test vectors in `proto/vectors/*.json`, generated here: the SDK (client)
//! and the device simulator run against each other with **chosen** randomness (SRP `a`, `b`, the
//! salt, the patch-1 nonce prefix, Sec1's X25519 secrets and `device_random`), and every byte they
//! exchange is written out in hex with the values derived from those inputs.
//!
//! * Each file is compared with the committed one: a change to the wire format, the SRP formulas,
//!   the IV discipline or the claim transfer fails here until the vectors are rewritten with
//!   `CLAIMLINK_UPDATE_VECTORS=1 cargo test -p claimlink-harness --test vectors` (and reviewed).
//! * The simulator is checked against them byte for byte (it must give every answer recorded), and
//!   both sides against the formulas of docs/protocol.md §3 computed here from the inputs.
//! * `proto/vectors/check.py` re-derives every value with a second, independent implementation
//!   (Python integers, `cryptography`), so a bug shared by the SDK and the simulator shows there.
//!
//! docs/protocol.md §7 says what each file holds.

mod vectors_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use claimlink_core::internal::cipher::{Sec2Cipher, SessionCipher};
use claimlink_core::internal::{proto, srp, ClaimBundle, DeviceSession};
use claimlink_core::{DeviceCredentials, SecretString, SecurityPolicy};
use claimlink_harness::device::security::DeviceSecurity;
use claimlink_harness::device::SimDeviceConfig;
use num_bigint::BigUint;
use prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vectors_support::{check_or_update, fixed, DirectLink, Scripted};

pub const USERNAME: &str = "wifiprov";
const PASSWORD: &str = "abcd1234";
const POP: &str = "abcd1234";
/// The simulator's largest bundle (`SimDeviceConfig::default().max_claim_bundle`).
pub const MAX_BUNDLE: usize = 8 * 1024;

/// The chosen Sec2 randomness.
pub struct Sec2Inputs {
    pub salt: Vec<u8>,
    pub a: Vec<u8>,
    pub b: Vec<u8>,
    pub nonce_prefix: Vec<u8>,
}

pub fn sec2_inputs() -> Sec2Inputs {
    Sec2Inputs {
        salt: fixed("sec2 salt", 16),
        a: fixed("sec2 a", 32),
        b: fixed("sec2 b", 32),
        nonce_prefix: fixed("sec2 nonce prefix", 8),
    }
}

/// A Sec2 (patch 1) session between the SDK and a simulator over a link of `cap` bytes, both
/// drawing the chosen randomness.
pub async fn sec2_session(cap: usize) -> (Arc<DirectLink>, DeviceSession) {
    let inputs = sec2_inputs();
    let device = Scripted::device(
        SimDeviceConfig::default(),
        vec![inputs.salt, inputs.b, inputs.nonce_prefix],
    );
    let link = DirectLink::new(device, cap);
    let mut client_rng = Scripted::new("client", vec![inputs.a]);
    let session = DeviceSession::establish(
        link.clone(),
        &DeviceCredentials::username_password(USERNAME, SecretString::from(PASSWORD)),
        &SecurityPolicy::default(),
        &mut client_rng,
    )
    .await
    .expect("the SDK and the simulator agree on a Sec2 session");
    (link, session)
}

/// The Sec2 values of docs/protocol.md §3, from the inputs (client and device equations both).
pub fn sec2_derived(inputs: &Sec2Inputs) -> BTreeMap<&'static str, Vec<u8>> {
    let group = srp::Group::rfc5054_3072();
    let (n, g) = (&group.n, &group.g);
    let x = srp::private_key_x(&inputs.salt, USERNAME.as_bytes(), PASSWORD.as_bytes());
    let v = g.modpow(&x, n);
    let a = BigUint::from_bytes_be(&inputs.a);
    let b = BigUint::from_bytes_be(&inputs.b);
    let a_pub = srp::pad(&g.modpow(&a, n));
    let b_pub = ((&group.k * &v + g.modpow(&b, n)) % n).to_bytes_be();
    let u = srp::scrambler_u(&a_pub, &b_pub);
    let kv = (&group.k * &v) % n;
    let b_num = BigUint::from_bytes_be(&b_pub);
    let s_client = ((&b_num + n - &kv) % n).modpow(&(&a + &u * &x), n);
    let s_device = ((BigUint::from_bytes_be(&a_pub) * v.modpow(&u, n)) % n).modpow(&b, n);
    assert_eq!(s_client, s_device, "the client and device equations agree");
    let key = srp::session_key(&s_client).expose().to_vec();
    let m = srp::client_proof(
        &group,
        USERNAME.as_bytes(),
        &inputs.salt,
        &a_pub,
        &b_pub,
        &key,
    );
    let h_amk = srp::device_proof(&a_pub, &m, &key);
    BTreeMap::from([
        ("k", group.k.to_bytes_be()),
        ("x", x.to_bytes_be()),
        ("verifier", v.to_bytes_be()),
        ("A", a_pub),
        ("B", b_pub),
        ("u", u.to_bytes_be()),
        ("S", s_client.to_bytes_be()),
        ("K", key.clone()),
        ("M", m.to_vec()),
        ("H_AMK", h_amk.to_vec()),
        ("aes_key", key[..32].to_vec()),
    ])
}

/// The patch-1 IV of message `counter` (1 = the first request).
fn patch1_iv(prefix: &[u8], counter: u32) -> Vec<u8> {
    [prefix, &counter.to_be_bytes()].concat()
}

fn hex_map(values: &BTreeMap<&'static str, Vec<u8>>) -> Value {
    Value::Object(
        values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(hex::encode(v))))
            .collect(),
    )
}

#[tokio::test]
async fn sec2_transcript() {
    let inputs = sec2_inputs();
    let derived = sec2_derived(&inputs);
    let (link, session) = sec2_session(480).await;
    let status_get = vectors_support::status_request();
    let abort = proto::AwsClaimPayload {
        msg: proto::AwsClaimMsgType::TypeCmdAbort as i32,
        status: 0,
        error: 0,
        payload: Some(proto::aws_claim_payload::Payload::CmdAbort(
            proto::CmdClaimAbort {},
        )),
    }
    .encode_to_vec();
    let mut plaintexts = Vec::new();
    for (endpoint, request) in [("aws-status", &status_get), ("aws-claim", &abort)] {
        let answer = session.request(endpoint, request).await.expect("answered");
        plaintexts.push((endpoint, request.clone(), answer));
    }
    let seen = link.seen();
    assert_eq!(
        seen.len(),
        5,
        "proto-ver, two handshake steps, two requests"
    );

    // The handshake carries exactly the derived values.
    let step = |n: usize| {
        (
            proto::SessionData::decode(seen[n].request.as_slice()).expect("request"),
            proto::SessionData::decode(seen[n].answer.as_slice()).expect("answer"),
        )
    };
    use proto::sec2_payload::Payload as P;
    let sec2 = |d: proto::SessionData| match d.proto {
        Some(proto::session_data::Proto::Sec2(p)) => p.payload,
        _ => None,
    };
    let (cmd0, resp0) = step(1);
    let Some(P::Sc0(cmd0)) = sec2(cmd0) else {
        panic!("S2SessionCmd0")
    };
    let Some(P::Sr0(resp0)) = sec2(resp0) else {
        panic!("S2SessionResp0")
    };
    assert_eq!(cmd0.client_username, USERNAME.as_bytes());
    assert_eq!(cmd0.client_pubkey, derived["A"]);
    assert_eq!(resp0.device_pubkey, derived["B"]);
    assert_eq!(resp0.device_salt, inputs.salt);
    let (cmd1, resp1) = step(2);
    let (Some(P::Sc1(cmd1)), Some(P::Sr1(resp1))) = (sec2(cmd1), sec2(resp1)) else {
        panic!("S2SessionCmd1 / S2SessionResp1")
    };
    assert_eq!(cmd1.client_proof, derived["M"]);
    assert_eq!(resp1.device_proof, derived["H_AMK"]);
    assert_eq!(resp1.device_nonce, patch1_iv(&inputs.nonce_prefix, 1));

    // The encrypted messages: request IVs take the odd counters, answers the even ones.
    let key: [u8; 32] = derived["aes_key"].as_slice().try_into().expect("32 bytes");
    let mut gcm = Vec::new();
    for (i, (endpoint, request, answer)) in plaintexts.iter().enumerate() {
        let exchange = &seen[3 + i];
        let counter = 1 + 2 * i as u32;
        for (direction, iv_counter, plain, sealed) in [
            ("request", counter, request, &exchange.request),
            ("answer", counter + 1, answer, &exchange.answer),
        ] {
            let iv = patch1_iv(&inputs.nonce_prefix, iv_counter);
            let iv_array: [u8; 12] = iv.as_slice().try_into().expect("12 bytes");
            // Each message alone, with the IV the vector states.
            let mut cipher = SessionCipher::Sec2(Sec2Cipher::patch1(&key, iv_array));
            assert_eq!(&cipher.decrypt(sealed).expect("decrypts"), plain);
            gcm.push(json!({
                "endpoint": endpoint,
                "direction": direction,
                "iv": hex::encode(&iv),
                "plaintext": hex::encode(plain),
                "ciphertext_and_tag": hex::encode(sealed),
            }));
        }
    }
    let vector = json!({
        "description": "Security 2 (SRP-6a, RFC 5054 3072-bit group, g = 5, SHA-512; AES-256-GCM, sec_patch_ver 1) between the SDK and the simulator with chosen randomness. inputs: the username, password and the random values; derived: every value docs/protocol.md section 3 defines, big-endian, minimal length except A (padded to 384 bytes, as sent); handshake: the two prov-session exchanges (SessionData), in order; gcm: the encrypted messages after the handshake with their IVs (nonce prefix || 32-bit big-endian counter, 1 for the first request).",
        "inputs": {
            "username": USERNAME,
            "password": PASSWORD,
            "salt": hex::encode(&inputs.salt),
            "a": hex::encode(&inputs.a),
            "b": hex::encode(&inputs.b),
            "nonce_prefix": hex::encode(&inputs.nonce_prefix),
        },
        "derived": hex_map(&derived),
        "handshake": seen[1..3].iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "gcm": gcm,
    });
    check_or_update("sec2.json", &vector);
}

#[tokio::test]
async fn sec1_transcript() {
    use x25519_dalek::{PublicKey, StaticSecret};
    let client_secret = fixed("sec1 client secret", 32);
    let device_secret = fixed("sec1 device secret", 32);
    let device_random = fixed("sec1 device random", 16);
    let config = SimDeviceConfig {
        security: DeviceSecurity::Sec1 {
            pop: Some(POP.into()),
        },
        ..SimDeviceConfig::default()
    };
    let device = Scripted::device(config, vec![device_secret.clone(), device_random.clone()]);
    let link = DirectLink::new(device, 480);
    let policy = SecurityPolicy {
        allow_sec1: true,
        ..SecurityPolicy::default()
    };
    let mut client_rng = Scripted::new("client", vec![client_secret.clone()]);
    let session = DeviceSession::establish(
        link.clone(),
        &DeviceCredentials::pop(POP),
        &policy,
        &mut client_rng,
    )
    .await
    .expect("the SDK and the simulator agree on a Sec1 session");
    let status_get = vectors_support::status_request();
    let answer = session
        .request("aws-status", &status_get)
        .await
        .expect("answered");

    let secret = |bytes: &[u8]| StaticSecret::from(<[u8; 32]>::try_from(bytes).expect("32"));
    let client_pub = PublicKey::from(&secret(&client_secret));
    let device_pub = PublicKey::from(&secret(&device_secret));
    let shared = secret(&client_secret).diffie_hellman(&device_pub);
    let pop_digest = Sha256::digest(POP.as_bytes());
    let key: Vec<u8> = shared
        .as_bytes()
        .iter()
        .zip(pop_digest.iter())
        .map(|(s, d)| s ^ d)
        .collect();
    let seen = link.seen();
    assert_eq!(seen.len(), 4);
    let derived = BTreeMap::from([
        ("client_pubkey", client_pub.as_bytes().to_vec()),
        ("device_pubkey", device_pub.as_bytes().to_vec()),
        ("shared_secret", shared.as_bytes().to_vec()),
        ("sha256_pop", pop_digest.to_vec()),
        ("aes_key", key),
    ]);
    let vector = json!({
        "description": "Security 1 (X25519, proof of possession, AES-256-CTR) between the SDK and the simulator with chosen randomness. The key is the X25519 shared secret XOR SHA-256(PoP); the CTR cipher starts at device_random as the 128-bit big-endian counter block and is ONE keystream for both directions, in message order; handshake: the two prov-session exchanges (SessionData): client_verify_data = CTR(device_pubkey) (keystream bytes 0..32), device_verify_data = CTR(client_pubkey) (bytes 32..64), then the encrypted messages.",
        "inputs": {
            "pop": POP,
            "client_secret": hex::encode(&client_secret),
            "device_secret": hex::encode(&device_secret),
            "device_random": hex::encode(&device_random),
        },
        "derived": hex_map(&derived),
        "handshake": seen[1..3].iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "ctr": [
            {"endpoint": "aws-status", "direction": "request", "plaintext": hex::encode(&status_get), "ciphertext": hex::encode(&seen[3].request)},
            {"endpoint": "aws-status", "direction": "answer", "plaintext": hex::encode(&answer), "ciphertext": hex::encode(&seen[3].answer)},
        ],
    });
    check_or_update("sec1.json", &vector);
}

/// The claim every claim vector transfers: a real X.509 certificate and its RSA-2048 key
/// (proto/vectors/fixture/, made for the vectors and published on purpose).
pub fn claim_fixture() -> (Vec<u8>, SecretString, BTreeMap<String, String>) {
    use rustls_pki_types::pem::PemObject;
    let cert = rustls_pki_types::CertificateDer::from_pem_slice(include_bytes!(
        "../../proto/vectors/fixture/claim-cert.pem"
    ))
    .expect("the fixture certificate is PEM");
    let key = SecretString::from(include_str!("../../proto/vectors/fixture/claim-key.pem"));
    let params = BTreeMap::from([("SerialNumber".to_owned(), "SN-0001".to_owned())]);
    (cert.to_vec(), key, params)
}

/// The claim bundle of the vectors, borrowing the fixture.
pub fn claim<'a>(
    cert: &'a [u8],
    key: &'a SecretString,
    id: &'a str,
    params: &'a BTreeMap<String, String>,
) -> ClaimBundle<'a> {
    ClaimBundle {
        certificate_der: cert,
        private_key_pem: key,
        certificate_id: id,
        expires_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000),
        seconds_left: 3600,
        iot_endpoint: "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com",
        template_name: "claimlink-fleet",
        template_parameters: params,
    }
}

/// Decrypts a Sec2 session's messages after the handshake (a mirror of both sides' cipher: one
/// counter, advanced by every message in order).
pub fn plaintexts(seen: &[vectors_support::Exchange]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let derived = sec2_derived(&sec2_inputs());
    let key: [u8; 32] = derived["aes_key"].as_slice().try_into().expect("32");
    let nonce = patch1_iv(&sec2_inputs().nonce_prefix, 1);
    let mut mirror = SessionCipher::Sec2(Sec2Cipher::patch1(
        &key,
        nonce.as_slice().try_into().expect("12"),
    ));
    seen[3..]
        .iter()
        .map(|e| {
            let request = mirror.decrypt(&e.request).expect("request decrypts");
            let answer = mirror.decrypt(&e.answer).expect("answer decrypts");
            (e.endpoint.clone(), request, answer)
        })
        .collect()
}

#[tokio::test]
async fn claim_transfer_at_480_and_4096_bytes() {
    let mut caps = serde_json::Map::new();
    let mut bundle = Vec::new();
    for cap in [480usize, 4096] {
        let (link, session) = sec2_session(cap).await;
        let (cert, key, params) = claim_fixture();
        let id = hex::encode(Sha256::digest(&cert));
        let transfer = session
            .send_claim(&claim(&cert, &key, &id, &params))
            .await
            .expect("the transfer commits");
        let after = session.cloud_status().await.expect("status");
        assert_eq!(after.stage, proto::CloudStage::ClaimReceived);
        session.abort_claim().await.expect("abort");
        let idle = session.cloud_status().await.expect("status");
        assert_eq!(idle.stage, proto::CloudStage::Idle);
        let seen = link.seen();
        for e in &seen {
            assert!(
                e.request.len() <= cap,
                "{} bytes > cap {cap}",
                e.request.len()
            );
        }
        let messages = plaintexts(&seen);
        // The bundle is the concatenation of the begin's and the chunks' data.
        let mut data = Vec::new();
        for (endpoint, request, _) in &messages {
            if endpoint != "aws-claim" {
                continue;
            }
            match proto::AwsClaimPayload::decode(request.as_slice())
                .expect("claim request")
                .payload
            {
                Some(proto::aws_claim_payload::Payload::CmdBegin(b)) => data.extend(b.data),
                Some(proto::aws_claim_payload::Payload::CmdChunk(c)) => data.extend(c.data),
                _ => {}
            }
        }
        assert_eq!(data.len(), transfer.bytes);
        if bundle.is_empty() {
            bundle = data;
        } else {
            assert_eq!(bundle, data, "the same bundle at every cap");
        }
        caps.insert(
            format!("cap_{cap}"),
            json!({
                "max_message_bytes": cap,
                "max_plaintext_bytes": cap - 16,
                "claim_messages": transfer.exchanges,
                "messages": messages.iter().map(|(endpoint, request, answer)| json!({
                    "endpoint": endpoint,
                    "request": hex::encode(request),
                    "answer": hex::encode(answer),
                })).collect::<Vec<_>>(),
            }),
        );
    }
    let decoded = proto::ClaimBundle::decode(bundle.as_slice()).expect("the bundle decodes");
    let rsa = decoded
        .rsa_key
        .clone()
        .expect("the SDK sends RSA keys as primes");
    let vector = json!({
        "description": "The aws-claim transfer (docs/protocol.md section 5) of one claim bundle over Sec2 sessions whose links carry at most 480 and 4096 bytes a message (plaintext: 16 bytes less, the GCM tag): every plaintext request and the simulator's answer in order: CmdClaimBegin, CmdClaimChunk..., the last with commit; aws-status (ClaimReceived); CmdClaimAbort; aws-status (Idle). The device's max_bundle_length is its own (8192 here).",
        "bundle": hex::encode(&bundle),
        "bundle_sha256": hex::encode(Sha256::digest(&bundle)),
        "bundle_fields": {
            "certificate_der": hex::encode(&decoded.certificate_der),
            "certificate_id": decoded.certificate_id,
            "expires_at_epoch": decoded.expires_at_epoch,
            "seconds_left": decoded.seconds_left,
            "iot_endpoint": decoded.iot_endpoint,
            "template_name": decoded.template_name,
            "template_parameters": decoded.template_parameters,
            "rsa_key": {"p": hex::encode(&rsa.p), "q": hex::encode(&rsa.q), "e": hex::encode(&rsa.e)},
        },
        "transfers": caps,
    });
    check_or_update("claim.json", &vector);
}
