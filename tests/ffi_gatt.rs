//! `gatt_device_link` from Rust: a `GattPeripheral` implemented "by the app" (here over the harness's
//! fake GATT table, through the FFI's string UUIDs and signed MTU) runs the SDK's own `BleLink` to a
//! provisioned device; first-connect failures are retried, a refused permission and a peripheral
//! reporting garbage (UUIDs that are not UUIDs, an MTU out of ATT's range) end in typed failures. The Android implementation (the AAR's
//! `AndroidGattPeripheral`) is tested on the JVM by android/jvm-test.

// This test uses the world and settings helpers, not the app-side DeviceLink (AppBle).
#[allow(dead_code)]
mod common;

use std::future::Future as _;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claimlink::{
    gatt_device_link, GattCharacteristic, GattFailure, GattPeripheral, ProviderFailure,
    Provisioner, ProvisioningFailure, TokenProvider,
};
use claimlink_core::GattError;
use claimlink_core::GattPeripheral as CorePeripheral;
use claimlink_harness::device::gatt::{FakeGatt, FakeGattConfig, SERVICE};
use claimlink_harness::testing::SimDeviceBuilder;
use claimlink_harness::world::World;
use common::{options, secret, wifi, world, world_settings};

struct Token(String);

#[async_trait]
impl TokenProvider for Token {
    async fn bearer_token(&self, _refresh: bool) -> Result<String, ProviderFailure> {
        Ok(self.0.clone())
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

fn uuid(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn parse(s: &str) -> u128 {
    u128::from_str_radix(&s.replace('-', ""), 16).unwrap_or(0)
}

fn failure(e: GattError) -> GattFailure {
    match e {
        GattError::ConnectFailed(detail) => GattFailure::ConnectFailed { detail },
        GattError::NotConnected => GattFailure::NotConnected,
        GattError::Timeout => GattFailure::Timeout,
        GattError::PermissionDenied => GattFailure::PermissionDenied,
        GattError::Att(detail) => GattFailure::Att { detail },
        GattError::DeviceNotFound => GattFailure::DeviceNotFound,
        GattError::Other(detail) => GattFailure::Other { detail },
    }
}

/// The app's peripheral: the fake GATT table behind the FFI's types, optionally lying about them.
struct AppGatt {
    gatt: FakeGatt,
    /// Report this MTU instead of the table's.
    mtu: AtomicI32,
    /// Report every characteristic with a UUID that is not one.
    garbage_uuids: bool,
}

impl AppGatt {
    fn new(gatt: FakeGatt) -> Arc<Self> {
        Arc::new(Self {
            gatt,
            mtu: AtomicI32::new(0),
            garbage_uuids: false,
        })
    }

    fn core(c: &GattCharacteristic) -> claimlink_core::GattCharacteristic {
        claimlink_core::GattCharacteristic {
            service: parse(&c.service_uuid),
            uuid: parse(&c.uuid),
            descriptors: c.descriptor_uuids.iter().map(|d| parse(d)).collect(),
        }
    }
}

#[async_trait]
impl GattPeripheral for AppGatt {
    fn name(&self) -> String {
        format!("app gatt {}", CorePeripheral::name(&self.gatt))
    }
    fn mtu(&self) -> i32 {
        match self.mtu.load(Ordering::SeqCst) {
            0 => i32::from(CorePeripheral::mtu(&self.gatt)),
            lie => lie,
        }
    }
    async fn connect(&self) -> Result<(), GattFailure> {
        CorePeripheral::connect(&self.gatt).await.map_err(failure)
    }
    async fn disconnect(&self) {
        let _ = CorePeripheral::disconnect(&self.gatt).await;
    }
    fn is_connected(&self) -> bool {
        connected_now(&self.gatt)
    }
    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattFailure> {
        let found = CorePeripheral::discover(&self.gatt)
            .await
            .map_err(failure)?;
        Ok(found
            .iter()
            .map(|c| GattCharacteristic {
                service_uuid: uuid(c.service),
                uuid: if self.garbage_uuids {
                    "not-a-uuid".into()
                } else {
                    uuid(c.uuid)
                },
                descriptor_uuids: c.descriptors.iter().map(|d| uuid(*d)).collect(),
            })
            .collect())
    }
    async fn read_descriptor(
        &self,
        characteristic: GattCharacteristic,
        descriptor_uuid: String,
    ) -> Result<Vec<u8>, GattFailure> {
        CorePeripheral::read_descriptor(
            &self.gatt,
            &Self::core(&characteristic),
            parse(&descriptor_uuid),
        )
        .await
        .map_err(failure)
    }
    async fn write(
        &self,
        characteristic: GattCharacteristic,
        value: Vec<u8>,
    ) -> Result<(), GattFailure> {
        CorePeripheral::write(&self.gatt, &Self::core(&characteristic), &value)
            .await
            .map_err(failure)
    }
    async fn read(&self, characteristic: GattCharacteristic) -> Result<Vec<u8>, GattFailure> {
        CorePeripheral::read(&self.gatt, &Self::core(&characteristic))
            .await
            .map_err(failure)
    }
}

/// `is_connected` is synchronous at the FFI (Kotlin reads a flag); the fake table's is async but
/// never waits.
fn connected_now(gatt: &FakeGatt) -> bool {
    let mut fut = std::pin::pin!(CorePeripheral::is_connected(gatt));
    let waker = std::task::Waker::noop();
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    {
        std::task::Poll::Ready(up) => up,
        std::task::Poll::Pending => false,
    }
}

fn table(world: &World, index: u8, config: FakeGattConfig) -> FakeGatt {
    let (device, _link) = SimDeviceBuilder::in_world(world, index).build();
    FakeGatt::new(device, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_gatt_peripheral_under_the_sdks_ble_link_provisions_a_device() {
    let world = world().await;
    let gatt = table(&world, 0, FakeGattConfig::default());
    let app = AppGatt::new(gatt.clone());
    let link = gatt_device_link(app.clone(), Some(uuid(SERVICE))).expect("link");
    assert!(
        link.describe().starts_with("ble app gatt"),
        "{}",
        link.describe()
    );
    let session = provisioner(&world)
        .connect(link, secret(), None)
        .await
        .expect("connect");
    let done = session
        .provision(wifi(), options("GATT-0001"), None)
        .await
        .expect("provision");
    assert_eq!(done.thing_name, "GATT-0001");
    assert!(world.emulator.thing("GATT-0001").is_some());
    assert!(gatt.stats().exchanges > 5, "{:?}", gatt.stats());
    let _ = session.disconnect().await;
    assert!(!app.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_connect_failures_are_retried_with_backoff() {
    let world = world().await;
    let gatt = table(
        &world,
        1,
        FakeGattConfig {
            failing_connects: 2,
            ..FakeGattConfig::default()
        },
    );
    let link = gatt_device_link(AppGatt::new(gatt.clone()), None).expect("link");
    let session = provisioner(&world)
        .connect(link, secret(), None)
        .await
        .expect("connect after two GATT 133s");
    assert_eq!(gatt.connect_attempts(), 3);
    let _ = session.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_permission_is_a_typed_failure_without_retries() {
    let world = world().await;
    let gatt = table(
        &world,
        2,
        FakeGattConfig {
            permission_denied: true,
            ..FakeGattConfig::default()
        },
    );
    let link = gatt_device_link(AppGatt::new(gatt.clone()), None).expect("link");
    let refused = match provisioner(&world).connect(link, secret(), None).await {
        Err(e) => e,
        Ok(_) => panic!("connected without the permission"),
    };
    assert!(refused.to_string().contains("permission"), "{refused}");
    assert_eq!(
        gatt.connect_attempts(),
        1,
        "a refused permission is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_peripheral_is_a_typed_failure_not_a_panic() {
    let world = world().await;
    // Characteristics whose UUIDs are not UUIDs: none maps to an endpoint.
    let app = Arc::new(AppGatt {
        gatt: table(&world, 3, FakeGattConfig::default()),
        mtu: AtomicI32::new(-7),
        garbage_uuids: true,
    });
    let link = gatt_device_link(app.clone(), None).expect("link");
    let failure = match provisioner(&world)
        .connect(link.clone(), secret(), None)
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("a table without endpoints was accepted"),
    };
    // (The SDK reports a device without the provisioning endpoints as ConnectionLost naming what is
    // missing, as for every link.)
    assert!(
        matches!(&failure, ProvisioningFailure::ConnectionLost { detail } if detail.contains("not a provisioning device")),
        "{failure:?}"
    );
    // A negative or huge MTU is clamped to ATT's range, not trusted.
    assert_eq!(link.mtu(), Some(23));
    app.mtu.store(1_000_000, Ordering::SeqCst);
    assert_eq!(link.mtu(), Some(517));
    // A service UUID that is not one is refused when the link is made.
    assert!(matches!(
        gatt_device_link(app, Some("021a9004".into())),
        Err(ProvisioningFailure::InvalidInput { .. })
    ));
}
