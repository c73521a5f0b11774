//! Handing the claim over: the device's Wi-Fi settled, a claim with the safety margin, the transfer.

use std::time::{Duration, Instant};

use crate::claim::{Claim, ClaimError, ClaimRequest};
use crate::protocomm::DeviceSession;

use super::confirm::Baseline;
use super::progress::Run;
use super::{ProvisionError, ProvisionOptions, ProvisioningSession, Stage};

/// The claim as handed over, and what the cloud showed before the device could use it.
pub(super) struct Handover<'c> {
    pub(super) claim: &'c Claim,
    /// Time left on the claim at handover.
    pub(super) time_left: Duration,
    pub(super) baseline: Option<Baseline>,
}

impl ProvisioningSession {
    /// Brings the device's Wi-Fi back to "nothing applied" before new settings: after a Wi-Fi
    /// failure (Reset), after a run dropped while the device was still joining (wait for the attempt
    /// to end, as long as a Wi-Fi join may take) or once it had joined (Reprov).
    pub(super) async fn settle_wifi(&self, session: &DeviceSession) -> Result<(), ProvisionError> {
        use crate::protocomm::ops::WifiState;
        let config = &self.provisioner.config;
        let since = Instant::now();
        loop {
            match session.wifi_status().await? {
                WifiState::Disconnected => return Ok(()),
                WifiState::Connecting if since.elapsed() < config.wifi_timeout => {
                    tokio::time::sleep(config.poll_interval).await
                }
                WifiState::Connecting => return Err(ProvisionError::WifiTimeout),
                WifiState::Connected { .. } => return Ok(session.reprovision().await?),
                WifiState::Failed(_) | WifiState::AttemptFailed { .. } => {
                    return Ok(session.reset_wifi().await?)
                }
            }
        }
    }

    pub(super) async fn fresh_claim(
        &self,
        options: &ProvisionOptions,
        run: &mut Run<'_>,
    ) -> Result<Claim, ProvisionError> {
        let config = &self.provisioner.config;
        let request = ClaimRequest {
            template: config.template.clone(),
            device_hint: options.device_hint.clone(),
        };
        let mut left = Duration::ZERO;
        for attempt in 1..=2 {
            run.emit(
                Stage::ClaimRequested,
                (attempt > 1).then(|| "previous claim too close to expiry".to_owned()),
            );
            let claim = self.provisioner.claims.request_claim(&request).await?;
            run.claim = Some(*claim.deadline());
            left = claim.deadline().remaining();
            if left >= config.safety_margin {
                run.emit(Stage::ClaimIssued, None);
                return Ok(claim);
            }
            tracing::warn!(remaining = ?left, "claim below the safety margin; asking for another");
        }
        // Two fresh claims in a row too short: not a missed deadline but a service (or margin) that
        // cannot work.
        Err(ClaimError::TooShortLived {
            left_secs: left.as_secs(),
            margin_secs: config.safety_margin.as_secs(),
        }
        .into())
    }
}
