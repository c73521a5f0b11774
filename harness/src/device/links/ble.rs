//! A simulated BLE link to a [`SimDevice`], modelling what breaks real apps.
//!
//! GATT arithmetic (Bluetooth Core, ATT): a Write Request carries `MTU − 3` bytes; longer values go as
//! Prepare Write Requests of `MTU − 5` bytes each plus one Execute Write; a Read Response carries
//! `MTU − 1` bytes and the rest is fetched with Read Blob Requests of `MTU − 1` bytes, until a response
//! shorter than that (so a value whose length is a multiple of `MTU − 1` costs one empty Read Blob
//! more). Every ATT request/response pair is one round trip of one connection interval.
//!
//! On top: the 480-byte message cap, one request in flight, per-round-trip latency (really slept, so
//! deadlines see it), counters for benches, and injected disconnects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claimlink_core::internal::endpoint;
use claimlink_core::{DeviceLink, LinkError, MAX_MESSAGE_BYTES};

use crate::device::{DeviceFailure, SimDevice};

/// How the link behaves.
#[derive(Clone, Debug)]
pub struct BleLinkConfig {
    /// The negotiated ATT MTU (23 is the minimum; phones reach 185 or 512).
    pub mtu: u16,
    /// Time per ATT round trip (the connection interval).
    pub interval: Duration,
    /// The largest message the device firmware accepts.
    pub message_cap: usize,
    /// Drop the connection when this exchange (1-based) starts.
    pub disconnect_at_exchange: Option<u64>,
}

impl Default for BleLinkConfig {
    fn default() -> Self {
        Self {
            mtu: 185,
            interval: Duration::from_millis(30),
            message_cap: MAX_MESSAGE_BYTES,
            disconnect_at_exchange: None,
        }
    }
}

/// What the link carried.
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

/// A simulated BLE connection to one device.
pub struct SimBleLink {
    device: Arc<SimDevice>,
    config: BleLinkConfig,
    connection: AtomicU64,
    connected: tokio::sync::watch::Sender<bool>,
    busy: tokio::sync::Mutex<()>,
    stats: Mutex<LinkStats>,
}

impl std::fmt::Debug for SimBleLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SimBleLink {
    /// Connects to `device`.
    pub fn connect(device: Arc<SimDevice>, config: BleLinkConfig) -> Self {
        let connection = AtomicU64::new(device.new_connection_id());
        Self {
            device,
            config,
            connection,
            connected: tokio::sync::watch::Sender::new(true),
            busy: tokio::sync::Mutex::new(()),
            stats: Mutex::new(LinkStats::default()),
        }
    }

    /// What the link has carried so far.
    pub fn stats(&self) -> LinkStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the connection now (the device loses its session, as a real one would).
    pub fn drop_connection(&self) {
        self.connected.send_replace(false);
        self.device.drop_session();
    }

    fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    fn account(&self, written: usize, read: usize) -> Duration {
        let trips =
            write_round_trips(written, self.config.mtu) + read_round_trips(read, self.config.mtu);
        let time = self.config.interval * u32::try_from(trips).unwrap_or(u32::MAX);
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.exchanges += 1;
        s.round_trips += trips;
        s.bytes_written += written as u64;
        s.bytes_read += read as u64;
        s.modelled += time;
        time
    }
}

#[async_trait]
impl DeviceLink for SimBleLink {
    async fn exchange(&self, endpoint_name: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        let _one = self.busy.try_lock().map_err(|_| LinkError::Busy)?;
        if !self.is_connected() {
            return Err(LinkError::Disconnected);
        }
        if request.len() > self.config.message_cap {
            return Err(LinkError::TooLarge {
                len: request.len(),
                max: self.config.message_cap,
            });
        }
        let n = self.stats().exchanges + 1;
        if self.config.disconnect_at_exchange == Some(n) {
            // The write went out (and counts); the answer never comes.
            self.account(request.len(), 0);
            self.drop_connection();
            return Err(LinkError::Disconnected);
        }
        let result = self.device.handle(
            self.connection.load(Ordering::SeqCst),
            endpoint_name,
            request,
        );
        let answer_len = result.as_ref().map_or(0, Vec::len);
        let time = self.account(request.len(), answer_len);
        tokio::time::sleep(time).await;
        match result {
            Ok(answer)
                if answer.len() > self.config.message_cap && endpoint_name != endpoint::VERSION =>
            {
                Err(LinkError::TooLarge {
                    len: answer.len(),
                    max: self.config.message_cap,
                })
            }
            Ok(answer) => Ok(answer),
            Err(DeviceFailure::UnknownEndpoint) => {
                Err(LinkError::UnknownEndpoint(endpoint_name.to_owned()))
            }
            Err(DeviceFailure::Refused(why)) => {
                Err(LinkError::DeviceError(format!("ATT error: {why}")))
            }
            Err(DeviceFailure::Stopped) => {
                self.connected.send_replace(false);
                Err(LinkError::Disconnected)
            }
        }
    }

    fn endpoints(&self) -> Option<Vec<String>> {
        let mut names = vec![
            endpoint::VERSION,
            endpoint::SESSION,
            endpoint::CONFIG,
            endpoint::SCAN,
            endpoint::CTRL,
        ];
        if self.device.config().aws_extension {
            names.extend([endpoint::AWS_CLAIM, endpoint::AWS_STATUS]);
        }
        Some(names.into_iter().map(str::to_owned).collect())
    }

    fn max_message_bytes(&self) -> usize {
        self.config.message_cap
    }

    async fn connect(&self) -> Result<(), LinkError> {
        if self.is_connected() {
            return Ok(());
        }
        if self.device.provisioning_stopped() {
            return Err(LinkError::Other(
                "the device no longer advertises (provisioning stopped)".into(),
            ));
        }
        self.connection
            .store(self.device.new_connection_id(), Ordering::SeqCst);
        self.connected.send_replace(true);
        Ok(())
    }

    fn mtu(&self) -> Option<u16> {
        Some(self.config.mtu)
    }

    async fn disconnect(&self) {
        self.drop_connection();
    }

    async fn disconnected(&self) {
        let mut rx = self.connected.subscribe();
        let _ = rx.wait_for(|connected| !*connected).await;
    }

    fn describe(&self) -> String {
        format!(
            "ble(sim) {} mtu {}",
            self.device.config().name,
            self.config.mtu
        )
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
