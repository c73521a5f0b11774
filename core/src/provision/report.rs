//! The support report: what a maintainer needs about one session, as JSON an app attaches to a support
//! ticket — the SDK version, the device's capabilities, the link and its counters (exchanges, bytes,
//! failures, reconnections), every run's stages with their times and the claim's time left, and the
//! outcome: the device's thing and certificate, or the failure's stable code ([`FailureCode`]), its
//! sentence and source chain, and the cloud's own words (statusCode, errorCode, errorMessage).
//!
//! It never holds a secret: it is built from what the SDK already logs (stage names, error sentences,
//! the link's description, counts), never from the claim, the Wi-Fi settings or the device's password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Serialize;

use crate::protocomm::DeviceCapabilities;
use crate::transport::{DeviceLink, LinkError};

use super::codes::FailureCode;
use super::{ProvisionError, ProvisionedDevice, ProvisioningEvent, ProvisioningListener};

/// The version of the report's layout (a field is only ever added within a version).
pub const SUPPORT_REPORT_FORMAT: u32 = 1;

/// A support report. Serialize it with [`SupportReport::to_json`].
#[derive(Clone, Debug, Serialize)]
pub struct SupportReport {
    /// [`SUPPORT_REPORT_FORMAT`].
    pub format: u32,
    /// The version of claimlink that made it.
    pub sdk_version: String,
    /// When it was made (milliseconds since the Unix epoch, from the phone's clock).
    pub created_unix_ms: u64,
    /// When the session's `connect` began (same clock), when there is a session.
    pub session_started_unix_ms: Option<u64>,
    /// The link to the device.
    pub link: Option<LinkReport>,
    /// The stages of `connect` (connecting, securing).
    pub connect_stages: Vec<StageReport>,
    /// What the device said about itself.
    pub device: Option<DeviceReport>,
    /// Each `provision` call on the session, in order.
    pub runs: Vec<RunReport>,
    /// The last outcome: the last run's, or the failure the report was made for.
    pub outcome: Option<OutcomeReport>,
}

/// The link to the device and what went over it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkReport {
    /// Its description (`"ble PROV_1A2B mtu 185"`, `"http 192.168.4.1:80"`).
    pub description: String,
    /// The negotiated ATT MTU (BLE).
    pub mtu: Option<u16>,
    /// The largest message it carries.
    pub max_message_bytes: usize,
    /// Whether the phone reaches the device through the device's own access point (SoftAP).
    pub over_device_access_point: bool,
    /// Connections made (the first, then each reconnection).
    pub connects: u64,
    /// Request/response exchanges (handshake and encrypted).
    pub exchanges: u64,
    /// Exchanges that failed (timeouts, disconnects, refusals).
    pub failed_exchanges: u64,
    /// Bytes sent to the device.
    pub bytes_sent: u64,
    /// Bytes received from it.
    pub bytes_received: u64,
}

/// The device's `proto-ver`, as parsed.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    /// Its provisioning protocol version.
    pub version: String,
    /// The security scheme it requires (`"Sec2"`).
    pub security: String,
    /// The Sec2 patch level.
    pub security_patch: u32,
    /// Its capability strings.
    pub capabilities: Vec<String>,
    /// claimlink's extension version (`"1.0"`), if it has it.
    pub aws_version: Option<String>,
    /// The extension's capability strings.
    pub aws_capabilities: Vec<String>,
}

impl From<&DeviceCapabilities> for DeviceReport {
    fn from(c: &DeviceCapabilities) -> Self {
        Self {
            version: c.version.clone(),
            security: format!("{:?}", c.security),
            security_patch: c.security_patch,
            capabilities: c.capabilities.clone(),
            aws_version: c.aws.as_ref().map(|a| a.version.to_string()),
            aws_capabilities: c
                .aws
                .as_ref()
                .map(|a| a.capabilities.clone())
                .unwrap_or_default(),
        }
    }
}

