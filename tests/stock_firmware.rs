//! The simulator behaves as stock ESP-IDF firmware (network_provisioning's manager, protocomm_httpd,
//! esp_http_server) does, and the SDK works on those semantics: a failed handler closes the socket
//! without an HTTP status and a wrong password still reads as one; after auto-stop the service is gone;
//! SetConfig replaces, ApplyConfig is refused once applied; Reset and Reprov are accepted only where
//! network_provisioning accepts them; an empty body is refused; `prov.cap` says `wifi_prov`; a scan
//! over SoftAP goes a few channels at a time. docs/protocol.md, "Device state machine", is the table.

use std::sync::Arc;
use std::time::Duration;

use claimlink::ProvisioningFailure;
use claimlink_core::{DeviceCredentials, DeviceLink, DeviceRefusal, LinkError};
use claimlink_core::{NoListener, ProtocolError, ProvisionError};
use claimlink_core::{WifiCredentials, WifiFailure, WifiState};
use claimlink_harness::device::SimDeviceConfig;
use claimlink_harness::testing::{self, expected_thing_options, lab_wifi, sec2_session};
use claimlink_harness::testing::{http_link_to, quick_devices, SimDeviceBuilder, LAB_SSID};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a raw HTTP client gets for `request`: the bytes until the device closes the connection.
async fn raw_exchange(base_url: &str, request: &[u8]) -> Vec<u8> {
    let addr = base_url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("the device closes the connection")
        .ok();
    answer
}

fn post(endpoint: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /{endpoint} HTTP/1.1\r\nHost: device\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// The station state, polled until it is no longer `Connecting` (the join takes 50 ms).
fn refused(result: Result<(), ProtocolError>) -> bool {
    matches!(result, Err(ProtocolError::DeviceRefused { .. }))
}

/// protocomm_httpd.c: an empty body, a failed handler (here: a session step that does not decode)
/// end the request with `ESP_FAIL`, and esp_http_server (httpd_uri.c, httpd_sess.c) closes the socket:
/// no status line at all. A good `proto-ver` answers JSON whose `prov.cap` has `wifi_prov`.
#[tokio::test]
async fn a_failed_request_over_http_gets_no_status_and_proto_ver_says_wifi_prov() {
    let device = quick_devices(SimDeviceConfig::default()).device();
    let (server, _link) = http_link_to(&device).await;
    let url = server.base_url();
    assert!(raw_exchange(&url, &post("proto-ver", b"")).await.is_empty());
    assert!(raw_exchange(&url, &post("prov-session", b"\xff\xff\xff"))
        .await
        .is_empty());
    assert!(
        raw_exchange(&url, &post("prov-config", &[0u8; 4097]))
            .await
            .is_empty(),
        "over 4096 bytes"
    );
    let answer =
        String::from_utf8(raw_exchange(&url, &post("proto-ver", b"ESP")).await).expect("text");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json = answer.split("\r\n\r\n").nth(1).expect("a body");
    let version: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(
        version["prov"]["cap"],
        serde_json::json!(["wifi_prov", "wifi_scan"])
    );
    // An unknown endpoint is still esp_http_server's 404.
    let answer = raw_exchange(&url, &post("no-such-endpoint", b"x")).await;
    assert!(answer.starts_with(b"HTTP/1.1 404"));
}

/// A wrong password over SoftAP: the device closes the connection in answer to the proof, and the
/// SDK, which can still connect to it, reports a wrong password (the app's `WrongDevicePassword`), not
/// a lost connection. The right password then works on the same link.
#[tokio::test]
async fn a_wrong_password_over_softap_is_a_wrong_device_password() {
    let world = testing::quick_world().await;
    let device = SimDeviceBuilder::in_world(&world, 1).device();
    let (_server, link) = http_link_to(&device).await;
    let err = world
        .provisioner
        .connect(
            link.clone(),
            DeviceCredentials::password("not-the-password"),
            &NoListener,
        )
        .await
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            ProvisionError::Protocol(ProtocolError::WrongCredentials)
        ),
        "{err:?}"
    );
    assert_eq!(
        ProvisioningFailure::from(err),
        ProvisioningFailure::WrongDevicePassword
    );
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(
            &lab_wifi(),
            &expected_thing_options("SN-HTTP-PW"),
            &NoListener,
        )
        .await
        .expect("provisioned with the right password");
    assert_eq!(done.thing_name, "SN-HTTP-PW");
}

