//! The device's endpoints end to end over a secure session: the SDK's client against the harness's
//! device simulator, over the simulated BLE link and over HTTP on 127.0.0.1. Scanning, Wi-Fi
//! configuration and status, the claim transfer at every MTU and its abort, and the device
//! behaviour the simulator models (DHCP, stopping after an address, ESP-IDF's HTTP quirks).

use std::collections::BTreeMap;
use std::time::Duration;

use claimlink_core::internal::claim_bundle;
use claimlink_core::internal::proto::CloudStage;
use claimlink_core::{DeviceCredentials, ProtocolError, SecurityPolicy, SecurityScheme};
use claimlink_core::{DeviceLink, LinkError};
use claimlink_core::{WifiCredentials, WifiFailure, WifiState};
use claimlink_harness::device::SimDeviceConfig;
use claimlink_harness::testing::{self, establish_session as open, lab_wifi, sec2_session};
use claimlink_harness::testing::{emulator_with_claim as real_claim, private_key_der as key_der};
use claimlink_harness::testing::{quick_devices as quick, quick_sec2_devices as sec2};
use claimlink_harness::testing::{serial_parameters, DEVICE_PASSWORD as PASSWORD};
use claimlink_harness::testing::{LAB_PASSPHRASE as LAB_PASS, LAB_SSID};

/// The device rebuilt the same RSA key from its primes: same modulus, exponent, primes and CRT values
/// (its private exponent may be the λ(n) form rather than φ(n): both are valid).
fn assert_same_rsa_key(rebuilt: &[u8], original: &[u8], mtu: u16) {
    use der::Decode;
    let a = pkcs1::RsaPrivateKey::from_der(rebuilt).expect("device key parses");
    let b = pkcs1::RsaPrivateKey::from_der(original).expect("claim key parses");
    assert_eq!(a.modulus, b.modulus, "mtu {mtu}");
    assert_eq!(a.public_exponent, b.public_exponent, "mtu {mtu}");
    assert_eq!((a.prime1, a.prime2), (b.prime1, b.prime2), "mtu {mtu}");
    assert_eq!(
        (a.exponent1, a.exponent2, a.coefficient),
        (b.exponent1, b.exponent2, b.coefficient),
        "mtu {mtu}"
    );
}

#[tokio::test]
async fn sec2_over_ble_scan_config_claim_apply_at_every_mtu() {
    let (_emulator, claim) = real_claim().await;
    for mtu in [23u16, 185, 512] {
        let (dev, link) = sec2().mtu(mtu).build();
        let session = sec2_session(link.clone()).await;
        assert_eq!(session.capabilities().security, SecurityScheme::Sec2);
        let networks = session.scan_wifi().await.expect("scan");
        let names: Vec<String> = networks.iter().map(|n| n.ssid_lossy()).collect();
        assert_eq!(
            names,
            vec!["claimlink-lab", "neighbours-wifi", "cafe-guest"],
            "strongest first"
        );
        session
            .set_wifi_config(&lab_wifi())
            .await
            .expect("set config");
        let params = serial_parameters("SN-1");
        let transfer = session
            .send_claim(&claim_bundle(&claim, "iot.example.test", &params))
            .await
            .expect("claim sent");
        let held = dev.received_claim().expect("device holds the claim");
        assert_eq!(held.certificate_der, claim.certificate().der(), "mtu {mtu}");
        assert_same_rsa_key(&held.private_key_der, &key_der(&claim), mtu);
        assert_eq!(held.certificate_id, claim.certificate_id());
        assert_eq!(held.template_parameters, params);
        assert_eq!(held.bundle.len(), transfer.bytes);
        assert!(held.seconds_left > 250);
        session.apply_wifi_config().await.expect("apply");
        match testing::wifi_settled(&session).await {
            WifiState::Connected { ip, ssid, .. } => {
                assert!(ip.is_some());
                assert_eq!(ssid, LAB_SSID.as_bytes());
            }
            other => panic!("expected Connected, got {other:?}"),
        }
        let cloud = session.cloud_status().await.expect("cloud status");
        assert_eq!(cloud.stage, CloudStage::WifiConnected);
        let stats = link.stats();
        assert!(stats.round_trips >= stats.exchanges);
        // Every message respected the cap, whatever the MTU.
        assert!(stats.exchanges > 0);
    }
}

