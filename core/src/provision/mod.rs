//! The orchestrator: what an installer app runs to bring one device onto AWS IoT.
//!
//! [`Provisioner`] (one per app, shared by many devices) opens a [`ProvisioningSession`] on a
//! [`DeviceLink`]; [`ProvisioningSession::provision`] then requests a claim *just in time* (after the
//! secure session is up and the network chosen), hands it and the Wi-Fi settings over, and watches the
//! device join Wi-Fi, get its certificate, register its thing and reconnect — every event carrying the
//! time left on the claim — until the cloud itself confirms the thing with the device's certificate.
//!
//! Deadlines: a claim with less than the safety margin left is never handed over (a fresh one is
//! fetched); a device that has not obtained its certificate when the claim expires fails with
//! [`ProvisionError::DeadlineMissed`] naming the stage it was in; per-stage and overall timeouts bound
//! the rest. Cancelling (dropping the future, or [`ProvisioningSession::cancel`]) wipes the claim from
//! the device.
//!
//! ```no_run
//! use std::sync::Arc;
//! use claimlink_core::{BackendClaimSource, TemplateName, TokenProvider};
//! use claimlink_core::{DeviceCredentials, DeviceLink, WifiCredentials};
//! use claimlink_core::{ProvisionError, ProvisionOptions, Provisioner, ProvisionerConfig, ProvisioningListener};
//!
//! async fn bring_online(
//!     tokens: Arc<dyn TokenProvider>,
//!     link: Arc<dyn DeviceLink>,
//!     listener: &dyn ProvisioningListener,
//! ) -> Result<(), ProvisionError> {
//!     let claims = Arc::new(BackendClaimSource::builder("https://api.example.com/", tokens).build()?);
//!     let config = ProvisionerConfig::new(TemplateName::new("my-fleet-template")?, "a1b2c3-ats.iot.eu-west-1.amazonaws.com");
//!     let provisioner = Provisioner::new(claims, config);
//!     let session = provisioner.connect(link, DeviceCredentials::password("from-the-QR-code"), listener).await?;
//!     let networks = session.scan_wifi().await?;
//!     let ssid = networks.first().map(|n| n.ssid.clone()).unwrap_or_default();
//!     let wifi = WifiCredentials::new(ssid, "the passphrase".into())?;
//!     let device = session.provision(&wifi, &ProvisionOptions::default(), listener).await?;
//!     println!("{} is online with certificate {:?}", device.thing_name, device.certificate_id);
//!     Ok(())
//! }
//! ```

mod bundle;
mod events;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use bundle::claim_bundle;
pub use events::{NoListener, ProvisioningEvent, ProvisioningListener, Stage};

use crate::claim::{
    Claim, ClaimError, ClaimRequest, ClaimSource, TemplateName, ThingDirectory, ThingName,
};
use crate::protocomm::ops::{CloudStatus, WifiCredentials, WifiNetwork};
use crate::protocomm::proto::{CloudFailureKind, CloudStage};
use crate::protocomm::{
    DeviceCapabilities, DeviceCredentials, DeviceSession, ProtocolError, SecurityPolicy,
};
use crate::transport::{DeviceLink, LinkError};

/// How a [`Provisioner`] works.
#[derive(Clone, Debug)]
pub struct ProvisionerConfig {
    /// The fleet-provisioning template claims are requested for.
    pub template: TemplateName,
    /// The AWS IoT data endpoint devices connect to (`xxxx-ats.iot.<region>.amazonaws.com[:port]`).
    pub iot_endpoint: String,
    /// Device security the app accepts.
    pub security: SecurityPolicy,
    /// Never hand over a claim with less than this left (default 60 s).
    pub safety_margin: Duration,
    /// How often the device's status is read (≤ 1 s; default 500 ms).
    pub poll_interval: Duration,
    /// Time allowed from ApplyConfig to a Wi-Fi outcome (default 45 s).
    pub wifi_timeout: Duration,
    /// Time allowed for the cloud stages after the certificate is issued, and for the cloud's
    /// confirmation (default 60 s).
    pub cloud_timeout: Duration,
    /// Time allowed for a whole `provision` call (default 7 minutes: a claim's five, plus the cloud).
    pub overall_timeout: Duration,
}

