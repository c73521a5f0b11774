//! The FFI surface from Rust: what the Kotlin/Swift/Python bindings call, exercised without a foreign
//! runtime. The headline case is an app that brings its own BLE stack: a `DeviceLink` implemented
//! "by the app" (here in Rust, over the simulated BLE link) provisions a device end to end, and its
//! failures come back as typed `ProvisioningFailure`s. The bindings' own glue is tested in
//! bindings/python and bindings/kotlin; claim sources, thing directories and credentials that the
//! app brings are in tests/ffi_sources.rs.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claimlink::{
    self, DeviceSecret, ProviderFailure, ProvisionedDevice, Provisioner, ProvisionerSettings,
    ProvisioningCompletion, ProvisioningEvent, ProvisioningFailure, ProvisioningListener, Stage,
    TokenProvider, WifiSettings,
};
use claimlink_core::DeviceLink as _;
use claimlink_harness::testing::{self, EventRecorder, SimDeviceBuilder};
use claimlink_harness::world::World;
use common::{endpoint_name, options, secret, settings, wifi, world, world_settings, AppBle};

struct Token(String);

#[async_trait]
impl TokenProvider for Token {
    async fn bearer_token(&self, _refresh: bool) -> Result<String, ProviderFailure> {
        Ok(self.0.clone())
    }
}

/// The shared recorder, listening through the FFI's listener (the events an app receives).
#[derive(Default)]
struct Events(EventRecorder<ProvisioningEvent>);

impl ProvisioningListener for Events {
    fn on_event(&self, event: ProvisioningEvent) {
        self.0.record(event);
    }
}

