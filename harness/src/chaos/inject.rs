//! How a fault is put into a run: a link that damages the Nth answer, listeners that reboot the
//! device or take the MQTT broker down at a stage, and a pre-provisioning hook that never answers.

use std::sync::Arc;

use async_trait::async_trait;
use claimlink_core::{DeviceLink, LinkError, ProvisioningEvent, ProvisioningListener, Stage};

use super::FrameFault;
use crate::device::ble::SimBleLink;
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

/// Reboots the device once the claim is on it.
pub(super) struct RebootAfterHandover(pub(super) Arc<SimDevice>);

impl ProvisioningListener for RebootAfterHandover {
    fn on_event(&self, event: ProvisioningEvent) {
        if event.stage == Stage::ClaimSent {
            self.0.reboot();
        }
    }
}

/// Takes the broker down once the device is connected with the claim.
pub(super) struct DropMqttMidFlow<'a>(pub(super) &'a crate::emulator::Emulator);

impl ProvisioningListener for DropMqttMidFlow<'_> {
    fn on_event(&self, event: ProvisioningEvent) {
        if event.stage == Stage::MqttConnectedWithClaim {
            self.0.set_mqtt_down(true);
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
