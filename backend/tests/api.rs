//! The API's answers, over real HTTP on 127.0.0.1: who gets a claim (401, 403), what is refused
//! (400, 404, 409, 429), what an unreachable database answers (503, nothing issued), the JWKS cache,
//! confirmation, revocation and the audit trail.

mod support;

use claimlink_harness::testing::TEMPLATE;
use reqwest::Method;
use serde_json::{json, Value};
use support::{Rig, ADMIN, INSTALLER, OTHER_TEMPLATE_ROLE};

async fn status_and_body(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_expired_or_foreign_tokens_are_401_and_good_ones_of_both_algorithms_pass() {
    let rig = Rig::start().await;
    rig.issuer.add_key("rogue", false, false);
    let i = &rig.issuer;
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iss": i.url, "aud": support::AUDIENCE, "sub": "x", "exp": support::now() + 600, "roles": [INSTALLER]}),
        &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    let refused = [
        ("no token", None),
        ("not a JWT", Some("not-a-jwt".to_owned())),
        ("HS256", Some(hs256)),
        (
            "signed by another key",
            Some(i.token_signed_by("rsa-1", "rogue", json!({}))),
        ),
        (
            "expired",
            Some(i.token_with("rsa-1", json!({"exp": support::now() - 120}))),
        ),
        (
            "not yet valid",
            Some(i.token_with("ec-1", json!({"nbf": support::now() + 600}))),
        ),
        (
            "wrong audience",
            Some(i.token_with("rsa-1", json!({"aud": "someone-else"}))),
        ),
        (
            "wrong issuer",
            Some(i.token_with("rsa-1", json!({"iss": "https://evil.example"}))),
        ),
        (
            "no subject",
            Some(i.token_with("rsa-1", json!({"sub": null}))),
        ),
        (
            "no expiry",
            Some(i.token_with("rsa-1", json!({"exp": null}))),
        ),
    ];
    for (what, token) in refused {
        let r = rig
            .call(
                Method::POST,
                "/v1/provisioning-claims",
                token.as_deref(),
                Some(json!({"templateName": TEMPLATE, "deviceHint": "SN-401"})),
            )
            .await;
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer error=\"invalid_token\""),
            "{what}"
        );
        let (status, body) = status_and_body(r).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("Unauthorized")),
            "{what}: {body}"
        );
    }
    // Inside the leeway (30 s) an expired token still passes; both algorithms verify.
    let barely = i.token_with("rsa-1", json!({"exp": support::now() - 5}));
    assert_eq!(rig.claim(&barely, "SN-LEEWAY").await.status(), 200);
    let ec = i.token_with("ec-1", json!({}));
    assert_eq!(rig.claim(&ec, "SN-ES256").await.status(), 200);
    assert_eq!(
        rig.world.emulator.issued_claims().len(),
        2,
        "only the two good tokens got claims"
    );
}

#[tokio::test]
async fn an_installer_without_the_template_or_site_is_403_and_audited() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-9", &[OTHER_TEMPLATE_ROLE]);
    let (status, body) = status_and_body(rig.claim(&token, "SN-403").await).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("Forbidden")));
    let nobody = rig.issuer.token("installer-9", &["no-such-role"]);
    assert_eq!(rig.claim(&nobody, "SN-403").await.status(), 403);
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    let r = rig
        .call(
            Method::POST,
            "/v1/provisioning-claims",
            Some(&token),
            Some(json!({"templateName": TEMPLATE, "deviceHint": "SN-403", "site": "paris-1"})),
        )
        .await;
    assert_eq!(r.status(), 403, "a site the installer does not have");
    assert!(rig.world.emulator.issued_claims().is_empty());
    let audit = rig.audit().await;
    assert!(
        audit
            .iter()
            .filter(|e| e["action"] == "claim.issue" && e["outcome"] == "denied")
            .count()
            >= 3
    );
}

#[tokio::test]
async fn malformed_requests_are_400_and_unknown_templates_404() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    let bad = [
        json!({"templateName": TEMPLATE}),
        json!({"templateName": TEMPLATE, "deviceHint": "SN 1"}),
        json!({"templateName": TEMPLATE, "deviceHint": "SN-1", "extra": 1}),
        json!({"templateName": "bad name!", "deviceHint": "SN-1"}),
        json!({"templateName": 42}),
        json!([]),
    ];
    for body in bad {
        let (status, answer) = status_and_body(
            rig.call(
                Method::POST,
                "/v1/provisioning-claims",
                Some(&token),
                Some(body.clone()),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("InvalidRequest")),
            "{body}"
        );
    }
    let roamer = rig.issuer.token("roamer-1", &["roamer"]);
    let r = rig
        .call(Method::POST, "/v1/provisioning-claims", Some(&roamer),
              Some(json!({"templateName": "no-such-template", "deviceHint": "SN-1", "site": "paris-1"})))
        .await;
    let (status, body) = status_and_body(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("TemplateNotFound"))
    );
    let audit = rig.audit().await;
    let failed = audit
        .iter()
        .find(|e| e["outcome"] == "failed")
        .expect("AWS's refusal audited");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("ResourceNotFoundException"),
        "{failed}"
    );
}

