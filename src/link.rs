//! [`DeviceLink`] as the apps see it: implemented by the SDK (SoftAP/HTTP, btleplug BLE) or by the app
//! itself (Android `BluetoothGatt`, CoreBluetooth, Nordic's BLE library), and adapted to the core's
//! [`core `DeviceLink`](claimlink_core::DeviceLink) in both directions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{LinkFailure, ProvisioningFailure};
use claimlink_core::{self as transport, LinkError, LinkFault};

/// A transport to one device: what an app implements to use its own BLE stack.
///
/// The contract (the SDK relies on it):
/// - `exchange` writes `request` to the characteristic whose 0x2901 user description is `endpoint`
///   (a long write when larger than MTU − 3) and returns the result of reading it back (a long read).
///   The SDK never has two exchanges in flight and never sends more than `max_message_bytes`.
/// - A dropped connection is reported as [`LinkFailure::Disconnected`] (from the exchange in progress
///   and every later one); the SDK then needs `connect` (a new session) before exchanging again.
/// - `connect` (re)connects, discovers services and requests a large MTU; `disconnect` closes.
/// - The synchronous methods must not throw.
#[uniffi::export(rust, foreign)]
#[async_trait]
pub trait DeviceLink: Send + Sync {
    /// Connects, or reconnects after a drop (the device forgets the previous session).
    async fn connect(&self) -> Result<(), LinkFailure>;
    /// Sends `request` to `endpoint` and returns the device's answer.
    async fn exchange(&self, endpoint: String, request: Vec<u8>) -> Result<Vec<u8>, LinkFailure>;
    /// The endpoint names the device offers (from the 0x2901 descriptors), or `null` when the transport
    /// cannot list them.
    fn endpoints(&self) -> Option<Vec<String>>;
    /// The largest message the link carries, in bytes (480 for BLE).
    fn max_message_bytes(&self) -> i32;
    /// The negotiated ATT MTU, for BLE links; `null` exactly for links that are not BLE: the SDK
    /// then takes the link to be over the device's SoftAP access point (a Wi-Fi scan goes a few
    /// channels at a time so that the phone keeps the AP; the support report says SoftAP).
    fn mtu(&self) -> Option<i32>;
    /// Closes the link.
    async fn disconnect(&self);
    /// A short description for logs (`"ble PROV_1A2B mtu 185"`); never a secret.
    fn describe(&self) -> String;
}

/// A core link offered to the apps (what [`http_device_link`] and [`ble_device_link`] return).
pub(crate) struct CoreLink(pub(crate) Arc<dyn transport::DeviceLink>);

