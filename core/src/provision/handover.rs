//! Handing the claim over: the device's Wi-Fi settled, a claim with the safety margin, the transfer.

use std::time::{Duration, Instant};

use crate::claim::{Claim, ClaimError, ClaimRequest};
use crate::protocomm::proto::CloudStage;
use crate::protocomm::{DeviceSession, ProtocolError};

use super::cleanup::ClaimWipeGuard;
use super::confirm::Baseline;
use super::progress::ProgressLog;
use super::{claim_bundle, ProvisionError, ProvisionOptions, ProvisioningSession, Stage};

/// The claim as handed over, and what the cloud showed before the device could use it.
pub(super) struct Handover {
    pub(super) claim: Claim,
    /// Time left on the claim at handover.
    pub(super) time_left: Duration,
    pub(super) baseline: Option<Baseline>,
}

/// The detail a `ClaimIssued` event carries when the clock the claim's time left was measured on
/// read before the claim certificate's start (the time left was capped by its lifetime).
fn clock_warning(deadline: &crate::time::Deadline) -> Option<String> {
    let behind = deadline.clock_behind_certificate_secs()?;
    let clock = if deadline.clock_skew_secs().is_some() {
        "the server's Date"
    } else {
        "the phone's clock"
    };
    Some(format!(
        "{clock} reads {behind} s before the claim certificate's start: time left capped by the certificate's lifetime"
    ))
}

impl ProvisioningSession {
    /// Brings the device's Wi-Fi back to "nothing applied" before new settings, on stock
    /// network_provisioning semantics (docs/protocol.md, device state machine): after a Wi-Fi failure
    /// Reset; once it had joined Reprov (accepted only when the firmware disabled auto-stop, as
    /// claimlink devices must). `Connecting` is both a fresh device (network_provisioning reports it
    /// before any settings) and one still joining after a dropped run: Reset is accepted by the
    /// first and refused by the second, whose attempt is waited for (as long as a Wi-Fi join may
    /// take), Reset again each poll.
    pub(super) async fn settle_wifi(&self, session: &DeviceSession) -> Result<(), ProvisionError> {
        use crate::protocomm::ops::WifiState;
        let config = &self.provisioner.config;
        let since = Instant::now();
        loop {
            match session.wifi_status().await? {
                WifiState::Disconnected => return Ok(()),
                WifiState::Connecting | WifiState::AttemptFailed { .. } => {
                    match session.reset_wifi().await {
                        Ok(()) => return Ok(()),
                        Err(ProtocolError::DeviceRefused { .. })
                            if since.elapsed() < config.wifi_timeout =>
                        {
                            tokio::time::sleep(config.poll_interval).await
                        }
                        Err(ProtocolError::DeviceRefused { .. }) => {
                            return Err(ProvisionError::WifiTimeout)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                WifiState::Connected { .. } => return Ok(session.reprovision().await?),
                WifiState::Failed(_) => return Ok(session.reset_wifi().await?),
            }
        }
    }

    pub(super) async fn fresh_claim(
        &self,
        options: &ProvisionOptions,
        progress: &mut ProgressLog<'_>,
        prepared: Option<Claim>,
    ) -> Result<Claim, ProvisionError> {
        let config = &self.provisioner.config;
        let request = ClaimRequest {
            template: config.template.clone(),
            device_hint: options.device_hint.clone(),
        };
        let mut renewing_prepared = false;
        if let Some(claim) = prepared {
            progress.claim = Some(claim.deadline().clone());
            if claim.deadline().remaining() >= config.safety_margin {
                progress.emit(
                    Stage::ClaimIssued,
                    Some("prepared before the session (prepare_claim)".into()),
                );
                return Ok(claim);
            }
            tracing::warn!(remaining = ?claim.deadline().remaining(), "the prepared claim is below the safety margin; renewing it");
            renewing_prepared = true;
        }
        let mut left = Duration::ZERO;
        for attempt in 1..=2 {
            let detail = if attempt > 1 {
                Some("previous claim too close to expiry".to_owned())
            } else if renewing_prepared {
                Some("the prepared claim is too close to expiry".to_owned())
            } else {
                None
            };
            progress.emit(Stage::ClaimRequested, detail);
            let claim = self.provisioner.claims.request_claim(&request).await?;
            progress.claim = Some(claim.deadline().clone());
            left = claim.deadline().remaining();
            if left >= config.safety_margin {
                progress.emit(Stage::ClaimIssued, clock_warning(claim.deadline()));
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

    /// Puts a claim with the safety margin on the device: the one it already holds when it still
    /// does (a retry after a Wi-Fi failure), or a fresh one, transferred while the expected thing is
    /// read for the baseline. Arms `guard` as soon as the device may hold any of it.
    pub(super) async fn hand_over(
        &self,
        session: &DeviceSession,
        options: &ProvisionOptions,
        progress: &mut ProgressLog<'_>,
        guard: &mut ClaimWipeGuard,
    ) -> Result<Handover, ProvisionError> {
        let config = self.provisioner.config.clone();
        // Just in time: the claim is requested only now, with the session up and the network chosen.
        let mut on_device = self.claim_on_device.lock().await;
        let mut reusable = on_device
            .as_ref()
            .filter(|c| c.deadline().remaining() >= config.safety_margin)
            .cloned();
        // The device keeps its claim through a Wi-Fi reset, but may have dropped it on its own (a
        // restart of its provisioning task): ask before reusing it.
        if reusable.is_some() && session.cloud_status().await?.stage != CloudStage::ClaimReceived {
            tracing::info!("the device no longer holds the claim; asking for a fresh one");
            *on_device = None;
            reusable = None;
        }
        let (claim, baseline) = if let Some(claim) = reusable {
            progress.claim = Some(claim.deadline().clone());
            progress.emit(
                Stage::ClaimIssued,
                Some("reusing the claim already on the device".into()),
            );
            (claim, self.baseline(options).await)
        } else {
            // A claim prepared before the session comes with the baseline read then (the phone may
            // be offline now, on the device's access point).
            let prepared = self.provisioner.take_prepared();
            let (prepared_claim, prepared_baseline) = match prepared {
                Some(p) => (Some(p.claim), Some(p.baseline)),
                None => (None, None),
            };
            let claim = self.fresh_claim(options, progress, prepared_claim).await?;
            guard.armed = true;
            // The device cannot use the claim before its Wi-Fi settings are applied, so what the
            // thing has now is what it had before this run: look while the claim travels.
            // A failed transfer ends the run at once, without waiting for the read.
            let bundle = claim_bundle(&claim, &config.iot_endpoint, &options.template_parameters);
            let (_, baseline) = tokio::try_join!(session.send_claim(&bundle), async {
                Ok(match prepared_baseline {
                    Some(Some(before))
                        if options.expected_thing_name.as_ref() == Some(before.thing()) =>
                    {
                        Some(before)
                    }
                    _ => self.baseline(options).await,
                })
            })?;
            *on_device = Some(claim.clone());
            (claim, baseline)
        };
        drop(on_device);
        guard.armed = true;
        let time_left = claim.deadline().remaining();
        progress.emit(Stage::ClaimSent, None);
        Ok(Handover {
            claim,
            time_left,
            baseline,
        })
    }
}
