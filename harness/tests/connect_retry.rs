//! The simulated device's fleet-provisioning flow keeps trying to connect while its claim lasts
//! (docs/protocol.md's firmware guidance): an endpoint that answers only after a while still
//! provisions the device, and one that never answers fails when the claim would expire, saying it
//! timed out or could not connect (not that AWS refused it) and how many attempts it made. Without a
//! deadline (a caller that wants one attempt), one attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use claimlink_core::internal::proto::CloudFailureKind;
use claimlink_harness::device::cloud::{fleet_provision, FlowInput};
use claimlink_harness::testing::TEMPLATE;
use claimlink_harness::testing::{claim_identity, emulator, mqtt_endpoint, serial_parameters};
use tokio::net::{TcpListener, TcpStream};

/// A port with nothing listening on it (bound, then closed).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

#[tokio::test]
async fn a_broker_that_answers_late_still_provisions_the_device() {
    let e = emulator().await;
    let broker = e.mqtt_addr();
    // A relay in front of the broker that holds its first connection silent (the device's first
    // CONNECT times out) and passes the next ones through.
    let relay = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut endpoint = mqtt_endpoint(&e);
    endpoint.port = relay.local_addr().expect("addr").port();
    endpoint.timeout = Duration::from_secs(2);
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut inbound, _)) = relay.accept().await {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                held.push(inbound);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(broker).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let input = FlowInput {
        endpoint,
        claim: claim_identity(&e, TEMPLATE).await,
        client_id: "late-broker".into(),
        template: TEMPLATE.into(),
        parameters: serial_parameters("late-broker"),
        use_csr: true,
        retry_until: Some(Instant::now() + Duration::from_secs(120)),
        payload_format: claimlink_harness::device::cloud::PayloadFormat::Json,
        mqtt_protocol: claimlink_harness::device::cloud::MqttProtocol::V311,
    };
    let done = fleet_provision(input, |_| {})
        .await
        .expect("the device provisions once the broker answers");
    assert_eq!(done.thing_name, "late-broker");
    // The silent first connection, the claim's second, the permanent certificate's.
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_broker_that_never_answers_fails_when_the_claim_would_expire() {
    let e = emulator().await;
    let mut endpoint = mqtt_endpoint(&e);
    endpoint.port = closed_port().await;
    let until = Instant::now() + Duration::from_millis(1500);
    let input = FlowInput {
        endpoint,
        claim: claim_identity(&e, TEMPLATE).await,
        client_id: "no-broker".into(),
        template: TEMPLATE.into(),
        parameters: serial_parameters("no-broker"),
        use_csr: true,
        retry_until: Some(until),
        payload_format: claimlink_harness::device::cloud::PayloadFormat::Json,
        mqtt_protocol: claimlink_harness::device::cloud::MqttProtocol::V311,
    };
    let failure = fleet_provision(input, |_| {})
        .await
        .err()
        .expect("nothing answers");
    assert!(
        Instant::now() < until + Duration::from_secs(1),
        "gave up by the claim's expiry"
    );
    assert_eq!(failure.kind, CloudFailureKind::TlsRejected);
    assert_eq!((failure.status_code, failure.error_code.as_str()), (0, ""));
    assert!(
        failure.error_message.contains("attempts over"),
        "{}",
        failure.error_message
    );
    assert!(
        !failure.error_message.contains("refused the device"),
        "{}",
        failure.error_message
    );
}

#[tokio::test]
async fn without_a_deadline_the_device_tries_once() {
    let e = emulator().await;
    let mut endpoint = mqtt_endpoint(&e);
    endpoint.port = closed_port().await;
    let input = FlowInput {
        endpoint,
        claim: claim_identity(&e, TEMPLATE).await,
        client_id: "once".into(),
        template: TEMPLATE.into(),
        parameters: serial_parameters("once"),
        use_csr: true,
        retry_until: None,
        payload_format: claimlink_harness::device::cloud::PayloadFormat::Json,
        mqtt_protocol: claimlink_harness::device::cloud::MqttProtocol::V311,
    };
    let failure = fleet_provision(input, |_| {})
        .await
        .err()
        .expect("nothing answers");
    assert!(
        !failure.error_message.contains("attempts"),
        "{}",
        failure.error_message
    );
}
