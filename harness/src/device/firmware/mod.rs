//! The simulated firmware: [`SimDevice`], its state, and the dispatch from an endpoint name to its
//! handler, one file per endpoint (`scan.rs`, `config.rs`, `ctrl.rs`, `aws_claim.rs`, `aws_status.rs`;
//! `session.rs` for the session endpoint and the secured envelope, the handshakes in [`security`]).
//! `online.rs` is the cloud half the device runs once online.

mod aws_claim;
mod aws_status;
mod config;
mod ctrl;
pub mod external;
mod identity;
mod online;
mod scan;
pub mod security;
mod session;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use claimlink_core::internal::endpoint;
use claimlink_core::internal::proto;
use prost::Message;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use super::broken::BrokenBehaviour as Broken;
use super::wifi::JoinOutcome;
use super::SimDeviceConfig;
use external::{ExtensionEndpoint, FirmwareAnswer, FirmwareProcess, WifiEvent};
use security::{DeviceSecurity, Handshake, Sec2Secrets};

/// The cloud half's progress, as `aws-status` reports it.
#[derive(Clone, Debug, Default)]
struct CloudProgress {
    stage: Option<proto::CloudStage>,
    thing_name: String,
    certificate_id: String,
    failure: Option<proto::CloudFailure>,
}

/// Why the device did not answer a request normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceFailure {
    /// No such endpoint (HTTP 404, no such characteristic).
    UnknownEndpoint,
    /// The handler failed (the HTTP socket is closed without an answer, an ATT error), as ESP-IDF does
    /// for a wrong proof or a bad frame.
    Refused(String),
    /// Provisioning has stopped (auto-stop after the device got an IP): BLE is gone.
    Stopped,
}

/// A claim the device holds, decoded.
#[derive(Clone)]
pub struct ReceivedClaim {
    /// The serialized bundle, as transferred.
    pub bundle: Zeroizing<Vec<u8>>,
    /// Claim certificate, DER.
    pub certificate_der: Vec<u8>,
    /// Claim key, DER (PKCS#1).
    pub private_key_der: Zeroizing<Vec<u8>>,
    /// Claim certificate id.
    pub certificate_id: String,
    /// AWS IoT data endpoint.
    pub iot_endpoint: String,
    /// Template name.
    pub template_name: String,
    /// Template parameters.
    pub template_parameters: BTreeMap<String, String>,
    /// Seconds left as the phone measured them at hand-over.
    pub seconds_left: u32,
    /// When the device committed it: `seconds_left` counts down from here, on the device's own
    /// monotonic clock (its wall clock may not be synced yet).
    pub received_at: Instant,
}

impl std::fmt::Debug for ReceivedClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedClaim")
            .field("certificate_id", &self.certificate_id)
            .field("template_name", &self.template_name)
            .finish_non_exhaustive()
    }
}

struct PendingClaim {
    total: usize,
    sha256: Vec<u8>,
    data: Zeroizing<Vec<u8>>,
}

#[derive(Default)]
struct WifiMachine {
    /// The settings the station was given (by the last ApplyConfig).
    ssid: Vec<u8>,
    passphrase: Zeroizing<Vec<u8>>,
    /// Settings a SetConfig stored and no ApplyConfig used yet (network_provisioning keeps them in
    /// the config handler's context, apart from the station's).
    set: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    applied_at: Option<Instant>,
    /// What `GetStatus` reports while nothing is applied: ESP-IDF's `wifi_state` is left as it was by
    /// a `Reset` or `Reprov` (neither touches it), and is `CONNECTING` (0, from `calloc`) on a fresh
    /// device (network_provisioning `manager.c`).
    stale_report: Option<SimWifiState>,
}

/// Wi-Fi state as the device reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimWifiState {
    /// Nothing applied.
    Disconnected,
    /// Trying.
    Connecting,
    /// Joined.
    Connected {
        /// Address.
        ip: Ipv4Addr,
        /// SSID.
        ssid: Vec<u8>,
        /// Channel.
        channel: u32,
        /// BSSID.
        bssid: [u8; 6],
        /// Since when.
        since: Instant,
    },
    /// An attempt failed, more to come.
    AttemptFailed {
        /// Attempts left.
        remaining: u32,
    },
    /// Gave up.
    Failed {
        /// Wrong passphrase (else: network not found).
        auth: bool,
    },
}

