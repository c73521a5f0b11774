//! What an installer does with a session: scan for Wi-Fi, hand over the network and the claim, apply,
//! watch the Wi-Fi and cloud status, and reset or reprovision after a wrong password.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use prost::Message;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::proto::{self, Status};
use super::session::malformed;
use super::session::status_name;
use super::{DeviceSession, InvalidInputReason, MalformedReason, ProtocolError, UnsupportedReason};
use crate::endpoint;
use crate::secret::{SecretString, WipedOnDrop};

/// How a Wi-Fi network authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WifiAuth {
    /// Open network.
    Open,
    /// WEP.
    Wep,
    /// WPA-PSK.
    WpaPsk,
    /// WPA2-PSK.
    Wpa2Psk,
    /// WPA/WPA2-PSK.
    WpaWpa2Psk,
    /// WPA2-Enterprise.
    Wpa2Enterprise,
    /// WPA3-PSK.
    Wpa3Psk,
    /// WPA2/WPA3-PSK.
    Wpa2Wpa3Psk,
    /// A value this SDK does not know.
    Unknown(i32),
}

impl WifiAuth {
    fn from_wire(v: i32) -> Self {
        use proto::WifiAuthMode as M;
        match M::try_from(v) {
            Ok(M::Open) => Self::Open,
            Ok(M::Wep) => Self::Wep,
            Ok(M::WpaPsk) => Self::WpaPsk,
            Ok(M::Wpa2Psk) => Self::Wpa2Psk,
            Ok(M::WpaWpa2Psk) => Self::WpaWpa2Psk,
            Ok(M::Wpa2Enterprise) => Self::Wpa2Enterprise,
            Ok(M::Wpa3Psk) => Self::Wpa3Psk,
            Ok(M::Wpa2Wpa3Psk) => Self::Wpa2Wpa3Psk,
            Err(_) => Self::Unknown(v),
        }
    }
}

/// A network the device can see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WifiNetwork {
    /// The SSID as bytes (SSIDs need not be UTF-8).
    pub ssid: Vec<u8>,
    /// The BSSID, when given.
    pub bssid: Option<[u8; 6]>,
    /// The channel.
    pub channel: u32,
    /// Signal strength, dBm.
    pub rssi: i32,
    /// Authentication.
    pub auth: WifiAuth,
}

impl WifiNetwork {
    /// The SSID for display (invalid UTF-8 replaced).
    pub fn ssid_lossy(&self) -> String {
        String::from_utf8_lossy(&self.ssid).into_owned()
    }
}

/// The network the device should join. The passphrase is a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WifiCredentials {
    ssid: Vec<u8>,
    passphrase: SecretString,
    bssid: Option<[u8; 6]>,
    channel: Option<u8>,
}

impl WifiCredentials {
    /// Checks an SSID (1–32 bytes) and a passphrase (empty for open networks, 8–63 characters, or 64
    /// hex digits).
    pub fn new(ssid: impl Into<Vec<u8>>, passphrase: SecretString) -> Result<Self, ProtocolError> {
        let ssid = ssid.into();
        if ssid.is_empty() || ssid.len() > 32 {
            return Err(ProtocolError::InvalidInput(InvalidInputReason::SsidLength));
        }
        let p = passphrase.expose();
        let ok = p.is_empty()
            || (8..=63).contains(&p.len())
            || (p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(ProtocolError::InvalidInput(
                InvalidInputReason::WifiPassphrase,
            ));
        }
        Ok(Self {
            ssid,
            passphrase,
            bssid: None,
            channel: None,
        })
    }

    /// Pins the access point.
    pub fn with_bssid(mut self, bssid: [u8; 6]) -> Self {
        self.bssid = Some(bssid);
        self
    }

    /// Pins the channel.
    pub fn with_channel(mut self, channel: u8) -> Self {
        self.channel = Some(channel);
        self
    }

    /// The SSID.
    pub fn ssid(&self) -> &[u8] {
        &self.ssid
    }
}

/// Why a Wi-Fi connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WifiFailure {
    /// Wrong passphrase.
    AuthError,
    /// The network is not there.
    NetworkNotFound,
    /// A reason this SDK does not know.
    Unknown(i32),
}

