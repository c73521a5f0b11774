//! The simulated BLE link the tests, benches, the demo and chaos use: the SDK's production
//! [`BleLink`] over the fake GATT table ([`FakeGatt`]), which models the air (ATT MTU arithmetic,
//! per-round-trip latency, counters, injected disconnects; see [`super::gatt`]). One BLE model: what
//! this link does is what `BleLink` does on a phone, over a radio that behaves like this table.
//!
//! [`SimBleLink`] adds only what a test needs around it: it is built connected (synchronously; the
//! link opens on first use — connection, discovery, endpoint mapping — at no modelled cost, as before),
//! and it hands out the table's [`LinkStats`] and a way to drop the connection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimlink_core::{BleConfig, BleLink, DeviceLink, LinkError};

pub use super::gatt::{read_round_trips, write_round_trips, LinkStats};
use super::gatt::{FakeGatt, FakeGattConfig, SERVICE};
use crate::device::SimDevice;

/// How the link behaves.
#[derive(Clone, Debug)]
pub struct BleLinkConfig {
    /// The negotiated ATT MTU (23 is the minimum; phones reach 185 or 512).
    pub mtu: u16,
    /// Time per ATT round trip (the connection interval).
    pub interval: Duration,
    /// Drop the connection when this exchange (1-based) starts.
    pub disconnect_at_exchange: Option<u64>,
    /// The first this-many connection attempts fail (Android's GATT 133); the SDK's link retries.
    pub failing_connects: u32,
}

impl Default for BleLinkConfig {
    fn default() -> Self {
        Self {
            mtu: 185,
            interval: Duration::from_millis(30),
            disconnect_at_exchange: None,
            failing_connects: 0,
        }
    }
}

/// How the SDK's link is set up over the simulated radio: the production defaults, but a retry of a
/// failed connection (a first-connect failure, a device that stopped advertising) waits 20 ms, not 500.
fn ble_config() -> BleConfig {
    BleConfig {
        service: Some(SERVICE),
        retry_backoff: Duration::from_millis(20),
        ..BleConfig::default()
    }
}

/// A BLE connection to one simulated device through the SDK's production [`BleLink`].
pub struct SimBleLink {
    gatt: FakeGatt,
    link: tokio::sync::OnceCell<BleLink<FakeGatt>>,
}

impl std::fmt::Debug for SimBleLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SimBleLink {
    /// Connects to `device`.
    pub fn connect(device: Arc<SimDevice>, config: BleLinkConfig) -> Self {
        let gatt = FakeGatt::new(
            device,
            FakeGattConfig {
                mtu: config.mtu,
                interval: config.interval,
                disconnect_at_exchange: config.disconnect_at_exchange,
                failing_connects: config.failing_connects,
                ..FakeGattConfig::default()
            },
        );
        Self {
            gatt,
            link: tokio::sync::OnceCell::new(),
        }
    }

    /// What the link has carried so far.
    pub fn stats(&self) -> LinkStats {
        self.gatt.stats()
    }

    /// Drops the connection now (the device loses its session, as a real one would).
    pub fn drop_connection(&self) {
        self.gatt.drop_connection();
    }

    /// The SDK's link, opened (connected, discovered, mapped) on first use.
    async fn link(&self) -> Result<&BleLink<FakeGatt>, LinkError> {
        self.link
            .get_or_try_init(|| BleLink::open(self.gatt.clone(), ble_config()))
            .await
    }
}

impl SimDevice {
    /// A BLE connection to this device through the SDK's production [`BleLink`] over its fake GATT
    /// table, with the given MTU and connection interval.
    pub fn ble_link(self: &Arc<Self>, mtu: u16, interval: Duration) -> Arc<SimBleLink> {
        Arc::new(SimBleLink::connect(
            self.clone(),
            BleLinkConfig {
                mtu,
                interval,
                ..BleLinkConfig::default()
            },
        ))
    }
}

#[async_trait]
impl DeviceLink for SimBleLink {
    async fn connect(&self) -> Result<(), LinkError> {
        match self.link.get() {
            Some(link) => link.connect().await,
            None => self.link().await.map(|_| ()),
        }
    }

    async fn exchange(&self, endpoint_name: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.link().await?.exchange(endpoint_name, request).await
    }

    fn endpoints(&self) -> Option<Vec<String>> {
        self.link.get().and_then(DeviceLink::endpoints)
    }

    fn max_message_bytes(&self) -> usize {
        match self.link.get() {
            Some(link) => link.max_message_bytes(),
            None => claimlink_core::MAX_MESSAGE_BYTES,
        }
    }

    fn mtu(&self) -> Option<u16> {
        Some(claimlink_core::GattPeripheral::mtu(&self.gatt))
    }

    async fn disconnect(&self) {
        match self.link.get() {
            Some(link) => link.disconnect().await,
            None => self.gatt.drop_connection(),
        }
    }

    async fn disconnected(&self) {
        // Built connected: a link not opened yet opens now, so that there is a connection to lose.
        if let Ok(link) = self.link().await {
            link.disconnected().await;
        }
    }

    fn describe(&self) -> String {
        format!(
            "ble(sim) {} mtu {}",
            self.gatt.device().config().name,
            claimlink_core::GattPeripheral::mtu(&self.gatt)
        )
    }
}
