//! btleplug as the GATT layer (feature `ble`): scanning for provisioning devices and
//! [`GattPeripheral`] for a btleplug peripheral. Linux needs BlueZ over D-Bus; iOS/macOS CoreBluetooth;
//! Android btleplug's JNI setup (see the README).

use async_trait::async_trait;
use btleplug::api::{Central, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::{Manager, Peripheral};
use uuid::Uuid;

use super::{GattCharacteristic, GattError, GattPeripheral};

/// Translates btleplug's errors; first-connect failures worth a retry become
/// [`GattError::ConnectFailed`] (Android reports GATT status 133 as an opaque error).
pub fn translate(e: btleplug::Error) -> GattError {
    match e {
        btleplug::Error::NotConnected => GattError::NotConnected,
        btleplug::Error::TimedOut(_) => GattError::Timeout,
        btleplug::Error::PermissionDenied => GattError::PermissionDenied,
        btleplug::Error::DeviceNotFound => GattError::DeviceNotFound,
        other => {
            let text = other.to_string();
            if text.contains("133")
                || text.contains("GATT_ERROR")
                || text.contains("le-connection-abort")
                || text.contains("Software caused connection abort")
            {
                GattError::ConnectFailed(text)
            } else {
                GattError::Other(text)
            }
        }
    }
}

/// A btleplug peripheral as a [`GattPeripheral`].
pub struct BtlePeripheral {
    peripheral: Peripheral,
    name: String,
}

impl BtlePeripheral {
    /// Wraps a peripheral found by [`scan`].
    pub fn new(peripheral: Peripheral, name: String) -> Self {
        Self { peripheral, name }
    }

    fn find(&self, c: &GattCharacteristic) -> Result<btleplug::api::Characteristic, GattError> {
        self.peripheral
            .characteristics()
            .into_iter()
            .find(|x| x.uuid.as_u128() == c.uuid && x.service_uuid.as_u128() == c.service)
            .ok_or_else(|| GattError::Other("characteristic vanished".into()))
    }
}

#[async_trait]
impl GattPeripheral for BtlePeripheral {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn mtu(&self) -> u16 {
        self.peripheral.mtu()
    }

    async fn connect(&self) -> Result<(), GattError> {
        self.peripheral.connect().await.map_err(translate)
    }

    async fn disconnect(&self) -> Result<(), GattError> {
        self.peripheral.disconnect().await.map_err(translate)
    }

    async fn is_connected(&self) -> bool {
        self.peripheral.is_connected().await.unwrap_or(false)
    }

    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattError> {
        self.peripheral
            .discover_services()
            .await
            .map_err(translate)?;
        Ok(self
            .peripheral
            .characteristics()
            .into_iter()
            .map(|c| GattCharacteristic {
                service: c.service_uuid.as_u128(),
                uuid: c.uuid.as_u128(),
                descriptors: c.descriptors.iter().map(|d| d.uuid.as_u128()).collect(),
            })
            .collect())
    }

    async fn read_descriptor(
        &self,
        c: &GattCharacteristic,
        descriptor: u128,
    ) -> Result<Vec<u8>, GattError> {
        let characteristic = self.find(c)?;
        let d = characteristic
            .descriptors
            .iter()
            .find(|d| d.uuid.as_u128() == descriptor)
            .ok_or_else(|| GattError::Other("descriptor vanished".into()))?;
        self.peripheral.read_descriptor(d).await.map_err(translate)
    }

    async fn write(&self, c: &GattCharacteristic, value: &[u8]) -> Result<(), GattError> {
        let characteristic = self.find(c)?;
        self.peripheral
            .write(&characteristic, value, WriteType::WithResponse)
            .await
            .map_err(translate)
    }

    async fn read(&self, c: &GattCharacteristic) -> Result<Vec<u8>, GattError> {
        let characteristic = self.find(c)?;
        self.peripheral
            .read(&characteristic)
            .await
            .map_err(translate)
    }
}

/// A provisioning device seen while scanning.
pub struct Discovered {
    /// Its advertised name.
    pub name: String,
    /// Signal strength, when reported.
    pub rssi: Option<i16>,
    /// Service UUIDs it advertises.
    pub services: Vec<Uuid>,
    /// The peripheral, to connect to.
    pub peripheral: BtlePeripheral,
}

/// Why scanning could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No Bluetooth adapter (or, on Linux, no BlueZ/D-Bus).
    #[error("no Bluetooth adapter available ({0})")]
    NoAdapter(String),
    /// Scanning failed.
    #[error("scan failed: {0}")]
    Failed(String),
}

/// Scans for `duration` and returns devices whose name starts with `name_prefix` (if given) or that
/// advertise `service` (if given).
pub async fn scan(
    service: Option<Uuid>,
    name_prefix: Option<&str>,
    duration: std::time::Duration,
) -> Result<Vec<Discovered>, ScanError> {
    let manager = Manager::new()
        .await
        .map_err(|e| ScanError::NoAdapter(e.to_string()))?;
    let adapter = manager
        .adapters()
        .await
        .map_err(|e| ScanError::NoAdapter(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| ScanError::NoAdapter("none found".into()))?;
    let filter = ScanFilter {
        services: service.into_iter().collect(),
    };
    adapter
        .start_scan(filter)
        .await
        .map_err(|e| ScanError::Failed(e.to_string()))?;
    tokio::time::sleep(duration).await;
    let _ = adapter.stop_scan().await;
    let mut found = Vec::new();
    for p in adapter
        .peripherals()
        .await
        .map_err(|e| ScanError::Failed(e.to_string()))?
    {
        let Ok(Some(props)) = p.properties().await else {
            continue;
        };
        let name = props.local_name.clone().unwrap_or_default();
        let wanted = name_prefix.is_some_and(|prefix| name.starts_with(prefix))
            || service.is_some_and(|s| props.services.contains(&s))
            || (name_prefix.is_none() && service.is_none());
        if wanted {
            found.push(Discovered {
                name: name.clone(),
                rssi: props.rssi,
                services: props.services.clone(),
                peripheral: BtlePeripheral::new(p, name),
            });
        }
    }
    found.sort_by_key(|d| std::cmp::Reverse(d.rssi.unwrap_or(i16::MIN)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btleplug_errors_translate() {
        assert_eq!(
            translate(btleplug::Error::NotConnected),
            GattError::NotConnected
        );
        assert_eq!(
            translate(btleplug::Error::TimedOut(std::time::Duration::from_secs(1))),
            GattError::Timeout
        );
        assert_eq!(
            translate(btleplug::Error::PermissionDenied),
            GattError::PermissionDenied
        );
        assert!(matches!(
            translate(btleplug::Error::RuntimeError("GATT status 133".into())),
            GattError::ConnectFailed(_)
        ));
        assert!(matches!(
            translate(btleplug::Error::RuntimeError(
                "le-connection-abort-by-local".into()
            )),
            GattError::ConnectFailed(_)
        ));
        assert_eq!(
            translate(btleplug::Error::DeviceNotFound),
            GattError::DeviceNotFound
        );
        assert!(matches!(
            translate(btleplug::Error::NoAdapterAvailable),
            GattError::Other(_)
        ));
    }
}
