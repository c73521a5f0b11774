//! The BLE link: protocomm over GATT. Each endpoint is a characteristic named by its 0x2901
//! (Characteristic User Description) descriptor; a request is one write (long write when needed, done by
//! the platform's stack), the answer one read of the same characteristic.
//!
//! The logic — endpoint mapping by descriptor, connection retries, one request in flight, the message
//! cap, error translation — is written against [`GattPeripheral`], a small trait shaped like btleplug's
//! `Peripheral`. The btleplug implementation is in [`btle`] (feature `ble`); tests use a fake GATT table;
//! an app with its own BLE stack can implement the trait (or [`DeviceLink`] directly).

#[cfg(feature = "ble")]
pub mod btle;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use super::{DeviceLink, DeviceRefusal, LinkError, LinkFault, MAX_MESSAGE_BYTES};

/// The Characteristic User Description descriptor (0x2901), as a 128-bit UUID.
pub const USER_DESCRIPTION_UUID: u128 = 0x0000_2901_0000_1000_8000_0080_5f9b_34fb;

/// A characteristic, as discovery found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GattCharacteristic {
    /// Its service's UUID.
    pub service: u128,
    /// Its UUID.
    pub uuid: u128,
    /// UUIDs of its descriptors.
    pub descriptors: Vec<u128>,
}

/// A GATT failure, as a platform reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GattError {
    /// The connection attempt failed in a way worth retrying (Android's GATT 133, a BlueZ "le-connection-abort").
    #[error("connection attempt failed: {0}")]
    ConnectFailed(String),
    /// Not connected (any more).
    #[error("not connected")]
    NotConnected,
    /// The operation timed out.
    #[error("timed out")]
    Timeout,
    /// The OS refused (Bluetooth permission missing).
    #[error("permission denied")]
    PermissionDenied,
    /// The device answered with an ATT error.
    #[error("ATT error: {0}")]
    Att(String),
    /// The platform no longer knows the peripheral (it went away).
    #[error("device not found")]
    DeviceNotFound,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// The GATT operations the link needs, shaped like btleplug's `Peripheral`.
#[async_trait]
pub trait GattPeripheral: Send + Sync + 'static {
    /// A name for logs.
    fn name(&self) -> String;
    /// The negotiated ATT MTU.
    fn mtu(&self) -> u16;
    /// Connects.
    async fn connect(&self) -> Result<(), GattError>;
    /// Disconnects.
    async fn disconnect(&self) -> Result<(), GattError>;
    /// Whether the connection is up.
    async fn is_connected(&self) -> bool;
    /// Discovers services and lists every characteristic with its descriptors.
    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattError>;
    /// Reads a descriptor of `characteristic`.
    async fn read_descriptor(
        &self,
        characteristic: &GattCharacteristic,
        descriptor: u128,
    ) -> Result<Vec<u8>, GattError>;
    /// Writes with response (the stack does a long write when the value exceeds `MTU − 3`).
    async fn write(
        &self,
        characteristic: &GattCharacteristic,
        value: &[u8],
    ) -> Result<(), GattError>;
    /// Reads the value (the stack follows with Read Blob requests when needed).
    async fn read(&self, characteristic: &GattCharacteristic) -> Result<Vec<u8>, GattError>;
}

/// How the link connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BleConfig {
    /// Only characteristics of this service count (the provisioning service UUID), if set.
    pub service: Option<u128>,
    /// Time allowed for one connection attempt.
    pub connect_timeout: Duration,
    /// Connection attempts for failures worth retrying (first-connect failures).
    pub connect_attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub retry_backoff: Duration,
    /// Time allowed for one write + read.
    pub exchange_timeout: Duration,
}

impl Default for BleConfig {
    fn default() -> Self {
        Self {
            service: None,
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 3,
            retry_backoff: Duration::from_millis(500),
            exchange_timeout: Duration::from_secs(10),
        }
    }
}

fn link_error(e: GattError) -> LinkError {
    match e {
        GattError::NotConnected => LinkError::Disconnected,
        GattError::Timeout => LinkError::Timeout { millis: 0 },
        GattError::Att(why) => LinkError::DeviceError(DeviceRefusal::Att(why)),
        GattError::DeviceNotFound => LinkError::DeviceNotFound,
        GattError::PermissionDenied => LinkError::Other(LinkFault::BluetoothPermission),
        other @ (GattError::ConnectFailed(_) | GattError::Other(_)) => {
            LinkError::Other(LinkFault::Gatt(other))
        }
    }
}

/// A protocomm link over a GATT peripheral.
pub struct BleLink<P: GattPeripheral> {
    peripheral: P,
    config: BleConfig,
    endpoints: tokio::sync::RwLock<HashMap<String, GattCharacteristic>>,
    busy: tokio::sync::Mutex<()>,
}

impl<P: GattPeripheral> std::fmt::Debug for BleLink<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format!("BleLink({})", self.peripheral.name()))
    }
}

impl<P: GattPeripheral> BleLink<P> {
    /// Connects (retrying first-connect failures with backoff), discovers the GATT table and maps
    /// endpoints by their user-description names.
    pub async fn open(peripheral: P, config: BleConfig) -> Result<Self, LinkError> {
        let link = Self::new(peripheral, config);
        link.connect().await?;
        Ok(link)
    }

