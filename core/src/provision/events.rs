//! Progress: the events and the listener an app implements (the stages are in `stages.rs`).

use std::time::{Duration, Instant};

use super::Stage;

/// One step of progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisioningEvent {
    /// The stage reached.
    pub stage: Stage,
    /// Time left on the claim, once there is one.
    pub claim_time_left: Option<Duration>,
    /// Time since the session was opened (`Provisioner::connect`).
    pub elapsed: Duration,
    /// A short human-readable detail (never a secret).
    pub detail: Option<String>,
}

impl ProvisioningEvent {
    pub(crate) fn new(stage: Stage, claim_time_left: Option<Duration>, start: Instant) -> Self {
        Self {
            stage,
            claim_time_left,
            elapsed: start.elapsed(),
            detail: None,
        }
    }
}

/// Receives progress. Called from the SDK's tasks: keep it quick and thread-safe.
pub trait ProvisioningListener: Send + Sync {
    /// A stage was reached.
    fn on_event(&self, event: ProvisioningEvent);
}

/// A listener that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoListener;

impl ProvisioningListener for NoListener {
    fn on_event(&self, _event: ProvisioningEvent) {}
}
