//! Clean-up: the claim is wiped from the device when a run fails or is dropped, or the session is
//! dropped while the device holds one.
//!
//! One [`ClaimWipe`] does every wipe (awaited by a failed run and by `close`, spawned by
//! [`ClaimWipe::spawn`] from both drops: a run's [`ClaimWipeGuard`] and the session's own).

use std::sync::Arc;
use std::time::Duration;

use crate::claim::Claim;
use crate::protocomm::{DeviceCredentials, DeviceSession, ProtocolError, SecurityPolicy};
use crate::transport::DeviceLink;

use super::session::reopen;
use super::ProvisioningSession;

/// The session's record of the claim the device holds (handed over, not yet used), if any.
pub(super) type ClaimRecord = Arc<tokio::sync::Mutex<Option<Claim>>>;

/// Everything wiping the claim from the device takes, owned so that the wipe can run on its own task.
#[derive(Clone)]
pub(super) struct ClaimWipe {
    /// The secure session the wipe goes through, unless it is broken.
    pub(super) session: Arc<DeviceSession>,
    /// The link, and what a new secure session on it takes when the current one is broken.
    pub(super) link: Arc<dyn DeviceLink>,
    pub(super) credentials: DeviceCredentials,
    pub(super) policy: SecurityPolicy,
}

impl ClaimWipe {
    /// Wipes the claim from the device, best effort and bounded: done within 10 s whatever the device
    /// does (the run's own outcome is what gets reported). Whether the device confirmed the wipe.
    pub(super) async fn perform(&self) -> bool {
        let wiped = tokio::time::timeout(Duration::from_secs(10), self.abort_on_device()).await;
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

    /// Sends `aws-claim` abort, on a fresh session if the current one is broken (for instance by a
    /// request cut off mid-exchange).
    async fn abort_on_device(&self) -> Result<(), ProtocolError> {
        if !self.session.is_broken().await {
            return self.session.abort_claim().await;
        }
        reopen(&self.link, &self.credentials, &self.policy)
            .await?
            .abort_claim()
            .await
    }

    /// Wipes in the background, from a `drop`: on the current runtime, or on `fallback` when dropped
    /// from a thread outside any runtime (a foreign app's garbage collector, for instance); not at all
    /// when there is neither. With a `record`, it is locked now, not when the task first runs, and
    /// emptied once the device confirms the wipe.
    pub(super) fn spawn(
        self,
        fallback: Option<tokio::runtime::Handle>,
        record: Option<&ClaimRecord>,
    ) {
        let Some(runtime) = tokio::runtime::Handle::try_current().ok().or(fallback) else {
            return;
        };
        let Some(record) = record else {
            runtime.spawn(async move {
                self.perform().await;
            });
            return;
        };
        // Locked now: until the wipe is done, a new run on the session waits, and the session's own
        // drop (which only try-locks) does not start a second, interleaved wipe. The run that owned
        // the guard no longer holds the lock.
        let held = record.clone().try_lock_owned();
        let record = record.clone();
        runtime.spawn(async move {
            let mut on_device = match held {
                Ok(guard) => guard,
                Err(_) => record.lock_owned().await,
            };
            if self.perform().await {
                *on_device = None;
            }
        });
    }
}

/// Wipes the claim from the device if a run is dropped half-way (a cancelled coroutine or task).
pub(super) struct ClaimWipeGuard {
    pub(super) wipe: ClaimWipe,
    /// The session's record of the claim on the device: emptied with the wipe, so a later run on the
    /// session asks for a fresh claim instead of reusing the wiped one.
    pub(super) on_device: ClaimRecord,
    /// Used when the run is dropped outside any runtime.
    pub(super) runtime: Option<tokio::runtime::Handle>,
    /// The device may hold a claim (all of it, or part of one).
    pub(super) armed: bool,
}

impl Drop for ClaimWipeGuard {
    fn drop(&mut self) {
        if self.armed {
            self.wipe
                .clone()
                .spawn(self.runtime.clone(), Some(&self.on_device));
        }
    }
}

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
        if holds {
            self.claim_wipe(session).spawn(self.runtime.clone(), None);
        }
    }
}

impl ProvisioningSession {
    /// A wipe of the claim through `session`, or a new session on this one's link.
    pub(super) fn claim_wipe(&self, session: Arc<DeviceSession>) -> ClaimWipe {
        ClaimWipe {
            session,
            link: self.link.clone(),
            credentials: self.credentials.clone(),
            policy: self.provisioner.config.security.clone(),
        }
    }
}
