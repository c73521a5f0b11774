//! The seed corpora are real and the saved regressions pass: the recorded conversations replay to
//! their end with the steps succeeding that succeed against the device simulator (so the session targets start past
//! the handshake), the claim
//! seeds make valid claims (so the claim targets reach the X.509 and key checks), and every seed and
//! regression input runs through its target without a panic.

use std::path::{Path, PathBuf};

use claimlink_core::SecurityScheme;
use claimlink_fuzz::client::{record, replay, STEPS};
use claimlink_fuzz::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = entries
        .flatten()
        .map(|e| e.path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn recorded_conversations_replay_to_their_end_as_the_simulated_device_answered_them() {
    for (scheme, target) in [
        (SecurityScheme::Sec0, "session_sec0"),
        (SecurityScheme::Sec1, "session_sec1"),
        (SecurityScheme::Sec2, "session_sec2"),
    ] {
        let seeds = inputs("seeds", target);
        assert_eq!(seeds.len(), 1, "{target}");
        // Recorded while the device was still joining the network: it refused the Wi-Fi reset
        // (prov-ctrl), as network_provisioning does while a join runs, and accepted the
        // re-provisioning (auto-stop disabled, as claimlink devices run); every other step
        // succeeded.
        assert_eq!(replay(scheme, &seeds[0].1), (STEPS - 1, 0), "{target}");
        // The simulator still gets as far (the seeds can be recorded again).
        let (live, _) = record(scheme);
        assert!(live >= STEPS - 1, "{target}: {live} steps");
    }
}

#[test]
fn a_device_proof_off_by_one_bit_fails_the_sec2_handshake() {
    use claimlink_core::internal::proto::{self, sec2_payload::Payload, session_data::Proto};
    use prost::Message;
    let mut conversation = inputs("seeds", "session_sec2").remove(0).1;
    // The answers: proto-ver, SessionResp0 (salt, device key), SessionResp1 (device proof, nonce).
    let resp1 =
        proto::SessionData::decode(claimlink_fuzz::framing::split(&conversation)[2]).unwrap();
    let Some(Proto::Sec2(proto::Sec2Payload {
        payload: Some(Payload::Sr1(resp1)),
        ..
    })) = resp1.proto
    else {
        panic!("the third answer is not SessionResp1");
    };
    let at = conversation
        .windows(resp1.device_proof.len())
        .position(|w| w == resp1.device_proof)
        .unwrap();
    conversation[at + 7] ^= 1;
    assert_eq!(replay(SecurityScheme::Sec2, &conversation).0, 0);
}

#[test]
fn the_claim_seeds_make_valid_claims() {
    let (certificate, key) = claimlink_fuzz::split_claim(claimlink_fuzz::SEED_CLAIM);
    let certificate = claimlink_core::ClaimCertificate::from_pem(certificate).unwrap();
    assert!(certificate.key_bits() >= 2048);
    // The claim_certificate seed gets through every check: PEM, X.509, the key's PEM and DER, the
    // key matching the certificate, the expiry.
    claimlink_core::Claim::new(
        claimlink_fuzz::split_claim(claimlink_fuzz::SEED_CLAIM).0,
        key.into(),
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
        claimlink_core::TemplateName::new("fuzz").unwrap(),
    )
    .unwrap();
    let answer = inputs("seeds", "claim_answer").remove(0).1;
    assert!(claimlink_core::internal::fuzzing::claim(
        &answer,
        claimlink_fuzz::fuzz_now()
    ));
    // The same answer a day after the claim expired is refused.
    assert!(!claimlink_core::internal::fuzzing::claim(
        &answer,
        claimlink_fuzz::fuzz_now() + std::time::Duration::from_secs(86_400)
    ));
}

#[test]
fn every_target_has_a_binary_and_seeds_and_runs_them_and_its_regressions() {
    let binaries = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets"))
        .unwrap()
        .count();
    assert_eq!(binaries, TARGETS.len());
    for (name, run) in TARGETS {
        let seeds = inputs("seeds", name);
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for (_, input) in seeds.iter().chain(&inputs("regressions", name)) {
            run(input);
        }
    }
}
