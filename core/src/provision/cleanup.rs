//! Clean-up: the claim is wiped from the device when a run fails or is dropped, or the session is
//! dropped while the device holds one.

use std::sync::Arc;
use std::time::Duration;

use crate::claim::Claim;
use crate::protocomm::{DeviceCredentials, DeviceSession, ProtocolError, SecurityPolicy};
use crate::transport::DeviceLink;

use super::ProvisioningSession;

/// An app that gives up (drops the session) after a Wi-Fi failure leaves a claim on the device: wipe it.
impl Drop for ProvisioningSession {
    fn drop(&mut self) {
        let holds = self
            .claim_on_device
            .try_lock()
            .map(|c| c.is_some())
            .unwrap_or(false);
        let Ok(session) = self.session.try_lock().map(|s| s.clone()) else {
            return;
        };
        if !holds {
            return;
        }
        let Some(runtime) = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
        else {
            return;
        };
        let (link, credentials, policy) = (
            self.link.clone(),
            self.credentials.clone(),
            self.provisioner.config.security.clone(),
        );
        runtime.spawn(async move {
            wipe_claim(&session, &link, &credentials, &policy).await;
        });
    }
}

/// Wipes the claim from the device if a run is dropped half-way (a cancelled coroutine or task).
pub(super) struct AbortOnDrop {
    pub(super) session: Arc<DeviceSession>,
    pub(super) link: Arc<dyn DeviceLink>,
    pub(super) credentials: DeviceCredentials,
    pub(super) policy: SecurityPolicy,
    /// The session's record of the claim on the device: emptied with the wipe, so a later run on the
    /// session asks for a fresh claim instead of reusing the wiped one.
    pub(super) on_device: Arc<tokio::sync::Mutex<Option<Claim>>>,
    /// Used when the run is dropped outside any runtime.
    pub(super) runtime: Option<tokio::runtime::Handle>,
    /// The device may hold a claim (all of it, or part of one).
    pub(super) armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(runtime) = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
        else {
            return;
        };
        let (session, link, credentials, policy) = (
            self.session.clone(),
            self.link.clone(),
            self.credentials.clone(),
            self.policy.clone(),
        );
        // The record is locked now, not when the task first runs: until the wipe is done, a new run
        // on the session waits, and the session's own drop (which only try-locks) does not start a
        // second, interleaved wipe. The run that owned this guard no longer holds the lock.
        let held = self.on_device.clone().try_lock_owned();
        let on_device = self.on_device.clone();
        runtime.spawn(async move {
            let mut on_device = match held {
                Ok(guard) => guard,
                Err(_) => on_device.lock_owned().await,
            };
            if wipe_claim(&session, &link, &credentials, &policy).await {
                *on_device = None;
            }
        });
    }
}

/// Wipes the claim from the device, best effort and bounded: done within 10 s whatever the device
/// does (the run's own outcome is what gets reported). Whether the device confirmed the wipe.
async fn wipe_claim(
    session: &DeviceSession,
    link: &Arc<dyn DeviceLink>,
    credentials: &DeviceCredentials,
    policy: &SecurityPolicy,
) -> bool {
    let wiped = tokio::time::timeout(
        Duration::from_secs(10),
        abort_on_device(session, link, credentials, policy),
    )
    .await;
    match wiped {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not wipe the claim from the device");
            false
        }
        Err(_) => {
            tracing::warn!("the device did not confirm the claim wipe within 10 s");
            false
        }
    }
}

/// Sends `aws-claim` abort, on a fresh session if the current one is broken (for instance by a request
/// cut off mid-exchange).
async fn abort_on_device(
    session: &DeviceSession,
    link: &Arc<dyn DeviceLink>,
    credentials: &DeviceCredentials,
    policy: &SecurityPolicy,
) -> Result<(), ProtocolError> {
    if !session.is_broken().await {
        return session.abort_claim().await;
    }
    reopen(link, credentials, policy).await?.abort_claim().await
}

/// A new secure session on `link`, reconnecting it if it dropped (a new session replaces the old one
/// on the device).
pub(super) async fn reopen(
    link: &Arc<dyn DeviceLink>,
    credentials: &DeviceCredentials,
    policy: &SecurityPolicy,
) -> Result<DeviceSession, ProtocolError> {
    link.connect().await?;
    DeviceSession::establish(link.clone(), credentials, policy, &mut rand_core::OsRng).await
}

impl ProvisioningSession {
    pub(super) async fn wipe_claim(&self, session: &DeviceSession) -> bool {
        let policy = &self.provisioner.config.security;
        wipe_claim(session, &self.link, &self.credentials, policy).await
    }
}