/// The device's Wi-Fi station state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WifiState {
    /// Connected, with an address.
    Connected {
        /// The IPv4 address.
        ip: Option<Ipv4Addr>,
        /// The SSID.
        ssid: Vec<u8>,
        /// The channel.
        channel: i32,
    },
    /// Still trying.
    Connecting,
    /// Not connected (no configuration applied yet).
    Disconnected,
    /// Failed for good (until a new configuration).
    Failed(WifiFailure),
    /// An attempt failed; the device will retry `attempts_remaining` more times.
    AttemptFailed {
        /// Retries left.
        attempts_remaining: u32,
    },
}

/// An answer on `endpoint` that is not the message expected.
fn unexpected(endpoint: &str, expected: &'static str) -> ProtocolError {
    malformed(endpoint, MalformedReason::UnexpectedMessage { expected })
}

fn check_status(endpoint: &str, status: i32) -> Result<(), ProtocolError> {
    if status == Status::Success as i32 {
        Ok(())
    } else {
        Err(ProtocolError::DeviceRefused {
            endpoint: endpoint.to_owned(),
            status: status_name(status),
        })
    }
}

/// Bytes one scan result takes at most on the wire (SSID 32 + BSSID 6 + numbers + tags).
const SCAN_ENTRY_MAX: usize = 60;
/// Bytes of the scan envelope around the entries.
const SCAN_ENVELOPE: usize = 16;
/// Bytes of the claim-chunk envelope around the data.
const CLAIM_CHUNK_ENVELOPE: usize = 24;
/// Bytes of the claim-begin envelope around the data (SHA-256 included).
const CLAIM_BEGIN_ENVELOPE: usize = 56;

impl DeviceSession {
    async fn scan(
        &self,
        payload: proto::wi_fi_scan_payload::Payload,
        msg: proto::WiFiScanMsgType,
    ) -> Result<proto::WiFiScanPayload, ProtocolError> {
        let answer: proto::WiFiScanPayload = self
            .call(
                endpoint::SCAN,
                &proto::WiFiScanPayload {
                    msg: msg as i32,
                    status: 0,
                    payload: Some(payload),
                },
            )
            .await?;
        check_status(endpoint::SCAN, answer.status)?;
        Ok(answer)
    }

    /// Scans for networks (blocking scan on the device), then reads every result, as many per request
    /// as fit the message cap.
    pub async fn scan_wifi(&self) -> Result<Vec<WifiNetwork>, ProtocolError> {
        use proto::wi_fi_scan_payload::Payload as P;
        use proto::WiFiScanMsgType as T;
        self.scan(
            P::CmdScanStart(proto::CmdScanStart {
                blocking: true,
                passive: false,
                group_channels: 0,
                period_ms: 120,
            }),
            T::TypeCmdScanStart,
        )
        .await?;
        let status = match self
            .scan(
                P::CmdScanStatus(proto::CmdScanStatus {}),
                T::TypeCmdScanStatus,
            )
            .await?
            .payload
        {
            Some(P::RespScanStatus(s)) => s,
            _ => return Err(unexpected(endpoint::SCAN, "RespScanStatus")),
        };
        if !status.scan_finished {
            return Err(malformed(endpoint::SCAN, MalformedReason::ScanUnfinished));
        }
        let total = status.result_count.min(64);
        let per_page = u32::try_from(
            ((self.max_plaintext().await.saturating_sub(SCAN_ENVELOPE)) / SCAN_ENTRY_MAX).max(1),
        )
        .unwrap_or(1);
        let mut networks = Vec::new();
        let mut start = 0;
        while start < total {
            let count = per_page.min(total - start);
            let page = match self
                .scan(
                    P::CmdScanResult(proto::CmdScanResult {
                        start_index: start,
                        count,
                    }),
                    T::TypeCmdScanResult,
                )
                .await?
                .payload
            {
                Some(P::RespScanResult(r)) => r,
                _ => return Err(unexpected(endpoint::SCAN, "RespScanResult")),
            };
            if page.entries.is_empty() || page.entries.len() > count as usize {
                return Err(malformed(endpoint::SCAN, MalformedReason::ScanPageSize));
            }
            for e in page.entries {
                if e.ssid.len() > 32 {
                    return Err(malformed(
                        endpoint::SCAN,
                        MalformedReason::ScannedSsidLength,
                    ));
                }
                networks.push(WifiNetwork {
                    ssid: e.ssid,
                    bssid: <[u8; 6]>::try_from(e.bssid.as_slice()).ok(),
                    channel: e.channel,
                    rssi: e.rssi,
                    auth: WifiAuth::from_wire(e.auth),
                });
            }
            start += count;
        }
        networks.sort_by_key(|n| std::cmp::Reverse(n.rssi));
        Ok(networks)
    }

