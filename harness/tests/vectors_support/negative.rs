//! `proto/vectors/negative.json`: claim transfers a device must refuse (a chunk without a begin,
//! a wrong SHA-256, an out-of-order chunk, an oversize bundle or chunk, a commit before all bytes,
//! a bundle with primes 0 or 1, an even prime, both keys or none), each with the simulator's
//! answers and, after it, proof that it kept nothing (`aws-status` answers Idle).

use claimlink_core::internal::proto;
use prost::Message;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::check_or_update;
use crate::{claim, claim_fixture, plaintexts, sec2_session, MAX_BUNDLE};

use proto::aws_claim_payload::Payload as P;
use proto::AwsClaimMsgType as T;

fn request(msg: T, payload: P) -> Vec<u8> {
    proto::AwsClaimPayload {
        msg: msg as i32,
        status: 0,
        error: 0,
        payload: Some(payload),
    }
    .encode_to_vec()
}

fn begin(total: usize, sha256: Vec<u8>, data: &[u8], commit: bool) -> Vec<u8> {
    request(
        T::TypeCmdBegin,
        P::CmdBegin(proto::CmdClaimBegin {
            total_length: u32::try_from(total).expect("small"),
            sha256,
            data: data.to_vec(),
            commit,
        }),
    )
}

fn chunk(offset: usize, data: &[u8], commit: bool) -> Vec<u8> {
    request(
        T::TypeCmdChunk,
        P::CmdChunk(proto::CmdClaimChunk {
            offset: u32::try_from(offset).expect("small"),
            data: data.to_vec(),
            commit,
        }),
    )
}

/// A whole (one-message, committing) transfer of `bundle` with its right digest.
fn whole(bundle: &proto::ClaimBundle) -> Vec<u8> {
    let bytes = bundle.encode_to_vec();
    begin(bytes.len(), Sha256::digest(&bytes).to_vec(), &bytes, true)
}

/// One request of a case and the error its answer must carry.
type Step = (Vec<u8>, proto::ClaimTransferError);