impl ProvisionerConfig {
    /// Defaults for `template` and `iot_endpoint`.
    pub fn new(template: TemplateName, iot_endpoint: impl Into<String>) -> Self {
        Self {
            template,
            iot_endpoint: iot_endpoint.into(),
            security: SecurityPolicy::default(),
            safety_margin: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            wifi_timeout: Duration::from_secs(45),
            cloud_timeout: Duration::from_secs(60),
            overall_timeout: Duration::from_secs(420),
        }
    }
}

/// Per-run choices.
#[derive(Clone, Debug, Default)]
pub struct ProvisionOptions {
    /// Parameters for the template's `RegisterThing`.
    pub template_parameters: BTreeMap<String, String>,
    /// The thing name the template will produce, when the app knows it: lets the SDK confirm through
    /// the cloud even if the device's BLE goes away before it reported the name.
    pub expected_thing_name: Option<ThingName>,
    /// Passed to the backend as `deviceHint`.
    pub device_hint: Option<String>,
}

/// A device brought onto AWS IoT, as the cloud confirmed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedDevice {
    /// The thing.
    pub thing_name: String,
    /// Its permanent certificate (confirmed ACTIVE and attached), when known.
    pub certificate_id: Option<String>,
    /// Time left on the claim when it was handed over.
    pub claim_time_left_at_handover: Duration,
    /// When each stage was reached, from the start of `connect`.
    pub timings: Vec<(Stage, Duration)>,
}

/// Why provisioning failed. Each variant says what the app can do about it.
#[derive(Debug, thiserror::Error)]
// Exhaustive on purpose: the FFI crate maps every variant to an app action, and a new variant
// must fail its build until it is mapped.
pub enum ProvisionError {
    /// The device protocol failed (wrong password, tampering, unsupported security, link loss…).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// No usable claim could be obtained.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The Wi-Fi passphrase was refused: ask for it again and call `provision` again on the same session.
    #[error("the Wi-Fi network refused the passphrase")]
    WifiAuthFailed,
    /// The device cannot see the network: rescan or pick another.
    #[error("the device cannot find the Wi-Fi network")]
    WifiNetworkNotFound,
    /// The device did not get onto Wi-Fi in time (DHCP, weak signal).
    #[error("the device did not connect to Wi-Fi in time")]
    WifiTimeout,
    /// The claim expired before the device obtained its certificate.
    #[error("the claim expired while the device was at stage {stage:?}")]
    DeadlineMissed {
        /// Where the device was.
        stage: Stage,
    },
    /// A stage took longer than allowed.
    #[error("stage {stage:?} timed out")]
    StageTimeout {
        /// The stage.
        stage: Stage,
    },
    /// AWS IoT refused the device (template, hook, certificate…), in AWS's words. When the failure came
    /// after registration (the credentials provider refused the new certificate), the thing and its
    /// ACTIVE certificate exist and are named here, so the app can clean up or retry.
    #[error("AWS IoT refused the device ({kind:?}): {status_code} {error_code}: {error_message}{}", issued_note(thing_name.as_deref(), certificate_id.as_deref()))]
    CloudRejected {
        /// Which step failed.
        kind: CloudFailureKind,
        /// AWS's statusCode.
        status_code: u32,
        /// AWS's errorCode.
        error_code: String,
        /// AWS's errorMessage.
        error_message: String,
        /// The thing, if the device had registered it before failing.
        thing_name: Option<String>,
        /// Its certificate, if the device had one before failing.
        certificate_id: Option<String>,
    },
    /// The cloud does not show this device's certificate ACTIVE on the thing: the device reported
    /// success the cloud does not show, or it went quiet before naming its certificate and no new one
    /// appeared (a certificate the thing already had never counts).
    #[error("the cloud does not confirm thing {thing_name:?}")]
    NotConfirmed {
        /// The thing the device named.
        thing_name: String,
    },
    /// The run was cancelled; the claim was wiped from the device when the link allowed it.
    #[error("cancelled")]
    Cancelled,
}

