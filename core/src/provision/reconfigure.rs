//! Changing the Wi-Fi of a device that is already provisioned, without a claim: the device keeps its
//! thing and certificate, nothing is registered again (docs/protocol.md, "Reprovisioning").
//!
//! The device says who it is on `aws-status` (`Done` with its thing and certificate, from boot on);
//! the cloud must confirm that this thing holds this certificate ACTIVE before anything changes (a
//! device that lies about being provisioned is refuted: [`ProvisionError::NotConfirmed`]). Then the
//! new settings are applied and the join is watched on `prov-config`, as in a run but with no claim
//! on the device: `ApplyConfig` without a claim joins Wi-Fi only, so there is nothing for the device
//! to register. A device that reports no identity is [`ProvisionError::NotProvisioned`]: it needs
//! [`provision`](ProvisioningSession::provision) (after a factory reset when it changes owner).

use std::net::Ipv4Addr;
use std::time::Instant;

use crate::claim::ThingName;
use crate::protocomm::ops::{CloudStatus, WifiCredentials, WifiFailure, WifiState};
use crate::protocomm::proto::CloudStage;
use crate::protocomm::DeviceSession;

use super::events::DeviceFacts;
use super::progress::ProgressLog;
use super::{ProvisionError, ProvisioningListener, ProvisioningSession, Stage};

/// A provisioned device on its new Wi-Fi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconfiguredDevice {
    /// Its thing (unchanged).
    pub thing_name: String,
    /// Its certificate (unchanged), confirmed ACTIVE on the thing by the cloud.
    pub certificate_id: String,
    /// Its address on the new network.
    pub ip: Option<Ipv4Addr>,
}

/// The identity a device reports on `aws-status`, when it reports one: its thing and certificate with
/// `Done`, or with `Failed` for a Wi-Fi reason (a provisioned device whose new Wi-Fi settings failed).
pub(super) fn reported_identity(status: &CloudStatus) -> Option<(String, String)> {
    use crate::protocomm::proto::CloudFailureKind as K;
    let wifi_failure = status
        .failure
        .as_ref()
        .is_some_and(|f| matches!(f.kind, K::WifiAuth | K::WifiNotFound | K::DhcpTimeout));
    let provisioned =
        status.stage == CloudStage::Done || (status.stage == CloudStage::Failed && wifi_failure);
    match (&status.thing_name, &status.certificate_id) {
        (Some(thing), Some(certificate))
            if provisioned && !thing.is_empty() && !certificate.is_empty() =>
        {
            Some((thing.clone(), certificate.clone()))
        }
        _ => None,
    }
}

impl ProvisioningSession {
    /// Moves an already provisioned device to `wifi` without a claim: checks with the cloud that the
    /// thing the device names holds the certificate it names (ACTIVE), applies the settings, and
    /// waits for the join. Never sends a claim, so the device registers nothing again. Progress:
    /// `WifiApplied`, then `WifiConnected` (with the device's new address) or `WifiFailed`.
    ///
    /// Errors: [`ProvisionError::NotProvisioned`] (the device reports no identity: use
    /// [`provision`](Self::provision)), [`ProvisionError::NotConfirmed`] (the cloud does not show what
    /// the device claims: nothing was changed on the device), the Wi-Fi failures of a run
    /// ([`ProvisionError::WifiAuthFailed`], [`ProvisionError::WifiNetworkNotFound`],
    /// [`ProvisionError::WifiTimeout`]: call again with corrected settings), protocol and registry
    /// errors.
    pub async fn reconfigure_wifi(
        &self,
        wifi: &WifiCredentials,
        listener: &dyn ProvisioningListener,
    ) -> Result<ReconfiguredDevice, ProvisionError> {
        let session = self.usable_session().await?;
        let status = session.cloud_status().await?;
        let Some((thing, certificate)) = reported_identity(&status) else {
            return Err(ProvisionError::NotProvisioned);
        };
        // The device's word is checked before anything changes on it.
        let refuted = || ProvisionError::NotConfirmed {
            thing_name: thing.clone(),
        };
        let name = ThingName::new(thing.clone()).map_err(|_| refuted())?;
        let confirmed = self
            .provisioner
            .things
            .describe_thing(&name)
            .await?
            .is_some_and(|d| d.has_active_certificate(&certificate));
        if !confirmed {
            tracing::warn!(thing = %thing, "the cloud does not show the certificate the device names on its thing");
            return Err(refuted());
        }
        let mut progress = ProgressLog {
            start: self.started,
            listener,
            timings: Vec::new(),
            claim: None,
            known: DeviceFacts::default(),
        };
        progress.known.learn(None, Some(&thing), Some(&certificate));
        self.settle_wifi(&session).await?;
        session.set_wifi_config(wifi).await?;
        session.apply_wifi_config().await?;
        progress.emit(Stage::WifiApplied, None);
        let ip = self.wait_for_join(&session, &mut progress).await?;
        Ok(ReconfiguredDevice {
            thing_name: thing,
            certificate_id: certificate,
            ip,
        })
    }

    /// Polls `prov-config` until the device joined (its address), failed, or ran out of time.
    async fn wait_for_join(
        &self,
        session: &DeviceSession,
        progress: &mut ProgressLog<'_>,
    ) -> Result<Option<Ipv4Addr>, ProvisionError> {
        let config = &self.provisioner.config;
        let since = Instant::now();
        loop {
            match session.wifi_status().await? {
                WifiState::Connected { ip, .. } => {
                    progress.known.learn(ip, None, None);
                    progress.emit(Stage::WifiConnected, None);
                    return Ok(ip);
                }
                WifiState::Failed(WifiFailure::AuthError) => {
                    progress.emit(Stage::WifiFailed, Some("wrong passphrase".into()));
                    return Err(ProvisionError::WifiAuthFailed);
                }
                WifiState::Failed(_) => {
                    progress.emit(Stage::WifiFailed, Some("network not found".into()));
                    return Err(ProvisionError::WifiNetworkNotFound);
                }
                WifiState::Connecting
                | WifiState::AttemptFailed { .. }
                | WifiState::Disconnected => {
                    if since.elapsed() >= config.wifi_timeout {
                        return Err(ProvisionError::WifiTimeout);
                    }
                    tokio::time::sleep(config.poll_interval).await;
                }
            }
        }
    }
}
