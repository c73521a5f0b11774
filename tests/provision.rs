//! The orchestrator end to end: the real SDK provisioning simulated devices against the emulator.
//! Runs that succeed, the claim's lifetime around the handover, the cloud's answers and its
//! confirmation; what a failed, dropped or cancelled run leaves behind is in
//! tests/provision_cleanup.rs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimlink_core::DeviceCredentials;
use claimlink_core::{
    BackendClaimSource, Claim, ClaimError, ClaimRequest, ClaimSource, ThingDescription,
    ThingDirectory, ThingName,
};
use claimlink_core::{NoListener, ProvisionError, Provisioner, ProvisionerConfig, Stage};
use claimlink_harness::testing::{self, expected_thing_options as options, lab_wifi};
use claimlink_harness::testing::{EventRecorder, SimDeviceBuilder, DEVICE_PASSWORD};
use claimlink_harness::world::{World, WorldOptions};

#[tokio::test]
async fn happy_path_over_ble_reports_every_stage_with_the_time_left() {
    let world = testing::quick_world().await;
    let (device, link) = SimDeviceBuilder::in_world(&world, 1).build();
    let events = EventRecorder::new();
    let session = world
        .provisioner
        .connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &events)
        .await
        .expect("session");
    assert_eq!(session.scan_wifi().await.expect("scan").len(), 3);
    let done = session
        .provision(&lab_wifi(), &options("SN-HAPPY"), &events)
        .await
        .expect("provisioned");
    assert_eq!(done.thing_name, "SN-HAPPY");
    let certificate = done.certificate_id.clone().expect("certificate id");
    assert_eq!(
        world.emulator.certificate_status(&certificate).as_deref(),
        Some("ACTIVE")
    );
    assert!(
        done.claim_time_left_at_handover > Duration::from_secs(290),
        "{:?}",
        done.claim_time_left_at_handover
    );
    let stages = events.stages();
    assert_eq!(stages, testing::EVERY_STAGE.to_vec());
    // Every event after the claim carries the time left, and it only goes down.
    let lefts: Vec<Duration> = events
        .events()
        .iter()
        .filter_map(|e| e.claim_time_left)
        .collect();
    assert_eq!(lefts.len(), stages.len() - 3);
    assert!(lefts.windows(2).all(|w| w[0] >= w[1]));
    assert!(!device.holds_claim());
    assert_eq!(
        world.emulator.issued_claims().len(),
        1,
        "one claim, requested just in time"
    );
}

#[tokio::test]
async fn happy_path_over_http() {
    let world = testing::quick_world().await;
    let device = SimDeviceBuilder::in_world(&world, 2).device();
    let (_server, link) = testing::http_link_to(&device).await;
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options("SN-HTTP"), &NoListener)
        .await
        .expect("provisioned");
    assert_eq!(done.thing_name, "SN-HTTP");
}

/// Hands out a short-lived claim first, normal ones after.
struct ShortFirst {
    inner: Arc<BackendClaimSource>,
    emulator_validity: Box<dyn Fn(Duration) + Send + Sync>,
    calls: AtomicUsize,
}

impl std::fmt::Debug for ShortFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShortFirst")
    }
}

#[async_trait]
impl ClaimSource for ShortFirst {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let claim = self.inner.request_claim(request).await;
        if n == 0 {
            (self.emulator_validity)(Duration::from_secs(300));
        }
        claim
    }
}

#[async_trait]
impl ThingDirectory for ShortFirst {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        self.inner.describe_thing(thing).await
    }
}

/// A world whose claims last 30 s: less than the default 60 s safety margin.
async fn world_with_30_second_claims() -> World {
    testing::start_world(WorldOptions {
        claim_validity: Duration::from_secs(30),
        ..testing::quick_world_options()
    })
    .await
}

