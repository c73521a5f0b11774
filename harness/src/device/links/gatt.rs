//! A fake GATT table in front of a [`SimDevice`]: the provisioning service laid out as ESP-IDF lays it
//! out (one characteristic per endpoint, UUID = service UUID with bytes 2–3 replaced, a 0x2901 descriptor
//! naming it), implementing the SDK's [`GattPeripheral`] so the real BLE link logic
//! ([`claimlink_core::BleLink`]) runs without a radio. Knobs reproduce what breaks apps: first-connect
//! failures (Android's GATT 133), shuffled UUIDs, missing or garbled descriptors, denied permission,
//! drops, a device that stopped advertising.
//!
//! The table also models the air (Bluetooth Core, ATT): a Write Request carries `MTU − 3` bytes;
//! longer values go as Prepare Write Requests of `MTU − 5` bytes each plus one Execute Write; a Read
//! Response carries `MTU − 1` bytes and the rest is fetched with Read Blob Requests of `MTU − 1`
//! bytes, until a response shorter than that (so a value whose length is a multiple of `MTU − 1` costs
//! one empty Read Blob more). Every ATT request/response pair is one round trip of one connection
//! interval, really slept (so deadlines see it) when the answer is read; [`LinkStats`] counts what
//! the table carried. Connecting and discovery are not charged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Time per ATT round trip (the connection interval); zero by default.
    pub interval: Duration,
    /// Drop the connection when this exchange (1-based; a write and the read of its answer) starts:
    /// the write goes out (and counts), the answer never comes.
    pub disconnect_at_exchange: Option<u64>,
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

/// What the table carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Protocol exchanges (request + response).
    pub exchanges: u64,
    /// ATT round trips.
    pub round_trips: u64,
    /// Bytes written to the device.
    pub bytes_written: u64,
    /// Bytes read from the device.
    pub bytes_read: u64,
    /// Modelled air time (round trips × interval).
    pub modelled: Duration,
}

/// ATT round trips to write `len` bytes at `mtu`.
pub fn write_round_trips(len: usize, mtu: u16) -> u64 {
    let mtu = usize::from(mtu.max(23));
    if len <= mtu - 3 {
        1
    } else {
        (len.div_ceil(mtu - 5) + 1) as u64
    }
}

/// ATT round trips to read `len` bytes at `mtu`.
pub fn read_round_trips(len: usize, mtu: u16) -> u64 {
    let piece = usize::from(mtu.max(23)) - 1;
    (len / piece + 1) as u64
}

/// A fake GATT peripheral. Clones are handles on the same peripheral (a test keeps one to read
/// [`stats`](Self::stats) or drop the connection while the link owns another).
#[derive(Clone)]
pub struct FakeGatt {
    shared: Arc<Shared>,
}

struct Shared {
    device: Arc<SimDevice>,
    config: FakeGattConfig,
    table: Vec<(GattCharacteristic, Option<Vec<u8>>)>,
    connect_attempts: AtomicU32,
    connected: AtomicBool,
    connection: AtomicU64,
    pending: Mutex<HashMap<u128, Vec<u8>>>,
    stats: Mutex<LinkStats>,
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
            shared: Arc::new(Shared {
                device,
                config,
                table,
                connect_attempts: AtomicU32::new(0),
                connected: AtomicBool::new(false),
                connection: AtomicU64::new(0),
                pending: Mutex::new(HashMap::new()),
                stats: Mutex::new(LinkStats::default()),
            }),
        }
    }

    /// The device behind the table.
    pub fn device(&self) -> &Arc<SimDevice> {
        &self.shared.device
    }

    /// The table as a phone's service discovery sees it: each characteristic with the value of its
    /// 0x2901 descriptor (`None` when it has none), in discovery order.
    pub fn layout(&self) -> Vec<(GattCharacteristic, Option<Vec<u8>>)> {
        self.shared.table.clone()
    }

    /// Connection attempts so far.
    pub fn connect_attempts(&self) -> u32 {
        self.shared.connect_attempts.load(Ordering::SeqCst)
    }

    /// What the table has carried so far.
    pub fn stats(&self) -> LinkStats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the connection (the device goes out of range; it loses its session, as a real one would).
    pub fn drop_connection(&self) {
        self.shared.connected.store(false, Ordering::SeqCst);
        self.shared.device.drop_session();
    }

    fn is_up(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Counts one exchange of `written` + `read` bytes; returns its modelled air time.
    fn account(&self, written: usize, read: usize) -> Duration {
        let mtu = GattPeripheral::mtu(self);
        let trips = write_round_trips(written, mtu) + read_round_trips(read, mtu);
        let time = self.shared.config.interval * u32::try_from(trips).unwrap_or(u32::MAX);
        let mut s = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.exchanges += 1;
        s.round_trips += trips;
        s.bytes_written += written as u64;
        s.bytes_read += read as u64;
        s.modelled += time;
        time
    }

    fn name_of(&self, c: &GattCharacteristic) -> Option<String> {
        self.shared
            .table
            .iter()
            .find(|(x, _)| x.uuid == c.uuid)
            .and_then(|(_, name)| name.clone())
            .and_then(|n| String::from_utf8(n).ok())
    }
}

