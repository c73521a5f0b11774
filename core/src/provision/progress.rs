//! The progress log of one run: stages reported to the listener once each, with their timings.

use std::time::{Duration, Instant};

use super::events::DeviceFacts;
use super::{ProvisioningEvent, ProvisioningListener, Stage};

/// What one run has reported: each stage goes to the listener (and the log) once, with the time
/// since `connect` and the time left on the claim.
pub(super) struct ProgressLog<'a> {
    /// When `connect` began: the origin of every `elapsed`.
    pub(super) start: Instant,
    pub(super) listener: &'a dyn ProvisioningListener,
    /// The stages reached so far, in the order reached.
    pub(super) timings: Vec<(Stage, Duration)>,
    /// The claim's deadline, once there is a claim.
    pub(super) claim: Option<crate::time::Deadline>,
    /// What the run has learnt about the device (its address, thing, certificate): on every event.
    pub(super) known: DeviceFacts,
}

impl ProgressLog<'_> {
    /// Reports `stage` (with `detail`), unless this run already did and it is not repeatable.
    pub(super) fn emit(&mut self, stage: Stage, detail: Option<String>) {
        // Each stage is reported once, except those a run can go through again (see the table).
        if self.timings.iter().any(|(s, _)| *s == stage) && !stage.is_repeatable() {
            return;
        }
        self.timings.push((stage, self.start.elapsed()));
        let mut event = ProvisioningEvent::new(
            stage,
            self.claim.as_ref().map(|d| d.remaining()),
            self.start,
        );
        event.detail = detail;
        event.device_ip = self.known.ip;
        event.thing_name = self.known.thing_name.clone();
        event.certificate_id = self.known.certificate_id.clone();
        tracing::info!(stage = ?stage, claim_time_left = ?event.claim_time_left, elapsed = ?event.elapsed, detail = event.detail.as_deref().unwrap_or(""), "stage reached");
        self.listener.on_event(event);
    }

    /// The stage reached last (`ClaimRequested` before any).
    pub(super) fn last_stage(&self) -> Stage {
        self.timings
            .last()
            .map_or(Stage::ClaimRequested, |(s, _)| *s)
    }
}
