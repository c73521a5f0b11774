//! The simulated phone's network: a switch that takes the phone off the internet, as joining a
//! device's SoftAP access point does on most phones (it has no route out). While it is off, every
//! backend and AWS call the provisioner makes fails as a phone's would: it cannot reach the service.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use claimlink_core::{
    BackendClaimSource, Claim, ClaimError, ClaimRequest, ClaimSource, ThingDescription,
    ThingDirectory, ThingName,
};

/// A claim source and thing directory reached through the phone's network, which can be switched off.
#[derive(Debug)]
pub struct PhoneNetwork {
    inner: Arc<BackendClaimSource>,
    offline: AtomicBool,
    refused: AtomicUsize,
}

impl PhoneNetwork {
    /// `inner`, reached while the phone is online (it starts online).
    pub fn new(inner: Arc<BackendClaimSource>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            offline: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
        })
    }

    /// Takes the phone off the internet (`true`: it joined the device's access point) or back on.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    /// How many calls failed because the phone was offline.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    fn reachable(&self) -> Result<(), ClaimError> {
        if self.offline.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(ClaimError::Network {
                message:
                    "the phone has no route to the service (it is on the device's access point)"
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
