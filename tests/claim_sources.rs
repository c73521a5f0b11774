//! Both claim sources against the harness's emulator, over real HTTPS on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{
    AwsClaimSource, BackendClaimSource, CertificateStatus, Claim, ClaimError, ClaimRequest,
    ClaimSource, Service, TemplateName, ThingDirectory, ThingName,
};
use claimlink_core::{Clock, SkewedClock, SystemClock};
use claimlink_core::{HttpConfig, RetryPolicy};
use claimlink_harness::emulator::{Api, Emulator, Fault, RequestRecord, Template};
use claimlink_harness::providers::{CredentialsSequence, TokenSequence};
use claimlink_harness::testing::{self, TEMPLATE};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

struct World {
    emulator: Emulator,
}

impl World {
    async fn start() -> Self {
        let emulator = testing::emulator().await;
        Self { emulator }
    }

    fn http(&self) -> HttpConfig {
        self.emulator.http_config()
    }

    fn backend_with(
        &self,
        tokens: Arc<TokenSequence>,
        clock: Arc<dyn Clock>,
    ) -> BackendClaimSource {
        BackendClaimSource::builder(self.emulator.base_url(), tokens)
            .http_config(self.http())
            .retry_policy(fast_retries())
            .clock(clock)
            .build()
            .expect("backend source builds")
    }

    fn backend(&self) -> (BackendClaimSource, Arc<TokenSequence>) {
        let tokens = Arc::new(TokenSequence::new(vec![self.emulator.issue_bearer_token()]));
        (
            self.backend_with(tokens.clone(), Arc::new(SystemClock)),
            tokens,
        )
    }

    fn aws_with(&self, creds: Arc<CredentialsSequence>, clock: Arc<dyn Clock>) -> AwsClaimSource {
        testing::aws_source(&self.emulator, creds)
            .retry_policy(fast_retries())
            .clock(clock)
            .build()
            .expect("AWS source builds")
    }

    fn aws(&self) -> (AwsClaimSource, Arc<CredentialsSequence>) {
        let creds = Arc::new(CredentialsSequence::new(vec![self
            .emulator
            .issue_credentials()]));
        (self.aws_with(creds.clone(), Arc::new(SystemClock)), creds)
    }

    fn statuses(&self) -> Vec<u16> {
        self.emulator
            .request_log()
            .iter()
            .map(|r: &RequestRecord| r.status)
            .collect()
    }
}

fn request(template: &str) -> ClaimRequest {
    ClaimRequest::new(TemplateName::new(template).expect("valid template name"))
}

/// Asserts the claim is the last one the emulator issued, whole and sound.
fn assert_sound_claim(world: &World, claim: &Claim) {
    let issued = world.emulator.issued_claims();
    let last = issued.last().expect("the emulator issued a claim");
    assert_eq!(claim.certificate_id(), last.certificate_id);
    assert_eq!(claim.certificate().der(), last.certificate_der.as_slice());
    assert_eq!(claim.private_key().expose(), last.private_key_pem.as_str());
    assert_eq!(claim.certificate().key_bits(), 2048);
    assert!(claim
        .certificate()
        .subject()
        .contains("AWS IoT Certificate"));
    assert_eq!(claim.certificate().not_after(), last.not_after);
    let left = claim.deadline().remaining();
    assert!(
        left > Duration::from_secs(297) && left <= Duration::from_secs(300),
        "{left:?}"
    );
    assert_eq!(claim.template().as_str(), TEMPLATE);
}

#[tokio::test]
async fn backend_issues_a_sound_claim() {
    let world = World::start().await;
    let (source, tokens) = world.backend();
    let mut req = request(TEMPLATE);
    req.device_hint = Some("SN-0042".into());
    let claim = source.request_claim(&req).await.expect("claim");
    assert_sound_claim(&world, &claim);
    assert_eq!(tokens.calls(), 1);
    assert_eq!(tokens.refreshes(), 0);
    assert_eq!(world.statuses(), vec![200]);
}