#[tokio::test]
async fn refused_claim_transfers() {
    // The SDK's own bundle, as it sends it.
    let (link, session) = sec2_session(4096).await;
    let (cert, key, params) = claim_fixture();
    let id = hex::encode(Sha256::digest(&cert));
    session
        .send_claim(&claim(&cert, &key, &id, &params))
        .await
        .expect("the transfer commits");
    let (_, first, _) = plaintexts(&link.seen()).remove(0);
    let Some(P::CmdBegin(b)) = proto::AwsClaimPayload::decode(first.as_slice())
        .expect("begin")
        .payload
    else {
        panic!("the first claim message is a begin")
    };
    let bundle = b.data;
    assert_eq!(bundle.len(), b.total_length as usize, "one message at 4096");
    let digest = Sha256::digest(&bundle).to_vec();
    let decoded = proto::ClaimBundle::decode(bundle.as_slice()).expect("bundle");
    let rsa = decoded.rsa_key.clone().expect("primes");
    let with_key = |edit: &dyn Fn(&mut proto::ClaimBundle)| {
        let mut b = decoded.clone();
        edit(&mut b);
        b
    };
    let mut bad_digest = digest.clone();
    bad_digest[0] ^= 0x01;
    let half = 1000;
    use proto::ClaimTransferError as E;
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "chunk without a begin",
            vec![(chunk(0, &bundle[..64], false), E::NotStarted)],
        ),
        (
            "wrong SHA-256",
            vec![(
                begin(bundle.len(), bad_digest, &bundle, true),
                E::DigestMismatch,
            )],
        ),
        (
            "out-of-order chunk",
            vec![
                (
                    begin(bundle.len(), digest.clone(), &bundle[..half], false),
                    E::None,
                ),
                (chunk(half / 2, &bundle[half / 2..], true), E::OutOfOrder),
            ],
        ),
        (
            "bundle larger than the device's max_bundle_length",
            vec![(
                begin(MAX_BUNDLE + 1, digest.clone(), &bundle[..half], false),
                E::TooLarge,
            )],
        ),
        (
            "chunk beyond total_length",
            vec![
                (
                    begin(bundle.len(), digest.clone(), &bundle[..half], false),
                    E::None,
                ),
                (
                    chunk(half, &[&bundle[half..], &[0u8][..]].concat(), true),
                    E::TooLarge,
                ),
            ],
        ),
        (
            "commit before total_length bytes",
            vec![
                (
                    begin(bundle.len(), digest.clone(), &bundle[..half], false),
                    E::None,
                ),
                (
                    chunk(half, &bundle[half..bundle.len() - 1], true),
                    E::Incomplete,
                ),
            ],
        ),
        (
            "prime p = 0",
            vec![(
                whole(&with_key(&|b| {
                    b.rsa_key.as_mut().into_iter().for_each(|k| k.p = vec![0])
                })),
                E::BundleInvalid,
            )],
        ),
        (
            "prime q = 1",
            vec![(
                whole(&with_key(&|b| {
                    b.rsa_key.as_mut().into_iter().for_each(|k| k.q = vec![1])
                })),
                E::BundleInvalid,
            )],
        ),
        (
            "even prime p",
            vec![(
                whole(&with_key(&|b| {
                    b.rsa_key.as_mut().into_iter().for_each(|k| {
                        if let Some(last) = k.p.last_mut() {
                            *last &= 0xfe;
                        }
                    })
                })),
                E::BundleInvalid,
            )],
        ),
        (
            "both private_key_der and rsa_key",
            vec![(
                whole(&with_key(&|b| b.private_key_der = vec![0x30, 0x00])),
                E::BundleInvalid,
            )],
        ),
        (
            "neither private_key_der nor rsa_key",
            vec![(whole(&with_key(&|b| b.rsa_key = None)), E::BundleInvalid)],
        ),
    ];
    assert!(rsa.p.len() > 1);
    let abort = request(T::TypeCmdAbort, P::CmdAbort(proto::CmdClaimAbort {}));
    let status_request = super::status_request();
    let mut out = Vec::new();
    for (case, steps) in cases {
        let mut recorded = Vec::new();
        let answer = session.request("aws-claim", &abort).await.expect("abort");
        recorded.push(json!({"request": hex::encode(&abort), "answer": hex::encode(&answer), "error": "None"}));
        for (req, expected) in steps {
            let answer = session
                .request("aws-claim", &req)
                .await
                .expect("an answer, not a failed request");
            let decoded =
                proto::AwsClaimPayload::decode(answer.as_slice()).expect("answer decodes");
            assert_eq!(decoded.error, expected as i32, "{case}");
            let status = if expected == E::None {
                proto::Status::Success
            } else {
                proto::Status::InvalidArgument
            };
            assert_eq!(decoded.status, status as i32, "{case}");
            recorded.push(json!({
                "request": hex::encode(&req),
                "answer": hex::encode(&answer),
                "error": format!("{expected:?}"),
            }));
        }
        let after = session
            .request("aws-status", &status_request)
            .await
            .expect("status");
        let stage = proto::AwsStatusPayload::decode(after.as_slice())
            .ok()
            .and_then(|p| match p.payload {
                Some(proto::aws_status_payload::Payload::RespGet(r)) => Some(r.stage),
                _ => None,
            });
        assert_eq!(
            stage,
            Some(proto::CloudStage::Idle as i32),
            "{case}: nothing kept"
        );
        out.push(json!({
            "case": case,
            "steps": recorded,
            "then_aws_status": {"request": hex::encode(&status_request), "answer": hex::encode(&after)},
        }));
    }
    let vector = json!({
        "description": "Claim transfers a device must refuse (docs/protocol.md section 5.3), on one Sec2 session after a successful transfer, each case starting with CmdClaimAbort. Every step gives the plaintext request, the answer the simulator gave (a refusal is an answer with status InvalidArgument and the ClaimTransferError named in `error`, not a failed request: the session stays up), and after the case an aws-status answer showing that nothing was kept (stage Idle). The device's max_bundle_length is 8192.",
        "bundle": hex::encode(&bundle),
        "max_bundle_length": MAX_BUNDLE,
        "cases": out,
    });
    check_or_update("negative.json", &vector);
}