    async fn config(
        &self,
        payload: proto::wi_fi_config_payload::Payload,
        msg: proto::WiFiConfigMsgType,
    ) -> Result<proto::wi_fi_config_payload::Payload, ProtocolError> {
        // The passphrase in a `CmdSetConfig` is wiped when the request is dropped, also when the
        // exchange is cancelled half-way.
        let request = WipedOnDrop(
            proto::WiFiConfigPayload {
                msg: msg as i32,
                payload: Some(payload),
            },
            |m: &mut proto::WiFiConfigPayload| {
                if let Some(proto::wi_fi_config_payload::Payload::CmdSetConfig(c)) =
                    m.payload.as_mut()
                {
                    c.passphrase.zeroize();
                }
            },
        );
        let answer: proto::WiFiConfigPayload = self.call(endpoint::CONFIG, &request.0).await?;
        answer
            .payload
            .ok_or_else(|| malformed(endpoint::CONFIG, MalformedReason::EmptyAnswer))
    }

    /// Sends the network to join (the passphrase is encrypted by the session).
    pub async fn set_wifi_config(&self, wifi: &WifiCredentials) -> Result<(), ProtocolError> {
        use proto::wi_fi_config_payload::Payload as P;
        let cmd = proto::CmdSetConfig {
            ssid: wifi.ssid.clone(),
            passphrase: wifi.passphrase.expose().as_bytes().to_vec(),
            bssid: wifi.bssid.map(|b| b.to_vec()).unwrap_or_default(),
            channel: wifi.channel.map(i32::from).unwrap_or(0),
        };
        let result = self
            .config(
                P::CmdSetConfig(cmd),
                proto::WiFiConfigMsgType::TypeCmdSetConfig,
            )
            .await;
        match result? {
            P::RespSetConfig(r) => check_status(endpoint::CONFIG, r.status),
            _ => Err(unexpected(endpoint::CONFIG, "RespSetConfig")),
        }
    }

    /// Tells the device to join the configured network.
    pub async fn apply_wifi_config(&self) -> Result<(), ProtocolError> {
        use proto::wi_fi_config_payload::Payload as P;
        match self
            .config(
                P::CmdApplyConfig(proto::CmdApplyConfig {}),
                proto::WiFiConfigMsgType::TypeCmdApplyConfig,
            )
            .await?
        {
            P::RespApplyConfig(r) => check_status(endpoint::CONFIG, r.status),
            _ => Err(unexpected(endpoint::CONFIG, "RespApplyConfig")),
        }
    }

    /// The device's Wi-Fi state.
    pub async fn wifi_status(&self) -> Result<WifiState, ProtocolError> {
        use proto::resp_get_status::State as S;
        use proto::wi_fi_config_payload::Payload as P;
        use proto::WifiStationState as W;
        let r = match self
            .config(
                P::CmdGetStatus(proto::CmdGetStatus {}),
                proto::WiFiConfigMsgType::TypeCmdGetStatus,
            )
            .await?
        {
            P::RespGetStatus(r) => r,
            _ => return Err(unexpected(endpoint::CONFIG, "RespGetStatus")),
        };
        check_status(endpoint::CONFIG, r.status)?;
        let state = W::try_from(r.sta_state).map_err(|_| {
            malformed(
                endpoint::CONFIG,
                MalformedReason::UnknownStationState(r.sta_state),
            )
        })?;
        Ok(match (state, r.state) {
            (W::Connected, Some(S::Connected(c))) => WifiState::Connected {
                ip: c.ip4_addr.parse().ok(),
                ssid: c.ssid,
                channel: c.channel,
            },
            (W::Connected, _) => {
                return Err(malformed(
                    endpoint::CONFIG,
                    MalformedReason::ConnectedWithoutDetails,
                ))
            }
            // ESP-IDF ≥ 5.4 reports a failed attempt with retries left while still Connecting.
            (W::Connecting, Some(S::AttemptFailed(a)))
            | (W::ConnectionFailed, Some(S::AttemptFailed(a))) => WifiState::AttemptFailed {
                attempts_remaining: a.attempts_remaining,
            },
            (W::Connecting, _) => WifiState::Connecting,
            (W::Disconnected, _) => WifiState::Disconnected,
            (W::ConnectionFailed, Some(S::FailReason(reason))) => {
                WifiState::Failed(match proto::WifiConnectFailedReason::try_from(reason) {
                    Ok(proto::WifiConnectFailedReason::AuthError) => WifiFailure::AuthError,
                    Ok(proto::WifiConnectFailedReason::NetworkNotFound) => {
                        WifiFailure::NetworkNotFound
                    }
                    Err(_) => WifiFailure::Unknown(reason),
                })
            }
            (W::ConnectionFailed, _) => WifiState::Failed(WifiFailure::Unknown(-1)),
        })
    }

