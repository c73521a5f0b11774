//! The whole hand-over against the emulator: the SDK sends Wi-Fi and the claim to a simulated device,
//! the device joins, provisions itself over MQTT with the claim (fleet provisioning by trusted user),
//! reconnects with its permanent certificate, and the cloud confirms it.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::internal::claim_bundle;
use claimlink_core::internal::proto::{CloudFailureKind, CloudStage};
use claimlink_core::{Claim, CloudStatus, DeviceLink, ThingDirectory, ThingName};
use claimlink_harness::device::cloud::{MqttProtocol, PayloadFormat};
use claimlink_harness::emulator::mqtt::{MqttEvent, MqttVersion};
use claimlink_harness::emulator::{Emulator, Template};
use claimlink_harness::testing::{self, SimDeviceBuilder};

async fn claim_for(e: &Emulator, template: &str) -> Claim {
    e.claim_via_backend(template).await.expect("claim")
}

/// Runs the hand-over over `link` and polls `aws-status` until the device is done or failed.
async fn hand_over(
    e: &Emulator,
    link: Arc<dyn DeviceLink>,
    claim: &Claim,
    serial: &str,
) -> CloudStatus {
    let session = testing::sec2_session(link).await;
    session
        .set_wifi_config(&testing::lab_wifi())
        .await
        .expect("wifi");
    let params = testing::serial_parameters(serial);
    session
        .send_claim(&claim_bundle(claim, &e.mqtt_addr().to_string(), &params))
        .await
        .expect("claim sent");
    session.apply_wifi_config().await.expect("apply");
    let mut seen = Vec::new();
    for _ in 0..400 {
        let status = session.cloud_status().await.expect("status");
        if seen.last() != Some(&status.stage) {
            seen.push(status.stage);
        }
        if matches!(status.stage, CloudStage::Done | CloudStage::Failed) {
            // Stages only move forward.
            let mut sorted = seen.clone();
            sorted.sort();
            assert_eq!(seen, sorted, "stages went backwards: {seen:?}");
            return status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the device never finished: {seen:?}");
}

/// Devices with the cloud half, trusting `e`, that join in 50 ms, behind links that take 1 ms a
/// round trip.
fn cloud_devices(e: &Emulator) -> SimDeviceBuilder {
    SimDeviceBuilder::trusting(e)
        .joins_in(Duration::from_millis(50))
        .interval(Duration::from_millis(1))
}

#[tokio::test]
async fn a_device_provisions_itself_and_the_cloud_confirms_it() {
    let e = testing::emulator().await;
    let aws = testing::fresh_aws_source(&e);
    // Both certificate paths, each in both of the API's payload formats (AWS: JSON and CBOR).
    // and over MQTT 5 as well as 3.1.1.
    let (json, cbor) = (PayloadFormat::Json, PayloadFormat::Cbor);
    let (v311, v5) = (MqttProtocol::V311, MqttProtocol::V5);
    for (use_csr, format, protocol, serial) in [
        (true, json, v311, "SN-CSR-1"),
        (false, json, v311, "SN-KEYS-1"),
        (true, cbor, v311, "SN-CSR-CBOR"),
        (false, cbor, v311, "SN-KEYS-CBOR"),
        (true, json, v5, "SN-CSR-MQTT5"),
        (false, cbor, v5, "SN-KEYS-CBOR-MQTT5"),
    ] {
        let (device, link) = cloud_devices(&e)
            .cloud(|cloud| {
                cloud.use_csr = use_csr;
                cloud.payload_format = format;
                cloud.mqtt_protocol = protocol;
            })
            .build();
        let claim = claim_for(&e, "claimlink-demo").await;
        let status = hand_over(&e, link, &claim, serial).await;
        assert_eq!(status.stage, CloudStage::Done, "{status:?}");
        assert_eq!(status.thing_name.as_deref(), Some(serial));
        let certificate_id = status
            .certificate_id
            .clone()
            .expect("permanent certificate id");
        assert_ne!(certificate_id, claim.certificate_id());
        assert!(!device.holds_claim(), "the claim is wiped once used");
        // Confirmed by the cloud, not only by the device.
        let thing = aws
            .describe_thing(&ThingName::new(serial).expect("name"))
            .await
            .expect("ok")
            .expect("thing exists");
        assert!(thing.has_active_certificate(&certificate_id), "{thing:?}");
    }
    // The CBOR devices spoke CBOR: their requests were answered on the `…/cbor` topics.
    let answered: Vec<String> = e
        .mqtt_events()
        .into_iter()
        .filter_map(|ev| match ev {
            MqttEvent::Answered {
                topic,
                accepted: true,
                ..
            } => Some(topic),
            _ => None,
        })
        .collect();
    // The MQTT 5 devices connected with MQTT 5: their claim and their permanent certificate.
    let mqtt5_connections = e
        .mqtt_events()
        .into_iter()
        .filter(|ev| {
            matches!(
                ev,
                MqttEvent::Connected {
                    version: MqttVersion::V5,
                    ..
                }
            )
        })
        .count();
    assert_eq!(mqtt5_connections, 4);
    for topic in [
        "$aws/certificates/create-from-csr/cbor",
        "$aws/certificates/create/cbor",
        "$aws/provisioning-templates/claimlink-demo/provision/cbor",
        "$aws/certificates/create-from-csr/json",
    ] {
        assert!(answered.iter().any(|t| t == topic), "{topic}: {answered:?}");
    }
}

#[tokio::test]
async fn a_rejected_register_thing_is_reported_with_aws_words_and_the_claim_is_wiped() {
    let e = testing::emulator().await;
    e.put_template(testing::template_with_thing_group(
        "needs-group",
        "not-created",
    ));
    let (device, link) = cloud_devices(&e).build();
    let claim = claim_for(&e, "needs-group").await;
    let status = hand_over(&e, link, &claim, "SN-REJ").await;
    assert_eq!(status.stage, CloudStage::Failed);
    let failure = status.failure.expect("failure");
    assert_eq!(failure.kind, CloudFailureKind::RegisterThingRejected);
    assert_eq!(failure.status_code, 400);
    assert_eq!(failure.error_code, "InvalidParameters");
    assert!(
        failure.error_message.contains("not-created"),
        "{}",
        failure.error_message
    );
    assert!(!device.holds_claim());
    assert!(e.thing("SN-REJ").is_none());
}

#[tokio::test]
async fn the_device_proves_its_certificate_at_the_credentials_provider() {
    let e = testing::emulator().await;
    e.put_template(Template::simple_with_policy("with-policy", "DevicePolicy"));
    e.put_policy(
        "DevicePolicy",
        serde_json::json!({"Statement": [{"Effect": "Allow", "Action": ["iot:AssumeRoleWithCertificate"], "Resource": "*"}]}),
    );
    e.create_role_alias("device-role", "arn:aws:iam::123456789012:role/device", 900)
        .expect("alias");
    let devices_with_credentials = cloud_devices(&e).cloud(|cloud| {
        cloud.credentials = Some((e.credentials_addr().to_string(), "device-role".to_owned()))
    });
    let status = hand_over(
        &e,
        devices_with_credentials.build().1,
        &claim_for(&e, "with-policy").await,
        "SN-CRED",
    )
    .await;
    assert_eq!(status.stage, CloudStage::Done, "{status:?}");
    // Without the policy the thing is provisioned, but the certificate cannot get credentials: reported.
    let status = hand_over(
        &e,
        devices_with_credentials.build().1,
        &claim_for(&e, "claimlink-demo").await,
        "SN-NOCRED",
    )
    .await;
    assert_eq!(status.stage, CloudStage::Failed);
    let failure = status.failure.expect("failure");
    assert_eq!(
        (failure.kind, failure.status_code),
        (CloudFailureKind::CredentialsProvider, 403)
    );
    assert_eq!(status.thing_name.as_deref(), Some("SN-NOCRED"));
}