struct Inner {
    rng: Box<dyn RngCore + Send>,
    session: Option<(u64, Handshake)>,
    wifi: WifiMachine,
    pending_claim: Option<PendingClaim>,
    claim: Option<ReceivedClaim>,
    scan_done: bool,
    exchanges: u64,
    cloud: CloudProgress,
    /// Cloud halves started so far: a half records its progress only while it is the latest (one
    /// that outlives a re-provisioning must not overwrite the new run's stages).
    cloud_runs: u64,
    /// When a `GetStatus` answered `Connected` with auto-stop on (`network_prov_mgr_done()`).
    done_reported_at: Option<Instant>,
    /// The `group_channels` of the last scan start.
    scan_group_channels: Option<u32>,
    /// The program that runs the claim extension and the cloud half, when it is not this
    /// simulator's own code ([`SimDeviceConfig::external_firmware`]).
    firmware: Option<FirmwareProcess>,
}

/// A simulated device. Share it (`Arc`) between the links that reach it.
pub struct SimDevice {
    config: SimDeviceConfig,
    sec2: Option<Sec2Secrets>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// The one shape of every protobuf endpoint: decodes the request, lets `handler` answer it, encodes
/// the answer. A request that does not decode is refused, as ESP-IDF's handlers fail on a bad frame.
fn message<Request, Answer>(
    bytes: &[u8],
    handler: impl FnOnce(Request) -> Result<Answer, DeviceFailure>,
) -> Result<Vec<u8>, DeviceFailure>
where
    Request: Message + Default,
    Answer: Message,
{
    let request = Request::decode(bytes)
        .map_err(|e| DeviceFailure::Refused(format!("bad {}: {e}", message_name::<Request>())))?;
    handler(request).map(|answer| answer.encode_to_vec())
}

/// A message type's own name (`WiFiScanPayload`), without its module path.
fn message_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full)
}

impl SimDevice {
    /// Builds a device; its randomness is ChaCha20 seeded with `config.seed`.
    pub fn new(config: SimDeviceConfig) -> Self {
        let rng = ChaCha20Rng::seed_from_u64(config.seed);
        Self::with_randomness(config, Box::new(rng))
    }

    /// Builds a device that draws its randomness (Sec2 salt, then per session: the SRP `b`, the
    /// patch-1 nonce prefix; Sec1's X25519 secret and `device_random`) from `rng`, in that order:
    /// the test vectors (proto/vectors/) feed it chosen bytes. `config.seed` is not used.
    pub fn with_randomness(config: SimDeviceConfig, mut rng: Box<dyn RngCore + Send>) -> Self {
        let sec2 = match &config.security {
            DeviceSecurity::Sec2 {
                username,
                password,
                patch,
            } => Some(Sec2Secrets::new(username, password, *patch, &mut *rng)),
            _ => None,
        };
        let firmware = config
            .external_firmware
            .as_deref()
            .map(|program| FirmwareProcess::start(program, &config));
        let with_firmware = firmware.is_some();
        let device = Self {
            sec2,
            inner: Arc::new(Mutex::new(Inner {
                rng,
                session: None,
                wifi: WifiMachine::default(),
                pending_claim: None,
                claim: None,
                scan_done: false,
                exchanges: 0,
                cloud: CloudProgress::default(),
                cloud_runs: 0,
                done_reported_at: None,
                scan_group_channels: None,
                firmware,
            })),
            config,
        };
        if with_firmware {
            device.watch_wifi_for_firmware();
        }
        device
    }