/// One `provision` call.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Milliseconds from `connect` to the start of the run.
    pub started_ms: u64,
    /// Each stage as reported to the app.
    pub stages: Vec<StageReport>,
    /// How it ended.
    pub outcome: OutcomeReport,
}

/// One stage reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageReport {
    /// The stage (`"ClaimIssued"`).
    pub stage: String,
    /// Milliseconds from `connect`.
    pub elapsed_ms: u64,
    /// Milliseconds left on the claim then, once there is one.
    pub claim_time_left_ms: Option<u64>,
    /// The event's detail, if any.
    pub detail: Option<String>,
}

impl From<&ProvisioningEvent> for StageReport {
    fn from(e: &ProvisioningEvent) -> Self {
        Self {
            stage: format!("{:?}", e.stage),
            elapsed_ms: millis(e.elapsed),
            claim_time_left_ms: e.claim_time_left.map(millis),
            detail: e.detail.clone(),
        }
    }
}

/// How a run (or a call) ended.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OutcomeReport {
    /// The device is online, confirmed by the cloud.
    Success {
        /// Its thing.
        thing_name: String,
        /// Its certificate, when known.
        certificate_id: Option<String>,
    },
    /// It failed.
    Failure(FailureReport),
}

/// A failure, for maintainers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FailureReport {
    /// Its stable code (`"CL-104"`).
    pub code: String,
    /// The English message of the code's table entry.
    pub message: String,
    /// The failure's own sentence.
    pub error: String,
    /// The sentences of its causes, outermost first (the sentence itself excluded).
    pub chain: Vec<String>,
    /// What AWS IoT said, when it refused the device.
    pub cloud: Option<CloudWords>,
}

/// AWS IoT's own words about a refusal.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CloudWords {
    /// The step that failed (`"RegisterThingRejected"`).
    pub step: String,
    /// statusCode.
    pub status_code: u32,
    /// errorCode.
    pub error_code: String,
    /// errorMessage.
    pub error_message: String,
    /// The thing, if it was registered.
    pub thing_name: Option<String>,
    /// The certificate, if one was issued.
    pub certificate_id: Option<String>,
}

impl FailureReport {
    /// The report of `error`.
    pub fn from_error(error: &ProvisionError) -> Self {
        let code = error.code();
        let text = error.to_string();
        let mut chain = Vec::new();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let said = cause.to_string();
            // A transparent wrapper says its cause's sentence again: keep each once.
            if said != text && chain.last() != Some(&said) {
                chain.push(said);
            }
            source = cause.source();
        }
        let cloud = match error {
            ProvisionError::CloudRejected {
                kind,
                status_code,
                error_code,
                error_message,
                thing_name,
                certificate_id,
            } => Some(CloudWords {
                step: format!("{kind:?}"),
                status_code: *status_code,
                error_code: error_code.clone(),
                error_message: error_message.clone(),
                thing_name: thing_name.clone(),
                certificate_id: certificate_id.clone(),
            }),
            _ => None,
        };
        Self {
            code: code.code().to_owned(),
            message: code.message().to_owned(),
            error: text,
            chain,
            cloud,
        }
    }

    /// A report with `code` and `error` (the sentence), for failures that reach the app another way.
    pub fn new(code: FailureCode, error: String) -> Self {
        Self {
            code: code.code().to_owned(),
            message: code.message().to_owned(),
            error,
            chain: Vec::new(),
            cloud: None,
        }
    }
}

impl OutcomeReport {
    /// The outcome of a run.
    pub fn of(result: &Result<ProvisionedDevice, ProvisionError>) -> Self {
        match result {
            Ok(device) => Self::Success {
                thing_name: device.thing_name.clone(),
                certificate_id: device.certificate_id.clone(),
            },
            Err(e) => Self::Failure(FailureReport::from_error(e)),
        }
    }
}

