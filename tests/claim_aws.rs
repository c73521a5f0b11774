//! The AWS claim source's own concerns against the harness's emulator, over real HTTPS on 127.0.0.1:
//! SigV4 signing with a phone clock far off, refreshing rejected credentials, a wrong secret key.

use std::sync::Arc;

use claimlink_core::{ClaimError, ClaimSource, Service};
use claimlink_core::{SkewedClock, SystemClock};
use claimlink_harness::emulator::{Api, Fault};
use claimlink_harness::providers::CredentialsSequence;
use claimlink_harness::testing::claim_sources::{
    assert_sound_claim, claim_request as request, ClaimSourceWorld as World,
};
use claimlink_harness::testing::TEMPLATE;

#[tokio::test]
async fn aws_source_corrects_a_clock_beyond_the_signature_window() {
    let world = World::start().await;
    let creds = Arc::new(CredentialsSequence::new(vec![world
        .emulator
        .issue_credentials()]));
    for skew in [-1800i64, 1800] {
        let source = world.aws_with(creds.clone(), Arc::new(SkewedClock::new(skew)));
        let claim = source
            .request_claim(&request(TEMPLATE))
            .await
            .expect("claim after correction");
        assert_sound_claim(&world, &claim);
        assert!(
            (source.clock_correction_secs() + skew).abs() <= 1,
            "{}",
            source.clock_correction_secs()
        );
        // Later calls sign with the corrected time straight away.
        source
            .request_claim(&request(TEMPLATE))
            .await
            .expect("second claim");
    }
    assert_eq!(world.statuses(), vec![403, 200, 200, 403, 200, 200]);
}

#[tokio::test]
async fn aws_source_refreshes_rejected_credentials_once() {
    let world = World::start().await;
    let old = world.emulator.issue_credentials();
    world.emulator.revoke_credentials(&old.access_key_id);
    let fresh = world.emulator.issue_credentials();
    let creds = Arc::new(CredentialsSequence::new(vec![old.clone(), fresh]));
    let source = world.aws_with(creds.clone(), Arc::new(SystemClock));
    let claim = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("claim after refresh");
    assert_sound_claim(&world, &claim);
    assert_eq!(creds.refreshes(), 1);
    assert_eq!(world.statuses(), vec![403, 200]);

    let creds = Arc::new(CredentialsSequence::new(vec![old.clone(), old]));
    let source = world.aws_with(creds.clone(), Arc::new(SystemClock));
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("unauthorized");
    assert!(
        matches!(
            err,
            ClaimError::Unauthorized {
                service: Service::Aws,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(creds.refreshes(), 1);

    world.emulator.script(Api::Aws, Fault::Status(401));
    let (source, creds) = world.aws();
    source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("401 UnauthorizedException → refresh → claim");
    assert_eq!(creds.refreshes(), 1);
}

#[tokio::test]
async fn aws_source_with_a_wrong_secret_is_rejected_without_retry() {
    let world = World::start().await;
    let mut creds = world.emulator.issue_credentials();
    creds.secret_access_key = "wrong-secret-wrong-secret-wrong-secret-00".into();
    let provider = Arc::new(CredentialsSequence::new(vec![creds]));
    let source = world.aws_with(provider, Arc::new(SystemClock));
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("bad signature");
    match &err {
        ClaimError::SignatureRejected { message } => {
            assert!(message.contains("does not match"), "{message}")
        }
        other => panic!("expected SignatureRejected, got {other:?}"),
    }
    assert!(!err.to_string().contains("wrong-secret"));
    assert!(!format!("{source:?}").contains("wrong-secret"));
    assert_eq!(world.statuses(), vec![403]);
}

/// Temporary credentials that expired on the emulator's clock get AWS's 403 `ExpiredTokenException`;
/// the SDK asks its provider for fresh ones once and the claim goes through.
#[tokio::test]
async fn aws_source_refreshes_expired_credentials() {
    let world = World::start().await;
    let expired = world
        .emulator
        .issue_credentials_valid_for(std::time::Duration::ZERO);
    let fresh = world.emulator.issue_credentials();
    let creds = Arc::new(CredentialsSequence::new(vec![expired, fresh]));
    let source = world.aws_with(creds.clone(), Arc::new(SystemClock));
    let claim = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("claim after refresh");
    assert_sound_claim(&world, &claim);
    assert_eq!(creds.refreshes(), 1);
    assert_eq!(world.statuses(), vec![403, 200]);
}
