//! How bytes reach a device.
//!
//! A [`DeviceLink`] carries one request/response exchange at a time on a named protocomm endpoint
//! (`prov-session`, `prov-config`, `aws-claim`, …). Implementations: the SoftAP/HTTP link in
//! [`http`], the BLE link over a GATT peripheral in [`ble`] (btleplug's in `ble::btle`, feature `ble`;
//! the harness's fake GATT table in tests), and links an app implements in Kotlin or Swift over its
//! own BLE stack.
//!
//! A link knows nothing about encryption: it moves opaque bytes, enforces its size limit, and reports
//! disconnects as [`LinkError::Disconnected`]. Its errors (`error`) are typed, so that their kind
//! survives a round trip through an app's own link across the FFI.

pub mod ble;
mod error;
pub mod http;

use std::fmt;

use async_trait::async_trait;

pub use error::{DeviceRefusal, LinkError, LinkFault};

/// The protocomm message cap this SDK keeps every message under: some firmware refuses anything larger
/// (257 B without, 481 B with Sec2, in older ESP-IDF BLE transports).
pub const MAX_MESSAGE_BYTES: usize = 480;

/// A transport to one device.
#[async_trait]
pub trait DeviceLink: Send + Sync + fmt::Debug {
    /// Connects (or reconnects after a drop). A reconnection is a new connection: the device forgets
    /// the previous session. Links that are connected when built may keep the default (nothing to do).
    async fn connect(&self) -> Result<(), LinkError> {
        Ok(())
    }

    /// Sends `request` to `endpoint` and returns the device's answer. At most one exchange is in flight
    /// per link; callers serialize.
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError>;

    /// The endpoint names the device offers (for BLE, read from the 0x2901 descriptors). `None` when
    /// the transport cannot list them (HTTP); then every name is tried on demand.
    fn endpoints(&self) -> Option<Vec<String>> {
        None
    }

    /// The largest message this link carries, in bytes.
    fn max_message_bytes(&self) -> usize {
        MAX_MESSAGE_BYTES
    }

    /// The negotiated ATT MTU, for BLE links.
    fn mtu(&self) -> Option<u16> {
        None
    }

    /// Whether the phone reaches the device through the device's own access point (SoftAP): its
    /// radio must keep beaconing during a Wi-Fi scan, so the scan goes a few channels at a time
    /// (`group_channels`, as ESP-IDF's `esp_prov.py` does over SoftAP) or the phone loses the AP.
    fn over_device_access_point(&self) -> bool {
        false
    }

    /// Closes the link. Further exchanges fail with [`LinkError::Disconnected`].
    async fn disconnect(&self);

    /// Resolves when the link drops (the device went away, or [`disconnect`](Self::disconnect) was
    /// called). Connectionless links (HTTP) never resolve it.
    async fn disconnected(&self) {
        std::future::pending::<()>().await
    }

    /// A short description for logs (`"ble PROV_1A2B mtu 185"`, `"http 192.168.4.1:80"`).
    fn describe(&self) -> String;
}
