//! The device simulator: the device side of the protocomm / network-provisioning protocol and of
//! claimlink's `aws-claim` / `aws-status` extension, written from `docs/protocol.md`, reachable over a
//! simulated BLE link ([`ble`]) or HTTP on 127.0.0.1 ([`http`], like an ESP32 in SoftAP mode).
//!
//! The cloud half (MQTT fleet provisioning against the emulator) builds on this.

pub mod ble;
pub mod cloud;
pub mod gatt;
pub mod http;
pub mod security;
pub mod wifi;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use claimlink_core::internal::endpoint;
use claimlink_core::internal::proto::{self, Status};
use prost::Message;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use security::{DeviceSecurity, Handshake, Refused, Sec2Secrets};
use wifi::{JoinOutcome, WifiWorld};

/// How a simulated device is built.
#[derive(Clone, Debug)]
pub struct SimDeviceConfig {
    /// Its advertised name (`PROV_xxxx`).
    pub name: String,
    /// Its security.
    pub security: DeviceSecurity,
    /// The Wi-Fi world around it.
    pub world: WifiWorld,
    /// Whether its firmware has claimlink's extension.
    pub aws_extension: bool,
    /// The largest claim bundle it accepts.
    pub max_claim_bundle: usize,
    /// Seed for its randomness (keys, nonces): the same seed, the same bytes.
    pub seed: u64,
    /// Index used to give each device its own IP address.
    pub index: u8,
    /// Provisioning (and BLE) stops this long after the device got an IP (ESP-IDF: about 30 s);
    /// `None` when the firmware disables auto-stop.
    pub auto_stop_after_ip: Option<Duration>,
    /// The cloud half: `None` for a device that stops at Wi-Fi.
    pub cloud: Option<DeviceCloud>,
}

/// How the device reaches the cloud once online. The endpoint itself comes from the claim bundle.
#[derive(Clone, Debug)]
pub struct DeviceCloud {
    /// Trust anchors for the MQTT server (Amazon's root CA on a real device).
    pub ca_pem: String,
    /// Port when the bundle's endpoint has none (AWS IoT: 8883).
    pub default_port: u16,
    /// CSR path (default) or CreateKeysAndCertificate.
    pub use_csr: bool,
    /// Time to sync the clock (SNTP) after getting an address.
    pub time_sync: Duration,
    /// How long to wait for each MQTT answer.
    pub timeout: Duration,
    /// Where to prove the permanent certificate: the credentials provider (`host:port`) and role alias.
    pub credentials: Option<(String, String)>,
}

impl DeviceCloud {
    /// A device trusting `ca_pem`, CSR path, quick time sync.
    pub fn trusting(ca_pem: &str) -> Self {
        Self {
            ca_pem: ca_pem.to_owned(),
            default_port: 8883,
            use_csr: true,
            time_sync: Duration::from_millis(20),
            timeout: Duration::from_secs(20),
            credentials: None,
        }
    }
}

/// The cloud half's progress, as `aws-status` reports it.
#[derive(Clone, Debug, Default)]
struct CloudProgress {
    stage: Option<proto::CloudStage>,
    thing_name: String,
    certificate_id: String,
    failure: Option<proto::CloudFailure>,
}

impl Default for SimDeviceConfig {
    fn default() -> Self {
        Self {
            name: "PROV_C1A1".into(),
            security: DeviceSecurity::Sec2 {
                username: "wifiprov".into(),
                password: "abcd1234".into(),
                patch: 1,
            },
            world: WifiWorld::default(),
            aws_extension: true,
            max_claim_bundle: 8 * 1024,
            seed: 1,
            index: 0,
            auto_stop_after_ip: Some(Duration::from_secs(30)),
            cloud: None,
        }
    }
}

impl SimDeviceConfig {
    /// Stops provisioning (and BLE) 20 ms after the device gets its address and makes it take
    /// `time_sync` before the cloud steps: it goes quiet before it can report its certificate, and the
    /// SDK has to confirm through the cloud.
    pub fn goes_quiet_after_joining(&mut self, time_sync: Duration) {
        self.auto_stop_after_ip = Some(Duration::from_millis(20));
        if let Some(cloud) = self.cloud.as_mut() {
            cloud.time_sync = time_sync;
        }
    }
}

