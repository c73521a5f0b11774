//! The orchestrator end to end when a run does not succeed: a wrong passphrase retried on the same
//! session, runs dropped or cancelled part-way, a link that drops mid-transfer, the overall timeout.
//! The claim is wiped from the device, or kept for the retry only while the device still holds it.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::LinkError;
use claimlink_core::WifiCredentials;
use claimlink_core::{DeviceCredentials, ProtocolError};
use claimlink_core::{NoListener, ProvisionError, Provisioner, Stage};
use claimlink_harness::device::SimDevice;
use claimlink_harness::testing::{self, drop_when, holds, lab_wifi, EventRecorder};
use claimlink_harness::testing::{expected_thing_options as options, SimDeviceBuilder};
use claimlink_harness::testing::{DEVICE_PASSWORD, WIPE_WAIT};
use claimlink_harness::world::World;

/// A session whose first run failed on a wrong passphrase: the claim is on the device for the retry.
async fn after_a_wrong_passphrase(
    index: u8,
    serial: &str,
) -> (World, Arc<SimDevice>, claimlink_core::ProvisioningSession) {
    let world = testing::quick_world().await;
    let (device, link) = SimDeviceBuilder::in_world(&world, index).build();
    let session = testing::connect(&world.provisioner, link).await;
    let wrong = WifiCredentials::new("claimlink-lab", "wrong horse battery".into()).expect("wifi");
    let err = session
        .provision(&wrong, &options(serial), &NoListener)
        .await
        .expect_err("wrong passphrase");
    assert!(matches!(err, ProvisionError::WifiAuthFailed), "{err:?}");
    assert!(device.holds_claim(), "the claim stays for the retry");
    (world, device, session)
}

#[tokio::test]
async fn a_wrong_passphrase_is_retried_on_the_same_session_with_the_same_claim() {
    let (world, _device, session) = after_a_wrong_passphrase(3, "SN-RETRY").await;
    let events = EventRecorder::new();
    let done = session
        .provision(&lab_wifi(), &options("SN-RETRY"), &events)
        .await
        .expect("second try");
    assert_eq!(done.thing_name, "SN-RETRY");
    assert_eq!(
        world.emulator.issued_claims().len(),
        1,
        "the claim was reused"
    );
    assert!(!events.stages().contains(&Stage::ClaimRequested));

    let (_other, link) = SimDeviceBuilder::in_world(&world, 4).build();
    let session = testing::connect(&world.provisioner, link).await;
    let nowhere = WifiCredentials::new("no-such-network", "password-123".into()).expect("wifi");
    let err = session
        .provision(&nowhere, &options("SN-NONE"), &NoListener)
        .await
        .expect_err("not found");
    assert!(
        matches!(err, ProvisionError::WifiNetworkNotFound),
        "{err:?}"
    );
}

/// The retry after [`after_a_wrong_passphrase`] asks for a second claim and provisions with it.
async fn retry_gets_a_fresh_claim(
    world: &World,
    session: &claimlink_core::ProvisioningSession,
    serial: &str,
) {
    let events = EventRecorder::new();
    let done = session
        .provision(&lab_wifi(), &options(serial), &events)
        .await
        .expect("provisioned with a fresh claim");
    assert_eq!(done.thing_name, serial);
    assert!(events.stages().contains(&Stage::ClaimRequested));
    assert_eq!(world.emulator.issued_claims().len(), 2);
}

/// A device that dropped the claim on its own between a Wi-Fi failure and the retry gets a fresh one
/// instead of a Wi-Fi join with nothing to provision with.
#[tokio::test]
async fn a_retry_asks_the_device_before_reusing_its_claim() {
    let (world, device, session) = after_a_wrong_passphrase(17, "SN-FORGOT").await;
    device.forget_claim();
    retry_gets_a_fresh_claim(&world, &session, "SN-FORGOT").await;
}

/// A retry (the claim is already on the device) that the app abandons by dropping it — a cancelled
/// coroutine or task — still wipes the claim, and the session then asks for a fresh one.
#[tokio::test]
async fn dropping_a_retry_wipes_the_claim_it_would_have_reused() {
    let (world, device, session) = after_a_wrong_passphrase(15, "SN-DROP-RETRY").await;
    let before = device.exchanges();
    // Dropped while it is still resetting the device's Wi-Fi, before it touches the claim.
    let (wifi, opts) = (lab_wifi(), options("SN-DROP-RETRY"));
    let retry = session.provision(&wifi, &opts, &NoListener);
    drop_when(retry, holds(|| device.exchanges() > before)).await;
    assert!(
        testing::eventually(WIPE_WAIT, || !device.holds_claim()).await,
        "dropping the retry wipes the claim"
    );
    // The session knows the claim is gone: the next run gets a fresh one and succeeds.
    retry_gets_a_fresh_claim(&world, &session, "SN-DROP-RETRY").await;
}

/// Calling again right after dropping a retry (no pause for the background wipe) waits for that
/// wipe, then provisions with a fresh claim: the wipe never lands in the middle of the new run.
#[tokio::test]
async fn calling_again_at_once_after_dropping_a_retry_is_not_disturbed_by_its_wipe() {
    let (world, device, session) = after_a_wrong_passphrase(20, "SN-AT-ONCE").await;
    let (wifi, opts) = (lab_wifi(), options("SN-AT-ONCE"));
    let before = device.exchanges();
    let retry = session.provision(&wifi, &opts, &NoListener);
    drop_when(retry, holds(|| device.exchanges() > before)).await;
    assert!(device.holds_claim(), "its wipe has not run yet");
    retry_gets_a_fresh_claim(&world, &session, "SN-AT-ONCE").await;
}

