//! The SDK's BLE link over the app's own GATT stack: an app hands over a [`GattPeripheral`] (Android's
//! `BluetoothGatt` wrapped by the AAR's `AndroidGattPeripheral`, or its own) and [`gatt_device_link`]
//! wraps it in the core's production `BleLink` — endpoint mapping by the 0x2901 descriptors, connection
//! retries with backoff, one request in flight, the 480-byte cap, error translation — so the app writes
//! GATT operations, not the provisioning transport.
//!
//! UUIDs cross the FFI as strings in the canonical form (`0000ff51-0000-1000-8000-00805f9b34fb`, what
//! `java.util.UUID.toString()` gives), sizes and MTUs as signed integers (Kotlin apps use `Int`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimlink_core::{self as transport, BleConfig, BleLink, GattError};

use super::link::{CoreLink, DeviceLink};
use super::ProvisioningFailure;

/// A characteristic, as the platform's service discovery found it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GattCharacteristic {
    /// Its service's UUID.
    pub service_uuid: String,
    /// Its UUID.
    pub uuid: String,
    /// The UUIDs of its descriptors.
    pub descriptor_uuids: Vec<String>,
}

/// A GATT operation's failure, as the app's peripheral reports it to the SDK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum GattFailure {
    /// The connection attempt failed in a way worth retrying (Android's GATT status 133, 62 or 8 while
    /// connecting); the SDK closes, backs off and tries again.
    #[error("connection attempt failed: {detail}")]
    ConnectFailed {
        /// What the stack said (`"GATT status 133"`).
        detail: String,
    },
    /// Not connected (any more): the link dropped.
    #[error("not connected")]
    NotConnected,
    /// The operation got no callback in time.
    #[error("timed out")]
    Timeout,
    /// The OS refused: a Bluetooth permission is missing.
    #[error("permission denied")]
    PermissionDenied,
    /// The device answered with an ATT error.
    #[error("ATT error: {detail}")]
    Att {
        /// The status, as the stack reported it.
        detail: String,
    },
    /// The platform no longer knows the peripheral.
    #[error("device not found")]
    DeviceNotFound,
    /// Anything else.
    #[error("{detail}")]
    Other {
        /// What went wrong.
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for GattFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Other {
            detail: format!(
                "the app's GattPeripheral threw an unexpected exception: {}",
                e.reason
            ),
        }
    }
}

impl From<GattFailure> for GattError {
    fn from(e: GattFailure) -> Self {
        match e {
            GattFailure::ConnectFailed { detail } => GattError::ConnectFailed(detail),
            GattFailure::NotConnected => GattError::NotConnected,
            GattFailure::Timeout => GattError::Timeout,
            GattFailure::PermissionDenied => GattError::PermissionDenied,
            GattFailure::Att { detail } => GattError::Att(detail),
            GattFailure::DeviceNotFound => GattError::DeviceNotFound,
            GattFailure::Other { detail } => GattError::Other(detail),
        }
    }
}

/// The GATT operations the SDK's BLE link needs, implemented by the app over its platform's stack
/// (the AAR ships one for Android: `AndroidGattPeripheral`).
///
/// The contract (the SDK relies on it):
/// - One operation at a time: the SDK never calls a second before the first returned.
/// - Each operation completes from its own platform callback, never from another operation's (a late
///   callback of a timed-out operation must not complete the next one).
/// - `connect` connects and negotiates the MTU; `discover` lists every characteristic with its
///   descriptors; `write` is a write with response (the stack does a long write when the value exceeds
///   MTU − 3); `read` reads the value (the stack follows with Read Blob requests).
/// - A dropped connection fails the operation in progress and every later one with
///   [`GattFailure::NotConnected`].
/// - The synchronous methods must not throw.
#[uniffi::export(foreign)]
#[async_trait]
pub trait GattPeripheral: Send + Sync {
    /// A name for logs (the advertised name or the address); never a secret.
    fn name(&self) -> String;
    /// The negotiated ATT MTU (23 before any negotiation).
    fn mtu(&self) -> i32;
    /// Connects (one attempt: the SDK retries).
    async fn connect(&self) -> Result<(), GattFailure>;
    /// Disconnects and releases the connection.
    async fn disconnect(&self);
    /// Whether the connection is up.
    fn is_connected(&self) -> bool;
    /// Discovers the services and lists every characteristic with its descriptors.
    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattFailure>;
    /// Reads descriptor `descriptor_uuid` of `characteristic`.
    async fn read_descriptor(
        &self,
        characteristic: GattCharacteristic,
        descriptor_uuid: String,
    ) -> Result<Vec<u8>, GattFailure>;
    /// Writes `value` with response.
    async fn write(
        &self,
        characteristic: GattCharacteristic,
        value: Vec<u8>,
    ) -> Result<(), GattFailure>;
    /// Reads the value.
    async fn read(&self, characteristic: GattCharacteristic) -> Result<Vec<u8>, GattFailure>;
}

/// Parses a UUID in the canonical form (or as 32 hex digits); `None` for anything else.
fn parse_uuid(text: &str) -> Option<u128> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let hyphens_ok = text.len() == 32
        || (text.len() == 36 && [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-'));
    if digits.len() != 32 || !hyphens_ok || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&digits, 16).ok()
}

