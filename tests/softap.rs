//! SoftAP with a phone that has no route to the internet while it is on the device's access point
//! (`claimlink_harness::testing::phone_network`): the claim is prepared before the phone joins the AP
//! (`Provisioner::prepare_claim`) and handed over at once with the phone offline; a join slower than
//! budgeted renews it (which needs the phone online, and fails typed when it is not). After the
//! device is done, the cloud confirmation waits for the phone's network (`WaitingForNetwork`) and
//! fails typed (`PhoneOffline`, CL-405) when the phone stays offline past its deadline.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{
    ClaimError, ProvisionError, Provisioner, ProvisioningEvent, Stage, ThingDirectory,
};
use claimlink_harness::testing::phone_network::{LeavesAccessPoint, PhoneNetwork};
use claimlink_harness::testing::{self, expected_thing_options as options, lab_wifi};
use claimlink_harness::testing::{EventRecorder, SimDeviceBuilder};
use claimlink_harness::world::{World, WorldOptions};

/// A provisioner whose backend is reached through the switchable phone network.
fn through_phone(world: &World, ap_join_budget: Duration) -> (Provisioner, Arc<PhoneNetwork>) {
    let phone = PhoneNetwork::new(world.claims.clone());
    let mut config = world.provisioner.config().clone();
    config.ap_join_budget = ap_join_budget;
    (
        Provisioner::with_thing_directory(phone.clone(), phone.clone(), config),
        phone,
    )
}