#[tokio::test]
async fn sec2_over_http_like_a_softap_device() {
    let (_emulator, claim) = real_claim().await;
    let dev = sec2().device();
    let (_server, link) = testing::http_link_to(&dev).await;
    let session = sec2_session(link).await;
    assert_eq!(session.scan_wifi().await.expect("scan").len(), 3);
    let t = session
        .send_claim(&claim_bundle(&claim, "iot.example.test", &BTreeMap::new()))
        .await
        .expect("claim");
    assert!(t.exchanges < 4, "4 KiB HTTP messages: {t:?}");
    assert_eq!(
        dev.received_claim().map(|c| c.certificate_der),
        Some(claim.certificate().der().to_vec())
    );
}

#[tokio::test]
async fn a_wrong_wifi_password_is_retried_on_the_same_session() {
    let (_dev, link) = sec2().build();
    let session = sec2_session(link).await;
    session
        .set_wifi_config(
            &WifiCredentials::new(LAB_SSID, "wrong horse battery".into()).expect("wifi"),
        )
        .await
        .expect("set");
    session.apply_wifi_config().await.expect("apply");
    assert_eq!(
        testing::wifi_settled(&session).await,
        WifiState::Failed(WifiFailure::AuthError)
    );
    assert_eq!(
        session.cloud_status().await.expect("status").stage,
        CloudStage::Failed
    );
    // As network_provisioning does: a second SetConfig is accepted (it replaces the settings), the
    // ApplyConfig is refused until the Wi-Fi state is reset (and it frees the settings).
    session
        .set_wifi_config(&lab_wifi())
        .await
        .expect("set replaces");
    assert!(matches!(
        session.apply_wifi_config().await,
        Err(ProtocolError::DeviceRefused { .. })
    ));
    session.reset_wifi().await.expect("reset");
    session
        .set_wifi_config(&lab_wifi())
        .await
        .expect("set again");
    session.apply_wifi_config().await.expect("apply again");
    assert!(matches!(
        testing::wifi_settled(&session).await,
        WifiState::Connected { .. }
    ));

    let (_dev, link) = sec2().build();
    let session = sec2_session(link).await;
    session
        .set_wifi_config(&WifiCredentials::new("no-such-network", LAB_PASS.into()).expect("wifi"))
        .await
        .expect("set");
    session.apply_wifi_config().await.expect("apply");
    assert_eq!(
        testing::wifi_settled(&session).await,
        WifiState::Failed(WifiFailure::NetworkNotFound)
    );
}

#[tokio::test]
async fn a_disconnect_mid_transfer_breaks_the_session_and_abort_wipes_the_rest() {
    let (_emulator, claim) = real_claim().await;
    // proto-ver, 2 handshake messages, claim begin, then the 5th exchange (a chunk) drops.
    let (dev, link) = sec2().mtu(23).disconnect_at_exchange(5).build();
    let session = sec2_session(link.clone()).await;
    let watcher = {
        let link = link.clone();
        tokio::spawn(async move { link.disconnected().await })
    };
    let err = session
        .send_claim(&claim_bundle(&claim, "iot.example.test", &BTreeMap::new()))
        .await
        .expect_err("dropped");
    tokio::time::timeout(Duration::from_secs(1), watcher)
        .await
        .expect("the disconnect signal fired")
        .expect("watcher task");
    assert!(
        matches!(err, ProtocolError::Link(LinkError::Disconnected)),
        "{err:?}"
    );
    assert!(session.is_broken().await);
    assert!(matches!(
        session.scan_wifi().await,
        Err(ProtocolError::SessionBroken)
    ));
    assert!(dev.holds_claim(), "a partial claim is still on the device");
    // Reconnect (a new connection) and a new session: the device discards the partial claim
    // (docs/protocol.md §9); an abort is still answered.
    link.connect().await.expect("reconnect");
    let session = open(
        link,
        &DeviceCredentials::password(PASSWORD),
        &SecurityPolicy::default(),
    )
    .await
    .expect("new session");
    assert!(!dev.holds_claim(), "a new session discards a partial claim");
    session.abort_claim().await.expect("abort");
    assert!(!dev.holds_claim());
}

