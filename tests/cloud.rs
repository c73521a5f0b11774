//! The whole hand-over against the emulator: the SDK sends Wi-Fi and the claim to a simulated device,
//! the device joins, provisions itself over MQTT with the claim (fleet provisioning by trusted user),
//! reconnects with its permanent certificate, and the cloud confirms it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use claimlink_core::internal::claim_bundle;
use claimlink_core::internal::proto::{CloudFailureKind, CloudStage};
use claimlink_core::{internal::DeviceSession, DeviceCredentials, SecurityPolicy};
use claimlink_core::{AwsClaimSource, Claim, ThingDirectory, ThingName};
use claimlink_core::{CloudStatus, WifiCredentials};
use claimlink_harness::device::ble::{BleLinkConfig, SimBleLink};
use claimlink_harness::device::{DeviceCloud, SimDevice, SimDeviceConfig};
use claimlink_harness::emulator::{Emulator, EmulatorConfig, Template};
use claimlink_harness::providers::CredentialsSequence;
use rand_core::OsRng;

async fn claim_for(e: &Emulator, template: &str) -> Claim {
    e.claim_via_backend(template).await.expect("claim")
}

/// Runs the hand-over and polls `aws-status` until the device is done or failed.
async fn hand_over(
    e: &Emulator,
    device: Arc<SimDevice>,
    claim: &Claim,
    serial: &str,
) -> CloudStatus {
    let link = Arc::new(SimBleLink::connect(
        device,
        BleLinkConfig {
            interval: Duration::from_millis(1),
            ..BleLinkConfig::default()
        },
    ));
    let session = DeviceSession::establish(
        link,
        &DeviceCredentials::password("abcd1234"),
        &SecurityPolicy::default(),
        &mut OsRng,
    )
    .await
    .expect("session");
    session
        .set_wifi_config(
            &WifiCredentials::new("claimlink-lab", "correct horse battery".into()).expect("wifi"),
        )
        .await
        .expect("wifi");
    let params = BTreeMap::from([("SerialNumber".to_owned(), serial.to_owned())]);
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

fn cloud_device(e: &Emulator, use_csr: bool) -> Arc<SimDevice> {
    let mut config = SimDeviceConfig {
        cloud: Some(DeviceCloud {
            use_csr,
            ..DeviceCloud::trusting(e.ca_pem())
        }),
        ..SimDeviceConfig::default()
    };
    config.world.connect_time = Duration::from_millis(50);
    Arc::new(SimDevice::new(config))
}

#[tokio::test]
async fn a_device_provisions_itself_and_the_cloud_confirms_it() {
    let e = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let aws = AwsClaimSource::builder(
        e.region(),
        Arc::new(CredentialsSequence::new(vec![e.issue_credentials()])),
    )
    .endpoint_url(e.base_url())
    .http_config(e.http_config())
    .build()
    .expect("aws");
    for (use_csr, serial) in [(true, "SN-CSR-1"), (false, "SN-KEYS-1")] {
        let device = cloud_device(&e, use_csr);
        let claim = claim_for(&e, "claimlink-demo").await;
        let status = hand_over(&e, device.clone(), &claim, serial).await;
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
}

#[tokio::test]
async fn a_rejected_register_thing_is_reported_with_aws_words_and_the_claim_is_wiped() {
    let e = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    e.put_template(Template {
        name: "needs-group".into(),
        body: serde_json::json!({
            "Parameters": {"SerialNumber": {"Type": "String"}},
            "Resources": {
                "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}, "ThingGroups": ["not-created"]}},
                "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
            }
        }),
        enabled: true,
    });
    let device = cloud_device(&e, true);
    let claim = claim_for(&e, "needs-group").await;
    let status = hand_over(&e, device.clone(), &claim, "SN-REJ").await;
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
    let e = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    e.put_template(Template::simple_with_policy("with-policy", "DevicePolicy"));
    e.put_policy(
        "DevicePolicy",
        serde_json::json!({"Statement": [{"Effect": "Allow", "Action": ["iot:AssumeRoleWithCertificate"], "Resource": "*"}]}),
    );
    e.create_role_alias("device-role", "arn:aws:iam::123456789012:role/device", 900)
        .expect("alias");
    let device_with_credentials = || {
        let mut config = SimDeviceConfig {
            cloud: Some(DeviceCloud {
                credentials: Some((e.credentials_addr().to_string(), "device-role".to_owned())),
                ..DeviceCloud::trusting(e.ca_pem())
            }),
            ..SimDeviceConfig::default()
        };
        config.world.connect_time = Duration::from_millis(50);
        Arc::new(SimDevice::new(config))
    };
    let status = hand_over(
        &e,
        device_with_credentials(),
        &claim_for(&e, "with-policy").await,
        "SN-CRED",
    )
    .await;
    assert_eq!(status.stage, CloudStage::Done, "{status:?}");
    // Without the policy the thing is provisioned, but the certificate cannot get credentials: reported.
    let status = hand_over(
        &e,
        device_with_credentials(),
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