impl SupportReport {
    /// A report with no session: for a failure before one was open (`connect` failed), with the link
    /// it was tried on when known.
    pub fn without_session(failure: FailureReport, link: Option<&dyn DeviceLink>) -> Self {
        Self {
            link: link.map(|l| LinkReport {
                description: l.describe(),
                mtu: l.mtu(),
                max_message_bytes: l.max_message_bytes(),
                over_device_access_point: l.over_device_access_point(),
                ..LinkReport::default()
            }),
            outcome: Some(OutcomeReport::Failure(failure)),
            ..Self::empty()
        }
    }

    pub(super) fn empty() -> Self {
        Self {
            format: SUPPORT_REPORT_FORMAT,
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_unix_ms: unix_ms(SystemTime::now()),
            session_started_unix_ms: None,
            link: None,
            connect_stages: Vec::new(),
            device: None,
            runs: Vec::new(),
            outcome: None,
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs (strings, numbers, options) cannot fail; the fallback keeps
        // the report's one promise (JSON) should that ever change.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| serde_json::json!({ "format": SUPPORT_REPORT_FORMAT, "unserializable": e.to_string() }).to_string())
    }
}

/// What a session keeps for its support report.
#[derive(Debug)]
pub(super) struct SessionRecord {
    pub(super) started_unix_ms: u64,
    pub(super) connect_stages: Vec<StageReport>,
    pub(super) runs: Vec<RunReport>,
}

impl SessionRecord {
    pub(super) fn new() -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            started_unix_ms: unix_ms(SystemTime::now()),
            connect_stages: Vec::new(),
            runs: Vec::new(),
        }))
    }
}

/// Forwards a run's events to the app's listener and keeps them for the report.
pub(super) struct RecordingListener<'a> {
    pub(super) inner: &'a dyn ProvisioningListener,
    pub(super) stages: Mutex<Vec<StageReport>>,
}

impl ProvisioningListener for RecordingListener<'_> {
    fn on_event(&self, event: ProvisioningEvent) {
        self.stages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(StageReport::from(&event));
        self.inner.on_event(event);
    }
}

/// The counters of a [`CountingLink`].
#[derive(Debug, Default)]
pub(super) struct LinkCounters {
    connects: AtomicU64,
    exchanges: AtomicU64,
    failed_exchanges: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A link that counts what goes over it, for the report. Everything else is the app's link's.
#[derive(Debug)]
pub(super) struct CountingLink {
    pub(super) inner: Arc<dyn DeviceLink>,
    pub(super) counters: Arc<LinkCounters>,
}

impl CountingLink {
    /// The report of the link and its counters.
    pub(super) fn report(&self) -> LinkReport {
        let c = &self.counters;
        LinkReport {
            description: self.inner.describe(),
            mtu: self.inner.mtu(),
            max_message_bytes: self.inner.max_message_bytes(),
            over_device_access_point: self.inner.over_device_access_point(),
            connects: c.connects.load(Ordering::Relaxed),
            exchanges: c.exchanges.load(Ordering::Relaxed),
            failed_exchanges: c.failed_exchanges.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl DeviceLink for CountingLink {
    async fn connect(&self) -> Result<(), LinkError> {
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.inner.connect().await
    }

    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        let c = &self.counters;
        c.exchanges.fetch_add(1, Ordering::Relaxed);
        c.bytes_sent
            .fetch_add(request.len() as u64, Ordering::Relaxed);
        let answer = self.inner.exchange(endpoint, request).await;
        match &answer {
            Ok(bytes) => c
                .bytes_received
                .fetch_add(bytes.len() as u64, Ordering::Relaxed),
            Err(_) => c.failed_exchanges.fetch_add(1, Ordering::Relaxed),
        };
        answer
    }

    fn endpoints(&self) -> Option<Vec<String>> {
        self.inner.endpoints()
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    fn mtu(&self) -> Option<u16> {
        self.inner.mtu()
    }

    fn over_device_access_point(&self) -> bool {
        self.inner.over_device_access_point()
    }

    async fn disconnect(&self) {
        self.inner.disconnect().await
    }

    async fn disconnected(&self) {
        self.inner.disconnected().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, millis)
}