fn detail_of(events: &[ProvisioningEvent], stage: Stage) -> Option<String> {
    events
        .iter()
        .find(|e| e.stage == stage)
        .and_then(|e| e.detail.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_prepared_before_joining_the_access_point_is_handed_over_with_the_phone_offline() {
    let world = testing::quick_world().await;
    let (provisioner, phone) = through_phone(&world, Duration::from_secs(30));
    // Without a prepared claim, a phone offline on the access point cannot get one: a typed failure,
    // and nothing on the device.
    phone.set_offline(true);
    let unprepared = SimDeviceBuilder::in_world(&world, 59).device();
    let (_server, link) = testing::http_link_to(&unprepared).await;
    let err = testing::connect(&provisioner, link)
        .await
        .provision(
            &lab_wifi(),
            &options("SN-SOFTAP"),
            &claimlink_core::NoListener,
        )
        .await
        .expect_err("no route to the backend");
    assert!(
        matches!(err, ProvisionError::Claim(ClaimError::Network { .. })),
        "{err:?}"
    );
    assert!(!unprepared.holds_claim());
    phone.set_offline(false);

    let left = provisioner
        .prepare_claim(&options("SN-SOFTAP"))
        .await
        .expect("prepared");
    let config = provisioner.config();
    assert!(
        left >= config.safety_margin + config.ap_join_budget,
        "{left:?}"
    );

    // The phone joins the device's access point: no route to the backend from here.
    phone.set_offline(true);
    let device = SimDeviceBuilder::in_world(&world, 60).device();
    let (_server, link) = testing::http_link_to(&device).await;
    let events = Arc::new(EventRecorder::new());
    let session = provisioner
        .connect(
            link,
            claimlink_core::DeviceCredentials::password(testing::DEVICE_PASSWORD),
            &*events,
        )
        .await
        .expect("connected");
    // The app leaves the access point when the run waits for the network (the SDK is done with the
    // device then); the phone is back online once it has rejoined its own network.
    let app = LeavesAccessPoint::new(phone.clone(), &*events);
    let done = session
        .provision(&lab_wifi(), &options("SN-SOFTAP"), &app)
        .await
        .expect("provisioned");
    assert!(!phone.on_access_point());
    assert_eq!(done.thing_name, "SN-SOFTAP");
    // One claim in all, the prepared one; nothing was requested on the access point.
    assert_eq!(world.emulator.issued_claims().len(), 1);
    let seen = events.events();
    assert!(
        !seen.iter().any(|e| e.stage == Stage::ClaimRequested),
        "{seen:?}"
    );
    assert!(detail_of(&seen, Stage::ClaimIssued).is_some_and(|d| d.contains("prepared")));
    assert!(
        phone.refused() >= 2,
        "the phone was offline during the hand-over and at the first confirmation"
    );
    // The confirmation waited for the network, typed, then the cloud confirmed the run.
    let stages: Vec<Stage> = seen.iter().map(|e| e.stage).collect();
    let waiting = stages
        .iter()
        .position(|s| *s == Stage::WaitingForNetwork)
        .expect("the run waited for the phone's network");
    assert_eq!(stages.last(), Some(&Stage::ConfirmedByCloud), "{stages:?}");
    assert!(
        stages[..waiting].contains(&Stage::ReconnectedWithPermanent),
        "the device was done before the wait: {stages:?}"
    );
    let wait = &seen[waiting];
    assert_eq!(wait.thing_name.as_deref(), Some("SN-SOFTAP"));
    assert!(wait.certificate_id.is_some(), "{wait:?}");
    // A prepared claim is used once.
    assert!(provisioner
        .prepare_claim(&options("SN-SOFTAP"))
        .await
        .is_ok());
}

/// A world whose claims live 6 s, with a 2 s margin and a 2 s AP join budget.
async fn short_claims() -> (World, Provisioner, Arc<PhoneNetwork>) {
    let world = testing::start_world(WorldOptions {
        claim_validity: Duration::from_secs(6),
        safety_margin: Duration::from_secs(2),
        ..testing::quick_world_options()
    })
    .await;
    let (provisioner, phone) = through_phone(&world, Duration::from_secs(2));
    (world, provisioner, phone)
}

/// Lets the prepared claim run below the safety margin: the AP join took longer than budgeted.
async fn slow_join(provisioner: &Provisioner, left: Duration) {
    let margin = provisioner.config().safety_margin;
    tokio::time::sleep(left.saturating_sub(margin) + Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_claim_that_runs_short_during_a_slow_join_is_renewed() {
    let (world, provisioner, _phone) = short_claims().await;
    let left = provisioner
        .prepare_claim(&options("SN-SOFTAP-RENEW"))
        .await
        .expect("prepared");
    slow_join(&provisioner, left).await;
    let device = SimDeviceBuilder::in_world(&world, 61).device();
    let (_server, link) = testing::http_link_to(&device).await;
    let session = testing::connect(&provisioner, link).await;
    let events = EventRecorder::new();
    let done = session
        .provision(&lab_wifi(), &options("SN-SOFTAP-RENEW"), &events)
        .await
        .expect("provisioned with a renewed claim");
    assert_eq!(done.thing_name, "SN-SOFTAP-RENEW");
    assert_eq!(world.emulator.issued_claims().len(), 2);
    assert_eq!(
        detail_of(&events.events(), Stage::ClaimRequested).as_deref(),
        Some("the prepared claim is too close to expiry")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_claim_that_runs_short_with_the_phone_offline_fails_typed_and_leaves_nothing() {
    let (world, provisioner, phone) = short_claims().await;
    let left = provisioner
        .prepare_claim(&options("SN-SOFTAP-OFFLINE"))
        .await
        .expect("prepared");
    phone.set_offline(true);
    slow_join(&provisioner, left).await;
    let device = SimDeviceBuilder::in_world(&world, 62).device();
    let (_server, link) = testing::http_link_to(&device).await;
    let session = testing::connect(&provisioner, link).await;
    let err = session
        .provision(
            &lab_wifi(),
            &options("SN-SOFTAP-OFFLINE"),
            &claimlink_core::NoListener,
        )
        .await
        .expect_err("no route to renew the claim");
    assert!(
        matches!(err, ProvisionError::Claim(ClaimError::Network { .. })),
        "{err:?}"
    );
    assert_eq!(err.code().code(), "CL-302");
    assert!(
        !device.holds_claim(),
        "the expired claim never reached the device"
    );
    assert!(world.emulator.thing("SN-SOFTAP-OFFLINE").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_stays_on_the_access_point_past_the_confirmation_deadline_fails_typed_and_wipes_the_claim(
) {
    let world = testing::quick_world().await;
    let phone = PhoneNetwork::new(world.claims.clone());
    let mut config = world.provisioner.config().clone();
    config.cloud_timeout = Duration::from_secs(2);
    let provisioner = Provisioner::with_thing_directory(phone.clone(), phone.clone(), config);
    provisioner
        .prepare_claim(&options("SN-SOFTAP-STAYS"))
        .await
        .expect("prepared");
    phone.join_access_point();
    let device = SimDeviceBuilder::in_world(&world, 63).device();
    let (_server, link) = testing::http_link_to(&device).await;
    let session = testing::connect(&provisioner, link).await;
    let events = EventRecorder::new();
    // The app never leaves the access point.
    let err = session
        .provision(&lab_wifi(), &options("SN-SOFTAP-STAYS"), &events)
        .await
        .expect_err("never confirmed");
    assert!(
        matches!(&err, ProvisionError::PhoneOffline { thing_name } if thing_name == "SN-SOFTAP-STAYS"),
        "{err:?}"
    );
    assert_eq!(err.code().code(), "CL-405");
    assert!(
        err.to_string().contains("once the phone is online"),
        "{err}"
    );
    let seen = events.events();
    assert_eq!(
        seen.iter()
            .filter(|e| e.stage == Stage::WaitingForNetwork)
            .count(),
        1,
        "one event per time the phone is found offline: {seen:?}"
    );
    assert!(!seen.iter().any(|e| e.stage == Stage::ConfirmedByCloud));
    // The device finished (the cloud has the thing) and holds no claim; the phone kept trying.
    assert!(!device.holds_claim());
    assert!(world.emulator.thing("SN-SOFTAP-STAYS").is_some());
    assert!(phone.refused() >= 3, "{}", phone.refused());
    // Asked over a working network, the cloud shows the thing with its certificate.
    let thing = world
        .claims
        .describe_thing(&claimlink_core::ThingName::new("SN-SOFTAP-STAYS").expect("name"))
        .await
        .expect("online")
        .expect("the thing exists");
    assert_eq!(thing.active_certificate_ids().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_rejoining_its_network_is_offline_until_it_has_rejoined() {
    let world = testing::quick_world().await;
    let phone = PhoneNetwork::with_rejoin_delay(world.claims.clone(), Duration::from_millis(300));
    let thing = claimlink_core::ThingName::new("SN-NONE").expect("name");
    assert!(phone.describe_thing(&thing).await.is_ok());
    phone.join_access_point();
    assert!(phone.on_access_point());
    assert!(phone.describe_thing(&thing).await.is_err());
    phone.leave_access_point();
    assert!(!phone.on_access_point());
    assert!(
        phone.describe_thing(&thing).await.is_err(),
        "still rejoining"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(phone.describe_thing(&thing).await.is_ok());
    assert_eq!(phone.refused(), 2);
}