#[tokio::test]
async fn a_claim_near_expiry_is_renewed_before_handover() {
    let world = world_with_30_second_claims().await;
    let (_device, link) = SimDeviceBuilder::in_world(&world, 5).build();
    let emulator = Arc::new(world.emulator);
    let setter = emulator.clone();
    let source = Arc::new(ShortFirst {
        inner: world.claims.clone(),
        emulator_validity: Box::new(move |d| setter.set_claim_validity(d)),
        calls: AtomicUsize::new(0),
    });
    let provisioner = Provisioner::new(source.clone(), world.provisioner.config().clone());
    let session = testing::connect(&provisioner, link).await;
    let events = EventRecorder::new();
    let done = session
        .provision(&lab_wifi(), &options("SN-RENEW"), &events)
        .await
        .expect("provisioned");
    // The app is told why a second claim was requested.
    let requests: Vec<Option<String>> = events
        .events()
        .iter()
        .filter(|e| e.stage == Stage::ClaimRequested)
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(
        requests,
        vec![None, Some("previous claim too close to expiry".to_owned())]
    );
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "the 30-second claim was not handed over"
    );
    assert!(done.claim_time_left_at_handover > Duration::from_secs(60));
    let held: Vec<_> = emulator.issued_claims();
    assert_eq!(held.len(), 2);
}

/// A service that only ever issues claims shorter than the safety margin is reported as such, after
/// one retry, and nothing reaches the device.
#[tokio::test]
async fn claims_that_are_always_too_short_are_a_typed_claim_error() {
    let world = world_with_30_second_claims().await;
    let (device, link) = SimDeviceBuilder::in_world(&world, 16).build();
    let session = testing::connect(&world.provisioner, link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-SHORT"), &NoListener)
        .await
        .expect_err("no usable claim");
    match err {
        ProvisionError::Claim(ClaimError::TooShortLived {
            left_secs,
            margin_secs,
        }) => {
            assert!((25..=30).contains(&left_secs), "{left_secs}");
            assert_eq!(margin_secs, 60);
        }
        other => panic!("expected TooShortLived, got {other:?}"),
    }
    assert_eq!(world.emulator.issued_claims().len(), 2, "asked twice");
    assert!(!device.holds_claim());
}

#[tokio::test]
async fn a_device_too_slow_for_the_claim_misses_the_deadline() {
    let mut options_world = testing::quick_world_options();
    options_world.claim_validity = Duration::from_secs(3);
    options_world.safety_margin = Duration::from_secs(1);
    let world = testing::start_world(options_world).await;
    let (device, link) = SimDeviceBuilder::in_world(&world, 6)
        .cloud(|cloud| cloud.time_sync = Duration::from_secs(5))
        .build();
    let session = testing::connect(&world.provisioner, link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-SLOW"), &NoListener)
        .await
        .expect_err("too slow");
    match err {
        ProvisionError::DeadlineMissed { stage } => assert_eq!(stage, Stage::WifiConnected),
        other => panic!("expected DeadlineMissed, got {other:?}"),
    }
    assert!(!device.holds_claim(), "the expired claim is wiped");
}

#[tokio::test]
async fn a_template_rejection_reaches_the_app_in_aws_words() {
    let world = testing::quick_world().await;
    testing::assert_template_rejection_in_aws_words(
        &world,
        SimDeviceBuilder::in_world(&world, 7),
        "SN-REJ",
    )
    .await;
}

/// An app's claim source that asks its backend for a claim of another template than the run's (a
/// misconfigured backend), and hands it on labelled with the run's template.
#[derive(Debug)]
struct OtherTemplatesClaim {
    inner: Arc<BackendClaimSource>,
    template: claimlink_core::TemplateName,
}

#[async_trait]
impl ClaimSource for OtherTemplatesClaim {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        let claim = self
            .inner
            .request_claim(&ClaimRequest::new(self.template.clone()))
            .await?;
        Claim::new(
            claim.certificate().pem(),
            claim.private_key().clone(),
            claim.certificate().not_after(),
            request.template.clone(),
        )
    }
}

#[async_trait]
impl ThingDirectory for OtherTemplatesClaim {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        self.inner.describe_thing(thing).await
    }
}

