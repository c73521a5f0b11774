//! The provisioner, its sessions with devices, and the driver of one run.

use std::sync::Arc;
use std::time::Instant;

use crate::claim::{ClaimSource, ThingDirectory};
use crate::protocomm::ops::{WifiCredentials, WifiNetwork};
use crate::protocomm::{
    DeviceCapabilities, DeviceCredentials, DeviceSession, ProtocolError, SecurityPolicy,
};
use crate::transport::{DeviceLink, LinkError};

use super::cleanup::{ClaimRecord, ClaimWipeGuard};
use super::progress::ProgressLog;
use super::report::{
    CountingLink, OutcomeReport, RecordingListener, RunReport, SessionRecord, StageReport,
    SupportReport,
};
use super::{
    ProvisionError, ProvisionOptions, ProvisionedDevice, ProvisionerConfig, ProvisioningEvent,
    ProvisioningListener, Stage,
};

/// Runs provisioning sessions. Cheap to clone; one per app.
#[derive(Clone)]
pub struct Provisioner {
    pub(super) config: Arc<ProvisionerConfig>,
    pub(super) claims: Arc<dyn ClaimSource>,
    pub(super) things: Arc<dyn ThingDirectory>,
    /// A claim fetched ahead of the next run ([`Provisioner::prepare_claim`]).
    pub(super) prepared: super::prepared::PreparedClaim,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("config", &self.config)
            .field("claims", &self.claims)
            .field("things", &self.things)
            .finish()
    }
}

impl Provisioner {
    /// A provisioner getting claims from `source`, which also answers for the registry (both
    /// built-in sources do).
    pub fn new<S>(source: Arc<S>, config: ProvisionerConfig) -> Self
    where
        S: ClaimSource + ThingDirectory + 'static,
    {
        Self::with_thing_directory(source.clone(), source, config)
    }

    /// A provisioner getting claims from `claims` and asking `things` what the cloud knows about a
    /// thing (for the confirmation).
    pub fn with_thing_directory(
        claims: Arc<dyn ClaimSource>,
        things: Arc<dyn ThingDirectory>,
        config: ProvisionerConfig,
    ) -> Self {
        Self {
            config: Arc::new(config),
            claims,
            things,
            prepared: Default::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &ProvisionerConfig {
        &self.config
    }

    /// Opens a secure session with the device on `link`.
    pub async fn connect(
        &self,
        link: Arc<dyn DeviceLink>,
        credentials: DeviceCredentials,
        listener: &dyn ProvisioningListener,
    ) -> Result<ProvisioningSession, ProvisionError> {
        let start = Instant::now();
        let record = SessionRecord::new();
        let counted = Arc::new(CountingLink {
            inner: link,
            counters: Arc::default(),
        });
        let link: Arc<dyn DeviceLink> = counted.clone();
        let listener = RecordingListener {
            inner: listener,
            stages: std::sync::Mutex::default(),
        };
        listener.on_event(ProvisioningEvent::new(Stage::Connecting, None, start));
        link.connect().await.map_err(ProtocolError::from)?;
        match self
            .secure(&counted, credentials, &listener, start, record.clone())
            .await
        {
            Ok(session) => {
                let stages = listener
                    .stages
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner());
                record
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .connect_stages = stages;
                Ok(session)
            }
            Err(e) => {
                // Nothing is left open: the device (which often takes one connection at a time) is
                // free again, and a later `connect` on the same link reconnects.
                link.disconnect().await;
                Err(e)
            }
        }
    }

    async fn secure(
        &self,
        counted: &Arc<CountingLink>,
        credentials: DeviceCredentials,
        listener: &dyn ProvisioningListener,
        start: Instant,
        record: Arc<std::sync::Mutex<SessionRecord>>,
    ) -> Result<ProvisioningSession, ProvisionError> {
        let link: Arc<dyn DeviceLink> = counted.clone();
        let link = &link;
        listener.on_event(ProvisioningEvent::new(Stage::Securing, None, start));
        tracing::debug!(link = %link.describe(), "connected; securing the session");
        let session = DeviceSession::establish(
            link.clone(),
            &credentials,
            &self.config.security,
            &mut rand_core::OsRng,
        )
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "could not open a secure session"))?;
        if !session
            .capabilities()
            .aws
            .as_ref()
            .is_some_and(|a| a.claim && a.status)
        {
            return Err(ProtocolError::Unsupported(
                crate::protocomm::UnsupportedReason::AwsExtension,
            )
            .into());
        }
        Ok(ProvisioningSession {
            provisioner: self.clone(),
            link: link.clone(),
            credentials,
            session: tokio::sync::Mutex::new(Arc::new(session)),
            claim_on_device: Arc::new(tokio::sync::Mutex::new(None)),
            cancel: tokio::sync::watch::Sender::new(RunCancel::default()),
            started: start,
            runtime: tokio::runtime::Handle::try_current().ok(),
            counted: counted.clone(),
            record,
        })
    }
}