/// What a [`ProvisionError::CloudRejected`] adds about what AWS had already created.
fn issued_note(thing: Option<&str>, certificate: Option<&str>) -> String {
    match (thing, certificate) {
        (Some(t), Some(c)) => format!(" (thing {t} exists with certificate {c})"),
        (None, Some(c)) => format!(" (AWS had issued certificate {c})"),
        (Some(t), None) => format!(" (thing {t} exists)"),
        (None, None) => String::new(),
    }
}

/// Runs provisioning sessions. Cheap to clone; one per app.
#[derive(Clone)]
pub struct Provisioner {
    config: Arc<ProvisionerConfig>,
    claims: Arc<dyn ClaimSource>,
    things: Arc<dyn ThingDirectory>,
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
        listener.on_event(ProvisioningEvent::new(Stage::Connecting, None, start));
        link.connect().await.map_err(ProtocolError::from)?;
        match self.secure(&link, credentials, listener, start).await {
            Ok(session) => Ok(session),
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
        link: &Arc<dyn DeviceLink>,
        credentials: DeviceCredentials,
        listener: &dyn ProvisioningListener,
        start: Instant,
    ) -> Result<ProvisioningSession, ProvisionError> {
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
            cancel: tokio::sync::watch::Sender::new(false),
            started: start,
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }
}

/// A secure session with one device, ready to provision it.
pub struct ProvisioningSession {
    provisioner: Provisioner,
    link: Arc<dyn DeviceLink>,
    credentials: DeviceCredentials,
    session: tokio::sync::Mutex<Arc<DeviceSession>>,
    /// The claim the device holds (handed over, not yet used), if any.
    claim_on_device: Arc<tokio::sync::Mutex<Option<Claim>>>,
    cancel: tokio::sync::watch::Sender<bool>,
    /// When `connect` began: the origin of every event's `elapsed` and of the timings.
    started: Instant,
    /// The runtime `connect` ran on: the claim is wiped there when the session is dropped from a thread
    /// outside any runtime (a foreign app's garbage collector, for instance).
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for ProvisioningSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningSession")
            .field("link", &self.link.describe())
            .finish_non_exhaustive()
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
struct AbortOnDrop {
    session: Arc<DeviceSession>,
    link: Arc<dyn DeviceLink>,
    credentials: DeviceCredentials,
    policy: SecurityPolicy,
    /// The session's record of the claim on the device: emptied with the wipe, so a later run on the
    /// session asks for a fresh claim instead of reusing the wiped one.
    on_device: Arc<tokio::sync::Mutex<Option<Claim>>>,
    /// Used when the run is dropped outside any runtime.
    runtime: Option<tokio::runtime::Handle>,
    /// The device may hold a claim (all of it, or part of one).
    armed: bool,
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
async fn reopen(
    link: &Arc<dyn DeviceLink>,
    credentials: &DeviceCredentials,
    policy: &SecurityPolicy,
) -> Result<DeviceSession, ProtocolError> {
    link.connect().await?;
    DeviceSession::establish(link.clone(), credentials, policy, &mut rand_core::OsRng).await
}

/// How long reading the expected thing before handover may take.
const BASELINE_TIMEOUT: Duration = Duration::from_secs(5);

/// The claim as handed over, and what the cloud showed before the device could use it.
struct Handover<'c> {
    claim: &'c Claim,
    /// Time left on the claim at handover.
    time_left: Duration,
    baseline: Option<Baseline>,
}

/// The expected thing's ACTIVE certificates (lowercase ids) before handover; empty if it did not exist.
struct Baseline {
    thing: ThingName,
    active: std::collections::BTreeSet<String>,
}

impl Baseline {
    /// `None` while the thing has no ACTIVE certificate it lacked before handover; then the new one
    /// (the device's), or `Some(None)` when several appeared and cannot be told apart.
    fn new_certificate(&self, now: &crate::claim::ThingDescription) -> Option<Option<String>> {
        let new: Vec<&str> = now
            .active_certificate_ids()
            .filter(|id| !self.active.contains(&id.to_ascii_lowercase()))
            .collect();
        match new.as_slice() {
            [] => None,
            [one] => Some(Some((*one).to_owned())),
            _ => Some(None),
        }
    }
}

struct Run<'a> {
    start: Instant,
    listener: &'a dyn ProvisioningListener,
    timings: Vec<(Stage, Duration)>,
    claim: Option<crate::time::Deadline>,
}

