//! How a fault is put into a run: a link that damages the Nth answer, a GATT table under the SDK's
//! production `BleLink` whose Nth answer is oversize or late, listeners that reboot the device or take the MQTT broker down at a stage, and a
//! pre-provisioning hook that never answers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimlink_core::{DeviceLink, LinkError, ProvisioningEvent, ProvisioningListener, Stage};
use claimlink_core::{GattCharacteristic, GattError, GattPeripheral};

use super::FrameFault;
use crate::device::ble::SimBleLink;
use crate::device::gatt::FakeGatt;
use crate::device::SimDevice;

/// Damages the Nth answer.
#[derive(Debug)]
pub(super) struct Corrupting {
    pub(super) inner: Arc<SimBleLink>,
    pub(super) how: FrameFault,
    pub(super) at: usize,
    pub(super) seen: std::sync::atomic::AtomicUsize,
    pub(super) previous: std::sync::Mutex<Vec<u8>>,
}

#[async_trait]
impl DeviceLink for Corrupting {
    async fn connect(&self) -> Result<(), LinkError> {
        self.inner.connect().await
    }
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        let mut answer = self.inner.exchange(endpoint, request).await?;
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let previous = std::mem::replace(
            &mut *self.previous.lock().unwrap_or_else(|p| p.into_inner()),
            answer.clone(),
        );
        if n == self.at {
            match self.how {
                FrameFault::Flipped => {
                    if let Some(b) = answer.first_mut() {
                        *b ^= 0x40;
                    }
                }
                FrameFault::Truncated => answer.truncate(answer.len() / 2),
                FrameFault::Duplicated => answer = previous,
                FrameFault::Reordered => {
                    let half = answer.len() / 2;
                    answer.rotate_left(half);
                }
            }
        }
        Ok(answer)
    }
    async fn disconnect(&self) {
        self.inner.disconnect().await
    }
    async fn disconnected(&self) {
        self.inner.disconnected().await
    }
    fn describe(&self) -> String {
        format!("corrupting {}", self.inner.describe())
    }
}

/// What the radio does to one answer of a hostile device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AnswerFault {
    /// The answer is far larger than the link's cap (64 KiB).
    Oversize,
    /// The device handles the request; its answer comes after this long (beyond the exchange
    /// timeout: as far as the phone can tell, never).
    Late(Duration),
}

/// The size of an oversize answer: far beyond `MAX_MESSAGE_BYTES` (480).
const OVERSIZE_ANSWER_BYTES: usize = 64 * 1024;

/// The simulated device's GATT table with its answer to read number `at` (1-based, counting only
/// reads of characteristic values: one per exchange) made hostile. The SDK's production `BleLink`
/// runs on top, so its cap and its exchange timeout are what meet the fault.
pub(super) struct HostileGatt {
    inner: FakeGatt,
    how: AnswerFault,
    at: u64,
    reads: AtomicU64,
    fired: AtomicBool,
}

impl HostileGatt {
    pub(super) fn new(inner: FakeGatt, how: AnswerFault, at: u64) -> Self {
        Self {
            inner,
            how,
            at,
            reads: AtomicU64::new(0),
            fired: AtomicBool::new(false),
        }
    }

    /// Whether the hostile answer was given (a run may end before read `at`).
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl GattPeripheral for HostileGatt {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn mtu(&self) -> u16 {
        self.inner.mtu()
    }
    async fn connect(&self) -> Result<(), GattError> {
        self.inner.connect().await
    }
    async fn disconnect(&self) -> Result<(), GattError> {
        self.inner.disconnect().await
    }
    async fn is_connected(&self) -> bool {
        self.inner.is_connected().await
    }
    async fn discover(&self) -> Result<Vec<GattCharacteristic>, GattError> {
        self.inner.discover().await
    }
    async fn read_descriptor(
        &self,
        characteristic: &GattCharacteristic,
        descriptor: u128,
    ) -> Result<Vec<u8>, GattError> {
        self.inner.read_descriptor(characteristic, descriptor).await
    }
    async fn write(
        &self,
        characteristic: &GattCharacteristic,
        value: &[u8],
    ) -> Result<(), GattError> {
        self.inner.write(characteristic, value).await
    }
    async fn read(&self, characteristic: &GattCharacteristic) -> Result<Vec<u8>, GattError> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        // The device handles the request whatever happens to its answer on the way back.
        let mut answer = self.inner.read(characteristic).await?;
        if n == self.at {
            self.fired.store(true, Ordering::SeqCst);
            match self.how {
                AnswerFault::Oversize => answer.resize(OVERSIZE_ANSWER_BYTES, 0x5a),
                AnswerFault::Late(after) => tokio::time::sleep(after).await,
            }
        }
        Ok(answer)
    }
}

/// Reboots the device once the claim is on it.
pub(super) struct RebootAfterHandover(pub(super) Arc<SimDevice>);

impl ProvisioningListener for RebootAfterHandover {
    fn on_event(&self, event: ProvisioningEvent) {
        if event.stage == Stage::ClaimSent {
            self.0.reboot();
        }
    }
}

/// A pre-provisioning hook endpoint that accepts connections and never answers.
pub(super) async fn silent_hook() -> Result<(String, tokio::task::JoinHandle<()>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok((format!("https://{addr}/hook"), task))
}
