//! The endpoint's two payload formats (JSON, CBOR) and two protocols (MQTT 3.1.1, MQTT 5), as AWS IoT
//! Core offers them: part of the `mqtt` test binary.

use super::*;

/// The API in CBOR (`…/cbor` topics, CBOR payloads both ways), as AWS offers it beside JSON: both
/// certificate paths, RegisterThing, and a rejection whose CBOR body carries AWS's error code.
#[tokio::test]
async fn the_api_speaks_cbor_on_the_cbor_topics() {
    let e = emulator().await;
    let ep = endpoint(&e);
    let mut conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "cbor-1")
        .await
        .expect("claim connects");
    conn.set_payload_format(cloud::PayloadFormat::Cbor);
    assert_eq!(
        conn.api_topic("$aws/certificates/create"),
        "$aws/certificates/create/cbor"
    );
    let keys = cloud::create_keys_and_certificate(&mut conn)
        .await
        .expect("CreateKeysAndCertificate in CBOR");
    assert!(keys
        .private_key_pem
        .as_deref()
        .is_some_and(|k| k.contains("PRIVATE KEY")));
    let err = cloud::register_thing(&mut conn, TEMPLATE, "not-a-token", &serial("cbor-1"))
        .await
        .expect_err("a bad token");
    assert!(
        matches!(err, CloudError::Rejected { status_code: 400, ref error_code, .. } if error_code == "InvalidCertificateOwnershipToken"),
        "{err:?}"
    );
    let (thing, _) = new_certificate_then_register(&mut conn, "cbor-1")
        .await
        .expect("CreateCertificateFromCsr and RegisterThing in CBOR");
    assert_eq!(thing.as_deref(), Some("cbor-1"));
    // A JSON reader cannot read those answers: they really are CBOR.
    let mut json_conn = Connection::open(&ep, claim_identity(&e, TEMPLATE).await, "cbor-2")
        .await
        .expect("claim connects");
    let topic = "$aws/certificates/create/cbor";
    let err = json_conn
        .request(topic, &serde_json::json!({}))
        .await
        .expect_err("a JSON client reading a CBOR answer");
    assert!(matches!(err, CloudError::Malformed(_)), "{err:?}");
}

/// MQTT 5 as well as 3.1.1: a claim provisions over MQTT 5, and what its policy does not allow is
/// refused with reason code 0x87 "Not authorized" in the SUBACK or PUBACK, the session going on (an
/// MQTT 3.1.1 client is disconnected instead: it has no way to be told).
#[tokio::test]
async fn mqtt5_clients_provision_and_hear_not_authorized() {
    use claimlink_harness::device::cloud::MqttProtocol;
    use claimlink_harness::emulator::mqtt::MqttVersion;
    let e = emulator().await;
    let ep = endpoint(&e);
    let mut conn = Connection::open_with(
        &ep,
        claim_identity(&e, TEMPLATE).await,
        "five-1",
        MqttProtocol::V5,
    )
    .await
    .expect("claim connects over MQTT 5");
    assert!(
        e.mqtt_events().iter().any(|ev| matches!(ev,
        MqttEvent::Connected { client_id, version: MqttVersion::V5, .. } if client_id == "five-1"))
    );
    let err = conn
        .publish("devices/five-1/telemetry", b"{}")
        .await
        .expect_err("not in the claim's policy");
    assert!(
        matches!(err, CloudError::Connection(ref m) if m.contains("PUBACK for devices/five-1/telemetry: refused (NotAuthorized)")),
        "{err:?}"
    );
    let err = cloud::register_thing(&mut conn, "other-template", "t", &serial("five-1"))
        .await
        .expect_err("another template's topics");
    assert!(
        matches!(err, CloudError::Connection(ref m) if m.contains("refused (NotAuthorized)")),
        "{err:?}"
    );
    // The session went on: the claim's own API works on the same connection.
    let (thing, _) = new_certificate_then_register(&mut conn, "five-1")
        .await
        .expect("provisioned over MQTT 5");
    assert_eq!(thing.as_deref(), Some("five-1"));
    conn.close().await;
}