impl Run<'_> {
    fn emit(&mut self, stage: Stage, detail: Option<String>) {
        // Each stage is reported once, except those a run can go through again: a Wi-Fi failure, and
        // a second claim request when the first claim was too close to expiry.
        let repeatable = matches!(stage, Stage::WifiFailed | Stage::ClaimRequested);
        if self.timings.iter().any(|(s, _)| *s == stage) && !repeatable {
            return;
        }
        self.timings.push((stage, self.start.elapsed()));
        let mut event =
            ProvisioningEvent::new(stage, self.claim.map(|d| d.remaining()), self.start);
        event.detail = detail;
        tracing::info!(stage = ?stage, claim_time_left = ?event.claim_time_left, elapsed = ?event.elapsed, detail = event.detail.as_deref().unwrap_or(""), "stage reached");
        self.listener.on_event(event);
    }

    fn last_stage(&self) -> Stage {
        self.timings
            .last()
            .map_or(Stage::ClaimRequested, |(s, _)| *s)
    }
}

/// The device-side stages, in the order the device goes through them.
const CLOUD_STAGES: [Stage; 6] = [
    Stage::WifiConnecting,
    Stage::WifiConnected,
    Stage::MqttConnectedWithClaim,
    Stage::CertificateIssued,
    Stage::ThingRegistered,
    Stage::ReconnectedWithPermanent,
];