    async fn ctrl(
        &self,
        payload: proto::wi_fi_ctrl_payload::Payload,
        msg: proto::WiFiCtrlMsgType,
    ) -> Result<(), ProtocolError> {
        let answer: proto::WiFiCtrlPayload = self
            .call(
                endpoint::CTRL,
                &proto::WiFiCtrlPayload {
                    msg: msg as i32,
                    status: 0,
                    payload: Some(payload),
                },
            )
            .await?;
        check_status(endpoint::CTRL, answer.status)
    }

    /// Resets the device's Wi-Fi state machine after a failure, so a new configuration can be sent
    /// on the same session.
    pub async fn reset_wifi(&self) -> Result<(), ProtocolError> {
        self.ctrl(
            proto::wi_fi_ctrl_payload::Payload::CmdCtrlReset(proto::CmdCtrlReset {}),
            proto::WiFiCtrlMsgType::TypeCmdCtrlReset,
        )
        .await
    }

    /// Asks a provisioned device to accept new credentials.
    pub async fn reprovision(&self) -> Result<(), ProtocolError> {
        self.ctrl(
            proto::wi_fi_ctrl_payload::Payload::CmdCtrlReprov(proto::CmdCtrlReprov {}),
            proto::WiFiCtrlMsgType::TypeCmdCtrlReprov,
        )
        .await
    }

    async fn claim_call(
        &self,
        payload: proto::aws_claim_payload::Payload,
        msg: proto::AwsClaimMsgType,
    ) -> Result<proto::aws_claim_payload::Payload, ProtocolError> {
        // Claim bytes (the private key among them) are wiped when the request is dropped.
        let request = WipedOnDrop(
            proto::AwsClaimPayload {
                msg: msg as i32,
                status: 0,
                error: 0,
                payload: Some(payload),
            },
            |m: &mut proto::AwsClaimPayload| {
                use proto::aws_claim_payload::Payload as P;
                match m.payload.as_mut() {
                    Some(P::CmdBegin(b)) => b.data.zeroize(),
                    Some(P::CmdChunk(c)) => c.data.zeroize(),
                    _ => {}
                }
            },
        );
        let answer: proto::AwsClaimPayload = self.call(endpoint::AWS_CLAIM, &request.0).await?;
        if answer.status != Status::Success as i32
            || answer.error != proto::ClaimTransferError::None as i32
        {
            let reason = proto::ClaimTransferError::try_from(answer.error)
                .map_or_else(|_| format!("error {}", answer.error), |e| format!("{e:?}"));
            return Err(ProtocolError::DeviceRefused {
                endpoint: endpoint::AWS_CLAIM.into(),
                status: format!("{} / {reason}", status_name(answer.status)),
            });
        }
        answer
            .payload
            .ok_or_else(|| malformed(endpoint::AWS_CLAIM, MalformedReason::EmptyAnswer))
    }

