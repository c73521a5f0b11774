//! The time a claim has left, from both claim sources and from a claim an app built: an expired claim
//! is refused, and a phone clock that is off does not change the time left.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{Claim, ClaimError, ClaimSource, TemplateName};
use claimlink_core::{Clock, SkewedClock};
use claimlink_harness::providers::{CredentialsSequence, TokenSequence};
use claimlink_harness::testing::claim_sources::{
    claim_request as request, ClaimSourceWorld as World,
};
use claimlink_harness::testing::{SleepingPhoneClock, TEMPLATE};

#[tokio::test]
async fn an_expired_claim_is_refused() {
    let world = World::start().await;
    world.emulator.set_claim_backdate(Duration::from_secs(400));
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    for source in [&backend as &dyn ClaimSource, &aws] {
        let err = source
            .request_claim(&request(TEMPLATE))
            .await
            .expect_err("expired");
        match err {
            ClaimError::Expired { overdue_secs } => {
                // 100 s overdue at issue, plus the time the request took (seconds on a loaded machine).
                assert!((99..=110).contains(&overdue_secs), "{overdue_secs}")
            }
            other => panic!("expected Expired, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_phone_clock_ten_minutes_off_does_not_change_the_time_left() {
    let world = World::start().await;
    let creds = Arc::new(CredentialsSequence::new(vec![world
        .emulator
        .issue_credentials()]));
    for make in ["backend", "aws"] {
        let mut lefts = Vec::new();
        for skew in [-600i64, 0, 600] {
            let clock: Arc<dyn Clock> = Arc::new(SkewedClock::new(skew));
            let source: Box<dyn ClaimSource> = if make == "backend" {
                let tokens = Arc::new(TokenSequence::new(vec![world
                    .emulator
                    .issue_bearer_token()]));
                Box::new(world.backend_with(tokens, clock.clone()))
            } else {
                Box::new(world.aws_with(creds.clone(), clock.clone()))
            };
            let claim = source
                .request_claim(&request(TEMPLATE))
                .await
                .expect("claim");
            let left = claim.deadline().remaining().as_secs_f64();
            // What a naive client would compute: expiry minus the phone's own wall clock.
            let naive = claim
                .deadline()
                .server_expiry()
                .duration_since(clock.now())
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            if skew > 0 {
                assert!(
                    naive < 1.0,
                    "{make}: a naive client would think the claim expired"
                );
            }
            let measured = claim
                .deadline()
                .clock_skew_secs()
                .expect("server sent Date");
            // `Date` has whole seconds and the request takes its time (seconds on a loaded
            // machine): a few seconds off, never the 600 s of skew.
            assert!(
                (measured + skew).abs() <= 3,
                "{make}: skew {skew} measured as {measured}"
            );
            lefts.push(left);
        }
        let spread = lefts.iter().cloned().fold(f64::MIN, f64::max)
            - lefts.iter().cloned().fold(f64::MAX, f64::min);
        // The three requests follow each other: their time left differs by the seconds between them,
        // never by the 600 s of skew.
        assert!(
            spread <= 10.0,
            "{make}: time left varies with the phone clock: {lefts:?}"
        );
        assert!(lefts.iter().all(|l| *l > 290.0), "{make}: {lefts:?}");
    }
}

/// A claim an app obtained its own way goes through the same checks as the sources' own.
#[tokio::test]
async fn an_app_built_claim_is_checked_like_the_sources_own() {
    let world = World::start().await;
    let (source, _) = world.backend();
    let issued = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("claim");
    let other = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("claim");
    let template = TemplateName::new(TEMPLATE).expect("template");
    let pem = issued.certificate().pem();
    let expiry = issued.deadline().server_expiry();

    let rebuilt = Claim::new(pem, issued.private_key().clone(), expiry, template.clone())
        .expect("a good claim");
    assert_eq!(rebuilt.certificate_id(), issued.certificate_id());
    assert_eq!(rebuilt.template(), &template);
    assert!(rebuilt.deadline().remaining() > Duration::from_secs(200));

    let err = Claim::new(pem, other.private_key().clone(), expiry, template.clone())
        .expect_err("another claim's key");
    assert!(
        matches!(&err, ClaimError::Malformed { problem } if problem.contains("does not belong")),
        "{err:?}"
    );
    let past = std::time::SystemTime::now() - Duration::from_secs(30);
    let err =
        Claim::new(pem, issued.private_key().clone(), past, template.clone()).expect_err("expired");
    assert!(matches!(err, ClaimError::Expired { .. }), "{err:?}");
    let err = Claim::new(
        "not a certificate",
        issued.private_key().clone(),
        expiry,
        template,
    )
    .expect_err("garbage");
    assert!(matches!(err, ClaimError::Malformed { .. }), "{err:?}");
}

/// A phone that sleeps four minutes wakes to a claim with one minute left, from both sources: the
/// deadline runs on a clock that counts suspended time, as the certificate's expiry does.
#[tokio::test]
async fn a_phone_that_slept_wakes_to_less_time_left() {
    let world = World::start().await;
    let creds = Arc::new(CredentialsSequence::new(vec![world
        .emulator
        .issue_credentials()]));
    let tokens = Arc::new(TokenSequence::new(vec![world
        .emulator
        .issue_bearer_token()]));
    for make in ["backend", "aws"] {
        let phone = Arc::new(SleepingPhoneClock::new());
        let source: Box<dyn ClaimSource> = if make == "backend" {
            Box::new(world.backend_with(tokens.clone(), phone.clone()))
        } else {
            Box::new(world.aws_with(creds.clone(), phone.clone()))
        };
        let claim = source
            .request_claim(&request(TEMPLATE))
            .await
            .expect("claim");
        let before = claim.deadline().remaining();
        assert!(before > Duration::from_secs(290), "{make}: {before:?}");
        phone.suspend(Duration::from_secs(240));
        let after = claim.deadline().remaining();
        // Four minutes less, give or take the (awake) time between the two reads.
        let lost = before.saturating_sub(after);
        assert!(
            (Duration::from_secs(240)..Duration::from_secs(245)).contains(&lost),
            "{make}: {before:?} -> {after:?}"
        );
        phone.suspend(Duration::from_secs(70));
        assert!(claim.deadline().has_passed(), "{make}: slept past the end");
    }
}