#[tokio::test]
async fn backend_refreshes_a_rejected_token_once() {
    let world = World::start().await;
    let stale = world.emulator.issue_bearer_token();
    world.emulator.revoke_bearer_token(&stale);
    let fresh = world.emulator.issue_bearer_token();
    let tokens = Arc::new(TokenSequence::new(vec![stale, fresh]));
    let source = world.backend_with(tokens.clone(), Arc::new(SystemClock));
    let claim = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("claim after refresh");
    assert_sound_claim(&world, &claim);
    assert_eq!(tokens.refreshes(), 1);
    assert_eq!(world.statuses(), vec![401, 200]);
}

#[tokio::test]
async fn backend_gives_up_when_the_refreshed_token_is_rejected_too() {
    let world = World::start().await;
    let tokens = Arc::new(TokenSequence::new(vec!["nope-1".into(), "nope-2".into()]));
    let source = world.backend_with(tokens.clone(), Arc::new(SystemClock));
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("unauthorized");
    assert!(
        matches!(
            err,
            ClaimError::Unauthorized {
                service: Service::Backend,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(tokens.refreshes(), 1);
    assert_eq!(world.statuses(), vec![401, 401]);
    assert!(
        !err.to_string().contains("nope-"),
        "tokens never appear in errors: {err}"
    );
}

#[tokio::test]
async fn backend_token_provider_failure_is_typed() {
    let world = World::start().await;
    let source = world.backend_with(Arc::new(TokenSequence::new(vec![])), Arc::new(SystemClock));
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("no token");
    assert!(matches!(err, ClaimError::Provider { .. }), "{err:?}");
    assert!(world.statuses().is_empty());
}

#[tokio::test]
async fn unknown_or_disabled_templates_are_not_found_on_both_sources() {
    let world = World::start().await;
    world.emulator.put_template(Template {
        enabled: false,
        ..Template::simple("switched-off")
    });
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    for name in ["no-such-template", "switched-off"] {
        let err = backend
            .request_claim(&request(name))
            .await
            .expect_err("404");
        assert!(
            matches!(&err, ClaimError::TemplateNotFound { service: Service::Backend, template } if template == name),
            "{err:?}"
        );
        let err = aws.request_claim(&request(name)).await.expect_err("404");
        assert!(
            matches!(&err, ClaimError::TemplateNotFound { service: Service::Aws, template } if template == name),
            "{err:?}"
        );
    }
    assert!(world.emulator.issued_claims().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let world = World::start().await;
    let (backend, _) = world.backend();
    world.emulator.script(Api::Backend, Fault::Status(503));
    world.emulator.script(Api::Backend, Fault::Status(500));
    let claim = backend
        .request_claim(&request(TEMPLATE))
        .await
        .expect("third attempt succeeds");
    assert_sound_claim(&world, &claim);
    assert_eq!(world.statuses(), vec![503, 500, 200]);

    let (aws, _) = world.aws();
    world.emulator.script(Api::Aws, Fault::Status(503));
    world.emulator.script(Api::Aws, Fault::Status(500));
    let claim = aws
        .request_claim(&request(TEMPLATE))
        .await
        .expect("third attempt succeeds");
    assert_sound_claim(&world, &claim);
    assert_eq!(world.statuses(), vec![503, 500, 200, 503, 500, 200]);
}

#[tokio::test]
async fn persistent_server_errors_end_in_a_typed_error() {
    let world = World::start().await;
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    for _ in 0..3 {
        world.emulator.script(Api::Backend, Fault::Status(502));
        world.emulator.script(Api::Aws, Fault::Status(503));
    }
    let err = backend
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("gives up");
    assert!(
        matches!(
            err,
            ClaimError::Unavailable {
                status: 502,
                attempts: 3
            }
        ),
        "{err:?}"
    );
    let err = aws
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("gives up");
    assert!(
        matches!(
            err,
            ClaimError::Unavailable {
                status: 503,
                attempts: 3
            }
        ),
        "{err:?}"
    );
    assert!(world.emulator.issued_claims().is_empty());
}

#[tokio::test]
async fn throttling_is_retried_and_reported_when_it_persists() {
    let world = World::start().await;
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    world.emulator.script(Api::Backend, Fault::Throttle);
    world.emulator.script(Api::Aws, Fault::Throttle);
    backend
        .request_claim(&request(TEMPLATE))
        .await
        .expect("retried past 429");
    aws.request_claim(&request(TEMPLATE))
        .await
        .expect("retried past ThrottlingException");
    assert_eq!(world.statuses(), vec![429, 200, 400, 200]);

    for _ in 0..3 {
        world.emulator.script(Api::Backend, Fault::Throttle);
        world.emulator.script(Api::Aws, Fault::Throttle);
    }
    let err = backend
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("still throttled");
    assert!(
        matches!(err, ClaimError::Throttled { attempts: 3 }),
        "{err:?}"
    );
    let err = aws
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("still throttled");
    assert!(
        matches!(err, ClaimError::Throttled { attempts: 3 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let world = World::start().await;
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    world.emulator.script(Api::Backend, Fault::Status(400));
    world.emulator.script(Api::Aws, Fault::Status(400));
    let err = backend
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("400");
    assert!(
        matches!(err, ClaimError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    let err = aws
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("400");
    assert!(
        matches!(&err, ClaimError::Rejected { status: 400, code: Some(c), .. } if c == "InvalidRequestException"),
        "{err:?}"
    );
    assert_eq!(world.statuses(), vec![400, 400]);
}

#[tokio::test]
async fn malformed_answers_are_typed_errors_that_name_the_problem() {
    let world = World::start().await;
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    let cases: Vec<(Fault, &str)> = vec![
        (Fault::MalformedJson, "not JSON"),
        (Fault::MissingField("certificateId"), "certificateId"),
        (Fault::MissingField("certificatePem"), "certificatePem"),
        (Fault::MissingField("keyPair"), "keyPair"),
        (Fault::MissingField("expiration"), "expiration"),
        (Fault::GarbageCertificate, "certificate does not parse"),
        (Fault::WrongKey, "does not belong"),
        (Fault::WrongCertificateId, "SHA-256"),
    ];
    for (fault, expected) in cases {
        for (api, source) in [
            (Api::Backend, &backend as &dyn ClaimSource),
            (Api::Aws, &aws),
        ] {
            world.emulator.script(api, fault.clone());
            let err = source
                .request_claim(&request(TEMPLATE))
                .await
                .expect_err("malformed");
            let text = err.to_string();
            assert!(
                matches!(err, ClaimError::Malformed { .. }),
                "{fault:?} on {api:?}: {err:?}"
            );
            assert!(text.contains(expected), "{fault:?} on {api:?}: {text}");
            for issued in world.emulator.issued_claims() {
                let key_line = issued.private_key_pem.lines().nth(1).unwrap_or("-");
                assert!(
                    !text.contains(key_line),
                    "the private key leaked into: {text}"
                );
            }
        }
    }
}

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
                assert!((99..=101).contains(&overdue_secs), "{overdue_secs}")
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
            assert!(
                (measured + skew).abs() <= 1,
                "{make}: skew {skew} measured as {measured}"
            );
            lefts.push(left);
        }
        let spread = lefts.iter().cloned().fold(f64::MIN, f64::max)
            - lefts.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            spread <= 2.0,
            "{make}: time left varies with the phone clock: {lefts:?}"
        );
        assert!(lefts.iter().all(|l| *l > 297.0), "{make}: {lefts:?}");
    }
}

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

#[tokio::test]
async fn timeouts_and_unreachable_services_are_network_errors() {
    let world = World::start().await;
    let tokens = Arc::new(TokenSequence::new(vec![world
        .emulator
        .issue_bearer_token()]));
    let source = BackendClaimSource::builder(world.emulator.base_url(), tokens)
        .http_config(HttpConfig {
            request_timeout: Duration::from_millis(1500),
            ..world.http()
        })
        .retry_policy(fast_retries())
        .build()
        .expect("builds");
    // One slow answer: the retry gets through.
    world
        .emulator
        .script(Api::Backend, Fault::Delay(Duration::from_secs(3)));
    source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("retry after a timeout");
    // Every answer slow: a timeout, said so.
    for _ in 0..3 {
        world
            .emulator
            .script(Api::Backend, Fault::Delay(Duration::from_secs(3)));
    }
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            err,
            ClaimError::Network {
                timed_out: true,
                ..
            }
        ),
        "{err:?}"
    );

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let tokens = Arc::new(TokenSequence::new(vec!["t".into()]));
    let source = BackendClaimSource::builder(format!("https://127.0.0.1:{port}"), tokens)
        .retry_policy(fast_retries())
        .build()
        .expect("builds");
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("unreachable");
    assert!(
        matches!(
            err,
            ClaimError::Network {
                timed_out: false,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused() {
    let world = World::start().await;
    let tokens = Arc::new(TokenSequence::new(vec![world
        .emulator
        .issue_bearer_token()]));
    // No extra root: the emulator's CA is not trusted.
    let source = BackendClaimSource::builder(world.emulator.base_url(), tokens)
        .retry_policy(RetryPolicy {
            max_attempts: 1,
            ..fast_retries()
        })
        .build()
        .expect("builds");
    let err = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect_err("TLS refused");
    assert!(matches!(err, ClaimError::Network { .. }), "{err:?}");
    assert!(world.emulator.issued_claims().is_empty());
}

#[test]
fn insecure_configurations_need_a_danger_option() {
    let tokens = Arc::new(TokenSequence::new(vec!["t".into()]));
    let err = BackendClaimSource::builder("http://127.0.0.1:1/", tokens.clone())
        .build()
        .expect_err("http refused");
    assert!(matches!(err, ClaimError::InvalidInput(_)), "{err:?}");
    BackendClaimSource::builder("http://127.0.0.1:1/", tokens.clone())
        .danger_allow_plain_http(true)
        .build()
        .expect("allowed when asked for explicitly");
    assert!(BackendClaimSource::builder("not a url", tokens)
        .build()
        .is_err());
    let creds = Arc::new(CredentialsSequence::new(vec![]));
    assert!(AwsClaimSource::builder("us-east-1", creds.clone())
        .endpoint_url("http://127.0.0.1:1")
        .build()
        .is_err());
    assert!(AwsClaimSource::builder("US EAST", creds).build().is_err());
}

#[tokio::test]
async fn things_are_described_with_their_certificates_by_both_sources() {
    let world = World::start().await;
    world
        .emulator
        .register_thing("sensor-7", &"a".repeat(64), "pem-a", "ACTIVE");
    world
        .emulator
        .register_thing("sensor-7", &"b".repeat(64), "pem-b", "INACTIVE");
    world
        .emulator
        .set_thing_attribute("sensor-7", "room", "attic");
    let (backend, _) = world.backend();
    let (aws, _) = world.aws();
    let thing = ThingName::new("sensor-7").expect("name");
    for source in [&backend as &dyn ThingDirectory, &aws] {
        let d = source
            .describe_thing(&thing)
            .await
            .expect("ok")
            .expect("exists");
        assert_eq!(d.thing_name, "sensor-7");
        assert_eq!(d.attributes.get("room").map(String::as_str), Some("attic"));
        assert!(d
            .thing_arn
            .as_deref()
            .is_some_and(|a| a.ends_with(":thing/sensor-7")));
        assert_eq!(d.certificates.len(), 2);
        assert!(d.has_active_certificate(&"a".repeat(64)));
        assert!(!d.has_active_certificate(&"b".repeat(64)));
        assert!(d
            .certificates
            .iter()
            .any(|c| c.status == CertificateStatus::Inactive));
        let missing = ThingName::new("nobody").expect("name");
        assert_eq!(source.describe_thing(&missing).await.expect("ok"), None);
    }
}

#[tokio::test]
async fn the_private_key_never_appears_in_debug_output() {
    let world = World::start().await;
    let (source, _) = world.backend();
    let claim = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("claim");
    let shown = format!("{claim:?} {claim:#?} {source:?}");
    let key = claim.private_key().expose();
    assert!(key.contains("PRIVATE KEY"));
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "a key line leaked into Debug output");
    }
    assert!(!shown.contains("PRIVATE KEY"));
    assert!(shown.contains("redacted"));
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
