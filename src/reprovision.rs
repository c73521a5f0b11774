//! Changing the Wi-Fi of a device that is already provisioned, without a claim (the core's
//! `reconfigure_wifi`; docs/protocol.md, "Reprovisioning").

use std::sync::Arc;

use super::progress::ProvisioningEvent;
use super::provisioner::{ProvisioningListener, ProvisioningSession};
use super::records::WifiSettings;
use super::runtime::on_runtime;
use super::ProvisioningFailure;
use claimlink_core as core;

/// A provisioned device on its new Wi-Fi network: the same thing and certificate as before.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ReconfiguredDevice {
    /// Its thing (unchanged).
    pub thing_name: String,
    /// Its certificate (unchanged), confirmed ACTIVE on the thing by the cloud.
    pub certificate_id: String,
    /// Its IPv4 address on the new network, when it said.
    pub device_ip: Option<String>,
}

/// Forwards the core's events to the app's listener.
struct Forward(Option<Arc<dyn ProvisioningListener>>);

impl core::ProvisioningListener for Forward {
    fn on_event(&self, event: core::ProvisioningEvent) {
        if let Some(listener) = &self.0 {
            listener.on_event(ProvisioningEvent::from(event));
        }
    }
}

#[uniffi::export]
impl ProvisioningSession {
    /// Moves an already provisioned device (a new router, a new passphrase) to `wifi` **without a
    /// claim**: checks with the cloud that the thing the device names holds the certificate it names
    /// (ACTIVE), applies the settings and waits for the join (`WifiApplied`, then `WifiConnected` or
    /// `WifiFailed` to `listener`). Nothing is registered again.
    ///
    /// Fails with `NotProvisioned` when the device reports no identity (use `provision`),
    /// `NotConfirmed` when the cloud does not show what the device claims (nothing was changed on the
    /// device), and the Wi-Fi failures of `provision` (call again with corrected settings).
    pub async fn reconfigure_wifi(
        &self,
        wifi: Arc<WifiSettings>,
        listener: Option<Arc<dyn ProvisioningListener>>,
    ) -> Result<ReconfiguredDevice, ProvisioningFailure> {
        let inner = self.inner.clone();
        on_runtime(async move {
            let done = inner
                .reconfigure_wifi(&wifi.inner, &Forward(listener))
                .await?;
            Ok(ReconfiguredDevice {
                thing_name: done.thing_name,
                certificate_id: done.certificate_id,
                device_ip: done.ip.map(|ip| ip.to_string()),
            })
        })
        .await
    }
}