#[tokio::test]
async fn dhcp_timeouts_and_auto_stop_after_ip_are_modelled() {
    use claimlink_harness::device::wifi::SimNetwork;
    let mut config = SimDeviceConfig::default();
    config.world.networks.push(SimNetwork {
        dhcp_times_out: true,
        ..SimNetwork::wpa2("no-dhcp", "password-123")
    });
    config.auto_stop_after_ip = Some(Duration::from_millis(150));
    let (_dev, link) = quick(config).build();
    let session = sec2_session(link).await;
    session
        .set_wifi_config(&WifiCredentials::new("no-dhcp", "password-123".into()).expect("wifi"))
        .await
        .expect("set");
    session.apply_wifi_config().await.expect("apply");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        session.wifi_status().await.expect("status"),
        WifiState::Connecting,
        "no address, still trying"
    );
    let cloud = session.cloud_status().await.expect("cloud");
    assert_eq!(cloud.stage, CloudStage::Failed);
    assert_eq!(
        cloud.failure.map(|f| f.kind),
        Some(claimlink_core::internal::proto::CloudFailureKind::DhcpTimeout)
    );

    // A good network: connected, then provisioning (and BLE) stops 150 ms later.
    let (_dev, link) = quick(SimDeviceConfig {
        auto_stop_after_ip: Some(Duration::from_millis(150)),
        ..SimDeviceConfig::default()
    })
    .build();
    let session = sec2_session(link.clone()).await;
    session.set_wifi_config(&lab_wifi()).await.expect("set");
    session.apply_wifi_config().await.expect("apply");
    assert!(matches!(
        testing::wifi_settled(&session).await,
        WifiState::Connected { .. }
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = session.wifi_status().await.expect_err("BLE is gone");
    assert!(
        matches!(err, ProtocolError::Link(LinkError::Disconnected)),
        "{err:?}"
    );
    tokio::time::timeout(Duration::from_secs(1), link.disconnected())
        .await
        .expect("signalled");
    assert!(
        link.connect().await.is_err(),
        "the device no longer advertises"
    );
}

/// What ESP-IDF's own tool (esp_prov) relies on, found by running it against the simulator:
/// `Set-Cookie` in Title-Case (it matches the header name case-sensitively), and empty commands sent
/// as a bare `msg` with no payload field.
#[tokio::test]
async fn the_http_device_behaves_like_esp_idf_for_other_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dev = sec2().device();
    let (server, link) = testing::http_link_to(&dev).await;
    let addr = server.base_url().trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    tcp.write_all(b"POST /proto-ver HTTP/1.1\r\nHost: device\r\nContent-Length: 3\r\n\r\nESP")
        .await
        .expect("write");
    let mut buf = vec![0u8; 2048];
    let n = tcp.read(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.contains("\r\nSet-Cookie: session="), "{text}");
    assert!(text.contains("\"sec_ver\":2"), "{text}");

    let session = sec2_session(link).await;
    session.set_wifi_config(&lab_wifi()).await.expect("set");
    use claimlink_core::internal::proto;
    use prost::Message;
    let bare_apply = proto::WiFiConfigPayload {
        msg: proto::WiFiConfigMsgType::TypeCmdApplyConfig as i32,
        payload: None,
    };
    let answer = session
        .request("prov-config", &bare_apply.encode_to_vec())
        .await
        .expect("applied");
    let answer = proto::WiFiConfigPayload::decode(answer.as_slice()).expect("decodes");
    assert_eq!(
        answer.msg,
        proto::WiFiConfigMsgType::TypeRespApplyConfig as i32
    );
    assert!(matches!(
        testing::wifi_settled(&session).await,
        WifiState::Connected { .. }
    ));
}