/// A failed handler is a refusal; a device whose server is gone is a lost connection, even when the
/// socket it had closes the same way.
#[tokio::test]
async fn a_closed_connection_is_a_refusal_only_while_the_device_still_listens() {
    let device = quick_devices(SimDeviceConfig {
        failing_endpoints: vec!["prov-scan".into()],
        ..SimDeviceConfig::default()
    })
    .device();
    let (server, link) = http_link_to(&device).await;
    assert_eq!(
        link.exchange("prov-scan", b"\x08\x00").await,
        Err(LinkError::DeviceError(DeviceRefusal::ClosedWithoutAnswer))
    );

    // A server that reads the request, stops listening, then closes the socket: the device is gone.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let gone = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        drop(listener);
        let mut buf = [0u8; 1024];
        let _ = tcp.read(&mut buf).await;
    });
    let link = claimlink_core::HttpLink::new(&format!("http://{addr}"), Duration::from_secs(5))
        .expect("url");
    assert_eq!(
        link.exchange("prov-session", b"\x08\x02").await,
        Err(LinkError::Disconnected)
    );
    gone.await.expect("server task");
    drop(server);
}

/// With ESP-IDF's default auto-stop, the first GetStatus that answers Connected stops provisioning
/// (after the cleanup delay): the SoftAP service is gone — no HTTP answer, connections refused — and
/// a Reprov was refused before that.
#[tokio::test]
async fn after_auto_stop_the_softap_service_is_gone() {
    let device = quick_devices(SimDeviceConfig {
        auto_stop_after_ip: Some(Duration::from_secs(30)),
        auto_stop_cleanup_delay: Duration::from_millis(100),
        ..SimDeviceConfig::default()
    })
    .device();
    let (server, link) = http_link_to(&device).await;
    let session = sec2_session(link.clone()).await;
    session.set_wifi_config(&lab_wifi()).await.expect("set");
    session.apply_wifi_config().await.expect("apply");
    assert!(matches!(
        testing::wifi_settled(&session).await,
        WifiState::Connected { .. }
    ));
    assert!(
        refused(session.reprovision().await),
        "auto-stop on: no Reprov"
    );
    let mut waited = 0;
    while !device.provisioning_stopped() {
        assert!(waited < 500, "provisioning never stopped");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The server stops listening within its poll (a state to wait for); then the SDK, whose socket
    // the device closes without an answer, sees a lost device, not a refusal.
    let addr = server.base_url().trim_start_matches("http://").to_owned();
    let mut waited = 0;
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(waited < 500, "the server kept listening");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let result = session.wifi_status().await;
    assert!(
        matches!(result, Err(ProtocolError::Link(LinkError::Disconnected))),
        "{result:?}"
    );
}

/// network_provisioning's state machine: a fresh device reports `Connecting` and accepts Reset (a
/// no-op in STARTED); while joining (an attempt failed, more to come) Reset is refused; once the join
/// failed Reset is accepted and GetStatus keeps reporting the failure; a second SetConfig is accepted
/// and the ApplyConfig refused; Reprov is accepted only with auto-stop disabled.
#[tokio::test]
async fn reset_reprov_and_set_config_follow_network_provisioning() {
    let builder = quick_devices(SimDeviceConfig::default())
        .configure(|config| config.world.retries = 2)
        .joins_in(Duration::from_millis(150));
    let (device, link) = builder.build();
    let session = sec2_session(link).await;
    assert_eq!(
        session.wifi_status().await.expect("status"),
        WifiState::Connecting
    );
    session.reset_wifi().await.expect("Reset in STARTED");
    let wrong = WifiCredentials::new(LAB_SSID, "wrong horse battery".into()).expect("wifi");
    session.set_wifi_config(&wrong).await.expect("set");
    session.apply_wifi_config().await.expect("apply");
    assert!(refused(session.reset_wifi().await), "joining: no Reset");
    // An attempt failed, more to come: still joining.
    let mut state = session.wifi_status().await.expect("status");
    while state == WifiState::Connecting {
        tokio::time::sleep(Duration::from_millis(10)).await;
        state = session.wifi_status().await.expect("status");
    }
    assert!(
        matches!(state, WifiState::AttemptFailed { .. }),
        "{state:?}"
    );
    assert!(
        refused(session.reset_wifi().await),
        "attempt failed: no Reset"
    );
    // A second SetConfig replaces the settings; applying them is refused while joining.
    session
        .set_wifi_config(&lab_wifi())
        .await
        .expect("set again");
    assert!(refused(session.apply_wifi_config().await));
    assert_eq!(
        testing::wifi_settled(&session).await,
        WifiState::Failed(WifiFailure::AuthError)
    );
    session.reset_wifi().await.expect("Reset in FAIL");
    assert_eq!(
        session.wifi_status().await.expect("status"),
        WifiState::Failed(WifiFailure::AuthError),
        "GetStatus keeps what it said"
    );
    session.set_wifi_config(&lab_wifi()).await.expect("set");
    session.apply_wifi_config().await.expect("apply");
    assert!(matches!(
        testing::wifi_settled(&session).await,
        WifiState::Connected { .. }
    ));
    assert!(refused(session.reset_wifi().await), "connected: no Reset");
    session
        .reprovision()
        .await
        .expect("auto-stop disabled: Reprov");
    assert!(!device.provisioning_stopped());
}

/// The SDK's retry after a wrong passphrase works on a stock device with ESP-IDF's auto-stop left
/// on: Reset after the failure, never Reprov; the device goes quiet once it answered Connected and
/// the run is confirmed through the cloud.
#[tokio::test]
async fn a_wrong_passphrase_is_retried_on_stock_auto_stop() {
    let world = testing::quick_world().await;
    let (device, link) = SimDeviceBuilder::in_world(&world, 2)
        .configure(|config| {
            config.stock_auto_stop();
            config.auto_stop_cleanup_delay = Duration::from_millis(100);
        })
        .build();
    let session = testing::connect(&world.provisioner, link).await;
    let wrong = WifiCredentials::new(LAB_SSID, "wrong horse battery".into()).expect("wifi");
    let err = session
        .provision(&wrong, &expected_thing_options("SN-STOCK"), &NoListener)
        .await
        .expect_err("wrong passphrase");
    assert!(matches!(err, ProvisionError::WifiAuthFailed), "{err:?}");
    let done = session
        .provision(
            &lab_wifi(),
            &expected_thing_options("SN-STOCK"),
            &NoListener,
        )
        .await
        .expect("retry");
    assert_eq!(done.thing_name, "SN-STOCK");
    assert_eq!(device.thing_name().as_deref(), Some("SN-STOCK"));
}

/// A scan over SoftAP goes 5 channels at a time (as ESP-IDF's esp_prov does) so the phone keeps the
/// device's access point; over BLE all channels at once.
#[tokio::test]
async fn a_scan_over_softap_groups_channels_and_over_ble_does_not() {
    let builder = quick_devices(SimDeviceConfig::default());
    let device = builder.device();
    let (_server, link) = http_link_to(&device).await;
    let session = sec2_session(link).await;
    assert!(!session.scan_wifi().await.expect("scan").is_empty());
    assert_eq!(device.scan_group_channels(), Some(5));

    let (device, link) = builder.build();
    let session = sec2_session(link as Arc<dyn DeviceLink>).await;
    session.scan_wifi().await.expect("scan");
    assert_eq!(device.scan_group_channels(), Some(0));
}

/// Settling a device that is still joining after a dropped run: Reset is refused until its join
/// ends, then accepted; the SDK waits for that and provisions.
#[tokio::test]
async fn settling_waits_for_a_join_left_running_by_a_dropped_run() {
    let world = testing::quick_world().await;
    let builder = SimDeviceBuilder::in_world(&world, 3).joins_in(Duration::from_millis(300));
    let (device, link) = builder.build();
    {
        let session = sec2_session(link.clone()).await;
        let wrong = WifiCredentials::new(LAB_SSID, "wrong horse battery".into()).expect("wifi");
        session.set_wifi_config(&wrong).await.expect("set");
        session.apply_wifi_config().await.expect("apply");
    }
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(
            &lab_wifi(),
            &expected_thing_options("SN-SETTLE"),
            &NoListener,
        )
        .await
        .expect("provisioned after the join ended");
    assert_eq!(done.thing_name, "SN-SETTLE");
    assert!(device.thing_name().is_some());
}
