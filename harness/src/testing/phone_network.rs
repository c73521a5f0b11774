//! The simulated phone's network: a switch that takes the phone off the internet, as joining a
//! device's SoftAP access point does on most phones (it has no route out). While it is off, every
//! backend and AWS call the provisioner makes fails as a phone's would: it cannot reach the service.
//!
//! Besides the plain switch ([`PhoneNetwork::set_offline`]), the phone can join and leave the
//! device's access point ([`PhoneNetwork::join_access_point`], [`PhoneNetwork::leave_access_point`]):
//! after it leaves, it is offline a little longer, for as long as it takes to rejoin its usual
//! network ([`PhoneNetwork::rejoin_delay`]), as a phone does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use claimlink_core::{
    BackendClaimSource, Claim, ClaimError, ClaimRequest, ClaimSource, ProvisioningEvent,
    ProvisioningListener, Stage, ThingDescription, ThingDirectory, ThingName,
};

/// A claim source and thing directory reached through the phone's network, which can be switched off.
#[derive(Debug)]
pub struct PhoneNetwork {
    inner: Arc<BackendClaimSource>,
    offline: AtomicBool,
    /// Offline until then: the phone left the device's access point and is rejoining its network.
    rejoining_until: Mutex<Option<Instant>>,
    rejoin_delay: Duration,
    refused: AtomicUsize,
}

impl PhoneNetwork {
    /// `inner`, reached while the phone is online (it starts online).
    pub fn new(inner: Arc<BackendClaimSource>) -> Arc<Self> {
        Self::with_rejoin_delay(inner, Self::REJOIN_DELAY)
    }

    /// How long a phone that left the device's access point takes to be back on its usual network
    /// by default (reassociation and DHCP: a second or two on a phone that remembers the network).
    pub const REJOIN_DELAY: Duration = Duration::from_millis(1500);

    /// As [`new`](Self::new), taking `rejoin_delay` to rejoin its network after leaving an access
    /// point.
    pub fn with_rejoin_delay(inner: Arc<BackendClaimSource>, rejoin_delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner,
            offline: AtomicBool::new(false),
            rejoining_until: Mutex::new(None),
            rejoin_delay,
            refused: AtomicUsize::new(0),
        })
    }

    /// How long the phone takes to rejoin its network after leaving an access point.
    pub fn rejoin_delay(&self) -> Duration {
        self.rejoin_delay
    }

    /// The phone joins the device's access point: no route to the internet from there.
    pub fn join_access_point(&self) {
        self.set_offline(true);
    }

    /// The phone leaves the device's access point (the app released it): it is back online once it
    /// has rejoined its usual network, [`rejoin_delay`](Self::rejoin_delay) from now.
    pub fn leave_access_point(&self) {
        if !self.offline.swap(false, Ordering::SeqCst) {
            return;
        }
        *self
            .rejoining_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + self.rejoin_delay);
    }

    /// Whether the phone is on the device's access point now.
    pub fn on_access_point(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// Takes the phone off the internet (`true`: it joined the device's access point) or back on.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
        *self
            .rejoining_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How many calls failed because the phone was offline.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    fn reachable(&self) -> Result<(), ClaimError> {
        let rejoining = self
            .rejoining_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until);
        if self.offline.load(Ordering::SeqCst) || rejoining {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(ClaimError::Network {
                message:
                    "the phone has no route to the service (it is on the device's access point, or rejoining its own network)"
                        .into(),
                timed_out: false,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ClaimSource for PhoneNetwork {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        self.reachable()?;
        self.inner.request_claim(request).await
    }
}

#[async_trait]
impl ThingDirectory for PhoneNetwork {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        self.reachable()?;
        self.inner.describe_thing(thing).await
    }
}

/// What a SoftAP app does with the run's events (docs/bindings.md, "SoftAP"): it leaves the device's
/// access point as soon as the run reports [`Stage::WaitingForNetwork`] — the SDK is done with the
/// device then and waits for the phone's internet to confirm — and passes every event on.
pub struct LeavesAccessPoint<'a> {
    phone: Arc<PhoneNetwork>,
    forward: &'a dyn ProvisioningListener,
}

impl<'a> LeavesAccessPoint<'a> {
    /// The app on `phone`, passing events on to `forward`.
    pub fn new(phone: Arc<PhoneNetwork>, forward: &'a dyn ProvisioningListener) -> Self {
        Self { phone, forward }
    }
}

impl ProvisioningListener for LeavesAccessPoint<'_> {
    fn on_event(&self, event: ProvisioningEvent) {
        if event.stage == Stage::WaitingForNetwork {
            self.phone.leave_access_point();
        }
        self.forward.on_event(event);
    }
}
