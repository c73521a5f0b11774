//! The emulator's MQTT endpoint and fleet-provisioning API, driven by the device simulator's cloud
//! client over MQTT + mutual TLS on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use claimlink_harness::device::cloud::{self, CloudError, Connection};
use claimlink_harness::emulator::mqtt::MqttEvent;
use claimlink_harness::testing::template_with_thing_group;
use claimlink_harness::testing::{certificate_identity as identity_from, claim_identity, emulator};
use claimlink_harness::testing::{
    mqtt_endpoint as endpoint, serial_parameters as serial, TEMPLATE,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[path = "mqtt_support/protocols.rs"]
mod protocols;

fn device_key_and_csr() -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "device");
    let csr = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    (key, csr)
}

/// A new certificate from a CSR, then RegisterThing with it for `serial_number`.
async fn new_certificate_then_register(
    conn: &mut Connection,
    serial_number: &str,
) -> Result<(Option<String>, serde_json::Value), CloudError> {
    let cert = cloud::create_certificate_from_csr(conn, &device_key_and_csr().1)
        .await
        .expect("certificate");
    cloud::register_thing(
        conn,
        TEMPLATE,
        &cert.ownership_token,
        &serial(serial_number),
    )
    .await
}

#[tokio::test]
async fn csr_path_registers_the_thing_and_the_new_certificate_connects() {
    let e = emulator().await;
    let ep = endpoint(&e);
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "sn-001")
        .await
        .expect("claim connects");
    let (key, csr) = device_key_and_csr();
    let cert = cloud::create_certificate_from_csr(&mut conn, &csr)
        .await
        .expect("certificate");
    assert_eq!(
        e.certificate_status(&cert.certificate_id).as_deref(),
        Some("PENDING_ACTIVATION")
    );
    let (thing, config) = cloud::register_thing(
        &mut conn,
        TEMPLATE,
        &cert.ownership_token,
        &serial("sn-001"),
    )
    .await
    .expect("registered");
    assert_eq!(thing.as_deref(), Some("sn-001"));
    assert!(config.is_object());
    conn.close().await;
    assert_eq!(
        e.certificate_status(&cert.certificate_id).as_deref(),
        Some("ACTIVE")
    );
    let registered = e.thing("sn-001").expect("thing exists");
    assert_eq!(registered.principals, vec![cert.certificate_id.clone()]);
    // The permanent certificate (with the key that never left the device) now connects.
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let conn = Connection::open(
        &ep,
        identity_from(&cert.certificate_pem, &key_der),
        "sn-001",
    )
    .await
    .expect("permanent certificate connects");
    conn.close().await;
    // The token was single use.
    let mut again = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "sn-001b")
        .await
        .expect("claim connects");
    let err = cloud::register_thing(
        &mut again,
        TEMPLATE,
        &cert.ownership_token,
        &serial("sn-001"),
    )
    .await
    .expect_err("token reused");
    assert!(
        matches!(err, CloudError::Rejected { ref error_code, status_code: 400, .. } if error_code == "InvalidCertificateOwnershipToken"),
        "{err:?}"
    );
}

#[tokio::test]
async fn keys_path_works_and_an_inactive_certificate_cannot_connect() {
    let e = emulator().await;
    let ep = endpoint(&e);
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "sn-002")
        .await
        .expect("claim connects");
    let cert = cloud::create_keys_and_certificate(&mut conn)
        .await
        .expect("keys");
    let key_pem = cert.private_key_pem.clone().expect("AWS made the key");
    assert!(key_pem.contains("RSA PRIVATE KEY"));
    let key = || PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    // Not registered yet: PENDING_ACTIVATION (AWS's status until RegisterThing), refused.
    assert!(
        Connection::open(&ep, identity_from(&cert.certificate_pem, &key()), "early")
            .await
            .is_err()
    );
    cloud::register_thing(
        &mut conn,
        TEMPLATE,
        &cert.ownership_token,
        &serial("sn-002"),
    )
    .await
    .expect("registered");
    conn.close().await;
    Connection::open(&ep, identity_from(&cert.certificate_pem, &key()), "sn-002")
        .await
        .expect("now it connects")
        .close()
        .await;
}

