//! Progress: stages, events and the listener an app implements.

use std::time::{Duration, Instant};

/// The stages of a provisioning run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Connecting to the device.
    Connecting,
    /// Establishing the secure session.
    Securing,
    /// Asking for a claim (only now: session up, network chosen). Reported a second time, with a
    /// detail, when the first claim arrived too close to expiry. Every other stage is reported once
    /// per run, except `WifiFailed`.
    ClaimRequested,
    /// A claim is in hand.
    ClaimIssued,
    /// The claim is on the device.
    ClaimSent,
    /// The device was told to join Wi-Fi.
    WifiApplied,
    /// The device is joining Wi-Fi.
    WifiConnecting,
    /// The device failed to join Wi-Fi.
    WifiFailed,
    /// The device is on Wi-Fi with an address.
    WifiConnected,
    /// The device is connected to AWS IoT with the claim.
    MqttConnectedWithClaim,
    /// The device has its permanent certificate.
    CertificateIssued,
    /// Its thing is registered.
    ThingRegistered,
    /// It reconnected with its permanent certificate.
    ReconnectedWithPermanent,
    /// The cloud confirms the thing with its certificate.
    ConfirmedByCloud,
}

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
