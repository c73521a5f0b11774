//! A claim fetched before the session: [`Provisioner::prepare_claim`], for SoftAP, where the phone has
//! no route to the backend once it joined the device's access point (docs/bindings.md, "SoftAP").
//!
//! Claim timing per transport: over BLE the claim is requested **just in time** (after the secure
//! session is up and the network chosen), which needs nothing from the app. Over SoftAP the app calls
//! `prepare_claim` **before** it joins the device's access point; the claim must then still have the
//! safety margin *plus* the time budgeted for joining the AP and opening the session
//! ([`ProvisionerConfig::ap_join_budget`](super::ProvisionerConfig::ap_join_budget)). The next run on
//! any session of this provisioner takes it and hands it over at once (`ClaimIssued` says so); when
//! the join took longer than budgeted and the claim no longer has the safety margin, the run renews it
//! (`ClaimRequested`, "the prepared claim is too close to expiry"), which needs the phone online. A
//! prepared claim is used once.

use std::time::Duration;

use crate::claim::{Claim, ClaimError, ClaimRequest};

use super::confirm::Baseline;
use super::{ProvisionError, ProvisionOptions, Provisioner};

/// A claim prepared for the next run, with what the expected thing had then (the baseline the
/// cloud's confirmation needs, read while the phone is still online).
pub(super) struct Prepared {
    pub(super) claim: Claim,
    pub(super) baseline: Option<Baseline>,
}

/// The claim a provisioner prepared, waiting for the next run.
pub(super) type PreparedClaim = std::sync::Arc<std::sync::Mutex<Option<Prepared>>>;

impl Provisioner {
    /// Fetches a claim now, for the next run with `options` (SoftAP: call it before joining the
    /// device's access point), and reads what the expected thing has (the confirmation's baseline);
    /// returns the time the claim has left. It must have the safety margin plus the AP join budget;
    /// one too short is asked for again once, then [`ClaimError::TooShortLived`]. Replaces a claim
    /// prepared earlier and not used.
    pub async fn prepare_claim(
        &self,
        options: &ProvisionOptions,
    ) -> Result<Duration, ProvisionError> {
        let config = &self.config;
        let needed = config.safety_margin + config.ap_join_budget;
        let request = ClaimRequest {
            template: config.template.clone(),
            device_hint: options.device_hint.clone(),
        };
        let baseline = self.baseline(options).await;
        let mut left = Duration::ZERO;
        for _ in 0..2 {
            let claim = self.claims.request_claim(&request).await?;
            left = claim.deadline().remaining();
            if left >= needed {
                *self.prepared.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Prepared { claim, baseline });
                tracing::info!(time_left = ?left, "claim prepared for the next run");
                return Ok(left);
            }
            tracing::warn!(remaining = ?left, needed = ?needed, "prepared claim too short; asking for another");
        }
        Err(ClaimError::TooShortLived {
            left_secs: left.as_secs(),
            margin_secs: needed.as_secs(),
        }
        .into())
    }

    /// Takes the prepared claim, if any (a run uses it once).
    pub(super) fn take_prepared(&self) -> Option<Prepared> {
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}
