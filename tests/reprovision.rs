//! Reprovisioning (docs/protocol.md, "Reprovisioning"): a provisioned device keeps its thing and
//! certificate across reboots and says so on `aws-status`; its Wi-Fi is changed without a claim and
//! never registers again; `provision` refuses it; a factory reset erases the identity and the device is
//! provisioned anew; a device that lies about being provisioned is refuted by the cloud before anything
//! changes on it.

use claimlink_core::{ProvisionError, Stage, WifiCredentials};
use claimlink_harness::device::DoneLie;
use claimlink_harness::testing::{self, expected_thing_options as options, lab_wifi};
use claimlink_harness::testing::{EventRecorder, SimDeviceBuilder};
use claimlink_harness::world::World;

/// Provisions a fresh simulated device as `serial`; returns the device and its thing's certificate.
async fn provisioned(
    world: &World,
    index: u8,
    serial: &str,
) -> (std::sync::Arc<claimlink_harness::device::SimDevice>, String) {
    let sim = SimDeviceBuilder::in_world(world, index);
    let (device, link) = sim.build();
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options(serial), &claimlink_core::NoListener)
        .await
        .expect("provisioned");
    (device, done.certificate_id.expect("a certificate"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_device_changes_wifi_without_a_claim_and_never_registers_again() {
    let world = testing::quick_world().await;
    let (device, certificate) = provisioned(&world, 50, "SN-REWIFI").await;
    let claims = world.emulator.issued_claims().len();
    // The installer puts the device back into provisioning mode (a reboot): it keeps its identity.
    device.reboot();
    assert_eq!(
        device.identity(),
        Some(("SN-REWIFI".to_owned(), certificate.clone()))
    );
    let session = testing::connect(
        &world.provisioner,
        SimDeviceBuilder::in_world(&world, 50).link_to(&device),
    )
    .await;

    // `provision` would register it again: refused before anything is sent.
    let refused = session
        .provision(
            &lab_wifi(),
            &options("SN-REWIFI"),
            &claimlink_core::NoListener,
        )
        .await
        .expect_err("already provisioned");
    assert!(
        matches!(&refused, ProvisionError::AlreadyProvisioned { thing_name, certificate_id }
            if thing_name == "SN-REWIFI" && *certificate_id == certificate),
        "{refused:?}"
    );
    assert_eq!(refused.code().code(), "CL-108");
    assert!(!device.holds_claim());

    // A wrong passphrase for the new network, then the right one, on the same session.
    let wrong = WifiCredentials::new("claimlink-lab", "not the passphrase".into()).expect("wifi");
    let err = session
        .reconfigure_wifi(&wrong, &claimlink_core::NoListener)
        .await
        .expect_err("wrong passphrase");
    assert!(matches!(err, ProvisionError::WifiAuthFailed), "{err:?}");
    let events = EventRecorder::new();
    let done = session
        .reconfigure_wifi(&lab_wifi(), &events)
        .await
        .expect("reconfigured");
    assert_eq!(done.thing_name, "SN-REWIFI");
    assert_eq!(done.certificate_id, certificate);
    assert!(done.ip.is_some());
    assert_eq!(events.stages(), [Stage::WifiApplied, Stage::WifiConnected]);
    let last = events.events().pop().expect("an event");
    assert_eq!(last.device_ip, done.ip);
    assert_eq!(last.thing_name.as_deref(), Some("SN-REWIFI"));

    // No claim was issued or sent, and the thing still has its one certificate: no second
    // RegisterThing.
    assert_eq!(world.emulator.issued_claims().len(), claims);
    assert!(device.received_claim().is_none());
    let thing = world.emulator.thing("SN-REWIFI").expect("thing");
    assert_eq!(thing.principals, std::slice::from_ref(&certificate));
    assert_eq!(
        device.identity(),
        Some(("SN-REWIFI".to_owned(), certificate))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_reset_device_is_provisioned_anew_with_a_new_claim() {
    let world = testing::quick_world().await;
    let (device, old_certificate) = provisioned(&world, 51, "SN-RESET").await;
    device.factory_reset();
    assert_eq!(device.identity(), None);
    let session = testing::connect(
        &world.provisioner,
        SimDeviceBuilder::in_world(&world, 51).link_to(&device),
    )
    .await;
    let err = session
        .reconfigure_wifi(&lab_wifi(), &claimlink_core::NoListener)
        .await
        .expect_err("nothing to reconfigure");
    assert!(matches!(err, ProvisionError::NotProvisioned), "{err:?}");
    let claims = world.emulator.issued_claims().len();
    let done = session
        .provision(
            &lab_wifi(),
            &options("SN-RESET"),
            &claimlink_core::NoListener,
        )
        .await
        .expect("provisioned anew");
    assert_eq!(world.emulator.issued_claims().len(), claims + 1);
    let new_certificate = done.certificate_id.expect("certificate");
    assert_ne!(new_certificate, old_certificate);
    assert!(world
        .emulator
        .thing("SN-RESET")
        .expect("thing")
        .principals
        .contains(&new_certificate));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_lying_about_being_provisioned_is_refuted_before_its_wifi_changes() {
    let world = testing::quick_world().await;
    let (real, certificate) = provisioned(&world, 52, "SN-REAL").await;
    drop(real);
    // One names a thing that does not exist; another a real thing with a certificate it does not
    // hold (a cloned label, or a certificate revoked since).
    for (index, lie) in [
        (
            53,
            DoneLie {
                thing_name: "SN-NOBODY".into(),
                certificate_id: "ab".repeat(32),
            },
        ),
        (
            54,
            DoneLie {
                thing_name: "SN-REAL".into(),
                certificate_id: "cd".repeat(32),
            },
        ),
    ] {
        let sim = SimDeviceBuilder::in_world(&world, index);
        let (device, link) = sim.build();
        device.danger_pretend_provisioned_as(lie.clone());
        let session = testing::connect(&world.provisioner, link).await;
        let err = session
            .reconfigure_wifi(&lab_wifi(), &claimlink_core::NoListener)
            .await
            .expect_err("refuted");
        assert!(
            matches!(&err, ProvisionError::NotConfirmed { thing_name } if *thing_name == lie.thing_name),
            "{err:?}"
        );
        assert_eq!(
            device.wifi_state(),
            claimlink_harness::device::SimWifiState::Disconnected,
            "nothing was applied"
        );
    }
    // The real thing is untouched.
    assert_eq!(
        world.emulator.thing("SN-REAL").expect("thing").principals,
        [certificate]
    );
}