fn provisioner(world: &World) -> Arc<Provisioner> {
    let e = &world.emulator;
    Provisioner::with_backend(
        world_settings(world),
        e.base_url(),
        Arc::new(Token(e.issue_bearer_token())),
    )
    .expect("provisioner")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_implemented_ble_link_provisions_a_device_end_to_end() {
    let world = world().await;
    let (device, gatt) = SimDeviceBuilder::in_world(&world, 0).build();
    let app = AppBle::new(gatt.clone());
    let events = Arc::new(Events::default());
    let session = provisioner(&world)
        .connect(app.clone(), secret(), Some(events.clone()))
        .await
        .expect("connect");
    let info = session.device_info().await.expect("info");
    assert_eq!(info.security, claimlink::SecurityLevel::Sec2);
    assert!(info.link.starts_with("app ble"), "{}", info.link);
    let networks = session.scan_wifi().await.expect("scan");
    assert_eq!(networks[0].ssid, "claimlink-lab");
    let done = session
        .provision(wifi(), options("FFI-0001"), Some(events.clone()))
        .await
        .expect("provision");
    assert_eq!(done.thing_name, "FFI-0001");
    let thing = world.emulator.thing("FFI-0001").expect("thing registered");
    let certificate = done.certificate_id.clone().expect("certificate id");
    assert!(thing.principals.contains(&certificate));
    assert_eq!(
        world.emulator.certificate_status(&certificate).as_deref(),
        Some("ACTIVE")
    );
    let stages = events.0.map(|e| e.stage);
    assert!(stages.windows(2).all(|w| w[0] < w[1]), "{stages:?}");
    assert_eq!(stages.first(), Some(&Stage::Connecting));
    assert_eq!(stages.last(), Some(&Stage::ConfirmedByCloud));
    assert!(!device.holds_claim());
    // Every exchange went through the app's link, none around it.
    assert!(app.exchanges.load(Ordering::SeqCst) >= 11);
    assert_eq!(
        app.exchanges.load(Ordering::SeqCst),
        gatt.stats().exchanges,
        "exchanges bypassed the app's link"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_link_that_drops_mid_handover_gives_connection_lost_and_no_claim_is_left() {
    let world = world().await;
    let (device, gatt) = SimDeviceBuilder::in_world(&world, 1).build();
    // The claim bundle (about 1 KiB) takes three aws-claim messages: drop at the second.
    let app = Arc::new(AppBle {
        drop_once_at: Some(("aws-claim", 2)),
        device: Some(device.clone()),
        ..AppBle::plain(gatt)
    });
    let session = provisioner(&world)
        .connect(app.clone(), secret(), None)
        .await
        .expect("connect");
    let _ = session.scan_wifi().await.expect("scan");
    let failure = session
        .provision(wifi(), options("FFI-0002"), None)
        .await
        .expect_err("must fail");
    assert!(
        matches!(failure, ProvisioningFailure::ConnectionLost { .. }),
        "{failure:?}"
    );
    assert!(world.emulator.thing("FFI-0002").is_none());
    // The device held part of the claim when the link dropped; the SDK reconnected through the
    // app's link (a new handshake, then an aws-claim abort) and wiped it.
    assert!(
        app.held_claim_at_drop.load(Ordering::SeqCst),
        "the first part of the claim had reached the device"
    );
    let claim_messages = app
        .on_endpoint
        .lock()
        .expect("lock")
        .iter()
        .filter(|(e, _)| endpoint_name(e) == "aws-claim")
        .map(|(_, n)| *n)
        .sum::<u64>();
    assert_eq!(claim_messages, 3, "begin, the dropped chunk, the abort");
    assert!(
        !device.holds_claim(),
        "the partial claim is still on the device"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_an_app_link_is_a_typed_failure_not_a_panic() {
    let world = world().await;
    for (at, what) in [
        (1u64, "proto-ver"),
        (2, "handshake"),
        (4, "encrypted answer"),
    ] {
        let (_device, gatt) = SimDeviceBuilder::in_world(&world, 2 + at as u8).build();
        let app = Arc::new(AppBle {
            garbage_at: Some(at),
            ..AppBle::plain(gatt)
        });
        let result = async {
            let session = provisioner(&world).connect(app, secret(), None).await?;
            session.scan_wifi().await
        }
        .await;
        let failure = result.expect_err(what);
        assert!(
            matches!(
                failure,
                ProvisioningFailure::DeviceMisbehaved { .. }
                    | ProvisioningFailure::MessageTampered
                    | ProvisioningFailure::DeviceNotAuthentic
                    | ProvisioningFailure::WrongDevicePassword
            ),
            "{what}: {failure:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_wrong_passphrase_are_the_actions_an_app_takes() {
    let world = world().await;
    let (_device, gatt) = SimDeviceBuilder::in_world(&world, 8).build();
    let p = provisioner(&world);
    let failure = p
        .connect(
            AppBle::new(gatt.clone()),
            DeviceSecret::password("wifiprov".into(), "not-it".into()),
            None,
        )
        .await
        .expect_err("wrong password");
    assert_eq!(failure, ProvisioningFailure::WrongDevicePassword);
    // The failed connect left nothing open; connecting again on the same link reconnects.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), gatt.disconnected())
            .await
            .is_ok(),
        "the link is still connected after a failed connect"
    );
    let session = p
        .connect(AppBle::new(gatt), secret(), None)
        .await
        .expect("right password");
    let wrong =
        WifiSettings::new("claimlink-lab".into(), "not the passphrase".into()).expect("wifi");
    assert_eq!(
        session
            .provision(wrong, options("FFI-0008"), None)
            .await
            .expect_err("wrong passphrase"),
        ProvisioningFailure::WifiPasswordRejected
    );
    let done = session
        .provision(wifi(), options("FFI-0008"), None)
        .await
        .expect("corrected");
    assert_eq!(done.thing_name, "FFI-0008");
}

struct Outcome(
    Mutex<Option<Result<ProvisionedDevice, ProvisioningFailure>>>,
    tokio::sync::Notify,
);

impl ProvisioningCompletion for Outcome {
    fn on_success(&self, device: ProvisionedDevice) {
        *self.0.lock().expect("lock") = Some(Ok(device));
        self.1.notify_one();
    }
    fn on_failure(&self, failure: ProvisioningFailure) {
        *self.0.lock().expect("lock") = Some(Err(failure));
        self.1.notify_one();
    }
}

/// Connects through the FFI to the device `devices` builds, starts a run for `serial` with
/// `start_provision` and returns once the claim was sent: the device, the session (kept alive by the
/// caller), the run's handle and where its outcome lands.
async fn start_until_claim_sent(
    world: &World,
    devices: SimDeviceBuilder,
    serial: &str,
) -> (
    Arc<claimlink_harness::device::SimDevice>,
    Arc<claimlink::ProvisioningSession>,
    Arc<claimlink::TaskHandle>,
    Arc<Outcome>,
) {
    let (device, gatt) = devices.build();
    let session = provisioner(world)
        .connect(AppBle::new(gatt), secret(), None)
        .await
        .expect("connect");
    let outcome = Arc::new(Outcome(Mutex::new(None), tokio::sync::Notify::new()));
    let events = Arc::new(Events::default());
    let handle = session
        .start_provision(
            wifi(),
            options(serial),
            Some(events.clone()),
            outcome.clone(),
        )
        .expect("start");
    let claim_sent = events
        .0
        .until(|events| events.iter().any(|e| e.stage == Stage::ClaimSent));
    tokio::time::timeout(Duration::from_secs(30), claim_sent)
        .await
        .expect("claim sent");
    (device, session, handle, outcome)
}

/// Dropping the last reference to a `TaskHandle` (a garbage collector freeing an unreferenced one)
/// does not stop the run the app still waits on: the completion hears the real outcome. (It used to
/// cancel the run.) `cancel()` on the handle stops it and wipes the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_task_handle_leaves_the_run_going_and_cancel_stops_it() {
    let world = world().await;
    let (_device, _session, handle, outcome) =
        start_until_claim_sent(&world, SimDeviceBuilder::in_world(&world, 9), "FFI-0009").await;
    drop(handle);
    tokio::time::timeout(Duration::from_secs(30), outcome.1.notified())
        .await
        .expect("an outcome");
    let done = outcome.0.lock().expect("lock").clone();
    assert!(
        matches!(&done, Some(Ok(device)) if device.thing_name == "FFI-0009"),
        "{done:?}"
    );
    assert!(world.emulator.thing("FFI-0009").is_some());

    // The handle's cancel() does stop a run, and wipes the claim.
    let devices = SimDeviceBuilder::in_world(&world, 10).joins_in(Duration::from_secs(3));
    let (device, _session, handle, outcome) =
        start_until_claim_sent(&world, devices, "FFI-0010").await;
    assert!(device.holds_claim());
    handle.cancel();
    assert_eq!(
        outcome.0.lock().expect("lock").clone(),
        Some(Err(ProvisioningFailure::Cancelled))
    );
    testing::eventually(Duration::from_secs(5), || !device.holds_claim()).await;
    assert!(!device.holds_claim(), "the claim is still on the device");
    assert!(world.emulator.thing("FFI-0010").is_none());
}

#[test]
fn settings_are_checked_when_the_provisioner_is_built() {
    let settings = |template: &str, poll: i32| ProvisionerSettings {
        poll_interval_millis: poll,
        ..settings(template, "example-ats.iot.eu-west-1.amazonaws.com".into())
    };
    let tokens = || Arc::new(Token("t".into()));
    let bad = [
        Provisioner::with_backend(
            settings("no spaces!", 500),
            "https://x.example/".into(),
            tokens(),
        ),
        Provisioner::with_backend(settings("ok", 5000), "https://x.example/".into(), tokens()),
        Provisioner::with_backend(settings("ok", 500), "not a url".into(), tokens()),
        Provisioner::with_backend(
            settings("ok", 500),
            "http://plain.example/".into(),
            tokens(),
        ),
    ];
    for (i, result) in bad.into_iter().enumerate() {
        assert!(
            matches!(result, Err(ProvisioningFailure::InvalidInput { .. })),
            "case {i}: {result:?}"
        );
    }
    // Times out of range (negative ones too: they are Int in Kotlin) are refused with the field's
    // name, not clamped.
    type Edit = fn(&mut ProvisionerSettings);
    let edits: [(&str, Edit); 10] = [
        ("wifi_timeout_secs", |s| s.wifi_timeout_secs = -1),
        ("poll_interval_millis", |s| {
            s.poll_interval_millis = i32::MIN
        }),
        ("safety_margin_secs", |s| s.safety_margin_secs = 300),
        ("safety_margin_secs", |s| s.safety_margin_secs = 0),
        ("wifi_timeout_secs", |s| s.wifi_timeout_secs = 0),
        ("cloud_timeout_secs", |s| s.cloud_timeout_secs = 0),
        ("overall_timeout_secs", |s| s.overall_timeout_secs = 0),
        ("poll_interval_millis", |s| s.poll_interval_millis = 99),
        ("ap_join_budget_secs", |s| s.ap_join_budget_secs = 0),
        ("ap_join_budget_secs", |s| s.ap_join_budget_secs = 241),
    ];
    for (field, edit) in edits {
        let mut s = settings("ok", 500);
        edit(&mut s);
        match Provisioner::with_backend(s, "https://x.example/".into(), tokens()) {
            Err(ProvisioningFailure::InvalidInput { detail }) => {
                assert!(detail.contains(field), "{detail}")
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    // The defaults and the range ends are accepted.
    let mut edge = settings("ok", 1000);
    edge.safety_margin_secs = 240;
    edge.overall_timeout_secs = 3600;
    edge.ap_join_budget_secs = 240;
    assert!(Provisioner::with_backend(edge, "https://x.example/".into(), tokens()).is_ok());
    let mut with_bad_ca = settings("ok", 500);
    with_bad_ca.extra_root_certificates_pem = vec!["-----BEGIN CERTIFICATE-----\nnope\n".into()];
    assert!(matches!(
        Provisioner::with_backend(with_bad_ca, "https://x.example/".into(), tokens()),
        Err(ProvisioningFailure::InvalidInput { .. })
    ));
}

#[test]
fn secrets_stay_out_of_debug_and_display() {
    let s = DeviceSecret::password("wifiprov".into(), "hunter2-pw".into());
    let w = WifiSettings::new("lab".into(), "correct horse battery".into()).expect("wifi");
    let c = claimlink::AwsCredentials::new(
        "AKID".into(),
        "wJalrXUtnFEMI".into(),
        Some("tok-xyz".into()),
    );
    let qr = claimlink::parse_provisioning_qr(
        r#"{"ver":"v1","name":"PROV_1","pop":"pop-secret","transport":"softap","security":1}"#
            .into(),
    )
    .expect("qr");
    let printed = format!("{s:?} {s} {w:?} {w} {c:?} {qr:?}");
    for secret in [
        "hunter2-pw",
        "correct horse battery",
        "wJalrXUtnFEMI",
        "tok-xyz",
        "pop-secret",
    ] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    assert!(printed.contains("wifiprov") && printed.contains("lab") && printed.contains("AKID"));
}

/// The exported objects cross threads (Kotlin dispatchers, Swift actors): they must be Send + Sync.
#[test]
fn exported_objects_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Provisioner>();
    check::<claimlink::ProvisioningSession>();
    check::<claimlink::TaskHandle>();
    check::<DeviceSecret>();
    check::<WifiSettings>();
    check::<claimlink::AwsCredentials>();
    check::<ProvisioningFailure>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_speaking_an_unknown_aws_extension_version_is_refused_before_anything_is_sent() {
    let world = world().await;
    let version = |aws_ver: &str| {
        format!(
            r#"{{"prov":{{"ver":"v1.1","sec_ver":2,"sec_patch_ver":1,"cap":["wifi_scan"]}},"aws":{{"ver":"{aws_ver}","cap":["claim","status"]}}}}"#
        )
    };
    let (_device, gatt) = SimDeviceBuilder::in_world(&world, 30).build();
    let app = Arc::new(AppBle {
        version_json: Some(version("2")),
        ..AppBle::plain(gatt)
    });
    let failure = provisioner(&world)
        .connect(app.clone(), secret(), None)
        .await
        .expect_err("refused");
    assert_eq!(
        failure,
        ProvisioningFailure::UnsupportedDevice {
            reason: "the device's aws extension is version 2; this SDK speaks 1.x".into()
        }
    );
    assert_eq!(
        *app.on_endpoint.lock().expect("lock"),
        HashMap::from([("proto-ver".to_owned(), 1)]),
        "only proto-ver was asked"
    );

    // A newer minor version of 1 is spoken; a version that is not a version is malformed.
    let (_device, gatt) = SimDeviceBuilder::in_world(&world, 31).build();
    let app = Arc::new(AppBle {
        version_json: Some(version("1.3")),
        ..AppBle::plain(gatt)
    });
    let session = provisioner(&world)
        .connect(app, secret(), None)
        .await
        .expect("1.3 is spoken");
    let info = session.device_info().await.expect("info");
    assert_eq!(info.claim_extension_version.as_deref(), Some("1.3"));
    let (_device, gatt) = SimDeviceBuilder::in_world(&world, 32).build();
    let app = Arc::new(AppBle {
        version_json: Some(version("two")),
        ..AppBle::plain(gatt)
    });
    let failure = provisioner(&world)
        .connect(app, secret(), None)
        .await
        .expect_err("malformed");
    assert!(
        matches!(failure, ProvisioningFailure::DeviceMisbehaved { .. }),
        "{failure:?}"
    );
}

/// A link without an ATT MTU is the device's SoftAP access point (the trait's contract), whoever
/// implements it: the SDK's `http_device_link` through the FFI, or an app's own (Android's
/// `AndroidSoftApLink`). The scan then goes a few channels at a time, so the phone keeps the AP, and
/// the support report says SoftAP; a BLE link with its MTU scans all channels at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_without_an_att_mtu_scan_and_report_as_softap() {
    let world = world().await;
    let provisioner = provisioner(&world);
    let over_ap = |report: &str| -> bool {
        let report: serde_json::Value = serde_json::from_str(report).expect("JSON");
        report["link"]["over_device_access_point"]
            .as_bool()
            .expect("flag")
    };

    let softap = SimDeviceBuilder::in_world(&world, 31).device();
    let server = claimlink_harness::device::http::HttpDevice::serve(softap.clone())
        .await
        .expect("serves");
    let link = claimlink::http_device_link(server.base_url()).expect("link");
    let session = provisioner
        .connect(link, secret(), None)
        .await
        .expect("connect");
    session.scan_wifi().await.expect("scan");
    // Five channels at a time, as ESP-IDF's esp_prov.py scans over SoftAP.
    assert_eq!(softap.scan_group_channels(), Some(5));
    assert!(over_ap(&session.support_report().await.expect("report")));

    let (ble, gatt) = SimDeviceBuilder::in_world(&world, 32).build();
    let session = provisioner
        .connect(AppBle::new(gatt), secret(), None)
        .await
        .expect("connect");
    session.scan_wifi().await.expect("scan");
    assert_eq!(ble.scan_group_channels(), Some(0));
    assert!(!over_ap(&session.support_report().await.expect("report")));
}