fn stage_of(cloud: CloudStage) -> Option<Stage> {
    Some(match cloud {
        CloudStage::WifiConnecting => Stage::WifiConnecting,
        CloudStage::WifiConnected | CloudStage::TimeSynced => Stage::WifiConnected,
        CloudStage::MqttConnectedWithClaim => Stage::MqttConnectedWithClaim,
        CloudStage::CertificateIssued => Stage::CertificateIssued,
        CloudStage::ThingRegistered => Stage::ThingRegistered,
        CloudStage::ReconnectedWithPermanent | CloudStage::Done => Stage::ReconnectedWithPermanent,
        _ => return None,
    })
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

    /// The link, for logs (`"ble PROV_1A2B mtu 185"`).
    pub fn link_description(&self) -> String {
        self.link.describe()
    }

    /// Wipes a claim a failed run left on the device, then closes the link.
    pub async fn close(&self) {
        let held = self.claim_on_device.lock().await.take();
        if held.is_some() {
            let session = self.session.lock().await.clone();
            self.wipe_claim(&session).await;
        }
        self.link.disconnect().await;
    }

    /// Cancels the running [`provision`](Self::provision): it returns [`ProvisionError::Cancelled`]
    /// after wiping the claim from the device. When no run is going, the next one on this session is
    /// cancelled as soon as it starts: a cancel that races with the start of a run is never lost.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
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
        // Not reset here: a `cancel` that came before this run started still applies (see `cancel`).
        let mut cancelled = self.cancel.subscribe();
        // Waits for the wipe of a run that was dropped, if one is still going.
        let holds_claim = self.claim_on_device.lock().await.is_some();
        let mut guard = AbortOnDrop {
            session: self.session.lock().await.clone(),
            link: self.link.clone(),
            credentials: self.credentials.clone(),
            policy: self.provisioner.config.security.clone(),
            on_device: self.claim_on_device.clone(),
            runtime: self.runtime.clone(),
            // A retry after a Wi-Fi failure starts with the claim already on the device.
            armed: holds_claim,
        };
        let mut run = Run {
            start: self.started,
            listener,
            timings: Vec::new(),
            claim: None,
        };
        let overall = self.provisioner.config.overall_timeout;
        let result = {
            let work = tokio::time::timeout(overall, async {
                let session = self.usable_session().await?;
                guard.session = session.clone();
                self.run(&session, wifi, options, &mut run, &mut guard)
                    .await
            });
            tokio::select! {
                // Cancellation first: a run cancelled before it started does no work at all.
                biased;
                _ = cancelled.wait_for(|c| *c) => Err(Some(ProvisionError::Cancelled)),
                r = work => r.map_err(|_| None).and_then(|r| r.map_err(Some)),
            }
        };
        // The run is over: a later `cancel` is for the next one.
        self.cancel.send_replace(false);
        let result = result.map_err(|e| {
            e.unwrap_or(ProvisionError::StageTimeout {
                stage: run.last_stage(),
            })
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
                let session = guard.session.clone();
                let wiped = self.wipe_claim(&session).await;
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
    async fn usable_session(&self) -> Result<Arc<DeviceSession>, ProvisionError> {
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

    /// Brings the device's Wi-Fi back to "nothing applied" before new settings: after a Wi-Fi
    /// failure (Reset), after a run dropped while the device was still joining (wait for the attempt
    /// to end, as long as a Wi-Fi join may take) or once it had joined (Reprov).
    async fn settle_wifi(&self, session: &DeviceSession) -> Result<(), ProvisionError> {
        use crate::protocomm::ops::WifiState;
        let config = &self.provisioner.config;
        let since = Instant::now();
        loop {
            match session.wifi_status().await? {
                WifiState::Disconnected => return Ok(()),
                WifiState::Connecting if since.elapsed() < config.wifi_timeout => {
                    tokio::time::sleep(config.poll_interval).await
                }
                WifiState::Connecting => return Err(ProvisionError::WifiTimeout),
                WifiState::Connected { .. } => return Ok(session.reprovision().await?),
                WifiState::Failed(_) | WifiState::AttemptFailed { .. } => {
                    return Ok(session.reset_wifi().await?)
                }
            }
        }
    }

    async fn wipe_claim(&self, session: &DeviceSession) -> bool {
        let policy = &self.provisioner.config.security;
        wipe_claim(session, &self.link, &self.credentials, policy).await
    }

    async fn fresh_claim(
        &self,
        options: &ProvisionOptions,
        run: &mut Run<'_>,
    ) -> Result<Claim, ProvisionError> {
        let config = &self.provisioner.config;
        let request = ClaimRequest {
            template: config.template.clone(),
            device_hint: options.device_hint.clone(),
        };
        let mut left = Duration::ZERO;
        for attempt in 1..=2 {
            run.emit(
                Stage::ClaimRequested,
                (attempt > 1).then(|| "previous claim too close to expiry".to_owned()),
            );
            let claim = self.provisioner.claims.request_claim(&request).await?;
            run.claim = Some(*claim.deadline());
            left = claim.deadline().remaining();
            if left >= config.safety_margin {
                run.emit(Stage::ClaimIssued, None);
                return Ok(claim);
            }
            tracing::warn!(remaining = ?left, "claim below the safety margin; asking for another");
        }
        // Two fresh claims in a row too short: not a missed deadline but a service (or margin) that
        // cannot work.
        Err(ClaimError::TooShortLived {
            left_secs: left.as_secs(),
            margin_secs: config.safety_margin.as_secs(),
        }
        .into())
    }

    async fn run(
        &self,
        session: &Arc<DeviceSession>,
        wifi: &WifiCredentials,
        options: &ProvisionOptions,
        run: &mut Run<'_>,
        guard: &mut AbortOnDrop,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        let config = self.provisioner.config.clone();
        self.settle_wifi(session).await?;
        session.set_wifi_config(wifi).await?;
        // Just in time: the claim is requested only now, with the session up and the network chosen.
        let mut on_device = self.claim_on_device.lock().await;
        let mut reusable = on_device
            .as_ref()
            .is_some_and(|c| c.deadline().remaining() >= config.safety_margin);
        // The device keeps its claim through a Wi-Fi reset, but may have dropped it on its own (a
        // restart of its provisioning task): ask before reusing it.
        if reusable && session.cloud_status().await?.stage != CloudStage::ClaimReceived {
            tracing::info!("the device no longer holds the claim; asking for a fresh one");
            *on_device = None;
            reusable = false;
        }
        let (claim, baseline) = if reusable {
            let claim = on_device.clone().ok_or(ProvisionError::DeadlineMissed {
                stage: Stage::ClaimIssued,
            })?;
            run.claim = Some(*claim.deadline());
            run.emit(
                Stage::ClaimIssued,
                Some("reusing the claim already on the device".into()),
            );
            (claim, self.baseline(options).await)
        } else {
            let claim = self.fresh_claim(options, run).await?;
            guard.armed = true;
            // The device cannot use the claim before its Wi-Fi settings are applied, so what the
            // thing has now is what it had before this run: look while the claim travels.
            // A failed transfer ends the run at once, without waiting for the read.
            let bundle = claim_bundle(&claim, &config.iot_endpoint, &options.template_parameters);
            let (_, baseline) = tokio::try_join!(session.send_claim(&bundle), async {
                Ok(self.baseline(options).await)
            })?;
            *on_device = Some(claim.clone());
            (claim, baseline)
        };
        drop(on_device);
        guard.armed = true;
        let handover = Handover {
            claim: &claim,
            time_left: claim.deadline().remaining(),
            baseline,
        };
        run.emit(Stage::ClaimSent, None);
        session.apply_wifi_config().await?;
        run.emit(Stage::WifiApplied, None);
        self.watch(session, &handover, options, run).await
    }

    /// The ACTIVE certificates the expected thing has before the device could register: without
    /// them, a thing that already existed (a device provisioned before, or a name reused) would
    /// confirm a run whose device never got a certificate. `None` when there is no expected name or
    /// the cloud could not be asked (a success then needs the device to name its certificate).
    async fn baseline(&self, options: &ProvisionOptions) -> Option<Baseline> {
        let thing = options.expected_thing_name.clone()?;
        // Bounded: a slow answer must not hold up the handover it runs alongside.
        let read = tokio::time::timeout(
            BASELINE_TIMEOUT,
            self.provisioner.things.describe_thing(&thing),
        );
        match read.await.unwrap_or_else(|_| {
            Err(ClaimError::Network {
                message: "no answer in time".into(),
                timed_out: true,
            })
        }) {
            Ok(description) => Some(Baseline {
                active: description
                    .iter()
                    .flat_map(|d| d.active_certificate_ids())
                    .map(str::to_ascii_lowercase)
                    .collect(),
                thing,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the thing before handover; success will need the device's certificate id");
                None
            }
        }
    }

    /// Polls `aws-status` until the device is done, failed, or out of time; then confirms with the cloud.
    async fn watch(
        &self,
        session: &Arc<DeviceSession>,
        handover: &Handover<'_>,
        options: &ProvisionOptions,
        run: &mut Run<'_>,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        let config = self.provisioner.config.clone();
        let claim = handover.claim;
        let applied = Instant::now();
        let mut certificate_at: Option<Instant> = None;
        let mut last: Option<CloudStatus> = None;
        loop {
            let status = match session.cloud_status().await {
                Ok(s) => s,
                // Devices stop BLE soon after they get an address — often before a status read saw
                // the address: once Wi-Fi was applied, go on through the cloud.
                Err(ProtocolError::Link(LinkError::Disconnected))
                    if run.last_stage() >= Stage::WifiApplied =>
                {
                    tracing::info!(
                        "the device went away after joining Wi-Fi; confirming through the cloud"
                    );
                    let thing = last
                        .as_ref()
                        .and_then(|s| s.thing_name.clone())
                        .or_else(|| {
                            options
                                .expected_thing_name
                                .as_ref()
                                .map(|t| t.as_str().to_owned())
                        });
                    let Some(thing) = thing else {
                        return Err(ProtocolError::Link(LinkError::Disconnected).into());
                    };
                    let certificate = last.as_ref().and_then(|s| s.certificate_id.clone());
                    return self.confirm(&thing, certificate, handover, run).await;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(stage) = stage_of(status.stage) {
                // The device's stages are sequential: a stage seen implies the ones before it, even
                // when they came and went between two status reads.
                for passed in CLOUD_STAGES.iter().copied().take_while(|s| *s < stage) {
                    if !run.timings.iter().any(|(s, _)| *s == passed) {
                        let detail = if passed == Stage::WifiConnected {
                            status.ip.map(|ip| format!("ip {ip}"))
                        } else {
                            Some("reached between two status reads".to_owned())
                        };
                        run.emit(passed, detail);
                    }
                }
                run.emit(
                    stage,
                    status
                        .ip
                        .map(|ip| format!("ip {ip}"))
                        .filter(|_| stage == Stage::WifiConnected),
                );
                if stage >= Stage::CertificateIssued && certificate_at.is_none() {
                    certificate_at = Some(Instant::now());
                }
            }
            match status.stage {
                CloudStage::Done => {
                    let thing =
                        status
                            .thing_name
                            .clone()
                            .ok_or_else(|| ProvisionError::NotConfirmed {
                                thing_name: String::new(),
                            })?;
                    return self
                        .confirm(&thing, status.certificate_id.clone(), handover, run)
                        .await;
                }
                CloudStage::Failed => return Err(self.failure(status, run)),
                _ => {}
            }
            // The watchdog.
            let stage = run.last_stage();
            if certificate_at.is_none() && claim.deadline().has_passed() {
                return Err(ProvisionError::DeadlineMissed { stage });
            }
            if stage < Stage::WifiConnected && applied.elapsed() > config.wifi_timeout {
                return Err(ProvisionError::WifiTimeout);
            }
            if certificate_at.is_some_and(|t| t.elapsed() > config.cloud_timeout) {
                return Err(ProvisionError::StageTimeout { stage });
            }
            last = Some(status);
            let next = config
                .poll_interval
                .min(claim.deadline().remaining().max(Duration::from_millis(10)));
            tokio::time::sleep(next).await;
        }
    }

    fn failure(&self, status: CloudStatus, run: &mut Run<'_>) -> ProvisionError {
        let Some(f) = status.failure else {
            return ProvisionError::StageTimeout {
                stage: run.last_stage(),
            };
        };
        match f.kind {
            CloudFailureKind::WifiAuth => {
                run.emit(Stage::WifiFailed, Some("wrong passphrase".into()));
                ProvisionError::WifiAuthFailed
            }
            CloudFailureKind::WifiNotFound => {
                run.emit(Stage::WifiFailed, Some("network not found".into()));
                ProvisionError::WifiNetworkNotFound
            }
            CloudFailureKind::DhcpTimeout => ProvisionError::WifiTimeout,
            CloudFailureKind::ClaimExpired => ProvisionError::DeadlineMissed {
                stage: run.last_stage(),
            },
            kind => ProvisionError::CloudRejected {
                kind,
                status_code: f.status_code,
                error_code: f.error_code,
                error_message: f.error_message,
                thing_name: status.thing_name,
                certificate_id: status.certificate_id,
            },
        }
    }

    /// Success only when the cloud shows the thing with the device's certificate ACTIVE and attached.
    /// When the device could not name its certificate, only a certificate that became ACTIVE on the
    /// thing during this run counts (see [`baseline`](Self::baseline)).
    async fn confirm(
        &self,
        thing: &str,
        certificate_id: Option<String>,
        handover: &Handover<'_>,
        run: &mut Run<'_>,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        let config = self.provisioner.config.clone();
        let not_confirmed = || ProvisionError::NotConfirmed {
            thing_name: thing.to_owned(),
        };
        let name = ThingName::new(thing).map_err(|_| not_confirmed())?;
        let baseline = handover.baseline.as_ref().filter(|b| b.thing == name);
        if certificate_id.is_none() && baseline.is_none() {
            tracing::warn!(thing, "the device named no certificate and the thing was not read before handover: cannot tell a new certificate from an old one");
            return Err(not_confirmed());
        }
        let until = Instant::now() + config.cloud_timeout;
        loop {
            if let Some(description) = self.provisioner.things.describe_thing(&name).await? {
                let confirmed = match certificate_id.as_deref() {
                    Some(id) => description
                        .has_active_certificate(id)
                        .then(|| Some(id.to_owned())),
                    None => baseline.and_then(|before| before.new_certificate(&description)),
                };
                if let Some(certificate_id) = confirmed {
                    run.emit(Stage::ConfirmedByCloud, None);
                    return Ok(ProvisionedDevice {
                        thing_name: thing.to_owned(),
                        certificate_id,
                        claim_time_left_at_handover: handover.time_left,
                        timings: run.timings.clone(),
                    });
                }
            }
            if Instant::now() >= until {
                return Err(ProvisionError::NotConfirmed {
                    thing_name: thing.to_owned(),
                });
            }
            tokio::time::sleep(config.poll_interval).await;
        }
    }
}
