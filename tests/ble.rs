//! The BLE link's logic against a fake GATT table (this machine has no radio): endpoint mapping by
//! 0x2901 descriptors, first-connect retries, error translation, size limits — and a whole provisioning
//! run through it.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::NoListener;
use claimlink_core::{internal::single_write_payload, BleConfig, BleLink};
use claimlink_core::{DeviceCredentials, SecurityPolicy};
use claimlink_core::{DeviceLink, GattError, LinkError, LinkFault};
use claimlink_core::{ProvisioningQr, QrTransport};
use claimlink_harness::device::gatt::{characteristic_uuid, FakeGatt, FakeGattConfig, SERVICE};
use claimlink_harness::testing::{self, SimDeviceBuilder, DEVICE_PASSWORD};

fn quick() -> BleConfig {
    BleConfig {
        retry_backoff: Duration::from_millis(5),
        ..BleConfig::default()
    }
}

#[test]
fn characteristic_uuids_follow_esp_idf() {
    assert_eq!(
        format!("{:032x}", SERVICE),
        "021a900403824aeabff46b3f1c5adfb4"
    );
    assert_eq!(
        format!("{:032x}", characteristic_uuid(0xff51)),
        "021aff5103824aeabff46b3f1c5adfb4"
    );
    assert_eq!(single_write_payload(23), 20);
    assert_eq!(single_write_payload(185), 182);
}

#[tokio::test]
async fn endpoints_are_mapped_by_their_descriptor_names_not_by_uuid() {
    let dev = SimDeviceBuilder::default().device();
    let gatt = FakeGatt::new(
        dev.clone(),
        FakeGattConfig {
            shuffle_uuids: true,
            garbled_extra: true,
            ..FakeGattConfig::default()
        },
    );
    let link = Arc::new(BleLink::open(gatt, quick()).await.expect("opens"));
    let mut names = link.endpoints().expect("listed");
    names.sort();
    assert_eq!(
        names,
        vec![
            "aws-claim",
            "aws-status",
            "proto-ver",
            "prov-config",
            "prov-ctrl",
            "prov-scan",
            "prov-session"
        ]
    );
    assert_eq!(link.mtu(), Some(185));
    let session = testing::establish_session(
        link.clone(),
        &DeviceCredentials::password(DEVICE_PASSWORD),
        &SecurityPolicy::default(),
    )
    .await
    .expect("session over shuffled UUIDs");
    assert_eq!(session.scan_wifi().await.expect("scan").len(), 3);
    let err = link
        .exchange("no-such-endpoint", b"x")
        .await
        .expect_err("unknown");
    assert!(matches!(err, LinkError::UnknownEndpoint(_)));
    let err = link
        .exchange("prov-config", &[0u8; 481])
        .await
        .expect_err("too large");
    assert!(matches!(err, LinkError::TooLarge { len: 481, max: 480 }));
}

#[tokio::test]
async fn first_connect_failures_are_retried_with_backoff_then_given_up() {
    let gatt = FakeGatt::new(
        SimDeviceBuilder::default().device(),
        FakeGattConfig {
            failing_connects: 2,
            ..FakeGattConfig::default()
        },
    );
    let link = BleLink::open(gatt, quick())
        .await
        .expect("third attempt connects");
    assert_eq!(link.peripheral().connect_attempts(), 3);

    let gatt = FakeGatt::new(
        SimDeviceBuilder::default().device(),
        FakeGattConfig {
            failing_connects: 5,
            ..FakeGattConfig::default()
        },
    );
    let err = BleLink::open(gatt, quick()).await.expect_err("gives up");
    assert!(
        matches!(
            err,
            LinkError::Other(LinkFault::Connect(GattError::ConnectFailed(ref m))) if m.contains("133")
        ),
        "{err:?}"
    );

    let gatt = FakeGatt::new(
        SimDeviceBuilder::default().device(),
        FakeGattConfig {
            permission_denied: true,
            ..FakeGattConfig::default()
        },
    );
    let err = BleLink::open(gatt, quick())
        .await
        .expect_err("no permission");
    assert_eq!(err, LinkError::Other(LinkFault::BluetoothPermission));
    assert!(err.to_string().contains("permission"), "{err}");
}

#[tokio::test]
async fn a_device_without_the_provisioning_endpoints_is_refused() {
    let gatt = FakeGatt::new(
        SimDeviceBuilder::default().device(),
        FakeGattConfig {
            hide: Some("prov-session".into()),
            ..FakeGattConfig::default()
        },
    );
    let err = BleLink::open(gatt, quick())
        .await
        .expect_err("not provisioning");
    assert_eq!(
        err,
        LinkError::Other(LinkFault::NotProvisioningDevice {
            missing: "prov-session"
        })
    );
    // A service filter that matches nothing.
    let gatt = FakeGatt::new(
        SimDeviceBuilder::default().device(),
        FakeGattConfig::default(),
    );
    let err = BleLink::open(
        gatt,
        BleConfig {
            service: Some(1),
            ..quick()
        },
    )
    .await
    .expect_err("wrong service");
    assert!(
        matches!(
            err,
            LinkError::Other(LinkFault::NotProvisioningDevice { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_drop_is_a_disconnect_and_the_signal_fires() {
    let link = Arc::new(
        BleLink::open(
            FakeGatt::new(
                SimDeviceBuilder::default().device(),
                FakeGattConfig::default(),
            ),
            quick(),
        )
        .await
        .expect("opens"),
    );
    link.peripheral().drop_connection();
    let err = link
        .exchange("proto-ver", b"ESP")
        .await
        .expect_err("dropped");
    assert_eq!(err, LinkError::Disconnected);
    tokio::time::timeout(Duration::from_secs(2), link.disconnected())
        .await
        .expect("signalled");
    link.connect().await.expect("reconnects");
    assert!(link.exchange("proto-ver", b"ESP").await.is_ok());
}

#[tokio::test]
async fn a_device_from_its_qr_code_is_provisioned_over_the_ble_link() {
    let qr = ProvisioningQr::parse(
        r#"{"ver":"v1","name":"PROV_0031","pop":"abcd1234","transport":"ble","security":2}"#,
    )
    .expect("qr");
    assert_eq!(qr.transport, QrTransport::Ble);
    let world = testing::quick_world().await;
    let device = SimDeviceBuilder::in_world(&world, 0x31).device();
    assert_eq!(device.config().name, qr.name);
    let link: Arc<dyn DeviceLink> = Arc::new(
        BleLink::open(FakeGatt::new(device, FakeGattConfig::default()), quick())
            .await
            .expect("opens"),
    );
    let session = world
        .provisioner
        .connect(link, qr.credentials.clone(), &NoListener)
        .await
        .expect("session");
    let wifi = testing::lab_wifi();
    let options = testing::serial_options("SN-QR");
    let done = session
        .provision(&wifi, &options, &NoListener)
        .await
        .expect("provisioned");
    assert_eq!(done.thing_name, "SN-QR");
}