/// A claim is bound to the template it was issued for: AWS's claim policy names that template only,
/// so the device's RegisterThing on the run's template is refused (the broker disconnects it at the
/// SUBSCRIBE to the template's reply topic) and the app hears of it, naming the certificate AWS had
/// already issued, and nothing is registered.
#[tokio::test]
async fn a_claim_for_another_template_is_refused_and_the_app_hears_of_it() {
    let world = testing::quick_world().await;
    world
        .emulator
        .put_template(claimlink_harness::emulator::Template::simple(
            "other-template",
        ));
    let source = Arc::new(OtherTemplatesClaim {
        inner: world.claims.clone(),
        template: claimlink_core::TemplateName::new("other-template").expect("a template name"),
    });
    let provisioner = Provisioner::new(source, world.provisioner.config().clone());
    let (device, link) = SimDeviceBuilder::in_world(&world, 8).build();
    let session = testing::connect(&provisioner, link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-BOUND"), &NoListener)
        .await
        .expect_err("another template's claim");
    let ProvisionError::CloudRejected {
        kind,
        error_message,
        thing_name,
        certificate_id,
        ..
    } = err
    else {
        panic!("expected CloudRejected, got {err:?}");
    };
    assert_eq!(kind, claimlink_core::CloudFailureKind::MqttRejected);
    assert!(
        error_message.contains("$aws/provisioning-templates/claimlink-demo/provision"),
        "{error_message}"
    );
    assert_eq!(thing_name, None);
    let certificate_id = certificate_id.expect("the certificate AWS issued is named");
    assert_eq!(
        world
            .emulator
            .certificate_status(&certificate_id)
            .as_deref(),
        Some("PENDING_ACTIVATION")
    );
    assert!(world.emulator.thing("SN-BOUND").is_none());
    assert!(!device.holds_claim());
}

#[tokio::test]
async fn twenty_devices_at_once() {
    let world = Arc::new(testing::quick_world().await);
    let mut runs = Vec::new();
    for i in 0..20u8 {
        let world = world.clone();
        runs.push(tokio::spawn(async move {
            let (_device, link) = SimDeviceBuilder::in_world(&world, 20 + i).build();
            let session = world
                .provisioner
                .connect(
                    link,
                    DeviceCredentials::password(DEVICE_PASSWORD),
                    &NoListener,
                )
                .await?;
            session
                .provision(
                    &lab_wifi(),
                    &options(&format!("SN-MANY-{i:02}")),
                    &NoListener,
                )
                .await
        }));
    }
    let mut names = Vec::new();
    for r in runs {
        names.push(r.await.expect("task").expect("provisioned").thing_name);
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    let _ = ProvisionerConfig::new(claimlink_core::TemplateName::new("x").expect("name"), "h");
}

#[tokio::test]
async fn when_ble_goes_away_after_wifi_the_cloud_still_confirms() {
    let world = testing::quick_world().await;
    // Provisioning (and BLE) stops right after the device gets its address, long before it is done.
    let (_device, link) = SimDeviceBuilder::in_world(&world, 11)
        .configure(|config| config.goes_quiet_after_joining(Duration::from_millis(500)))
        .build();
    let events = EventRecorder::new();
    let session = world
        .provisioner
        .connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &events)
        .await
        .expect("session");
    let done = session
        .provision(&lab_wifi(), &options("SN-GONE"), &events)
        .await
        .expect("confirmed through the cloud");
    assert_eq!(done.thing_name, "SN-GONE");
    assert!(events.stages().contains(&Stage::ConfirmedByCloud));
    assert!(
        !events.stages().contains(&Stage::ThingRegistered),
        "the device could not say so itself"
    );
    assert!(world.emulator.thing("SN-GONE").is_some());
}

/// A thing that already exists with an ACTIVE certificate (a device provisioned before, or a serial
/// reused) must not confirm a run whose device never got its own certificate.
#[tokio::test]
async fn a_thing_that_already_exists_does_not_confirm_a_device_that_failed() {
    let world = testing::quick_world().await;
    let old = "0".repeat(64);
    world
        .emulator
        .register_thing("SN-AGAIN", &old, "-----BEGIN CERTIFICATE-----", "ACTIVE");
    let mut config = world.provisioner.config().clone();
    config.cloud_timeout = Duration::from_secs(2);
    let provisioner = Provisioner::new(world.claims.clone(), config);
    // The device goes quiet right after it gets its address, before it can name its certificate...
    let quiet = |index: u8| {
        SimDeviceBuilder::in_world(&world, index)
            .configure(|c| c.goes_quiet_after_joining(Duration::from_millis(300)))
            .build()
    };
    // ...and cannot reach AWS IoT.
    world.emulator.set_mqtt_down(true);
    let (_device, link) = quiet(13);
    let events = EventRecorder::new();
    let session = provisioner
        .connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &events)
        .await
        .expect("session");
    let err = session
        .provision(&lab_wifi(), &options("SN-AGAIN"), &events)
        .await
        .expect_err("the old certificate is not this device's");
    assert!(
        matches!(&err, ProvisionError::NotConfirmed { thing_name } if thing_name == "SN-AGAIN"),
        "{err:?}"
    );
    assert!(!events.stages().contains(&Stage::ConfirmedByCloud));
    let thing = world.emulator.thing("SN-AGAIN").expect("thing");
    assert_eq!(
        thing.principals,
        vec![old.clone()],
        "nothing new was registered"
    );

    // With the cloud reachable, the device's new certificate confirms it, and is the one reported.
    world.emulator.set_mqtt_down(false);
    let (_device, link) = quiet(14);
    let session = testing::connect(&provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options("SN-AGAIN"), &NoListener)
        .await
        .expect("confirmed through the cloud");
    let new = done.certificate_id.expect("the new certificate is named");
    assert_ne!(new, old);
    let thing = world.emulator.thing("SN-AGAIN").expect("thing");
    assert!(thing.principals.contains(&new), "{:?}", thing.principals);
    assert_eq!(
        world.emulator.certificate_status(&new).as_deref(),
        Some("ACTIVE")
    );
}