    /// The link, not connected yet: its first [`DeviceLink::connect`] connects, discovers and maps the
    /// endpoints (what an app's peripheral handed over the FFI needs: the session connects it).
    pub fn new(peripheral: P, config: BleConfig) -> Self {
        Self {
            peripheral,
            config,
            endpoints: tokio::sync::RwLock::new(HashMap::new()),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The peripheral.
    pub fn peripheral(&self) -> &P {
        &self.peripheral
    }

    async fn connect_with_retries(&self) -> Result<(), LinkError> {
        let mut delay = self.config.retry_backoff;
        let attempts = self.config.connect_attempts.max(1);
        for attempt in 1..=attempts {
            let result =
                tokio::time::timeout(self.config.connect_timeout, self.peripheral.connect()).await;
            match result {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(GattError::ConnectFailed(why))) | Ok(Err(GattError::Other(why)))
                    if attempt < attempts =>
                {
                    tracing::info!(attempt, %why, ?delay, "BLE connection failed; retrying");
                }
                Err(_) if attempt < attempts => {
                    tracing::info!(attempt, "BLE connection timed out; retrying")
                }
                Ok(Err(GattError::PermissionDenied)) => {
                    return Err(LinkError::Other(LinkFault::BluetoothPermission))
                }
                Ok(Err(GattError::DeviceNotFound)) => return Err(LinkError::DeviceNotFound),
                Ok(Err(e)) => return Err(LinkError::Other(LinkFault::Connect(e))),
                Err(_) => {
                    return Err(LinkError::Timeout {
                        millis: u64::try_from(self.config.connect_timeout.as_millis())
                            .unwrap_or(u64::MAX),
                    })
                }
            }
            let _ = self.peripheral.disconnect().await;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        // Unreachable: the last attempt returns from the loop (attempts ≥ 1).
        Err(LinkError::Other(LinkFault::Connect(GattError::Other(
            "no connection attempt was made".into(),
        ))))
    }

    async fn map_endpoints(&self) -> Result<HashMap<String, GattCharacteristic>, LinkError> {
        let characteristics = self.peripheral.discover().await.map_err(link_error)?;
        let mut map = HashMap::new();
        for c in characteristics {
            if self.config.service.is_some_and(|s| s != c.service)
                || !c.descriptors.contains(&USER_DESCRIPTION_UUID)
            {
                continue;
            }
            let raw = self
                .peripheral
                .read_descriptor(&c, USER_DESCRIPTION_UUID)
                .await
                .map_err(link_error)?;
            let Ok(name) = String::from_utf8(raw) else {
                tracing::warn!(uuid = %format!("{:032x}", c.uuid), "a characteristic's user description is not UTF-8; ignored");
                continue;
            };
            let name = name.trim_end_matches('\0').trim().to_owned();
            if name.is_empty() || name.len() > 64 {
                continue;
            }
            map.insert(name, c);
        }
        for required in [crate::endpoint::VERSION, crate::endpoint::SESSION] {
            if !map.contains_key(required) {
                return Err(LinkError::Other(LinkFault::NotProvisioningDevice {
                    missing: required,
                }));
            }
        }
        Ok(map)
    }
}

#[async_trait]
impl<P: GattPeripheral> DeviceLink for BleLink<P> {
    async fn connect(&self) -> Result<(), LinkError> {
        if self.peripheral.is_connected().await && !self.endpoints.read().await.is_empty() {
            return Ok(());
        }
        self.connect_with_retries().await?;
        let map = self.map_endpoints().await?;
        *self.endpoints.write().await = map;
        Ok(())
    }

    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        let _one = self.busy.try_lock().map_err(|_| LinkError::Busy)?;
        if request.len() > MAX_MESSAGE_BYTES {
            return Err(LinkError::TooLarge {
                len: request.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let characteristic = self
            .endpoints
            .read()
            .await
            .get(endpoint)
            .cloned()
            .ok_or_else(|| LinkError::UnknownEndpoint(endpoint.to_owned()))?;
        let exchange = async {
            self.peripheral
                .write(&characteristic, request)
                .await
                .map_err(link_error)?;
            self.peripheral
                .read(&characteristic)
                .await
                .map_err(link_error)
        };
        let answer = tokio::time::timeout(self.config.exchange_timeout, exchange)
            .await
            .map_err(|_| LinkError::Timeout {
                millis: u64::try_from(self.config.exchange_timeout.as_millis()).unwrap_or(u64::MAX),
            })??;
        if answer.len() > MAX_MESSAGE_BYTES && endpoint != crate::endpoint::VERSION {
            return Err(LinkError::TooLarge {
                len: answer.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        Ok(answer)
    }

    fn endpoints(&self) -> Option<Vec<String>> {
        self.endpoints
            .try_read()
            .ok()
            .map(|m| m.keys().cloned().collect())
    }

    fn mtu(&self) -> Option<u16> {
        Some(self.peripheral.mtu())
    }

    async fn disconnect(&self) {
        let _ = self.peripheral.disconnect().await;
        self.endpoints.write().await.clear();
    }

    async fn disconnected(&self) {
        while self.peripheral.is_connected().await {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn describe(&self) -> String {
        format!(
            "ble {} mtu {}",
            self.peripheral.name(),
            self.peripheral.mtu()
        )
    }
}

/// The ATT payload one write carries without a long write, at `mtu`.
pub fn single_write_payload(mtu: u16) -> usize {
    usize::from(mtu.max(23)) - 3
}
