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
    /// The device's address on the Wi-Fi network, from the event that reports it on (every later
    /// event of the run carries it too).
    pub device_ip: Option<std::net::Ipv4Addr>,
    /// The thing, as soon as the device (or the cloud) names it.
    pub thing_name: Option<String>,
    /// The device's permanent certificate, as soon as the device (or the cloud) names it.
    pub certificate_id: Option<String>,
}

/// What a run has learnt about the device so far; every event carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DeviceFacts {
    pub(crate) ip: Option<std::net::Ipv4Addr>,
    pub(crate) thing_name: Option<String>,
    pub(crate) certificate_id: Option<String>,
}

impl DeviceFacts {
    /// Keeps what `ip`, `thing_name` and `certificate_id` add (a value once known stays known).
    pub(crate) fn learn(
        &mut self,
        ip: Option<std::net::Ipv4Addr>,
        thing_name: Option<&str>,
        certificate_id: Option<&str>,
    ) {
        if ip.is_some() {
            self.ip = ip;
        }
        if let Some(thing) = thing_name.filter(|t| !t.is_empty()) {
            self.thing_name = Some(thing.to_owned());
        }
        if let Some(id) = certificate_id.filter(|c| !c.is_empty()) {
            self.certificate_id = Some(id.to_owned());
        }
    }
}

impl ProvisioningEvent {
    pub(crate) fn new(stage: Stage, claim_time_left: Option<Duration>, start: Instant) -> Self {
        Self {
            stage,
            claim_time_left,
            elapsed: start.elapsed(),
            detail: None,
            device_ip: None,
            thing_name: None,
            certificate_id: None,
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