/// A handshake case: its name, the messages the device answers first, the one it must refuse.
type RefusedHandshake = (&'static str, Vec<Vec<u8>>, Vec<u8>);

/// A Sec2 handshake message.
fn sec2_message(payload: proto::sec2_payload::Payload) -> Vec<u8> {
    proto::SessionData::sec2(payload).encode_to_vec()
}

#[tokio::test]
async fn refused_handshakes() {
    use claimlink_core::internal::srp;
    use num_bigint::BigUint;
    use proto::sec2_payload::Payload as S2;
    let inputs = crate::sec2_inputs();
    let group = srp::Group::rfc5054_3072();
    let derived = crate::sec2_derived(&inputs);
    let cmd0 = |username: &[u8], a_pub: Vec<u8>| {
        sec2_message(S2::Sc0(proto::S2SessionCmd0 {
            client_username: username.to_vec(),
            client_pubkey: a_pub,
        }))
    };
    let cmd1 = |proof: Vec<u8>| {
        sec2_message(S2::Sc1(proto::S2SessionCmd1 {
            client_proof: proof,
        }))
    };
    // The proof a client computes from the wrong password "abcd1235" (same a, salt and B).
    let wrong_proof = {
        let x = srp::private_key_x(&inputs.salt, crate::USERNAME.as_bytes(), b"abcd1235");
        let (n, g) = (&group.n, &group.g);
        let v = g.modpow(&x, n);
        let b_pub = BigUint::from_bytes_be(&derived["B"]);
        let base = (&b_pub + n - (&group.k * &v) % n) % n;
        let a = BigUint::from_bytes_be(&inputs.a);
        let u = srp::scrambler_u(&derived["A"], &derived["B"]);
        let key = srp::session_key(&base.modpow(&(&a + &u * &x), n));
        srp::client_proof(
            &group,
            crate::USERNAME.as_bytes(),
            &inputs.salt,
            &derived["A"],
            &derived["B"],
            key.expose(),
        )
        .to_vec()
    };
    let good_cmd0 = cmd0(crate::USERNAME.as_bytes(), derived["A"].clone());
    let cases: Vec<RefusedHandshake> = vec![
        ("A = 0", vec![], cmd0(b"wifiprov", vec![0; srp::N_LEN])),
        (
            "A = N (A mod N = 0)",
            vec![],
            cmd0(b"wifiprov", srp::pad(&group.n)),
        ),
        (
            "A of 383 bytes",
            vec![],
            cmd0(b"wifiprov", derived["A"][1..].to_vec()),
        ),
        ("an empty username", vec![], cmd0(b"", derived["A"].clone())),
        (
            "command 1 before command 0",
            vec![],
            cmd1(derived["M"].clone()),
        ),
        (
            "the proof of a wrong password (abcd1235)",
            vec![good_cmd0.clone()],
            cmd1(wrong_proof),
        ),
        (
            "a proof of 63 bytes",
            vec![good_cmd0],
            cmd1(derived["M"][..63].to_vec()),
        ),
    ];
    // The device draws the salt, then `b` for each command 0 it accepts.
    let accepted = cases
        .iter()
        .filter(|(_, before, _)| !before.is_empty())
        .count();
    let mut draws = vec![inputs.salt.clone()];
    draws.extend(std::iter::repeat_n(inputs.b.clone(), accepted));
    let device = super::Scripted::device(Default::default(), draws);
    let mut out = Vec::new();
    for (case, before, refused) in cases {
        for (n, message) in before.iter().enumerate() {
            // A fresh connection for every case: the device starts a new session.
            let connection = 100 + out.len() as u64;
            let answer = device.handle(connection, "prov-session", message);
            assert!(answer.is_ok(), "{case}: step {n} is answered");
        }
        let connection = 100 + out.len() as u64;
        let result = device.handle(connection, "prov-session", &refused);
        assert!(
            matches!(
                result,
                Err(claimlink_harness::device::DeviceFailure::Refused(_))
            ),
            "{case}: the device fails the request"
        );
        out.push(json!({
            "case": case,
            "before": before.iter().map(hex::encode).collect::<Vec<_>>(),
            "request": hex::encode(&refused),
        }));
    }
    let vector = json!({
        "description": "Sec2 handshake messages a device must refuse by failing the request (ESP-IDF's handler returns an error: over HTTP the connection closes without an answer, over BLE the write fails), never with an answer. Each case runs on a fresh connection; `before` are messages the device answers first (a valid command 0 with sec2.json's A, answered as there). Inputs as in sec2.json.",
        "cases": out,
    });
    check_or_update("handshake_refusals.json", &vector);
}
