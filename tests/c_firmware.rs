//! The C firmware component (firmware/esp-idf/claimlink_device) as the firmware of simulated devices,
//! provisioned end to end by the real SDK against the emulator. The simulator keeps the link,
//! protocomm security and the Wi-Fi endpoints; the component's POSIX host program gets the decrypted
//! `aws-claim` / `aws-status` requests and the Wi-Fi events over a pipe and does the cloud half itself
//! (MQTT over mutual TLS with libmosquitto, fleet provisioning, the credentials provider).
//!
//! The host program is built with CMake on first use (`testing::c_firmware_host`); `./scripts/test`
//! installs the Debian packages it needs.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::internal::proto::{CloudFailureKind, CloudStage};
use claimlink_core::{DeviceCredentials, NoListener, ProvisionError, Stage, WifiCredentials};
use claimlink_harness::device::SimDevice;
use claimlink_harness::emulator::Template;
use claimlink_harness::testing::{self, expected_thing_options as options, lab_wifi};
use claimlink_harness::testing::{EventRecorder, SimDeviceBuilder, DEVICE_PASSWORD, WIPE_WAIT};
use claimlink_harness::world::World;

/// Device `index` of `world`, running the C component.
fn c_device(world: &World, index: u8) -> SimDeviceBuilder {
    SimDeviceBuilder::in_world(world, index).c_firmware()
}

/// Checks the component's log: it logged its way through the flow, and no byte of any claim key the
/// emulator issued (PEM body lines, or the DER as hex) is in it.
fn assert_log_has_no_key(world: &World, device: &SimDevice) {
    let log = device.firmware_log().join("\n");
    assert!(!log.is_empty(), "the component logs");
    let claims = world.emulator.issued_claims();
    assert!(!claims.is_empty());
    for claim in claims {
        let pem = claim.private_key_pem.as_str();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(
                !log.contains(line),
                "a claim key line is in the component's log"
            );
        }
        let (_, der) = der::pem::decode_vec(pem.as_bytes()).expect("the emulator's key PEM");
        let hex = hex::encode(der);
        for window in hex.as_bytes().chunks(32) {
            let piece = std::str::from_utf8(window).expect("hex");
            assert!(
                piece.len() < 32 || !log.to_lowercase().contains(piece),
                "claim key bytes (hex) are in the component's log"
            );
        }
    }
}

#[tokio::test]
async fn the_c_firmware_provisions_over_ble_with_a_csr_and_the_cloud_confirms_it() {
    let world = testing::quick_world().await;
    let (device, link) = c_device(&world, 1).build();
    let events = EventRecorder::new();
    let session = world
        .provisioner
        .connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &events)
        .await
        .expect("session");
    let done = session
        .provision(&lab_wifi(), &options("SN-C-CSR"), &events)
        .await
        .expect("provisioned by the C firmware");
    assert_eq!(done.thing_name, "SN-C-CSR");
    let certificate = done.certificate_id.clone().expect("certificate id");
    assert_eq!(
        world.emulator.certificate_status(&certificate).as_deref(),
        Some("ACTIVE")
    );
    assert_eq!(events.stages(), testing::EVERY_STAGE.to_vec());
    assert!(
        testing::eventually(WIPE_WAIT, || !device.holds_claim()).await,
        "the component wipes the claim once used"
    );
    let status = device.firmware_status().expect("status");
    assert_eq!(status.stage, CloudStage::Done as i32);
    assert_eq!(status.certificate_id, certificate);
    assert_eq!(device.firmware_error(), None);
    assert_log_has_no_key(&world, &device);
}

#[tokio::test]
async fn the_c_firmware_provisions_over_softap_with_keys_made_by_aws() {
    let world = testing::quick_world().await;
    let device = c_device(&world, 2)
        .cloud(|cloud| cloud.use_csr = false)
        .device();
    let (_server, link) = testing::http_link_to(&device).await;
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options("SN-C-KEYS"), &NoListener)
        .await
        .expect("provisioned by the C firmware");
    assert_eq!(done.thing_name, "SN-C-KEYS");
    let certificate = done.certificate_id.expect("certificate id");
    assert_eq!(
        world.emulator.certificate_status(&certificate).as_deref(),
        Some("ACTIVE")
    );
    assert!(!device.holds_claim());
    assert_log_has_no_key(&world, &device);
}

