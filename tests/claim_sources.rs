//! Both claim sources against the harness's emulator, over real HTTPS on 127.0.0.1: what they issue,
//! how they retry, the errors they report, and how they describe things. What is the AWS source's
//! alone (signing, credentials) is in tests/claim_aws.rs; the time a claim has left, in
//! tests/claim_deadline.rs.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::SystemClock;
use claimlink_core::{
    AwsClaimSource, BackendClaimSource, CertificateStatus, ClaimError, ClaimSource, HttpConfig,
    RetryPolicy, Service, ThingDirectory, ThingName,
};
use claimlink_harness::emulator::{Api, Fault, Template};
use claimlink_harness::providers::{CredentialsSequence, TokenSequence};
use claimlink_harness::testing::claim_sources::{
    assert_sound_claim, claim_request as request, fast_retries, ClaimSourceWorld as World,
};
use claimlink_harness::testing::TEMPLATE;

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

/// The backend client goes through the proxy the app passes (the platform's), here a CONNECT proxy on
/// 127.0.0.1 that records where it tunnels to: the claim arrives through the tunnel, sound.
#[tokio::test]
async fn backend_requests_go_through_the_platform_proxy() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let world = World::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", listener.local_addr().expect("addr"));
    let tunnels = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut request_line = String::new();
                client.read_line(&mut request_line).await.ok()?;
                // The headers, up to the empty line.
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.ok()?;
                    if header == "\r\n" || header.is_empty() {
                        break;
                    }
                }
                let target = request_line.strip_prefix("CONNECT ")?.split(' ').next()?;
                seen.lock().ok()?.push(target.to_owned());
                let mut upstream = tokio::net::TcpStream::connect(target).await.ok()?;
                let mut client = client.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream)
                    .await
                    .ok()
            });
        }
    });
    let tokens = Arc::new(TokenSequence::new(vec![world
        .emulator
        .issue_bearer_token()]));
    let source = BackendClaimSource::builder(world.emulator.base_url(), tokens)
        .http_config(HttpConfig {
            proxy: Some(proxy_url),
            ..world.http()
        })
        .build()
        .expect("builds");
    let claim = source
        .request_claim(&request(TEMPLATE))
        .await
        .expect("a claim through the proxy");
    assert_sound_claim(&world, &claim);
    let backend = world
        .emulator
        .base_url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    assert_eq!(*tunnels.lock().expect("lock"), [backend]);

    // A proxy URL that is not one is refused when the source is built, not at the first request.
    let err = BackendClaimSource::builder(
        world.emulator.base_url(),
        Arc::new(TokenSequence::new(vec!["t".into()])),
    )
    .http_config(HttpConfig {
        proxy: Some("not a url".into()),
        ..world.http()
    })
    .build()
    .expect_err("a bad proxy URL");
    assert!(err.to_string().contains("proxy"), "{err}");
}