/// Why the device did not answer a request normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceFailure {
    /// No such endpoint (HTTP 404, no such characteristic).
    UnknownEndpoint,
    /// The handler failed (HTTP 500, an ATT error), as ESP-IDF does for a wrong proof or a bad frame.
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
    ssid: Vec<u8>,
    passphrase: Zeroizing<Vec<u8>>,
    configured: bool,
    applied_at: Option<Instant>,
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
    rng: ChaCha20Rng,
    session: Option<(u64, Handshake)>,
    wifi: WifiMachine,
    pending_claim: Option<PendingClaim>,
    claim: Option<ReceivedClaim>,
    scan_done: bool,
    exchanges: u64,
    cloud: CloudProgress,
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

fn encode<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

impl SimDevice {
    /// Builds a device.
    pub fn new(config: SimDeviceConfig) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let sec2 = match &config.security {
            DeviceSecurity::Sec2 {
                username,
                password,
                patch,
            } => Some(Sec2Secrets::new(username, password, *patch, &mut rng)),
            _ => None,
        };
        Self {
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
            })),
            config,
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
        Some(self.lock().cloud.thing_name.clone()).filter(|t| !t.is_empty())
    }

    /// Whether the device holds any claim material (complete or partial).
    pub fn holds_claim(&self) -> bool {
        let inner = self.lock();
        inner.claim.is_some() || inner.pending_claim.is_some()
    }

    /// Requests handled so far.
    pub fn exchanges(&self) -> u64 {
        self.lock().exchanges
    }

    /// Power-cycles the device: everything in RAM is gone (session, Wi-Fi settings, any claim, cloud
    /// progress). Provisioning restarts from scratch.
    pub fn reboot(&self) {
        let mut inner = self.lock();
        inner.session = None;
        inner.wifi = WifiMachine::default();
        inner.pending_claim = None;
        inner.claim = None;
        inner.cloud = CloudProgress::default();
        inner.scan_done = false;
    }

    /// Wipes the claim on the device's own initiative (a firmware timer, a watchdog restart of the
    /// provisioning task): the session and Wi-Fi settings stay.
    pub fn forget_claim(&self) {
        let mut inner = self.lock();
        inner.pending_claim = None;
        inner.claim = None;
    }

    /// Drops the current session (a BLE disconnect, a reboot of the provisioning service).
    pub fn drop_session(&self) {
        self.lock().session = None;
    }

    /// The device's Wi-Fi state now.
    pub fn wifi_state(&self) -> SimWifiState {
        let inner = self.lock();
        self.wifi_state_of(&inner.wifi, Instant::now())
    }

    fn wifi_state_of(&self, wifi: &WifiMachine, now: Instant) -> SimWifiState {
        let Some(applied) = wifi.applied_at else {
            return SimWifiState::Disconnected;
        };
        let world = &self.config.world;
        let elapsed = now.saturating_duration_since(applied);
        let step = world.connect_time.max(Duration::from_millis(1));
        if elapsed < step {
            return SimWifiState::Connecting;
        }
        match world.join(&wifi.ssid, &wifi.passphrase, self.config.index) {
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

    /// Whether provisioning has auto-stopped (the device got an IP long enough ago).
    pub fn provisioning_stopped(&self) -> bool {
        let Some(limit) = self.config.auto_stop_after_ip else {
            return false;
        };
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
        cap.push("wifi_scan");
        let mut root = serde_json::json!({"prov": {"ver": "v1.1", "sec_ver": sec_ver, "sec_patch_ver": patch, "cap": cap}});
        if self.config.aws_extension {
            root["aws"] = serde_json::json!({"ver": "1", "cap": ["claim", "status"]});
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
        let mut inner = self.lock();
        inner.exchanges += 1;
        match endpoint_name {
            endpoint::VERSION => Ok(self.version_json().into_bytes()),
            endpoint::SESSION => {
                let req = proto::SessionData::decode(request)
                    .map_err(|e| DeviceFailure::Refused(format!("bad SessionData: {e}")))?;
                let Inner { rng, session, .. } = &mut *inner;
                // One session per device: a new connection replaces the old one.
                if session.as_ref().map(|(id, _)| *id) != Some(session_id) {
                    *session = Some((session_id, Handshake::Fresh));
                }
                let Some((_, handshake)) = session.as_mut() else {
                    return Err(DeviceFailure::Refused("no session".into()));
                };
                match security::handle_session(
                    &self.config.security,
                    self.sec2.as_ref(),
                    handshake,
                    req,
                    rng,
                ) {
                    Ok(answer) => Ok(encode(&answer)),
                    Err(Refused(why)) => {
                        *session = None;
                        Err(DeviceFailure::Refused(why))
                    }
                }
            }
            endpoint::SCAN | endpoint::CONFIG | endpoint::CTRL => {
                self.secured(&mut inner, session_id, endpoint_name, request)
            }
            endpoint::AWS_CLAIM | endpoint::AWS_STATUS if self.config.aws_extension => {
                self.secured(&mut inner, session_id, endpoint_name, request)
            }
            _ => Err(DeviceFailure::UnknownEndpoint),
        }
    }

    fn secured(
        &self,
        inner: &mut Inner,
        session_id: u64,
        endpoint_name: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, DeviceFailure> {
        let plaintext = {
            let cipher = match inner.session.as_mut() {
                Some((id, Handshake::Done(cipher))) if *id == session_id => cipher,
                _ => return Err(DeviceFailure::Refused("no secure session".into())),
            };
            match cipher.decrypt(request) {
                Ok(p) => p,
                Err(e) => {
                    inner.session = None;
                    return Err(DeviceFailure::Refused(format!("decrypt: {e}")));
                }
            }
        };
        let answer = match endpoint_name {
            endpoint::SCAN => self.scan(inner, &plaintext)?,
            endpoint::CONFIG => self.config_endpoint(inner, &plaintext)?,
            endpoint::CTRL => self.ctrl(inner, &plaintext)?,
            endpoint::AWS_CLAIM => self.claim(inner, &plaintext)?,
            _ => self.cloud_status(inner, &plaintext)?,
        };
        match inner.session.as_mut() {
            Some((_, Handshake::Done(cipher))) => cipher
                .encrypt(&answer)
                .map_err(|e| DeviceFailure::Refused(e.to_string())),
            _ => Err(DeviceFailure::Refused("session lost".into())),
        }
    }

    fn scan(&self, inner: &mut Inner, plaintext: &[u8]) -> Result<Vec<u8>, DeviceFailure> {
        use proto::wi_fi_scan_payload::Payload as P;
        use proto::WiFiScanMsgType as T;
        let req = proto::WiFiScanPayload::decode(plaintext)
            .map_err(|e| DeviceFailure::Refused(format!("bad WiFiScanPayload: {e}")))?;
        let mut status = Status::Success;
        let (msg, payload) = match by_msg_scan(req) {
            Some(P::CmdScanStart(_)) => {
                inner.scan_done = true;
                (
                    T::TypeRespScanStart,
                    P::RespScanStart(proto::RespScanStart {}),
                )
            }
            Some(P::CmdScanStatus(_)) => (
                T::TypeRespScanStatus,
                P::RespScanStatus(proto::RespScanStatus {
                    scan_finished: inner.scan_done,
                    result_count: if inner.scan_done {
                        u32::try_from(self.config.world.networks.len()).unwrap_or(0)
                    } else {
                        0
                    },
                }),
            ),
            Some(P::CmdScanResult(r)) => {
                let nets = &self.config.world.networks;
                let start = r.start_index as usize;
                let end = start.saturating_add(r.count as usize).min(nets.len());
                if !inner.scan_done || start >= end {
                    status = Status::InvalidArgument;
                }
                let entries = if status == Status::Success {
                    nets[start..end]
                        .iter()
                        .map(|n| proto::WiFiScanResult {
                            ssid: n.ssid.as_bytes().to_vec(),
                            channel: n.channel,
                            rssi: n.rssi,
                            bssid: n.bssid.to_vec(),
                            auth: n.auth() as i32,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (
                    T::TypeRespScanResult,
                    P::RespScanResult(proto::RespScanResult { entries }),
                )
            }
            _ => return Err(DeviceFailure::Refused("unexpected scan message".into())),
        };
        Ok(encode(&proto::WiFiScanPayload {
            msg: msg as i32,
            status: status as i32,
            payload: Some(payload),
        }))
    }

    fn config_endpoint(
        &self,
        inner: &mut Inner,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, DeviceFailure> {
        use proto::resp_get_status::State as S;
        use proto::wi_fi_config_payload::Payload as P;
        use proto::WiFiConfigMsgType as T;
        let req = proto::WiFiConfigPayload::decode(plaintext)
            .map_err(|e| DeviceFailure::Refused(format!("bad WiFiConfigPayload: {e}")))?;
        let now = Instant::now();
        let (msg, payload) = match by_msg_config(req) {
            Some(P::CmdSetConfig(cmd)) => {
                let busy = inner.wifi.applied_at.is_some();
                let valid =
                    !cmd.ssid.is_empty() && cmd.ssid.len() <= 32 && cmd.passphrase.len() <= 64;
                let status = if busy {
                    Status::InternalError
                } else if !valid {
                    Status::InvalidArgument
                } else {
                    inner.wifi.ssid = cmd.ssid.clone();
                    inner.wifi.passphrase = Zeroizing::new(cmd.passphrase.clone());
                    inner.wifi.configured = true;
                    Status::Success
                };
                (
                    T::TypeRespSetConfig,
                    P::RespSetConfig(proto::RespSetConfig {
                        status: status as i32,
                    }),
                )
            }
            Some(P::CmdApplyConfig(_)) => {
                let status = if inner.wifi.configured && inner.wifi.applied_at.is_none() {
                    inner.wifi.applied_at = Some(now);
                    self.start_cloud(inner);
                    Status::Success
                } else {
                    Status::InternalError
                };
                (
                    T::TypeRespApplyConfig,
                    P::RespApplyConfig(proto::RespApplyConfig {
                        status: status as i32,
                    }),
                )
            }
            Some(P::CmdGetStatus(_)) => {
                let (sta, state) = match self.wifi_state_of(&inner.wifi, now) {
                    SimWifiState::Disconnected => (proto::WifiStationState::Disconnected, None),
                    SimWifiState::Connecting => (proto::WifiStationState::Connecting, None),
                    SimWifiState::Connected {
                        ip,
                        ssid,
                        channel,
                        bssid,
                        ..
                    } => (
                        proto::WifiStationState::Connected,
                        Some(S::Connected(proto::WifiConnectedState {
                            ip4_addr: ip.to_string(),
                            auth_mode: proto::WifiAuthMode::Wpa2Psk as i32,
                            ssid,
                            bssid: bssid.to_vec(),
                            channel: i32::try_from(channel).unwrap_or(0),
                        })),
                    ),
                    SimWifiState::AttemptFailed { remaining } => (
                        proto::WifiStationState::Connecting,
                        Some(S::AttemptFailed(proto::WifiAttemptFailed {
                            attempts_remaining: remaining,
                        })),
                    ),
                    SimWifiState::Failed { auth } => (
                        proto::WifiStationState::ConnectionFailed,
                        Some(S::FailReason(if auth {
                            proto::WifiConnectFailedReason::AuthError as i32
                        } else {
                            proto::WifiConnectFailedReason::NetworkNotFound as i32
                        })),
                    ),
                };
                (
                    T::TypeRespGetStatus,
                    P::RespGetStatus(proto::RespGetStatus {
                        status: Status::Success as i32,
                        sta_state: sta as i32,
                        state,
                    }),
                )
            }
            _ => return Err(DeviceFailure::Refused("unexpected config message".into())),
        };
        Ok(encode(&proto::WiFiConfigPayload {
            msg: msg as i32,
            payload: Some(payload),
        }))
    }

    fn ctrl(&self, inner: &mut Inner, plaintext: &[u8]) -> Result<Vec<u8>, DeviceFailure> {
        use proto::wi_fi_ctrl_payload::Payload as P;
        use proto::WiFiCtrlMsgType as T;
        let req = proto::WiFiCtrlPayload::decode(plaintext)
            .map_err(|e| DeviceFailure::Refused(format!("bad WiFiCtrlPayload: {e}")))?;
        let state = self.wifi_state_of(&inner.wifi, Instant::now());
        let (msg, payload, ok) = match by_msg_ctrl(req) {
            Some(P::CmdCtrlReset(_)) => {
                let ok = matches!(
                    state,
                    SimWifiState::Disconnected
                        | SimWifiState::Failed { .. }
                        | SimWifiState::AttemptFailed { .. }
                );
                (
                    T::TypeRespCtrlReset,
                    P::RespCtrlReset(proto::RespCtrlReset {}),
                    ok,
                )
            }
            Some(P::CmdCtrlReprov(_)) => {
                let ok = matches!(state, SimWifiState::Connected { .. });
                (
                    T::TypeRespCtrlReprov,
                    P::RespCtrlReprov(proto::RespCtrlReprov {}),
                    ok,
                )
            }
            _ => return Err(DeviceFailure::Refused("unexpected ctrl message".into())),
        };
        if ok {
            inner.wifi = WifiMachine::default();
        }
        Ok(encode(&proto::WiFiCtrlPayload {
            msg: msg as i32,
            status: if ok {
                Status::Success as i32
            } else {
                Status::InternalError as i32
            },
            payload: Some(payload),
        }))
    }

    fn claim(&self, inner: &mut Inner, plaintext: &[u8]) -> Result<Vec<u8>, DeviceFailure> {
        use proto::aws_claim_payload::Payload as P;
        use proto::AwsClaimMsgType as T;
        use proto::ClaimTransferError as E;
        let req = proto::AwsClaimPayload::decode(plaintext)
            .map_err(|e| DeviceFailure::Refused(format!("bad AwsClaimPayload: {e}")))?;
        let answer = |msg: T, error: E, payload: P| proto::AwsClaimPayload {
            msg: msg as i32,
            status: if error == E::None {
                Status::Success as i32
            } else {
                Status::InvalidArgument as i32
            },
            error: error as i32,
            payload: Some(payload),
        };
        let out = match by_msg_claim(req) {
            Some(P::CmdBegin(cmd)) => {
                inner.claim = None;
                inner.pending_claim = None;
                let total = cmd.total_length as usize;
                let error = if total > self.config.max_claim_bundle || cmd.data.len() > total {
                    E::TooLarge
                } else if cmd.sha256.len() != 32 {
                    E::BundleInvalid
                } else {
                    inner.pending_claim = Some(PendingClaim {
                        total,
                        sha256: cmd.sha256,
                        data: Zeroizing::new(cmd.data),
                    });
                    E::None
                };
                let (error, committed) = if error == E::None && cmd.commit {
                    self.commit(inner)
                } else {
                    (error, false)
                };
                let received = inner.pending_claim.as_ref().map_or(0, |p| p.data.len());
                let received = if committed { total } else { received };
                answer(
                    T::TypeRespBegin,
                    error,
                    P::RespBegin(proto::RespClaimBegin {
                        received: u32::try_from(received).unwrap_or(0),
                        max_bundle_length: u32::try_from(self.config.max_claim_bundle).unwrap_or(0),
                        committed,
                    }),
                )
            }
            Some(P::CmdChunk(cmd)) => {
                let error = match inner.pending_claim.as_mut() {
                    None => E::NotStarted,
                    Some(p) if cmd.offset as usize != p.data.len() => E::OutOfOrder,
                    Some(p) if p.data.len() + cmd.data.len() > p.total => E::TooLarge,
                    Some(p) => {
                        p.data.extend_from_slice(&cmd.data);
                        E::None
                    }
                };
                let total = inner.pending_claim.as_ref().map_or(0, |p| p.total);
                let (error, committed) = if error == E::None && cmd.commit {
                    self.commit(inner)
                } else {
                    (error, false)
                };
                let received = if committed {
                    total
                } else {
                    inner.pending_claim.as_ref().map_or(0, |p| p.data.len())
                };
                answer(
                    T::TypeRespChunk,
                    error,
                    P::RespChunk(proto::RespClaimChunk {
                        received: u32::try_from(received).unwrap_or(0),
                        committed,
                    }),
                )
            }
            Some(P::CmdAbort(_)) => {
                inner.claim = None;
                inner.pending_claim = None;
                answer(
                    T::TypeRespAbort,
                    E::None,
                    P::RespAbort(proto::RespClaimAbort {}),
                )
            }
            _ => {
                return Err(DeviceFailure::Refused(
                    "unexpected aws-claim message".into(),
                ))
            }
        };
        Ok(encode(&out))
    }

    /// Checks and keeps the pending bundle. Any failure wipes it.
    fn commit(&self, inner: &mut Inner) -> (proto::ClaimTransferError, bool) {
        use proto::ClaimTransferError as E;
        let Some(pending) = inner.pending_claim.take() else {
            return (E::NotStarted, false);
        };
        if pending.data.len() != pending.total {
            return (E::Incomplete, false);
        }
        if Sha256::digest(pending.data.as_slice()).as_slice() != pending.sha256.as_slice() {
            return (E::DigestMismatch, false);
        }
        let Ok(mut bundle) = proto::ClaimBundle::decode(pending.data.as_slice()) else {
            return (E::BundleInvalid, false);
        };
        let key = match (bundle.private_key_der.is_empty(), bundle.rsa_key.take()) {
            (false, None) => Some(Zeroizing::new(std::mem::take(&mut bundle.private_key_der))),
            (true, Some(primes)) => rebuild_rsa_key(&primes),
            _ => None,
        };
        let Some(key) =
            key.filter(|_| !bundle.certificate_der.is_empty() && !bundle.iot_endpoint.is_empty())
        else {
            zeroize::Zeroize::zeroize(&mut bundle.private_key_der);
            return (E::BundleInvalid, false);
        };
        inner.claim = Some(ReceivedClaim {
            certificate_der: std::mem::take(&mut bundle.certificate_der),
            private_key_der: key,
            certificate_id: bundle.certificate_id,
            iot_endpoint: bundle.iot_endpoint,
            template_name: bundle.template_name,
            template_parameters: bundle.template_parameters,
            seconds_left: bundle.seconds_left,
            bundle: pending.data,
        });
        (E::None, true)
    }

    fn cloud_status(&self, inner: &mut Inner, plaintext: &[u8]) -> Result<Vec<u8>, DeviceFailure> {
        use proto::aws_status_payload::Payload as P;
        use proto::{CloudFailureKind as K, CloudStage as St};
        let req = proto::AwsStatusPayload::decode(plaintext)
            .map_err(|e| DeviceFailure::Refused(format!("bad AwsStatusPayload: {e}")))?;
        let wants_status = matches!(req.payload, Some(P::CmdGet(_)))
            || (req.payload.is_none()
                && req.msg == proto::AwsStatusMsgType::TypeCmdGetCloudStatus as i32);
        if !wants_status {
            return Err(DeviceFailure::Refused(
                "unexpected aws-status message".into(),
            ));
        }
        let now = Instant::now();
        let wifi = self.wifi_state_of(&inner.wifi, now);
        let mut ip = String::new();
        let failure = |kind: K| {
            Some(proto::CloudFailure {
                kind: kind as i32,
                ..proto::CloudFailure::default()
            })
        };
        let (stage, fail) = match wifi {
            SimWifiState::Disconnected if inner.claim.is_some() => (St::ClaimReceived, None),
            SimWifiState::Disconnected => (St::Idle, None),
            SimWifiState::Connecting | SimWifiState::AttemptFailed { .. } => {
                let dhcp_stuck = inner.wifi.applied_at.is_some_and(|t| {
                    now.saturating_duration_since(t) > self.config.world.connect_time * 10
                });
                if dhcp_stuck {
                    (St::Failed, failure(K::DhcpTimeout))
                } else {
                    (St::WifiConnecting, None)
                }
            }
            SimWifiState::Connected { ip: addr, .. } => {
                ip = addr.to_string();
                match (&inner.cloud.failure, inner.cloud.stage) {
                    (Some(f), _) => (St::Failed, Some(f.clone())),
                    (None, Some(stage)) => (stage, None),
                    (None, None) => (St::WifiConnected, None),
                }
            }
            SimWifiState::Failed { auth: true } => (St::Failed, failure(K::WifiAuth)),
            SimWifiState::Failed { auth: false } => (St::Failed, failure(K::WifiNotFound)),
        };
        Ok(encode(&proto::AwsStatusPayload {
            msg: proto::AwsStatusMsgType::TypeRespGetCloudStatus as i32,
            status: Status::Success as i32,
            payload: Some(P::RespGet(proto::RespGetCloudStatus {
                stage: stage as i32,
                ip4_addr: ip,
                thing_name: inner.cloud.thing_name.clone(),
                certificate_id: inner.cloud.certificate_id.clone(),
                failure: fail,
            })),
        }))
    }

    /// Starts the cloud half in the background, if the device has one and holds a claim: after the
    /// Wi-Fi join and a time sync, fleet provisioning with the claim; the claim is wiped afterwards,
    /// whatever the outcome.
    fn start_cloud(&self, inner: &mut Inner) {
        let (Some(cloud), Some(claim)) = (self.config.cloud.clone(), inner.claim.clone()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let joined = matches!(
            self.config
                .world
                .join(&inner.wifi.ssid, &inner.wifi.passphrase, self.config.index),
            JoinOutcome::Connected { .. }
        );
        if !joined {
            return;
        }
        inner.cloud = CloudProgress::default();
        let state = self.inner.clone();
        let connect_time = self.config.world.connect_time;
        let client_id = self.config.name.clone();
        let received = Instant::now();
        runtime.spawn(async move {
            let set = |f: &dyn Fn(&mut CloudProgress)| {
                f(&mut state.lock().unwrap_or_else(|p| p.into_inner()).cloud)
            };
            tokio::time::sleep(connect_time + cloud.time_sync).await;
            set(&|c| c.stage = Some(proto::CloudStage::TimeSynced));
            let fail = |kind: proto::CloudFailureKind, message: &str| proto::CloudFailure {
                kind: kind as i32,
                error_message: message.to_owned(),
                ..proto::CloudFailure::default()
            };
            let result = if received.elapsed() >= Duration::from_secs(u64::from(claim.seconds_left))
            {
                Err(fail(
                    proto::CloudFailureKind::ClaimExpired,
                    "the claim expired before the device got online",
                ))
            } else {
                let (host, port) = match claim.iot_endpoint.rsplit_once(':') {
                    Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(cloud.default_port)),
                    None => (claim.iot_endpoint.clone(), cloud.default_port),
                };
                let input = cloud::FlowInput {
                    endpoint: cloud::CloudEndpoint {
                        host,
                        port,
                        ca_pem: cloud.ca_pem.clone(),
                        timeout: cloud.timeout,
                    },
                    claim: cloud::MqttIdentity {
                        chain: vec![claim.certificate_der.clone()],
                        key: rustls_pki_types::PrivateKeyDer::Pkcs1(
                            claim.private_key_der.to_vec().into(),
                        ),
                    },
                    client_id,
                    template: claim.template_name.clone(),
                    parameters: claim.template_parameters.clone(),
                    use_csr: cloud.use_csr,
                };
                let endpoint = input.endpoint.clone();
                let provisioned = cloud::fleet_provision(input, |stage| {
                    let stage = match stage {
                        cloud::FlowStage::ConnectedWithClaim => {
                            proto::CloudStage::MqttConnectedWithClaim
                        }
                        cloud::FlowStage::CertificateIssued => proto::CloudStage::CertificateIssued,
                        cloud::FlowStage::ThingRegistered => proto::CloudStage::ThingRegistered,
                        cloud::FlowStage::Reconnected => {
                            proto::CloudStage::ReconnectedWithPermanent
                        }
                    };
                    set(&|c| c.stage = Some(stage));
                })
                .await
                .map_err(|f| {
                    // A certificate AWS issued before the failure is reported with it.
                    if let Some(id) = f.certificate_id.clone() {
                        set(&|c| c.certificate_id = id.clone());
                    }
                    proto::CloudFailure {
                        kind: f.kind as i32,
                        status_code: f.status_code,
                        error_code: f.error_code,
                        error_message: f.error_message,
                    }
                });
                match (provisioned, cloud.credentials.as_ref()) {
                    (Ok(done), Some((target, alias))) => {
                        let (host, port) = target
                            .rsplit_once(':')
                            .map_or((target.clone(), 443), |(h, p)| {
                                (h.to_owned(), p.parse().unwrap_or(443))
                            });
                        let endpoint = cloud::CloudEndpoint {
                            host,
                            port,
                            ..endpoint
                        };
                        let identity = cloud::MqttIdentity {
                            chain: rustls_pki_types::CertificateDer::pem_slice_iter(
                                done.certificate_pem.as_bytes(),
                            )
                            .filter_map(Result::ok)
                            .map(|c| c.to_vec())
                            .collect(),
                            key: done.key.clone_key(),
                        };
                        match cloud::fetch_role_credentials(
                            &endpoint,
                            identity,
                            alias,
                            &done.thing_name,
                        )
                        .await
                        {
                            Ok(_) => Ok(done),
                            Err(e) => {
                                let (status_code, error_message) = match e {
                                    cloud::CloudError::Rejected {
                                        status_code,
                                        error_message,
                                        ..
                                    } => (status_code, error_message),
                                    other => (0, other.to_string()),
                                };
                                // Provisioned, but the certificate cannot get credentials: say so.
                                set(&|c| {
                                    c.thing_name = done.thing_name.clone();
                                    c.certificate_id = done.certificate_id.clone();
                                });
                                Err(proto::CloudFailure {
                                    kind: proto::CloudFailureKind::CredentialsProvider as i32,
                                    status_code,
                                    error_code: String::new(),
                                    error_message,
                                })
                            }
                        }
                    }
                    (other, _) => other,
                }
            };
            let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
            // The claim has done its job (or failed): wipe it.
            guard.claim = None;
            match result {
                Ok(done) => {
                    guard.cloud.thing_name = done.thing_name;
                    guard.cloud.certificate_id = done.certificate_id;
                    guard.cloud.stage = Some(proto::CloudStage::Done);
                }
                Err(f) => guard.cloud.failure = Some(f),
            }
        });
    }

    /// A fresh random session id for a new connection.
    pub fn new_connection_id(&self) -> u64 {
        self.lock().rng.next_u64()
    }
}

/// Rebuilds a PKCS#1 DER private key from its primes and public exponent (what firmware does with
/// `mbedtls_rsa_import_raw` + `mbedtls_rsa_complete`).
fn rebuild_rsa_key(primes: &proto::RsaPrimes) -> Option<Zeroizing<Vec<u8>>> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::BigUint;
    // Untrusted numbers: the rsa crate's arithmetic panics on some (p − 1 underflows for p = 0), so
    // insist on plausible values first (found by the fuzzer: fuzz/regressions/device-claim-bundle).
    let plausible = |bytes: &[u8], max_bits: usize| {
        let n = BigUint::from_bytes_be(bytes);
        n >= BigUint::from(3u32) && n.bits() <= max_bits && bytes.last().is_some_and(|b| b & 1 == 1)
    };
    if !plausible(&primes.p, 4096) || !plausible(&primes.q, 4096) || !plausible(&primes.e, 64) {
        return None;
    }
    let key = rsa::RsaPrivateKey::from_p_q(
        BigUint::from_bytes_be(&primes.p),
        BigUint::from_bytes_be(&primes.q),
        BigUint::from_bytes_be(&primes.e),
    )
    .ok()?;
    let der = key.to_pkcs1_der().ok()?;
    Some(Zeroizing::new(der.as_bytes().to_vec()))
}

// ESP-IDF's handlers dispatch on `msg` and read the matching payload field; clients (ESP-IDF's own
// esp_prov among them) leave empty command messages unset. So: `msg` decides, a payload of another
// kind is ignored, and a missing payload is the empty command.
fn by_msg_scan(req: proto::WiFiScanPayload) -> Option<proto::wi_fi_scan_payload::Payload> {
    use proto::wi_fi_scan_payload::Payload as P;
    use proto::WiFiScanMsgType as T;
    match (T::try_from(req.msg).ok()?, req.payload) {
        (T::TypeCmdScanStart, Some(p @ P::CmdScanStart(_))) => Some(p),
        (T::TypeCmdScanStart, _) => Some(P::CmdScanStart(proto::CmdScanStart::default())),
        (T::TypeCmdScanStatus, _) => Some(P::CmdScanStatus(proto::CmdScanStatus {})),
        (T::TypeCmdScanResult, Some(p @ P::CmdScanResult(_))) => Some(p),
        (T::TypeCmdScanResult, _) => Some(P::CmdScanResult(proto::CmdScanResult::default())),
        _ => None,
    }
}

fn by_msg_config(req: proto::WiFiConfigPayload) -> Option<proto::wi_fi_config_payload::Payload> {
    use proto::wi_fi_config_payload::Payload as P;
    use proto::WiFiConfigMsgType as T;
    match (T::try_from(req.msg).ok()?, req.payload) {
        (T::TypeCmdGetStatus, _) => Some(P::CmdGetStatus(proto::CmdGetStatus {})),
        (T::TypeCmdSetConfig, Some(p @ P::CmdSetConfig(_))) => Some(p),
        (T::TypeCmdApplyConfig, _) => Some(P::CmdApplyConfig(proto::CmdApplyConfig {})),
        _ => None,
    }
}

fn by_msg_ctrl(req: proto::WiFiCtrlPayload) -> Option<proto::wi_fi_ctrl_payload::Payload> {
    use proto::wi_fi_ctrl_payload::Payload as P;
    use proto::WiFiCtrlMsgType as T;
    match T::try_from(req.msg).ok()? {
        T::TypeCmdCtrlReset => Some(P::CmdCtrlReset(proto::CmdCtrlReset {})),
        T::TypeCmdCtrlReprov => Some(P::CmdCtrlReprov(proto::CmdCtrlReprov {})),
        _ => None,
    }
}

fn by_msg_claim(req: proto::AwsClaimPayload) -> Option<proto::aws_claim_payload::Payload> {
    use proto::aws_claim_payload::Payload as P;
    use proto::AwsClaimMsgType as T;
    match (T::try_from(req.msg).ok()?, req.payload) {
        (T::TypeCmdBegin, Some(p @ P::CmdBegin(_))) => Some(p),
        (T::TypeCmdChunk, Some(p @ P::CmdChunk(_))) => Some(p),
        (T::TypeCmdAbort, _) => Some(P::CmdAbort(proto::CmdClaimAbort {})),
        _ => None,
    }
}