#[async_trait]
impl GattPeripheral for FakeGatt {
    fn name(&self) -> String {
        self.shared.device.config().name.clone()
    }

    fn mtu(&self) -> u16 {
        if self.shared.config.mtu == 0 {
            185
        } else {
            self.shared.config.mtu
        }
    }

    async fn connect(&self) -> Result<(), GattError> {
        let shared = &self.shared;
        let n = shared.connect_attempts.fetch_add(1, Ordering::SeqCst);
        if shared.config.permission_denied {
            return Err(GattError::PermissionDenied);
        }
        if n < shared.config.failing_connects {
            return Err(GattError::ConnectFailed(
                "GATT status 133 (GATT_ERROR)".into(),
            ));
        }
        if shared.device.provisioning_stopped() {
            // Provisioning stopped: the device no longer advertises, as a scan would find.
            return Err(GattError::DeviceNotFound);
        }
        shared
            .connection
            .store(shared.device.new_connection_id(), Ordering::SeqCst);
        shared.connected.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), GattError> {
        self.drop_connection();
        Ok(())
    }

    async fn is_connected(&self) -> bool {
        self.is_up()
    }

    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattError> {
        if !self.is_up() {
            return Err(GattError::NotConnected);
        }
        Ok(self.shared.table.iter().map(|(c, _)| c.clone()).collect())
    }

    async fn read_descriptor(
        &self,
        c: &GattCharacteristic,
        descriptor: u128,
    ) -> Result<Vec<u8>, GattError> {
        if descriptor != USER_DESCRIPTION_UUID {
            return Err(GattError::Att("no such descriptor".into()));
        }
        self.shared
            .table
            .iter()
            .find(|(x, _)| x.uuid == c.uuid)
            .and_then(|(_, v)| v.clone())
            .ok_or_else(|| GattError::Att("no such descriptor".into()))
    }

    async fn write(&self, c: &GattCharacteristic, value: &[u8]) -> Result<(), GattError> {
        if !self.is_up() {
            return Err(GattError::NotConnected);
        }
        let n = self.stats().exchanges + 1;
        if self.shared.config.disconnect_at_exchange == Some(n) {
            // The write went out (and counts); the answer never comes.
            self.account(value.len(), 0);
            self.drop_connection();
            return Err(GattError::NotConnected);
        }
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.uuid, value.to_vec());
        Ok(())
    }

    /// The device handles the written request when its answer is read; the air time of both
    /// directions is slept then.
    async fn read(&self, c: &GattCharacteristic) -> Result<Vec<u8>, GattError> {
        if !self.is_up() {
            return Err(GattError::NotConnected);
        }
        let request = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.uuid)
            .unwrap_or_default();
        let name = self
            .name_of(c)
            .ok_or_else(|| GattError::Att("unknown characteristic".into()))?;
        let connection = self.shared.connection.load(Ordering::SeqCst);
        let result =
            crate::cpu_time::measure(|| self.shared.device.handle(connection, &name, &request));
        let time = self.account(request.len(), result.as_ref().map_or(0, Vec::len));
        tokio::time::sleep(time).await;
        match result {
            Ok(answer) => Ok(answer),
            Err(DeviceFailure::Refused(why)) => Err(GattError::Att(why)),
            Err(DeviceFailure::UnknownEndpoint) => Err(GattError::Att("unknown endpoint".into())),
            Err(DeviceFailure::Stopped) => {
                self.shared.connected.store(false, Ordering::SeqCst);
                Err(GattError::NotConnected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gatt_arithmetic() {
        // MTU 23: 20 bytes in one write; 21 bytes need prepare writes of 18 + execute.
        assert_eq!(write_round_trips(20, 23), 1);
        assert_eq!(write_round_trips(21, 23), 3);
        assert_eq!(write_round_trips(480, 23), 28);
        // MTU 185: 182 in one write; 480 = 3 prepares of 180 + execute.
        assert_eq!(write_round_trips(182, 185), 1);
        assert_eq!(write_round_trips(480, 185), 4);
        assert_eq!(write_round_trips(480, 512), 1);
        // Reads: 22 bytes per piece at MTU 23; an exact multiple needs one empty blob more.
        assert_eq!(read_round_trips(21, 23), 1);
        assert_eq!(read_round_trips(22, 23), 2);
        assert_eq!(read_round_trips(480, 185), 3);
        assert_eq!(read_round_trips(0, 185), 1);
    }
}