#[async_trait]
impl DeviceLink for CoreLink {
    async fn connect(&self) -> Result<(), LinkFailure> {
        Ok(self.0.connect().await?)
    }
    async fn exchange(&self, endpoint: String, request: Vec<u8>) -> Result<Vec<u8>, LinkFailure> {
        Ok(self.0.exchange(&endpoint, &request).await?)
    }
    fn endpoints(&self) -> Option<Vec<String>> {
        self.0.endpoints()
    }
    fn max_message_bytes(&self) -> i32 {
        i32::try_from(self.0.max_message_bytes()).unwrap_or(i32::MAX)
    }
    fn mtu(&self) -> Option<i32> {
        self.0.mtu().map(i32::from)
    }
    async fn disconnect(&self) {
        self.0.disconnect().await
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// An app's link, as the core sees it. Its `disconnected` signal fires when the app reports
/// [`LinkFailure::Disconnected`] or the link is closed.
pub(crate) struct AppLink {
    link: Arc<dyn DeviceLink>,
    dropped: tokio::sync::watch::Sender<bool>,
}

impl AppLink {
    pub(crate) fn new(link: Arc<dyn DeviceLink>) -> Self {
        AppLink {
            link,
            dropped: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl fmt::Debug for AppLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AppLink")
            .field(&self.link.describe())
            .finish()
    }
}

#[async_trait]
impl transport::DeviceLink for AppLink {
    async fn connect(&self) -> Result<(), LinkError> {
        self.link.connect().await?;
        self.dropped.send_replace(false);
        Ok(())
    }

    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        let max = self.max_message_bytes();
        if request.len() > max {
            return Err(LinkError::TooLarge {
                len: request.len(),
                max,
            });
        }
        let answer = self
            .link
            .exchange(endpoint.to_owned(), request.to_vec())
            .await;
        match answer {
            Err(LinkFailure::Disconnected) => {
                self.dropped.send_replace(true);
                Err(LinkError::Disconnected)
            }
            Err(e) => Err(e.into()),
            Ok(answer) if answer.len() > transport::MAX_MESSAGE_BYTES.max(max) * 4 => {
                Err(LinkError::Other(LinkFault::OversizedAnswer {
                    len: answer.len(),
                }))
            }
            Ok(answer) => Ok(answer),
        }
    }

    fn endpoints(&self) -> Option<Vec<String>> {
        self.link.endpoints()
    }

    fn max_message_bytes(&self) -> usize {
        usize::try_from(self.link.max_message_bytes())
            .unwrap_or(transport::MAX_MESSAGE_BYTES)
            .clamp(64, 64 * 1024)
    }

    /// A link without an ATT MTU is not BLE: it is the device's SoftAP access point (the only other
    /// transport of ESP-IDF provisioning), as for `httpDeviceLink` and Android's `AndroidSoftApLink`.
    /// (The trait's contract: `mtu` is null exactly for links that are not BLE.)
    fn over_device_access_point(&self) -> bool {
        self.link.mtu().is_none()
    }

    fn mtu(&self) -> Option<u16> {
        // An MTU outside ATT's range (23..=517) is the app's mistake: reported as none.
        self.link
            .mtu()
            .and_then(|m| u16::try_from(m).ok())
            .filter(|m| (23..=517).contains(m))
    }

    async fn disconnect(&self) {
        self.link.disconnect().await;
        self.dropped.send_replace(true);
    }

    async fn disconnected(&self) {
        let mut watch = self.dropped.subscribe();
        let _ = watch.wait_for(|dropped| *dropped).await;
    }

    fn describe(&self) -> String {
        self.link.describe()
    }
}

/// The core link behind an app-facing one. Every link is adapted the same way, the SDK's own included
/// (a trait object cannot be told apart): its drop signal is then the first `Disconnected` an exchange
/// reports, not the BLE stack's own event, which at worst notices a drop one status poll later.
pub(crate) fn to_core(link: Arc<dyn DeviceLink>) -> Arc<dyn transport::DeviceLink> {
    Arc::new(AppLink::new(link))
}

/// A link to a device in SoftAP mode (or the harness's simulated device), over HTTP:
/// `http://192.168.4.1:80` once the phone is on the device's access point. Protocomm over HTTP is
/// plain HTTP by design (ESP-IDF's httpd has no TLS); everything sensitive is encrypted by the
/// session's own security.
#[uniffi::export]
pub fn http_device_link(base_url: String) -> Result<Arc<dyn DeviceLink>, ProvisioningFailure> {
    let link = transport::HttpLink::new(&base_url, Duration::from_secs(10)).map_err(|e| {
        ProvisioningFailure::InvalidInput {
            // The fault alone (a URL that is not http://host:port), not "transport failure: …".
            detail: match e {
                LinkError::Other(fault) => fault.to_string(),
                other => other.to_string(),
            },
        }
    })?;
    Ok(Arc::new(CoreLink(Arc::new(link))))
}

/// A provisionable device seen in a BLE scan.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct BleDevice {
    /// Its advertised name (`PROV_1A2B`).
    pub name: String,
    /// Signal strength, dBm, when reported.
    pub rssi: Option<i16>,
}

/// Scans for `scan_secs` seconds for devices whose name starts with `name_prefix` (all devices when
/// absent), strongest first. Uses the SDK's built-in BLE (btleplug); fails with
/// [`ProvisioningFailure::NotAvailable`] when this build has none or there is no adapter.
#[uniffi::export]
pub async fn scan_ble_devices(
    name_prefix: Option<String>,
    scan_secs: i32,
) -> Result<Vec<BleDevice>, ProvisioningFailure> {
    super::runtime::on_runtime(async move { ble::scan(name_prefix, scan_secs).await }).await
}

/// Finds the device advertising `name` (scanning up to `scan_secs` seconds) and opens a built-in BLE
/// link to it (connect with retries for first-connect failures, endpoints mapped by their 0x2901
/// descriptors, large MTU where the platform allows).
#[uniffi::export]
pub async fn ble_device_link(
    name: String,
    scan_secs: i32,
) -> Result<Arc<dyn DeviceLink>, ProvisioningFailure> {
    super::runtime::on_runtime(async move { ble::open(name, scan_secs).await }).await
}

#[cfg(feature = "ble")]
mod ble {
    use super::*;
    use claimlink_core::{btle, BleConfig, BleLink};

    fn unavailable(e: btle::ScanError) -> ProvisioningFailure {
        ProvisioningFailure::NotAvailable {
            reason: e.to_string(),
        }
    }

    pub(super) async fn scan(
        prefix: Option<String>,
        secs: i32,
    ) -> Result<Vec<BleDevice>, ProvisioningFailure> {
        let found = btle::scan(
            None,
            prefix.as_deref(),
            Duration::from_secs(secs.clamp(1, 60).unsigned_abs().into()),
        )
        .await
        .map_err(unavailable)?;
        Ok(found
            .into_iter()
            .map(|d| BleDevice {
                name: d.name,
                rssi: d.rssi,
            })
            .collect())
    }

    pub(super) async fn open(
        name: String,
        secs: i32,
    ) -> Result<Arc<dyn DeviceLink>, ProvisioningFailure> {
        let found = btle::scan(
            None,
            Some(&name),
            Duration::from_secs(secs.clamp(1, 60).unsigned_abs().into()),
        )
        .await
        .map_err(unavailable)?;
        let device = found
            .into_iter()
            .find(|d| d.name == name)
            .ok_or(ProvisioningFailure::DeviceNotFound)?;
        let link = BleLink::open(device.peripheral, BleConfig::default()).await?;
        Ok(Arc::new(CoreLink(Arc::new(link))))
    }
}

#[cfg(not(feature = "ble"))]
mod ble {
    use super::*;

    const NO_BLE: &str =
        "this build of claimlink has no built-in BLE (feature `ble`): pass your own DeviceLink";

    pub(super) async fn scan(
        _prefix: Option<String>,
        _secs: i32,
    ) -> Result<Vec<BleDevice>, ProvisioningFailure> {
        Err(ProvisioningFailure::NotAvailable {
            reason: NO_BLE.into(),
        })
    }

    pub(super) async fn open(
        _name: String,
        _secs: i32,
    ) -> Result<Arc<dyn DeviceLink>, ProvisioningFailure> {
        Err(ProvisioningFailure::NotAvailable {
            reason: NO_BLE.into(),
        })
    }
}