/// A UUID in the canonical lower-case form.
fn format_uuid(uuid: u128) -> String {
    let hex = format!("{uuid:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn to_foreign(c: &transport::GattCharacteristic) -> GattCharacteristic {
    GattCharacteristic {
        service_uuid: format_uuid(c.service),
        uuid: format_uuid(c.uuid),
        descriptor_uuids: c.descriptors.iter().map(|d| format_uuid(*d)).collect(),
    }
}

/// The app's peripheral as the core's [`transport::GattPeripheral`].
struct ForeignGatt(Arc<dyn GattPeripheral>);

impl fmt::Debug for ForeignGatt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ForeignGatt").field(&self.0.name()).finish()
    }
}

#[async_trait]
impl transport::GattPeripheral for ForeignGatt {
    fn name(&self) -> String {
        self.0.name()
    }

    fn mtu(&self) -> u16 {
        // ATT: 23 is the minimum; Android negotiates at most 517.
        u16::try_from(self.0.mtu().clamp(23, 517)).unwrap_or(23)
    }

    async fn connect(&self) -> Result<(), GattError> {
        Ok(self.0.connect().await?)
    }

    async fn disconnect(&self) -> Result<(), GattError> {
        self.0.disconnect().await;
        Ok(())
    }

    async fn is_connected(&self) -> bool {
        self.0.is_connected()
    }

    async fn discover(&self) -> Result<Vec<transport::GattCharacteristic>, GattError> {
        let found = self.0.discover().await?;
        let mut characteristics = Vec::with_capacity(found.len());
        for c in found {
            // A UUID the SDK cannot parse names no provisioning endpoint: that characteristic is
            // left out (the endpoint check after mapping says what is missing).
            let (Some(service), Some(uuid)) = (parse_uuid(&c.service_uuid), parse_uuid(&c.uuid))
            else {
                tracing::warn!(uuid = %c.uuid, "the app reported a characteristic with an unparsable UUID; ignored");
                continue;
            };
            characteristics.push(transport::GattCharacteristic {
                service,
                uuid,
                descriptors: c
                    .descriptor_uuids
                    .iter()
                    .filter_map(|d| parse_uuid(d))
                    .collect(),
            });
        }
        Ok(characteristics)
    }

    async fn read_descriptor(
        &self,
        characteristic: &transport::GattCharacteristic,
        descriptor: u128,
    ) -> Result<Vec<u8>, GattError> {
        Ok(self
            .0
            .read_descriptor(to_foreign(characteristic), format_uuid(descriptor))
            .await?)
    }

    async fn write(
        &self,
        characteristic: &transport::GattCharacteristic,
        value: &[u8],
    ) -> Result<(), GattError> {
        Ok(self
            .0
            .write(to_foreign(characteristic), value.to_vec())
            .await?)
    }

    async fn read(
        &self,
        characteristic: &transport::GattCharacteristic,
    ) -> Result<Vec<u8>, GattError> {
        Ok(self.0.read(to_foreign(characteristic)).await?)
    }
}

/// The SDK's BLE link over the app's `peripheral`, not connected yet (`Provisioner.connect` connects
/// it): endpoints mapped by their 0x2901 descriptors (only characteristics of `service_uuid` count when
/// given), up to 3 connection attempts 0.5 s then 1 s apart for first-connect failures
/// ([`GattFailure::ConnectFailed`]), 10 s per connection attempt and per exchange, one exchange at a
/// time, messages up to 480 bytes. Fails with [`ProvisioningFailure::InvalidInput`] when
/// `service_uuid` is not a UUID.
#[uniffi::export(default(service_uuid = None))]
pub fn gatt_device_link(
    peripheral: Arc<dyn GattPeripheral>,
    service_uuid: Option<String>,
) -> Result<Arc<dyn DeviceLink>, ProvisioningFailure> {
    let service = match service_uuid {
        None => None,
        Some(text) => Some(
            parse_uuid(&text).ok_or_else(|| ProvisioningFailure::InvalidInput {
                detail: format!("{text:?} is not a UUID"),
            })?,
        ),
    };
    let config = BleConfig {
        service,
        connect_timeout: Duration::from_secs(10),
        ..BleConfig::default()
    };
    let link = BleLink::new(ForeignGatt(peripheral), config);
    Ok(Arc::new(CoreLink(Arc::new(link))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_in_the_canonical_form() {
        let text = "021a9004-0382-4aea-bff4-6b3f1c5adfb4";
        let uuid = parse_uuid(text).expect("canonical");
        assert_eq!(uuid, 0x021a_9004_0382_4aea_bff4_6b3f_1c5a_dfb4);
        assert_eq!(format_uuid(uuid), text);
        assert_eq!(
            parse_uuid("021A90040382-4AEABFF46B3F1C5ADFB4"),
            None,
            "hyphens only where the canonical form has them"
        );
        assert_eq!(parse_uuid("021A900403824AEABFF46B3F1C5ADFB4"), Some(uuid));
        assert_eq!(
            format_uuid(transport::USER_DESCRIPTION_UUID),
            "00002901-0000-1000-8000-00805f9b34fb"
        );
    }

    #[test]
    fn hostile_uuids_are_refused() {
        for bad in [
            "",
            "2901",
            "021a9004-0382-4aea-bff4-6b3f1c5adfb",
            "021a9004-0382-4aea-bff4-6b3f1c5adfb4-",
            "g21a9004-0382-4aea-bff4-6b3f1c5adfb4",
            "021a9004-0382-4aea-bff4+6b3f1c5adfb4",
            "+21a90040382-4aea-bff4-6b3f1c5adfb4",
            "021a9004\u{e9}0382-4aea-bff4-6b3f1c5adfb4",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?}");
        }
    }
}