/// Fails the first `blind_reads` calls of `describe_thing` (the read before handover and its
/// retries) with a network error, passes everything else through.
#[derive(Debug)]
struct BlindBeforeHandover {
    inner: Arc<BackendClaimSource>,
    describes: AtomicUsize,
    blind_reads: usize,
}

#[async_trait]
impl ClaimSource for BlindBeforeHandover {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        self.inner.request_claim(request).await
    }
}

#[async_trait]
impl ThingDirectory for BlindBeforeHandover {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        if self.describes.fetch_add(1, Ordering::SeqCst) < self.blind_reads {
            return Err(ClaimError::Network {
                message: "offline for a moment".into(),
                timed_out: false,
            });
        }
        self.inner.describe_thing(thing).await
    }
}

/// Without the read before handover, a device that went quiet before naming its certificate cannot
/// be told from an old registration: NotConfirmed at once, never a guess.
#[tokio::test]
async fn a_quiet_device_is_not_confirmed_without_the_read_before_handover() {
    let world = testing::quick_world().await;
    // Every attempt of the read before handover fails (the SDK tries it three times).
    let source = Arc::new(BlindBeforeHandover {
        inner: world.claims.clone(),
        describes: AtomicUsize::new(0),
        blind_reads: 3,
    });
    let provisioner = Provisioner::new(source.clone(), world.provisioner.config().clone());
    let (_device, link) = SimDeviceBuilder::in_world(&world, 18)
        .configure(|c| c.goes_quiet_after_joining(Duration::from_millis(300)))
        .build();
    let session = testing::connect(&provisioner, link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-BLIND"), &NoListener)
        .await
        .expect_err("cannot be confirmed");
    assert!(
        matches!(&err, ProvisionError::NotConfirmed { thing_name } if thing_name == "SN-BLIND"),
        "{err:?}"
    );
    assert_eq!(source.describes.load(Ordering::SeqCst), 3, "no guessing");
}

#[tokio::test]
async fn a_read_before_handover_lost_under_load_is_tried_again() {
    let world = testing::quick_world().await;
    // The first read fails as a lost answer under load does; the second gets through.
    let source = Arc::new(BlindBeforeHandover {
        inner: world.claims.clone(),
        describes: AtomicUsize::new(0),
        blind_reads: 1,
    });
    let provisioner = Provisioner::new(source.clone(), world.provisioner.config().clone());
    let (_device, link) = SimDeviceBuilder::in_world(&world, 19)
        .configure(|c| c.goes_quiet_after_joining(Duration::from_millis(300)))
        .build();
    let session = testing::connect(&provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options("SN-BLIND-ONCE"), &NoListener)
        .await
        .expect("confirmed through the cloud once the read got through");
    assert_eq!(done.thing_name, "SN-BLIND-ONCE");
    assert!(
        source.describes.load(Ordering::SeqCst) >= 3,
        "read twice before, then after"
    );
}

/// A phone put in a pocket while the device joins Wi-Fi: the claim's minutes run on while the
/// phone is suspended (which `Instant` and the runtime's timers do not see), so on waking the
/// watchdog finds the deadline passed at once and wipes the claim, instead of waiting on the device
/// as if no time had gone by.
#[tokio::test]
async fn a_phone_that_sleeps_through_the_deadline_misses_it_on_waking() {
    let world = testing::quick_world().await;
    let phone = Arc::new(testing::SleepingPhoneClock::new());
    let claims = world
        .emulator
        .backend_source()
        .clock(phone.clone())
        .build()
        .expect("backend source");
    let provisioner = Provisioner::new(Arc::new(claims), world.provisioner.config().clone());
    let (device, link) = SimDeviceBuilder::in_world(&world, 31)
        .joins_in(Duration::from_secs(60))
        .build();
    let session = testing::connect(&provisioner, link).await;
    let events = EventRecorder::new();
    let (wifi, opts) = (lab_wifi(), options("SN-ASLEEP"));
    let run = session.provision(&wifi, &opts, &events);
    let wake = async {
        events.reached(Stage::WifiApplied).await;
        phone.suspend(Duration::from_secs(301));
        std::future::pending::<()>().await
    };
    // The device would join after a minute: the run must end long before that.
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            result = run => result,
            _ = wake => unreachable!("pending"),
        }
    })
    .await
    .expect("the watchdog fired on waking, not when the device joined");
    match result {
        Err(ProvisionError::DeadlineMissed { stage }) => {
            assert_eq!(stage, Stage::WifiConnecting)
        }
        other => panic!("expected DeadlineMissed, got {other:?}"),
    }
    assert!(
        testing::eventually(Duration::from_secs(5), || !device.holds_claim()).await,
        "the expired claim is wiped"
    );
}