    /// Transfers the claim (certificate and key as DER, with the IoT endpoint and template) in chunks
    /// that fit the message cap; the last chunk commits, and the device checks the SHA-256.
    pub async fn send_claim(
        &self,
        claim: &ClaimBundle<'_>,
    ) -> Result<ClaimTransfer, ProtocolError> {
        let caps = self.capabilities();
        if !caps.aws.as_ref().is_some_and(|a| a.claim) {
            return Err(ProtocolError::Unsupported(
                UnsupportedReason::AwsClaimEndpoint,
            ));
        }
        let bundle = encode_bundle(claim)?;
        let digest = Sha256::digest(bundle.as_slice());
        let total = u32::try_from(bundle.len())
            .map_err(|_| ProtocolError::ClaimBundleTooLarge { len: bundle.len() })?;
        let max = self.max_plaintext().await;
        let first_len = max.saturating_sub(CLAIM_BEGIN_ENVELOPE).min(bundle.len());
        let chunk_len = max.saturating_sub(CLAIM_CHUNK_ENVELOPE).max(1);
        let mut exchanges = 1;
        use proto::aws_claim_payload::Payload as P;
        let begin = proto::CmdClaimBegin {
            total_length: total,
            sha256: digest.to_vec(),
            data: bundle[..first_len].to_vec(),
            commit: first_len == bundle.len(),
        };
        let mut committed = match self
            .claim_call(P::CmdBegin(begin), proto::AwsClaimMsgType::TypeCmdBegin)
            .await?
        {
            P::RespBegin(r) if r.received as usize == first_len => r.committed,
            P::RespBegin(r) => {
                return Err(malformed(
                    endpoint::AWS_CLAIM,
                    MalformedReason::ClaimLengthAcknowledged {
                        sent: first_len,
                        acknowledged: r.received,
                    },
                ))
            }
            _ => return Err(unexpected(endpoint::AWS_CLAIM, "RespClaimBegin")),
        };
        let mut offset = first_len;
        while offset < bundle.len() {
            let end = (offset + chunk_len).min(bundle.len());
            let chunk = proto::CmdClaimChunk {
                offset: u32::try_from(offset).unwrap_or(u32::MAX),
                data: bundle[offset..end].to_vec(),
                commit: end == bundle.len(),
            };
            exchanges += 1;
            committed = match self
                .claim_call(P::CmdChunk(chunk), proto::AwsClaimMsgType::TypeCmdChunk)
                .await?
            {
                P::RespChunk(r) if r.received as usize == end => r.committed,
                P::RespChunk(r) => {
                    return Err(malformed(
                        endpoint::AWS_CLAIM,
                        MalformedReason::ClaimLengthAcknowledged {
                            sent: end,
                            acknowledged: r.received,
                        },
                    ))
                }
                _ => return Err(unexpected(endpoint::AWS_CLAIM, "RespClaimChunk")),
            };
            offset = end;
        }
        if !committed {
            return Err(malformed(
                endpoint::AWS_CLAIM,
                MalformedReason::ClaimNotCommitted,
            ));
        }
        Ok(ClaimTransfer {
            bytes: bundle.len(),
            exchanges,
        })
    }

    /// Makes the device wipe any claim it holds (whole or partial).
    pub async fn abort_claim(&self) -> Result<(), ProtocolError> {
        use proto::aws_claim_payload::Payload as P;
        match self
            .claim_call(
                P::CmdAbort(proto::CmdClaimAbort {}),
                proto::AwsClaimMsgType::TypeCmdAbort,
            )
            .await?
        {
            P::RespAbort(_) => Ok(()),
            _ => Err(unexpected(endpoint::AWS_CLAIM, "RespClaimAbort")),
        }
    }

    /// The device's progress with the cloud.
    pub async fn cloud_status(&self) -> Result<CloudStatus, ProtocolError> {
        if !self.capabilities().aws.as_ref().is_some_and(|a| a.status) {
            return Err(ProtocolError::Unsupported(
                UnsupportedReason::AwsStatusEndpoint,
            ));
        }
        use proto::aws_status_payload::Payload as P;
        let answer: proto::AwsStatusPayload = self
            .call(
                endpoint::AWS_STATUS,
                &proto::AwsStatusPayload {
                    msg: proto::AwsStatusMsgType::TypeCmdGetCloudStatus as i32,
                    status: 0,
                    payload: Some(P::CmdGet(proto::CmdGetCloudStatus {})),
                },
            )
            .await?;
        check_status(endpoint::AWS_STATUS, answer.status)?;
        let r = match answer.payload {
            Some(P::RespGet(r)) => r,
            _ => return Err(unexpected(endpoint::AWS_STATUS, "RespGetCloudStatus")),
        };
        let stage = proto::CloudStage::try_from(r.stage).map_err(|_| {
            malformed(
                endpoint::AWS_STATUS,
                MalformedReason::UnknownCloudStage(r.stage),
            )
        })?;
        let failure = match r.failure {
            Some(f) if f.kind != proto::CloudFailureKind::NoFailure as i32 => Some(CloudFailure {
                kind: proto::CloudFailureKind::try_from(f.kind)
                    .unwrap_or(proto::CloudFailureKind::Internal),
                status_code: f.status_code,
                error_code: f.error_code,
                error_message: f.error_message,
            }),
            _ => None,
        };
        if stage == proto::CloudStage::Failed && failure.is_none() {
            return Err(malformed(
                endpoint::AWS_STATUS,
                MalformedReason::FailedWithoutReason,
            ));
        }
        Ok(CloudStatus {
            stage,
            ip: r.ip4_addr.parse().ok(),
            thing_name: Some(r.thing_name).filter(|t| !t.is_empty()),
            certificate_id: Some(r.certificate_id).filter(|t| !t.is_empty()),
            failure,
        })
    }
}