/// A run dropped while the device was still joining Wi-Fi: the next run waits for that attempt to
/// end (a device refuses a reset mid-join), then provisions with a fresh claim.
#[tokio::test]
async fn a_run_after_one_dropped_mid_join_waits_for_the_join_to_end() {
    let world = testing::quick_world().await;
    let (device, link) = SimDeviceBuilder::in_world(&world, 19)
        .joins_in(Duration::from_millis(800))
        .build();
    let session = testing::connect(&world.provisioner, link).await;
    let (wifi, opts) = (lab_wifi(), options("SN-MID-JOIN"));
    let events = EventRecorder::new();
    let first = session.provision(&wifi, &opts, &events);
    drop_when(first, events.reached(Stage::WifiApplied)).await;
    assert!(device.holds_claim());
    let done = session
        .provision(&wifi, &opts, &NoListener)
        .await
        .expect("the second run provisions");
    assert_eq!(done.thing_name, "SN-MID-JOIN");
    assert_eq!(world.emulator.issued_claims().len(), 2, "a fresh claim");
    assert!(
        !device.holds_claim(),
        "the device used and dropped its claim"
    );
}

#[tokio::test]
async fn a_disconnect_mid_claim_transfer_fails_cleanly_and_a_retry_succeeds() {
    let world = testing::quick_world().await;
    // proto-ver, 2 handshake, wifi status, SetConfig, claim begin, then the 7th exchange (a chunk) drops.
    let (device, link) = SimDeviceBuilder::in_world(&world, 8)
        .disconnect_at_exchange(7)
        .build();
    let session = testing::connect(&world.provisioner, link.clone()).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-DROP"), &NoListener)
        .await
        .expect_err("dropped");
    assert!(
        matches!(
            err,
            ProvisionError::Protocol(ProtocolError::Link(LinkError::Disconnected))
        ),
        "{err:?}"
    );
    assert!(
        !device.holds_claim(),
        "the partial claim was wiped on a new connection"
    );
    // The installer tries again.
    let session = world
        .provisioner
        .connect(
            link,
            DeviceCredentials::password(DEVICE_PASSWORD),
            &NoListener,
        )
        .await
        .expect("reconnected");
    let done = session
        .provision(&lab_wifi(), &options("SN-DROP"), &NoListener)
        .await
        .expect("second attempt");
    assert_eq!(done.thing_name, "SN-DROP");
}

#[tokio::test]
async fn cancelling_wipes_the_claim_from_the_device() {
    let world = testing::quick_world().await;
    // A device that takes its time to join, so there is something to cancel.
    let (device, link) = SimDeviceBuilder::in_world(&world, 9)
        .joins_in(Duration::from_secs(3))
        .build();
    let session = Arc::new(testing::connect(&world.provisioner, link).await);
    let (result, holds) =
        testing::cancel_once_the_device_holds_the_claim(session.clone(), &device, "SN-CANCEL")
            .await;
    assert!(
        matches!(result, Err(ProvisionError::Cancelled)),
        "{result:?}"
    );
    assert!(!holds, "cancel wipes the claim");

    // A cancel with no run in progress does nothing (it used to cancel the next run): once a run has
    // ended, the session is usable again and a stray cancel does not reach the next run.
    assert!(!session.cancel(), "there was no run to cancel");
    let next = session
        .provision(&lab_wifi(), &options("SN-CANCEL"), &NoListener)
        .await;
    assert!(next.is_ok(), "{next:?}");
    assert!(!device.holds_claim());

    // Dropping the future does the same (in the background, bounded).
    let (device, link) = SimDeviceBuilder::in_world(&world, 10)
        .joins_in(Duration::from_secs(3))
        .build();
    let session = testing::connect(&world.provisioner, link).await;
    let (wifi, opts) = (lab_wifi(), options("SN-DROPPED"));
    let events = EventRecorder::new();
    let provisioning = session.provision(&wifi, &opts, &events);
    drop_when(provisioning, events.reached(Stage::WifiApplied)).await;
    // The wipe is spawned; on this single-threaded runtime it has not run yet.
    assert!(events.stages().contains(&Stage::ClaimSent));
    assert!(
        device.holds_claim(),
        "the claim was on the device when the run was dropped"
    );
    assert!(
        testing::eventually(WIPE_WAIT, || !device.holds_claim()).await,
        "dropping the run wipes the claim"
    );
}

#[tokio::test]
async fn the_overall_timeout_bounds_a_run() {
    let world = testing::quick_world().await;
    let mut config = world.provisioner.config().clone();
    config.overall_timeout = Duration::from_millis(300);
    let provisioner = Provisioner::new(world.claims.clone(), config);
    let (device, link) = SimDeviceBuilder::in_world(&world, 12)
        .joins_in(Duration::from_secs(5))
        .build();
    let session = testing::connect(&provisioner, link).await;
    let started = std::time::Instant::now();
    let err = session
        .provision(&lab_wifi(), &options("SN-OVERALL"), &NoListener)
        .await
        .expect_err("timed out");
    assert!(
        matches!(err, ProvisionError::OverallTimeout { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!device.holds_claim(), "a timed-out run wipes the claim");
}