/// A secure session with one device, ready to provision it.
pub struct ProvisioningSession {
    pub(super) provisioner: Provisioner,
    pub(super) link: Arc<dyn DeviceLink>,
    pub(super) credentials: DeviceCredentials,
    pub(super) session: tokio::sync::Mutex<Arc<DeviceSession>>,
    /// The claim the device holds (handed over, not yet used), if any.
    pub(super) claim_on_device: ClaimRecord,
    /// Whether a run is going, and whether it was cancelled (see [`ProvisioningSession::cancel`]).
    pub(super) cancel: tokio::sync::watch::Sender<RunCancel>,
    /// When `connect` began: the origin of every event's `elapsed` and of the timings.
    pub(super) started: Instant,
    /// The runtime `connect` ran on: the claim is wiped there when the session is dropped from a thread
    /// outside any runtime (a foreign app's garbage collector, for instance).
    pub(super) runtime: Option<tokio::runtime::Handle>,
    /// The link as `connect` wrapped it, with its counters (the report's link section).
    pub(super) counted: Arc<CountingLink>,
    /// What the support report says about the session and its runs.
    pub(super) record: Arc<std::sync::Mutex<SessionRecord>>,
}

impl std::fmt::Debug for ProvisioningSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningSession")
            .field("link", &self.link.describe())
            .finish_non_exhaustive()
    }
}

impl ProvisioningSession {
    /// What the device said about itself.
    pub async fn capabilities(&self) -> DeviceCapabilities {
        self.session.lock().await.capabilities().clone()
    }

    /// Networks the device can see, strongest first.
    pub async fn scan_wifi(&self) -> Result<Vec<WifiNetwork>, ProvisionError> {
        let session = self.session.lock().await.clone();
        Ok(session.scan_wifi().await?)
    }

    /// The support report of the session so far: the device, the link and its counters, every run
    /// with its stages and outcome (see [`SupportReport`]). Never holds a secret.
    pub async fn support_report(&self) -> SupportReport {
        let device = self.capabilities().await;
        let mut report = SupportReport::empty();
        report.device = Some((&device).into());
        report.link = Some(self.counted.report());
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        report.session_started_unix_ms = Some(record.started_unix_ms);
        report.connect_stages = record.connect_stages.clone();
        report.runs = record.runs.clone();
        report.outcome = record.runs.last().map(|r| r.outcome.clone());
        report
    }

    /// The link, for logs (`"ble PROV_1A2B mtu 185"`).
    pub fn link_description(&self) -> String {
        self.link.describe()
    }

    /// Wipes a claim a failed run left on the device, then closes the link.
    pub async fn close(&self) {
        let held = self.claim_on_device.lock().await.take();
        if held.is_some() {
            let session = self.session.lock().await.clone();
            self.claim_wipe(session).perform().await;
        }
        self.link.disconnect().await;
    }

    /// Cancels the run in progress ([`provision`](Self::provision) returns
    /// [`ProvisionError::Cancelled`] after wiping the claim from the device) and returns whether there
    /// was one. With no run in progress it does nothing: a later run is never affected. To stop a run
    /// about to start, drop the future that would run it, or call `cancel` again once the run has
    /// reported its first event.
    pub fn cancel(&self) -> bool {
        let mut cancelled = false;
        self.cancel.send_if_modified(|run| {
            cancelled = run.running && !run.cancelled;
            run.cancelled |= run.running;
            cancelled
        });
        cancelled
    }