/// What a claim transfer took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimTransfer {
    /// Bundle size in bytes.
    pub bytes: usize,
    /// Request/response exchanges used.
    pub exchanges: usize,
}

/// A failure the device reports from its cloud flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudFailure {
    /// What failed.
    pub kind: proto::CloudFailureKind,
    /// AWS's status code, when AWS answered.
    pub status_code: u32,
    /// AWS's errorCode (e.g. from a RegisterThing rejection).
    pub error_code: String,
    /// AWS's errorMessage.
    pub error_message: String,
}

/// The device's cloud progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudStatus {
    /// The stage reached.
    pub stage: proto::CloudStage,
    /// Its IPv4 address, once it has one.
    pub ip: Option<Ipv4Addr>,
    /// The thing it registered as.
    pub thing_name: Option<String>,
    /// Its permanent certificate id.
    pub certificate_id: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<CloudFailure>,
}

/// What the device gets in the `aws-claim` transfer, as this layer sees it: borrowed from the caller's
/// claim (the orchestrator builds it), encoded here into the wire's `ClaimBundle` message.
#[derive(Clone, Copy)]
pub struct ClaimBundle<'a> {
    /// The claim certificate, DER.
    pub certificate_der: &'a [u8],
    /// The claim's RSA private key, PEM (PKCS#1 or PKCS#8).
    pub private_key_pem: &'a SecretString,
    /// The claim certificate's id.
    pub certificate_id: &'a str,
    /// When the claim expires, on the server's clock.
    pub expires_at: std::time::SystemTime,
    /// Seconds left on the claim when it is sent (for a device whose clock is not yet set).
    pub seconds_left: u32,
    /// The AWS IoT data endpoint the device connects to.
    pub iot_endpoint: &'a str,
    /// The provisioning template's name.
    pub template_name: &'a str,
    /// The template's parameters.
    pub template_parameters: &'a BTreeMap<String, String>,
}

impl std::fmt::Debug for ClaimBundle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimBundle")
            .field("certificate_id", &self.certificate_id)
            .field("iot_endpoint", &self.iot_endpoint)
            .field("template_name", &self.template_name)
            .field("private_key_pem", &self.private_key_pem)
            .finish_non_exhaustive()
    }
}

/// The claim key's primes and exponent (RSA, PKCS#1 or PKCS#8), in zeroizing buffers.
fn rsa_primes(key_pem: &SecretString) -> Result<proto::RsaPrimes, ProtocolError> {
    use der::Decode;
    let (label, doc) = der::SecretDocument::from_pem(key_pem.expose())
        .map_err(|_| ProtocolError::InvalidInput(InvalidInputReason::ClaimKeyNotPem))?;
    let pkcs1_der = match label {
        "RSA PRIVATE KEY" => doc.as_bytes(),
        "PRIVATE KEY" => {
            pkcs8::PrivateKeyInfo::from_der(doc.as_bytes())
                .map_err(|_| ProtocolError::InvalidInput(InvalidInputReason::ClaimKeyNotPkcs8))?
                .private_key
        }
        _ => {
            return Err(ProtocolError::InvalidInput(
                InvalidInputReason::ClaimKeyNotRsa,
            ))
        }
    };
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1_der)
        .map_err(|_| ProtocolError::InvalidInput(InvalidInputReason::ClaimKeyNotRsa))?;
    Ok(proto::RsaPrimes {
        p: key.prime1.as_bytes().to_vec(),
        q: key.prime2.as_bytes().to_vec(),
        e: key.public_exponent.as_bytes().to_vec(),
    })
}

/// Serializes the claim bundle; the buffer is zeroized when dropped.
fn encode_bundle(claim: &ClaimBundle<'_>) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let mut bundle = proto::ClaimBundle {
        certificate_der: claim.certificate_der.to_vec(),
        private_key_der: Vec::new(),
        certificate_id: claim.certificate_id.to_owned(),
        expires_at_epoch: crate::time::epoch_secs(claim.expires_at),
        seconds_left: claim.seconds_left,
        iot_endpoint: claim.iot_endpoint.to_owned(),
        template_name: claim.template_name.to_owned(),
        template_parameters: claim.template_parameters.clone(),
        rsa_key: Some(rsa_primes(claim.private_key_pem)?),
    };
    let bytes = Zeroizing::new(bundle.encode_to_vec());
    if let Some(k) = bundle.rsa_key.as_mut() {
        k.p.zeroize();
        k.q.zeroize();
    }
    Ok(bytes)
}