    /// With firmware in another process: a thread that tells it about the station's Wi-Fi events as
    /// they happen (the simulated station changes state with time), until the device is gone.
    fn watch_wifi_for_firmware(&self) {
        let inner = Arc::downgrade(&self.inner);
        let config = self.config.clone();
        std::thread::spawn(move || {
            while let Some(inner) = inner.upgrade() {
                let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
                if guard.firmware.is_none() {
                    return;
                }
                sync_wifi_to_firmware(&config, &mut guard, Instant::now());
                drop(guard);
                drop(inner);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }

    /// The firmware program's log lines so far ([`SimDeviceConfig::external_firmware`]); empty for
    /// the simulator's own firmware.
    pub fn firmware_log(&self) -> Vec<String> {
        self.lock()
            .firmware
            .as_ref()
            .map(FirmwareProcess::log)
            .unwrap_or_default()
    }

    /// Why the firmware program cannot be used (it did not start, died or broke the pipe protocol).
    pub fn firmware_error(&self) -> Option<String> {
        self.lock()
            .firmware
            .as_ref()
            .and_then(|f| f.broken().map(str::to_owned))
    }

    /// With firmware in another process: its `aws-status` answer, asked directly (not over a
    /// session), after telling it the station's latest Wi-Fi event. `None` for the simulator's own
    /// firmware, or when the program did not answer.
    pub fn firmware_status(&self) -> Option<proto::RespGetCloudStatus> {
        let mut inner = self.lock();
        inner.firmware.as_ref()?;
        sync_wifi_to_firmware(&self.config, &mut inner, Instant::now());
        let firmware = inner.firmware.as_mut()?;
        let request = proto::AwsStatusPayload {
            msg: proto::AwsStatusMsgType::TypeCmdGetCloudStatus as i32,
            payload: Some(proto::aws_status_payload::Payload::CmdGet(
                proto::CmdGetCloudStatus {},
            )),
            ..Default::default()
        };
        match firmware.request(ExtensionEndpoint::Status, &request.encode_to_vec()) {
            Ok(FirmwareAnswer::Answer(bytes)) => match proto::AwsStatusPayload::decode(&*bytes) {
                Ok(proto::AwsStatusPayload {
                    payload: Some(proto::aws_status_payload::Payload::RespGet(status)),
                    ..
                }) => Some(status),
                _ => None,
            },
            _ => None,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &SimDeviceConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The claim the device holds, if any.
    pub fn received_claim(&self) -> Option<ReceivedClaim> {
        self.lock().claim.clone()
    }

    /// The thing it registered as, once it has.
    pub fn thing_name(&self) -> Option<String> {
        if let Some(status) = self.firmware_status() {
            return Some(status.thing_name).filter(|t| !t.is_empty());
        }
        Some(self.lock().cloud.thing_name.clone()).filter(|t| !t.is_empty())
    }

    /// Whether the device holds any claim material (complete or partial; with firmware in another
    /// process, also a claim its running cloud half holds). A firmware program that cannot say is
    /// taken to hold one.
    pub fn holds_claim(&self) -> bool {
        let mut inner = self.lock();
        if let Some(firmware) = inner.firmware.as_mut() {
            return firmware.holds_claim().unwrap_or(true);
        }
        inner.claim.is_some() || inner.pending_claim.is_some()
    }

    /// The `group_channels` the last scan was started with (`None`: no scan yet).
    pub fn scan_group_channels(&self) -> Option<u32> {
        self.lock().scan_group_channels
    }

    /// Requests handled so far.
    pub fn exchanges(&self) -> u64 {
        self.lock().exchanges
    }

    /// Power-cycles the device: everything in RAM is gone (session, Wi-Fi settings, any claim, cloud
    /// progress), and provisioning restarts; a provisioned device keeps its identity (`identity.rs`).
    pub fn reboot(&self) {
        let mut inner = self.lock();
        inner.session = None;
        inner.wifi = WifiMachine::default();
        inner.pending_claim = None;
        inner.claim = None;
        inner.cloud = Self::kept_across_reboot(&inner.cloud);
        // A cloud half from before the power cycle is gone with it: it records nothing any more.
        inner.cloud_runs += 1;
        inner.scan_done = false;
        inner.done_reported_at = None;
        if let Some(firmware) = inner.firmware.as_mut() {
            firmware.reboot();
        }
    }

    /// Wipes the claim on the device's own initiative (a firmware timer, a watchdog restart of the
    /// provisioning task): the session and Wi-Fi settings stay.
    pub fn forget_claim(&self) {
        let mut inner = self.lock();
        inner.pending_claim = None;
        inner.claim = None;
        if let Some(firmware) = inner.firmware.as_mut() {
            // The component's own wipe is what `CmdClaimAbort` runs.
            let abort = proto::AwsClaimPayload {
                msg: proto::AwsClaimMsgType::TypeCmdAbort as i32,
                payload: Some(proto::aws_claim_payload::Payload::CmdAbort(
                    proto::CmdClaimAbort {},
                )),
                ..Default::default()
            };
            let _ = firmware.request(ExtensionEndpoint::Claim, &abort.encode_to_vec());
        }
    }

    /// Drops the current session (a BLE disconnect, a reboot of the provisioning service).
    pub fn drop_session(&self) {
        let mut inner = self.lock();
        inner.session = None;
        if let Some(firmware) = inner.firmware.as_mut() {
            let _ = firmware.session_ended();
        }
    }

    /// The device's Wi-Fi state now.
    pub fn wifi_state(&self) -> SimWifiState {
        let inner = self.lock();
        self.wifi_state_of(&inner.wifi, Instant::now())
    }

    fn wifi_state_of(&self, wifi: &WifiMachine, now: Instant) -> SimWifiState {
        wifi_state(&self.config, wifi, now)
    }

    /// What `GetStatus` reports: the join while settings are applied, else what a `Reset` or
    /// `Reprov` left (ESP-IDF does not clear it), `Connecting` on a fresh device.
    fn reported_wifi_state(&self, wifi: &WifiMachine, now: Instant) -> SimWifiState {
        if wifi.applied_at.is_some() {
            return self.wifi_state_of(wifi, now);
        }
        wifi.stale_report
            .clone()
            .unwrap_or(SimWifiState::Connecting)
    }

    /// Whether provisioning has auto-stopped: with auto-stop on, the device got an IP long enough
    /// ago, or a `GetStatus` answered `Connected` a cleanup delay ago (network_provisioning
    /// `manager.c`: the autostop timer, `network_prov_mgr_done()`).
    pub fn provisioning_stopped(&self) -> bool {
        let Some(limit) = self.config.auto_stop_after_ip else {
            return false;
        };
        let done_at = self.lock().done_reported_at;
        if done_at.is_some_and(|t| t.elapsed() >= self.config.auto_stop_cleanup_delay) {
            return true;
        }
        matches!(self.wifi_state(), SimWifiState::Connected { since, .. } if since.elapsed() >= limit)
    }

    /// The `proto-ver` answer.
    pub fn version_json(&self) -> String {
        let (sec_ver, patch, mut cap) = match &self.config.security {
            DeviceSecurity::Sec0 => (0, 0, vec!["no_sec"]),
            DeviceSecurity::Sec1 { pop } => (
                1,
                0,
                if pop.is_none() {
                    vec!["no_pop"]
                } else {
                    vec![]
                },
            ),
            DeviceSecurity::Sec2 { patch, .. } => (2, *patch, vec![]),
        };
        // network_provisioning `manager.c`, `network_prov_get_info_json`: Wi-Fi devices say both.
        cap.push("wifi_prov");
        cap.push("wifi_scan");
        let mut root = serde_json::json!({"prov": {"ver": "v1.1", "sec_ver": sec_ver, "sec_patch_ver": patch, "cap": cap}});
        if self.config.aws_extension {
            root["aws"] = serde_json::json!({"ver": "1", "cap": ["claim", "status"]});
            if self.config.breaks(Broken::ProtoVerWithoutAwsCaps) {
                root["aws"] = serde_json::json!({"ver": "1"});
            }
            if self.config.breaks(Broken::WrongAwsVersion) {
                root["aws"]["ver"] = "2".into();
            }
        }
        root.to_string()
    }

    /// Handles one request on `endpoint` from the connection identified by `session_id`.
    pub fn handle(
        &self,
        session_id: u64,
        endpoint_name: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, DeviceFailure> {
        if self.provisioning_stopped() {
            return Err(DeviceFailure::Stopped);
        }
        if self
            .config
            .failing_endpoints
            .iter()
            .any(|e| e == endpoint_name)
        {
            self.lock().exchanges += 1;
            return Err(DeviceFailure::Refused(format!(
                "injected failure on {endpoint_name}"
            )));
        }
        let mut guard = self.lock();
        guard.exchanges += 1;
        let inner = &mut *guard;
        sync_wifi_to_firmware(&self.config, inner, Instant::now());
        let answer = self.dispatch(inner, session_id, endpoint_name, request);
        // An ApplyConfig or a Reset changes the station at once: the firmware hears of it now.
        sync_wifi_to_firmware(&self.config, inner, Instant::now());
        answer
    }

    fn dispatch(
        &self,
        inner: &mut Inner,
        session_id: u64,
        endpoint_name: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, DeviceFailure> {
        let extension = self.config.aws_extension;
        let external = match endpoint_name {
            endpoint::AWS_CLAIM => Some(ExtensionEndpoint::Claim),
            endpoint::AWS_STATUS => Some(ExtensionEndpoint::Status),
            _ => None,
        };
        if let (Some(endpoint), true, true) = (external, extension, inner.firmware.is_some()) {
            return self.secured(inner, session_id, request, |inner, plaintext| {
                let Some(firmware) = inner.firmware.as_mut() else {
                    return Err(DeviceFailure::Refused("no firmware".into()));
                };
                match firmware.request(endpoint, plaintext) {
                    Ok(FirmwareAnswer::Answer(answer)) => Ok(answer),
                    Ok(FirmwareAnswer::HandlerFailed(why)) => Err(DeviceFailure::Refused(why)),
                    Err(why) => Err(DeviceFailure::Refused(format!("firmware: {why}"))),
                }
            });
        }
        match endpoint_name {
            endpoint::VERSION => Ok(self.version_json().into_bytes()),
            endpoint::SESSION => message(request, |req| self.session(inner, session_id, req)),
            endpoint::SCAN => self.secured(inner, session_id, request, |inner, plaintext| {
                message(plaintext, |req| self.scan(inner, req))
            }),
            endpoint::CONFIG => self.secured(inner, session_id, request, |inner, plaintext| {
                message(plaintext, |req| self.config_endpoint(inner, req))
            }),
            endpoint::CTRL => self.secured(inner, session_id, request, |inner, plaintext| {
                message(plaintext, |req| self.ctrl(inner, req))
            }),
            endpoint::AWS_CLAIM if extension => {
                self.secured(inner, session_id, request, |inner, plaintext| {
                    message(plaintext, |req| self.claim(inner, req))
                })
            }
            endpoint::AWS_STATUS if extension => {
                self.secured(inner, session_id, request, |inner, plaintext| {
                    message(plaintext, |req| self.cloud_status(inner, req))
                })
            }
            _ => Err(DeviceFailure::UnknownEndpoint),
        }
    }

    /// A fresh random session id for a new connection.
    pub fn new_connection_id(&self) -> u64 {
        self.lock().rng.next_u64()
    }
}

/// The station's state at `now` with the settings in `wifi`, in the Wi-Fi world of `config`.
fn wifi_state(config: &SimDeviceConfig, wifi: &WifiMachine, now: Instant) -> SimWifiState {
    let Some(applied) = wifi.applied_at else {
        return SimWifiState::Disconnected;
    };
    let world = &config.world;
    let elapsed = now.saturating_duration_since(applied);
    let step = world.connect_time.max(Duration::from_millis(1));
    if elapsed < step {
        return SimWifiState::Connecting;
    }
    match world.join(&wifi.ssid, &wifi.passphrase, config.index) {
        JoinOutcome::Connected { ip, channel, bssid } => SimWifiState::Connected {
            ip,
            ssid: wifi.ssid.clone(),
            channel,
            bssid,
            since: applied + step,
        },
        JoinOutcome::DhcpTimeout => SimWifiState::Connecting,
        outcome => {
            let total = world.retries + 1;
            let failed = u32::try_from(elapsed.as_millis() / step.as_millis())
                .unwrap_or(u32::MAX)
                .min(total);
            if failed < total {
                SimWifiState::AttemptFailed {
                    remaining: total - failed,
                }
            } else {
                SimWifiState::Failed {
                    auth: outcome == JoinOutcome::AuthError,
                }
            }
        }
    }
}

/// With firmware in another process: tells it the Wi-Fi events it has not heard yet, so that it sees
/// the station as `GetStatus` would report it now (PIPE.md, "Wi-Fi events"). A station that stays
/// without an address ten times as long as a join takes is a DHCP timeout, as the simulator's own
/// `aws-status` says.
fn sync_wifi_to_firmware(config: &SimDeviceConfig, inner: &mut Inner, now: Instant) {
    let Some(firmware) = inner.firmware.as_mut() else {
        return;
    };
    let wanted = inner.wifi.applied_at.map(|applied| {
        let event = match wifi_state(config, &inner.wifi, now) {
            SimWifiState::Connected { ip, .. } => WifiEvent::GotIp(ip),
            SimWifiState::Failed { auth: true } => WifiEvent::AuthFailed,
            SimWifiState::Failed { auth: false } => WifiEvent::NotFound,
            SimWifiState::Connecting
                if now.saturating_duration_since(applied) > config.world.connect_time * 10 =>
            {
                WifiEvent::DhcpTimeout
            }
            SimWifiState::Connecting
            | SimWifiState::AttemptFailed { .. }
            | SimWifiState::Disconnected => WifiEvent::Applied,
        };
        (applied, event)
    });
    let mut events = Vec::new();
    match (firmware.wifi_sent, wanted) {
        (None, None) => {}
        (Some(_), None) => events.push(WifiEvent::Reset),
        (Some((sent_at, sent)), Some((applied, event))) if sent_at == applied => {
            if sent != event {
                events.push(event);
            }
        }
        (sent, Some((_, event))) => {
            if sent.is_some() {
                events.push(WifiEvent::Reset);
            }
            events.push(WifiEvent::Applied);
            if event != WifiEvent::Applied {
                events.push(event);
            }
        }
    }
    for event in events {
        if firmware.wifi_event(event).is_err() {
            return;
        }
    }
    firmware.wifi_sent = wanted;
}