#[tokio::test]
async fn register_thing_rejections_carry_aws_error_codes() {
    let e = emulator().await;
    e.put_template(template_with_thing_group("grouped", "fleet-a"));
    let ep = endpoint(&e);
    // The claim is for "grouped": its claim policy allows that template's topics only.
    let mut conn = Connection::open(&ep, claim_identity(&e, "grouped").await, "sn-003")
        .await
        .expect("claim connects");
    let (_key, csr) = device_key_and_csr();
    let cert = cloud::create_certificate_from_csr(&mut conn, &csr)
        .await
        .expect("certificate");
    let code = |r: Result<_, CloudError>| match r {
        Err(CloudError::Rejected { error_code, .. }) => error_code,
        other => format!("{:?}", other.map(|_| ())),
    };
    assert_eq!(
        code(cloud::register_thing(&mut conn, "grouped", "not-a-token", &serial("x")).await),
        "InvalidCertificateOwnershipToken"
    );
    assert_eq!(
        code(
            cloud::register_thing(
                &mut conn,
                "grouped",
                &cert.ownership_token,
                &BTreeMap::new()
            )
            .await
        ),
        "InvalidParameters"
    );
    // The claim's template disabled after the claim was issued.
    e.set_template_enabled("grouped", false);
    assert_eq!(
        code(
            cloud::register_thing(&mut conn, "grouped", &cert.ownership_token, &serial("x")).await
        ),
        "ResourceNotFound"
    );
    e.set_template_enabled("grouped", true);
    assert_eq!(
        code(
            cloud::register_thing(&mut conn, "grouped", &cert.ownership_token, &serial("x")).await
        ),
        "InvalidParameters"
    );
    assert!(
        e.thing("x").is_none(),
        "nothing was created by a rejected request"
    );
    e.create_thing_group("fleet-a");
    let (thing, _) =
        cloud::register_thing(&mut conn, "grouped", &cert.ownership_token, &serial("x"))
            .await
            .expect("now it works");
    assert_eq!(thing.as_deref(), Some("x"));
    assert_eq!(
        e.thing("x").map(|t| t.groups),
        Some(vec!["fleet-a".to_owned()])
    );
    // An expired ownership token.
    e.set_ownership_token_lifetime(Duration::ZERO);
    let cert = cloud::create_certificate_from_csr(&mut conn, &device_key_and_csr().1)
        .await
        .expect("certificate");
    assert_eq!(
        code(
            cloud::register_thing(&mut conn, "grouped", &cert.ownership_token, &serial("y")).await
        ),
        "InvalidCertificateOwnershipToken"
    );
    // Its certificate was never activated: once the token has expired, the certificate is deleted.
    assert_eq!(
        e.certificate_status(&cert.certificate_id).as_deref(),
        Some("PENDING_ACTIVATION")
    );
    let _next = cloud::create_certificate_from_csr(&mut conn, &device_key_and_csr().1)
        .await
        .expect("certificate");
    assert_eq!(e.certificate_status(&cert.certificate_id), None);
    // A bad CSR.
    let err = cloud::create_certificate_from_csr(
        &mut conn,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .await
    .expect_err("bad csr");
    assert!(
        matches!(
            err,
            CloudError::Rejected {
                status_code: 400,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_claim_may_only_use_provisioning_topics() {
    let e = emulator().await;
    let mut conn = Connection::open(&endpoint(&e), claim_identity(&e, TEMPLATE).await, "sneaky")
        .await
        .expect("claim connects");
    // The broker disconnects the claim instead of acknowledging the publish.
    let err = conn
        .publish("devices/sneaky/telemetry", b"{}")
        .await
        .expect_err("no PUBACK for a forbidden topic");
    assert!(
        matches!(err, CloudError::Connection(ref m) if m.contains("closed while awaiting PUBACK")),
        "{err:?}"
    );
    assert!(
        conn.closed_within(Duration::from_secs(5)).await,
        "the broker disconnects the claim"
    );
    assert!(e.mqtt_events().iter().any(
        |ev| matches!(ev, MqttEvent::Forbidden { topic, .. } if topic == "devices/sneaky/telemetry")
    ));
}

/// A claim is bound to the template it was issued for (AWS's claim policy names that template): the
/// provision topics of another template disconnect it, with no SUBACK or PUBACK, as AWS does with an
/// MQTT 3.1.1 client its policy does not allow.
#[tokio::test]
async fn a_claim_may_not_use_another_templates_provision_topics() {
    let e = emulator().await;
    e.put_template(claimlink_harness::emulator::Template::simple(
        "other-template",
    ));
    let ep = endpoint(&e);
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "bound")
        .await
        .expect("claim connects");
    let cert = cloud::create_certificate_from_csr(&mut conn, &device_key_and_csr().1)
        .await
        .expect("the certificate topics are the claim's");
    let err = cloud::register_thing(
        &mut conn,
        "other-template",
        &cert.ownership_token,
        &serial("bound"),
    )
    .await
    .expect_err("another template's RegisterThing");
    assert!(
        matches!(err, CloudError::Connection(ref m)
            if m.contains("closed while awaiting SUBACK for $aws/provisioning-templates/other-template/provision/json/accepted")),
        "{err:?}"
    );
    assert!(e.mqtt_events().iter().any(|ev| matches!(ev,
        MqttEvent::Forbidden { topic, .. } if topic.starts_with("$aws/provisioning-templates/other-template/"))));
    assert!(e.thing("bound").is_none());
    // A publish without the subscription is refused the same way: no PUBACK, disconnected.
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "bound-2")
        .await
        .expect("claim connects");
    let err = conn
        .publish(
            "$aws/provisioning-templates/other-template/provision/json",
            b"{}",
        )
        .await
        .expect_err("no PUBACK");
    assert!(
        matches!(err, CloudError::Connection(ref m) if m.contains("closed while awaiting PUBACK")),
        "{err:?}"
    );
    // The claim's own template still works, on a new connection with a new claim.
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "bound-3")
        .await
        .expect("claim connects");
    let (thing, _) = new_certificate_then_register(&mut conn, "bound-3")
        .await
        .expect("its own template");
    assert_eq!(thing.as_deref(), Some("bound-3"));
}

#[tokio::test]
async fn an_expired_claim_is_refused_at_connect() {
    let e = emulator().await;
    // Long enough to be issued and accepted on a loaded machine (the key is generated on the request
    // path); then wait for the certificate's end, on the clock the broker checks it against.
    e.set_claim_validity(Duration::from_secs(6));
    let claim = e
        .claim_via_backend(TEMPLATE)
        .await
        .expect("the emulator issues a claim");
    let not_after = claim.certificate().not_after();
    let identity = cloud::MqttIdentity::from_claim(&claim).expect("a claim is an MQTT identity");
    while std::time::SystemTime::now() <= not_after + Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = Connection::open(&endpoint(&e), identity, "late")
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, CloudError::Connection(_)), "{err:?}");
    assert!(!e
        .mqtt_events()
        .iter()
        .any(|ev| matches!(ev, MqttEvent::Connected { .. })));
}