#[tokio::test]
async fn too_many_claims_are_429_with_retry_after() {
    let rig = Rig::start_with(|c| {
        c.rate_limit.burst = 2;
        c.rate_limit.per_minute = 1;
    })
    .await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    assert_eq!(rig.claim(&token, "SN-R1").await.status(), 200);
    assert_eq!(rig.claim(&token, "SN-R2").await.status(), 200);
    let r = rig.claim(&token, "SN-R3").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let other = rig.issuer.token("installer-2", &[INSTALLER]);
    assert_eq!(
        rig.claim(&other, "SN-R4").await.status(),
        200,
        "the bucket is per installer"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_503_and_nothing_is_issued() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    rig.state.store().close().await;
    let r = rig.claim(&token, "SN-503").await;
    assert_eq!(
        r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let (status, body) = status_and_body(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    assert!(
        rig.world.emulator.issued_claims().is_empty(),
        "no claim asked of AWS"
    );
    let hook: Value = rig.hook(&"a".repeat(64), "SN-503").await;
    assert_eq!(hook["allowProvisioning"], false, "the hook fails closed");
}

#[tokio::test]
async fn a_provisioned_serial_is_409_unless_reprovisioning_is_granted() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    let body: Value = rig.claim(&token, "SN-DONE").await.json().await.unwrap();
    let id = body["certificateId"].as_str().unwrap();
    let allowed: Value = rig.hook(id, "SN-DONE").await;
    assert_eq!(allowed["allowProvisioning"], true);
    let (status, body) = status_and_body(rig.claim(&token, "SN-DONE").await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("AlreadyProvisioned"))
    );
    // A role approved for reprovisioning (a replaced device) gets a claim the hook lets through.
    let replacer = rig.issuer.token("installer-2", &["replacer"]);
    let body: Value = rig.claim(&replacer, "SN-DONE").await.json().await.unwrap();
    let id = body["certificateId"].as_str().expect("a claim");
    let allowed: Value = rig.hook(id, "SN-DONE").await;
    assert_eq!(allowed["allowProvisioning"], true);
    assert_eq!(allowed["parameterOverrides"]["Installer"], "installer-2");
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_at_most_once_per_floor() {
    let rig = Rig::start_with(|c| c.oidc.jwks_refresh_floor_secs = 1).await;
    let fetches = || rig.issuer.fetches.load(std::sync::atomic::Ordering::SeqCst);
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    assert_eq!(rig.claim(&token, "SN-K1").await.status(), 200);
    assert_eq!(fetches(), 1);
    // The issuer rotates: a new key is published. Inside the floor its tokens are refused without a
    // fetch; once the floor has passed, the first one fetches the JWKS again and passes.
    rig.issuer.add_key("rsa-2", false, true);
    let rotated = rig.issuer.token_with("rsa-2", json!({}));
    let mut refused = 0;
    let started = std::time::Instant::now();
    loop {
        let status = rig
            .claim(&rotated, &format!("SN-K2-{refused}"))
            .await
            .status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 401);
        refused += 1;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never refreshed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        fetches(),
        2,
        "one refresh after {refused} refusals inside the floor"
    );
    assert_eq!(rig.state.tokens().jwks_fetches().await, 2);
    // Made-up kids inside the floor cause no further fetches.
    rig.issuer.add_key("ghost", true, false);
    for n in 0..5 {
        let ghost = rig.issuer.token_with("ghost", json!({}));
        assert_eq!(rig.claim(&ghost, &format!("SN-G{n}")).await.status(), 401);
    }
    assert_eq!(fetches(), 2);
}

#[tokio::test]
async fn things_are_shown_to_their_installer_and_admins_only() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    let body: Value = rig.claim(&token, "SN-THING").await.json().await.unwrap();
    let id = body["certificateId"].as_str().unwrap().to_owned();
    rig.hook(&id, "SN-THING").await;
    // Another active certificate on a thing of that name confirms nothing about this device.
    rig.world
        .emulator
        .register_thing("SN-THING", &"b".repeat(64), "pem", "ACTIVE");
    assert_eq!(
        rig.call(Method::GET, "/v1/things/SN-THING", Some(&token), None)
            .await
            .status(),
        200
    );
    let record = rig.state.store().claim(&id).await.unwrap().unwrap();
    assert_eq!(record.status, claimlink_backend::ClaimStatus::Consumed);
    // The device registered (as RegisterThing would have done it) with the hook's certificate.
    rig.world
        .emulator
        .register_thing("SN-THING", &"0".repeat(64), "pem", "ACTIVE");
    let mine = rig
        .call(Method::GET, "/v1/things/SN-THING", Some(&token), None)
        .await;
    let (status, thing) = status_and_body(mine).await;
    assert_eq!(status, 200);
    assert_eq!(thing["thingName"], "SN-THING");
    assert_eq!(
        thing["certificates"],
        json!([{"certificateId": "b".repeat(64), "status": "ACTIVE"},
               {"certificateId": "0".repeat(64), "status": "ACTIVE"}])
    );
    assert!(thing["thingArn"]
        .as_str()
        .unwrap()
        .ends_with(":thing/SN-THING"));
    let record = rig.state.store().claim(&id).await.unwrap().unwrap();
    assert_eq!(record.status, claimlink_backend::ClaimStatus::Confirmed);
    let stranger = rig.issuer.token("installer-2", &[INSTALLER]);
    assert_eq!(
        rig.call(Method::GET, "/v1/things/SN-THING", Some(&stranger), None)
            .await
            .status(),
        404
    );
    let admin = rig.issuer.token("admin-1", &[ADMIN]);
    assert_eq!(
        rig.call(Method::GET, "/v1/things/SN-THING", Some(&admin), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        rig.call(Method::GET, "/v1/things/SN-NONE", Some(&token), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        rig.call(Method::GET, "/v1/things/SN-THING", None, None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn revocation_is_for_the_owner_or_an_admin_and_only_before_use() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    let body: Value = rig.claim(&token, "SN-REV").await.json().await.unwrap();
    let id = body["certificateId"].as_str().unwrap().to_owned();
    let path = format!("/v1/claims/{id}/revoke");
    let stranger = rig.issuer.token("installer-2", &[INSTALLER]);
    assert_eq!(
        rig.call(Method::POST, &path, Some(&stranger), None)
            .await
            .status(),
        404
    );
    let admin = rig.issuer.token("admin-1", &[ADMIN]);
    let (status, body) =
        status_and_body(rig.call(Method::POST, &path, Some(&admin), None).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("REVOKED")));
    // A used claim cannot be revoked.
    let body: Value = rig.claim(&token, "SN-USED").await.json().await.unwrap();
    let used = body["certificateId"].as_str().unwrap().to_owned();
    rig.hook(&used, "SN-USED").await;
    let r = rig
        .call(
            Method::POST,
            &format!("/v1/claims/{used}/revoke"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn the_audit_trail_is_for_admins_as_json_lines_and_append_only() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    assert_eq!(rig.claim(&token, "SN-AUD").await.status(), 200);
    assert_eq!(
        rig.call(Method::GET, "/v1/audit", Some(&token), None)
            .await
            .status(),
        403
    );
    let admin = rig.issuer.token("admin-1", &[ADMIN]);
    let r = rig
        .call(
            Method::GET,
            "/v1/audit?after=0&limit=10",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let e = &lines[0];
    assert_eq!(
        (
            e["actor"].as_str(),
            e["action"].as_str(),
            e["status"].as_str()
        ),
        (Some("installer-1"), Some("claim.issue"), Some("ISSUED"))
    );
    let after = e["id"].as_i64().unwrap();
    let rest = rig
        .call(
            Method::GET,
            &format!("/v1/audit?after={after}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rest.text().await.unwrap(), "");
    // The database itself refuses to rewrite history.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&rig.state.config().database_url)
        .await
        .unwrap();
    assert!(sqlx::query("UPDATE audit SET outcome = 'ok'")
        .execute(&pool)
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit")
        .execute(&pool)
        .await
        .is_err());
    assert_eq!(rig.audit().await.len(), 1);
}

#[tokio::test]
async fn a_keyed_hook_answers_only_with_its_key() {
    let rig = Rig::start_with(|c| c.hook.key = Some("hook-key-1".into())).await;
    let input = rig.hook_input(&"a".repeat(64), "SN-KEY");
    for path in [
        "/v1/hooks/pre-provisioning",
        "/v1/hooks/pre-provisioning?key=wrong",
    ] {
        let r = rig
            .call(Method::POST, path, None, Some(input.clone()))
            .await;
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = rig
        .call(
            Method::POST,
            "/v1/hooks/pre-provisioning?key=hook-key-1",
            None,
            Some(input),
        )
        .await;
    let (status, body) = status_and_body(r).await;
    assert_eq!((status, body), (200, json!({"allowProvisioning": false})));
}