    /// Brings the device onto AWS IoT with `wifi`. On [`ProvisionError::WifiAuthFailed`] or
    /// [`ProvisionError::WifiNetworkNotFound`] the session stays usable: call again with corrected
    /// settings (the claim on the device is reused if it still has the safety margin).
    pub async fn provision(
        &self,
        wifi: &WifiCredentials,
        options: &ProvisionOptions,
        listener: &dyn ProvisioningListener,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        // From here a `cancel` applies to this run (one before it does not: see `cancel`).
        let running = RunningMark::start(&self.cancel);
        let mut cancelled = self.cancel.subscribe();
        // Waits for the wipe of a run that was dropped, if one is still going.
        let holds_claim = self.claim_on_device.lock().await.is_some();
        let mut guard = ClaimWipeGuard {
            wipe: self.claim_wipe(self.session.lock().await.clone()),
            on_device: self.claim_on_device.clone(),
            runtime: self.runtime.clone(),
            // A retry after a Wi-Fi failure starts with the claim already on the device.
            armed: holds_claim,
        };
        let run_started = self.started.elapsed();
        let recorder = RecordingListener {
            inner: listener,
            stages: std::sync::Mutex::default(),
        };
        let mut progress = ProgressLog {
            start: self.started,
            listener: &recorder,
            timings: Vec::new(),
            claim: None,
            known: Default::default(),
        };
        let overall = self.provisioner.config.overall_timeout;
        let result = {
            let work = tokio::time::timeout(overall, async {
                let session = self.usable_session().await?;
                guard.wipe.session = session.clone();
                self.drive(&session, wifi, options, &mut progress, &mut guard)
                    .await
            });
            tokio::select! {
                // Cancellation first: a run cancelled before it started does no work at all.
                biased;
                _ = cancelled.wait_for(|run| run.cancelled) => Err(Some(ProvisionError::Cancelled)),
                r = work => r.map_err(|_| None).and_then(|r| r.map_err(Some)),
            }
        };
        // The run is over: a `cancel` from now on finds no run.
        drop(running);
        let result = result.map_err(|e| {
            e.unwrap_or(ProvisionError::OverallTimeout {
                stage: progress.last_stage(),
                limit: overall,
            })
        });
        let stages: Vec<StageReport> =
            std::mem::take(&mut *recorder.stages.lock().unwrap_or_else(|p| p.into_inner()));
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .runs
            .push(RunReport {
                started_ms: u64::try_from(run_started.as_millis()).unwrap_or(u64::MAX),
                stages,
                outcome: OutcomeReport::of(&result),
            });
        match &result {
            Ok(_) => {
                guard.armed = false;
                *self.claim_on_device.lock().await = None;
            }
            // The claim stays on the device for a retry with corrected Wi-Fi settings.
            Err(ProvisionError::WifiAuthFailed) | Err(ProvisionError::WifiNetworkNotFound) => {
                guard.armed = false
            }
            Err(_) => {
                // The guard stays armed through this wipe: if the app drops the run now (a cancel
                // followed by a cancelled coroutine), the wipe goes on in the background.
                let wiped = guard.wipe.perform().await;
                guard.armed = false;
                // A claim the device did not confirm wiping stays recorded: `close` (or dropping
                // the session) tries again, and a next run asks the device before reusing it.
                if wiped {
                    *self.claim_on_device.lock().await = None;
                }
            }
        }
        result
    }

    /// The secure session, opened again if a run dropped mid-exchange (or a failed one) broke it, so
    /// the app can simply call again with the same password.
    pub(super) async fn usable_session(&self) -> Result<Arc<DeviceSession>, ProvisionError> {
        let mut current = self.session.lock().await;
        if current.is_broken().await {
            tracing::info!("the secure session was broken; opening a new one");
            *current = Arc::new(
                reopen(
                    &self.link,
                    &self.credentials,
                    &self.provisioner.config.security,
                )
                .await?,
            );
        }
        Ok(current.clone())
    }

    /// One run, step by step: the device's Wi-Fi settled and the new settings set, the claim handed
    /// over, Wi-Fi applied, the device watched until the cloud confirms it.
    async fn drive(
        &self,
        session: &Arc<DeviceSession>,
        wifi: &WifiCredentials,
        options: &ProvisionOptions,
        progress: &mut ProgressLog<'_>,
        guard: &mut ClaimWipeGuard,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        // A provisioned device would register again: refuse before anything is sent (a device that
        // still holds this session's claim is mid-run, not provisioned).
        if guard.on_device.lock().await.is_none() {
            let status = session.cloud_status().await?;
            if let Some((thing_name, certificate_id)) =
                super::reconfigure::reported_identity(&status)
            {
                return Err(ProvisionError::AlreadyProvisioned {
                    thing_name,
                    certificate_id,
                });
            }
        }
        self.settle_wifi(session).await?;
        session.set_wifi_config(wifi).await?;
        let handover = self.hand_over(session, options, progress, guard).await?;
        match session.apply_wifi_config().await {
            Ok(()) => progress.emit(Stage::WifiApplied, None),
            // The request was sent, but its answer came too large or too late: the device may be
            // joining Wi-Fi with the claim already, so a wipe could come too late and only the cloud
            // can tell whether it used the claim.
            Err(ProtocolError::Link(
                link_error @ (LinkError::Timeout { .. } | LinkError::TooLarge { .. }),
            )) => {
                progress.emit(
                    Stage::WifiApplied,
                    Some("its answer was lost: the device may have applied it".to_owned()),
                );
                tracing::info!(
                    error = %link_error,
                    "the answer to ApplyConfig was lost; confirming through the cloud"
                );
                return self
                    .confirm_without_device(link_error, None, &handover, options, progress)
                    .await;
            }
            Err(e) => return Err(e.into()),
        }
        self.watch(session, &handover, options, progress).await
    }
}

/// Whether a run is going and whether it was cancelled.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RunCancel {
    pub(super) running: bool,
    pub(super) cancelled: bool,
}

/// Marks a run as going for as long as it lives, so that a run dropped half-way (a cancelled task)
/// does not leave the session looking busy.
struct RunningMark<'a>(&'a tokio::sync::watch::Sender<RunCancel>);

impl<'a> RunningMark<'a> {
    fn start(cancel: &'a tokio::sync::watch::Sender<RunCancel>) -> Self {
        cancel.send_replace(RunCancel {
            running: true,
            cancelled: false,
        });
        Self(cancel)
    }
}

impl Drop for RunningMark<'_> {
    fn drop(&mut self) {
        self.0.send_replace(RunCancel::default());
    }
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