#[tokio::test]
async fn concurrent_devices_never_see_each_others_replies() {
    let e = emulator().await;
    let ep = endpoint(&e);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let ep = ep.clone();
        let identity = claim_identity(&e, TEMPLATE).await;
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(&ep, identity, &format!("dev-{i}"))
                .await
                .expect("connects");
            let (key, csr) = device_key_and_csr();
            let cert = cloud::create_certificate_from_csr(&mut conn, &csr)
                .await
                .expect("certificate");
            // The certificate is for this device's own key.
            let spki = key.public_key_raw();
            let der = CertificateDer::from_pem_slice(cert.certificate_pem.as_bytes())
                .expect("pem")
                .to_vec();
            assert!(
                der.windows(spki.len()).any(|w| w == spki),
                "certificate {i} is for its own key"
            );
            cloud::register_thing(
                &mut conn,
                TEMPLATE,
                &cert.ownership_token,
                &serial(&format!("dev-{i}")),
            )
            .await
            .expect("registered");
            // Nothing else arrives for this client.
            assert!(!conn.closed_within(Duration::from_millis(300)).await);
            conn.close().await;
            cert.certificate_id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    let answered = e
        .mqtt_events()
        .iter()
        .filter(|ev| matches!(ev, MqttEvent::Answered { accepted: true, .. }))
        .count();
    assert_eq!(answered, 8);
}