#[tokio::test]
async fn a_wrong_passphrase_is_retried_with_the_claim_the_c_firmware_kept() {
    let world = testing::quick_world().await;
    let (device, link) = c_device(&world, 3).build();
    let session = testing::connect(&world.provisioner, link).await;
    let wrong = WifiCredentials::new("claimlink-lab", "wrong horse battery".into()).expect("wifi");
    let err = session
        .provision(&wrong, &options("SN-C-RETRY"), &NoListener)
        .await
        .expect_err("wrong passphrase");
    assert!(matches!(err, ProvisionError::WifiAuthFailed), "{err:?}");
    assert!(device.holds_claim(), "the claim stays for the retry");
    let events = EventRecorder::new();
    let done = session
        .provision(&lab_wifi(), &options("SN-C-RETRY"), &events)
        .await
        .expect("second try");
    assert_eq!(done.thing_name, "SN-C-RETRY");
    assert_eq!(
        world.emulator.issued_claims().len(),
        1,
        "the claim was reused"
    );
    assert!(!events.stages().contains(&Stage::ClaimRequested));
}

#[tokio::test]
async fn a_template_rejection_from_the_c_firmware_reaches_the_app_in_aws_words() {
    let world = testing::quick_world().await;
    let device =
        testing::assert_template_rejection_in_aws_words(&world, c_device(&world, 4), "SN-C-REJ")
            .await;
    assert!(
        testing::eventually(WIPE_WAIT, || !device.holds_claim()).await,
        "a failed cloud half wipes the claim"
    );
}

#[tokio::test]
async fn a_claim_that_expires_before_the_c_firmware_is_online_is_never_used() {
    let mut world_options = testing::quick_world_options();
    // Six seconds: enough for the claim to reach the device on a loaded machine, not enough for a
    // device whose clock sync takes nine.
    world_options.claim_validity = Duration::from_secs(6);
    world_options.safety_margin = Duration::from_secs(1);
    let world = testing::start_world(world_options).await;
    let (device, link) = c_device(&world, 5)
        .cloud(|cloud| cloud.time_sync = Duration::from_secs(9))
        .build();
    let session = testing::connect(&world.provisioner, link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-C-LATE"), &NoListener)
        .await
        .expect_err("too slow");
    assert!(
        matches!(err, ProvisionError::DeadlineMissed { .. }),
        "{err:?}"
    );
    // The component itself sees the claim run out and reports it, without connecting with it.
    let mut status = device.firmware_status().expect("status");
    for _ in 0..800 {
        if status.stage == CloudStage::Failed as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        status = device.firmware_status().expect("status");
    }
    assert_eq!(status.stage, CloudStage::Failed as i32, "{status:?}");
    let failure = status.failure.expect("failure");
    assert_eq!(failure.kind, CloudFailureKind::ClaimExpired as i32);
    assert!(!device.holds_claim());
    assert!(world.emulator.thing("SN-C-LATE").is_none());
}

#[tokio::test]
async fn cancelling_wipes_the_claim_from_the_c_firmware() {
    let world = testing::quick_world().await;
    let (device, link) = c_device(&world, 6).joins_in(Duration::from_secs(3)).build();
    let session = Arc::new(testing::connect(&world.provisioner, link).await);
    let (result, holds) =
        testing::cancel_once_the_device_holds_the_claim(session, &device, "SN-C-CANCEL").await;
    assert!(
        matches!(result, Err(ProvisionError::Cancelled)),
        "{result:?}"
    );
    assert!(!holds, "CmdClaimAbort wiped the claim");
}

#[tokio::test]
async fn the_c_firmware_proves_its_certificate_at_the_credentials_provider() {
    let world = testing::quick_world().await;
    let e = &world.emulator;
    e.put_template(Template::simple_with_policy(
        testing::TEMPLATE,
        "DevicePolicy",
    ));
    e.put_policy(
        "DevicePolicy",
        serde_json::json!({"Statement": [{"Effect": "Allow", "Action": ["iot:AssumeRoleWithCertificate"], "Resource": "*"}]}),
    );
    e.create_role_alias("device-role", "arn:aws:iam::123456789012:role/device", 900)
        .expect("alias");
    let with_credentials = |alias: &str| {
        let target = e.credentials_addr().to_string();
        let alias = alias.to_owned();
        c_device(&world, 7).cloud(move |cloud| cloud.credentials = Some((target, alias)))
    };
    let (_device, link) = with_credentials("device-role").build();
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options("SN-C-CRED"), &NoListener)
        .await
        .expect("provisioned and proven");
    assert_eq!(done.thing_name, "SN-C-CRED");

    // A role alias that does not exist: the thing is registered, the proof fails, and the app hears
    // of it in the credentials provider's words.
    let (device, link) = with_credentials("no-such-role").build();
    let session = testing::connect(&world.provisioner, link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-C-NOCRED"), &NoListener)
        .await
        .expect_err("the proof fails");
    match err {
        ProvisionError::CloudRejected {
            kind, thing_name, ..
        } => {
            assert_eq!(kind, CloudFailureKind::CredentialsProvider);
            assert_eq!(thing_name.as_deref(), Some("SN-C-NOCRED"));
        }
        other => panic!("expected CloudRejected, got {other:?}"),
    }
    assert!(!device.holds_claim());
}