/// Events carry what the run has learnt about the device as typed fields, as soon as it is known and
/// on every later event: its address from `WifiConnected` on, its thing and certificate once the
/// device names them (docs/protocol.md §6: the certificate from `CertificateIssued` on, the thing from
/// `ThingRegistered` on, as the simulator and the C component report them), and the confirmed ones on
/// `ConfirmedByCloud`.
#[tokio::test]
async fn events_carry_the_devices_address_thing_and_certificate_once_known() {
    let world = testing::quick_world().await;
    let (_device, link) = SimDeviceBuilder::in_world(&world, 43).build();
    let session = testing::connect(&world.provisioner, link).await;
    let events = EventRecorder::new();
    let done = session
        .provision(&lab_wifi(), &options("SN-TYPED"), &events)
        .await
        .expect("provisioned");
    let seen = events.events();
    let on_wifi = seen
        .iter()
        .position(|e| e.stage == Stage::WifiConnected)
        .expect("WifiConnected");
    for (i, event) in seen.iter().enumerate() {
        assert_eq!(event.device_ip.is_some(), i >= on_wifi, "{event:?}");
        if i < on_wifi {
            assert_eq!((&event.thing_name, &event.certificate_id), (&None, &None));
        }
    }
    // Once known, a value stays on every later event, unchanged.
    for pair in seen.windows(2) {
        for (before, after) in [
            (&pair[0].thing_name, &pair[1].thing_name),
            (&pair[0].certificate_id, &pair[1].certificate_id),
        ] {
            assert!(before.is_none() || before == after, "{pair:?}");
        }
        assert!(pair[0].device_ip.is_none() || pair[0].device_ip == pair[1].device_ip);
    }
    let last = seen.last().expect("events");
    assert_eq!(last.stage, Stage::ConfirmedByCloud);
    assert_eq!(last.certificate_id, done.certificate_id);
    assert_eq!(last.thing_name.as_deref(), Some(done.thing_name.as_str()));
    assert!(last.device_ip.is_some_and(|ip| !ip.is_unspecified()));
    let reconnected = seen
        .iter()
        .find(|e| e.stage == Stage::ReconnectedWithPermanent)
        .expect("ReconnectedWithPermanent");
    assert_eq!(reconnected.thing_name.as_deref(), Some("SN-TYPED"));
    assert!(reconnected.certificate_id.is_some());
    let at = |stage| seen.iter().find(|e| e.stage == stage).expect("stage");
    assert_eq!(
        at(Stage::CertificateIssued).certificate_id,
        done.certificate_id
    );
    assert_eq!(
        at(Stage::ThingRegistered).thing_name.as_deref(),
        Some("SN-TYPED")
    );
}
