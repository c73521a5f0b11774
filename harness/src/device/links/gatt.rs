//! A fake GATT table in front of a [`SimDevice`]: the provisioning service laid out as ESP-IDF lays it
//! out (one characteristic per endpoint, UUID = service UUID with bytes 2–3 replaced, a 0x2901 descriptor
//! naming it), implementing the SDK's [`GattPeripheral`] so the real BLE link logic runs without a radio.
//! Knobs reproduce what breaks apps: first-connect failures (Android's GATT 133), shuffled UUIDs,
//! missing or garbled descriptors, denied permission, drops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claimlink_core::internal::endpoint;
use claimlink_core::{GattCharacteristic, GattError, GattPeripheral, USER_DESCRIPTION_UUID};

use crate::device::{DeviceFailure, SimDevice};

/// ESP-IDF's example provisioning service UUID.
pub const SERVICE: u128 = 0x021a_9004_0382_4aea_bff4_6b3f_1c5a_dfb4;

/// The characteristic UUID for short id `short` (0xFF4F…): the service UUID with bytes 2–3 replaced.
pub fn characteristic_uuid(short: u16) -> u128 {
    let mask: u128 = 0xffff << 96;
    (SERVICE & !mask) | (u128::from(short) << 96)
}

/// Knobs.
#[derive(Clone, Debug, Default)]
pub struct FakeGattConfig {
    /// The negotiated MTU (0: 185).
    pub mtu: u16,
    /// The first this-many connection attempts fail with "GATT 133".
    pub failing_connects: u32,
    /// Connecting is refused: the app lacks the Bluetooth permission.
    pub permission_denied: bool,
    /// Assign the short UUIDs in another order than ESP-IDF's (clients must map by name).
    pub shuffle_uuids: bool,
    /// Leave this endpoint without its 0x2901 descriptor.
    pub hide: Option<String>,
    /// Add a characteristic whose description is not UTF-8.
    pub garbled_extra: bool,
}

/// A fake GATT peripheral.
pub struct FakeGatt {
    device: Arc<SimDevice>,
    config: FakeGattConfig,
    table: Vec<(GattCharacteristic, Option<Vec<u8>>)>,
    connect_attempts: AtomicU32,
    connected: AtomicBool,
    connection: AtomicU64,
    pending: Mutex<HashMap<u128, Vec<u8>>>,
}

impl FakeGatt {
    /// The GATT table of `device`.
    pub fn new(device: Arc<SimDevice>, config: FakeGattConfig) -> Self {
        let mut names = vec![
            endpoint::CTRL,
            endpoint::SCAN,
            endpoint::SESSION,
            endpoint::CONFIG,
            endpoint::VERSION,
        ];
        if device.config().aws_extension {
            names.extend([endpoint::AWS_CLAIM, endpoint::AWS_STATUS]);
        }
        let mut shorts: Vec<u16> = (0..names.len()).map(|i| 0xff4f + i as u16).collect();
        if config.shuffle_uuids {
            shorts.reverse();
        }
        let mut table: Vec<(GattCharacteristic, Option<Vec<u8>>)> = names
            .iter()
            .zip(shorts)
            .map(|(name, short)| {
                let hidden = config.hide.as_deref() == Some(*name);
                (
                    GattCharacteristic {
                        service: SERVICE,
                        uuid: characteristic_uuid(short),
                        descriptors: if hidden {
                            vec![]
                        } else {
                            vec![USER_DESCRIPTION_UUID]
                        },
                    },
                    (!hidden).then(|| name.as_bytes().to_vec()),
                )
            })
            .collect();
        if config.garbled_extra {
            table.push((
                GattCharacteristic {
                    service: SERVICE,
                    uuid: characteristic_uuid(0xff60),
                    descriptors: vec![USER_DESCRIPTION_UUID],
                },
                Some(vec![0xff, 0xfe, 0x00]),
            ));
        }
        Self {
            device,
            config,
            table,
            connect_attempts: AtomicU32::new(0),
            connected: AtomicBool::new(false),
            connection: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Connection attempts so far.
    pub fn connect_attempts(&self) -> u32 {
        self.connect_attempts.load(Ordering::SeqCst)
    }

    /// Drops the connection (the device goes out of range).
    pub fn drop_connection(&self) {
        self.connected.store(false, Ordering::SeqCst);
        self.device.drop_session();
    }

    fn name_of(&self, c: &GattCharacteristic) -> Option<String> {
        self.table
            .iter()
            .find(|(x, _)| x.uuid == c.uuid)
            .and_then(|(_, name)| name.clone())
            .and_then(|n| String::from_utf8(n).ok())
    }
}

#[async_trait]
impl GattPeripheral for FakeGatt {
    fn name(&self) -> String {
        self.device.config().name.clone()
    }

    fn mtu(&self) -> u16 {
        if self.config.mtu == 0 {
            185
        } else {
            self.config.mtu
        }
    }

    async fn connect(&self) -> Result<(), GattError> {
        let n = self.connect_attempts.fetch_add(1, Ordering::SeqCst);
        if self.config.permission_denied {
            return Err(GattError::PermissionDenied);
        }
        if n < self.config.failing_connects {
            return Err(GattError::ConnectFailed(
                "GATT status 133 (GATT_ERROR)".into(),
            ));
        }
        self.connection
            .store(self.device.new_connection_id(), Ordering::SeqCst);
        self.connected.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), GattError> {
        self.drop_connection();
        Ok(())
    }

    async fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattError> {
        if !self.connected.load(Ordering::SeqCst) {
            return Err(GattError::NotConnected);
        }
        Ok(self.table.iter().map(|(c, _)| c.clone()).collect())
    }

    async fn read_descriptor(
        &self,
        c: &GattCharacteristic,
        descriptor: u128,
    ) -> Result<Vec<u8>, GattError> {
        if descriptor != USER_DESCRIPTION_UUID {
            return Err(GattError::Att("no such descriptor".into()));
        }
        self.table
            .iter()
            .find(|(x, _)| x.uuid == c.uuid)
            .and_then(|(_, v)| v.clone())
            .ok_or_else(|| GattError::Att("no such descriptor".into()))
    }

    async fn write(&self, c: &GattCharacteristic, value: &[u8]) -> Result<(), GattError> {
        if !self.connected.load(Ordering::SeqCst) {
            return Err(GattError::NotConnected);
        }
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.uuid, value.to_vec());
        Ok(())
    }

    async fn read(&self, c: &GattCharacteristic) -> Result<Vec<u8>, GattError> {
        if !self.connected.load(Ordering::SeqCst) {
            return Err(GattError::NotConnected);
        }
        let request = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.uuid)
            .unwrap_or_default();
        let name = self
            .name_of(c)
            .ok_or_else(|| GattError::Att("unknown characteristic".into()))?;
        match self
            .device
            .handle(self.connection.load(Ordering::SeqCst), &name, &request)
        {
            Ok(answer) => Ok(answer),
            Err(DeviceFailure::Refused(why)) => Err(GattError::Att(why)),
            Err(DeviceFailure::UnknownEndpoint) => Err(GattError::Att("unknown endpoint".into())),
            Err(DeviceFailure::Stopped) => {
                self.connected.store(false, Ordering::SeqCst);
                Err(GattError::NotConnected)
            }
        }
    }
}