#[tokio::test]
async fn pre_provisioning_hooks_allow_override_deny_and_time_out() {
    use claimlink_harness::emulator::PreProvisioningHook;
    use std::sync::Mutex;
    let e = emulator().await;
    let ep = endpoint(&e);
    let seen: Arc<Mutex<Option<serde_json::Value>>> = Arc::new(Mutex::new(None));
    let record = seen.clone();
    e.set_pre_provisioning_hook(
        TEMPLATE,
        Some(PreProvisioningHook::Rule(Arc::new(move |input| {
            *record.lock().expect("lock") = Some(input.clone());
            let serial = input["parameters"]["SerialNumber"].as_str().unwrap_or("");
            if serial.starts_with("blocked") {
                Ok(serde_json::json!({"allowProvisioning": false}))
            } else {
                Ok(serde_json::json!({"allowProvisioning": true, "parameterOverrides": {"SerialNumber": format!("{serial}-approved")}}))
            }
        }))),
    );
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "hooked")
        .await
        .expect("connects");
    let cert = cloud::create_certificate_from_csr(&mut conn, &device_key_and_csr().1)
        .await
        .expect("certificate");
    let (thing, _) =
        cloud::register_thing(&mut conn, TEMPLATE, &cert.ownership_token, &serial("sn-7"))
            .await
            .expect("allowed");
    assert_eq!(
        thing.as_deref(),
        Some("sn-7-approved"),
        "the hook's parameterOverrides apply"
    );
    // AWS's documented hook input (developerguide/pre-provisioning-hook.html), exactly: these six
    // fields, the parameters as the device sent them (before the hook's overrides).
    let input = seen.lock().expect("lock").clone().expect("hook called");
    let claim_id = e
        .issued_claims()
        .last()
        .map(|c| c.certificate_id.clone())
        .expect("a claim was issued");
    assert_eq!(
        input,
        serde_json::json!({
            "claimCertificateId": claim_id,
            "certificateId": cert.certificate_id,
            "certificatePem": cert.certificate_pem,
            "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/claimlink-demo",
            "clientId": "hooked",
            "parameters": {"SerialNumber": "sn-7"},
        })
    );

    let err = new_certificate_then_register(&mut conn, "blocked-1")
        .await
        .expect_err("denied");
    assert!(
        matches!(err, CloudError::Rejected { status_code: 403, ref error_code, .. } if error_code == "ACCESS_DENIED"),
        "{err:?}"
    );
    assert!(e.thing("blocked-1").is_none() && e.thing("blocked-1-approved").is_none());

    // An HTTP hook on 127.0.0.1 that answers, then one that is too slow.
    async fn hook_server(delay: Duration) -> String {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |axum::Json(input): axum::Json<serde_json::Value>| async move {
                    tokio::time::sleep(delay).await;
                    let ok = input.get("certificatePem").is_some();
                    axum::Json(serde_json::json!({"allowProvisioning": ok}))
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }
    e.set_pre_provisioning_hook(
        TEMPLATE,
        Some(PreProvisioningHook::Url(hook_server(Duration::ZERO).await)),
    );
    new_certificate_then_register(&mut conn, "sn-http")
        .await
        .expect("HTTP hook allows");
    e.set_hook_timeout(Duration::from_millis(300));
    e.set_pre_provisioning_hook(
        TEMPLATE,
        Some(PreProvisioningHook::Url(
            hook_server(Duration::from_secs(2)).await,
        )),
    );
    let err = new_certificate_then_register(&mut conn, "sn-slow")
        .await
        .expect_err("timed out");
    assert!(
        matches!(err, CloudError::Rejected { status_code: 403, ref error_code, .. } if error_code == "ACCESS_DENIED"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_claim_connection_has_a_window_to_obtain_its_certificate() {
    let e = emulator().await;
    e.set_claim_connection_window(Duration::from_millis(200));
    let mut conn = Connection::open(
        &endpoint(&e),
        claim_identity(&e, TEMPLATE).await,
        "slowpoke",
    )
    .await
    .expect("connects");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = cloud::create_certificate_from_csr(&mut conn, &device_key_and_csr().1)
        .await
        .expect_err("too late");
    assert!(
        matches!(
            err,
            CloudError::Rejected {
                status_code: 403,
                ..
            }
        ),
        "{err:?}"
    );
}
