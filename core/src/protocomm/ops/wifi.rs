//! The Wi-Fi half of the operations: the network types, and scanning (`prov-scan`), configuring
//! (`prov-config`) and resetting or reprovisioning (`prov-ctrl`) the device's station.

use std::net::Ipv4Addr;

use zeroize::Zeroize;

use super::{check_status, unexpected};
use crate::endpoint;
use crate::protocomm::proto;
use crate::protocomm::session::malformed;
use crate::protocomm::{DeviceSession, InvalidInputReason, MalformedReason, ProtocolError};
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

/// Bytes one scan result takes at most on the wire (SSID 32 + BSSID 6 + numbers + tags).
const SCAN_ENTRY_MAX: usize = 60;
/// Bytes of the scan envelope around the entries.
const SCAN_ENVELOPE: usize = 16;

/// Channels scanned in a row over SoftAP before the device's radio returns to its own channel to
/// beacon: ESP-IDF's `esp_prov.py` (`scan_wifi_APs`) uses 5 ("usually works out in most cases").
pub const SOFTAP_GROUP_CHANNELS: u32 = 5;

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
    /// as fit the message cap. Over the device's access point the scan goes
    /// [`SOFTAP_GROUP_CHANNELS`] channels at a time so the phone stays connected; over BLE all at once.
    pub async fn scan_wifi(&self) -> Result<Vec<WifiNetwork>, ProtocolError> {
        use proto::wi_fi_scan_payload::Payload as P;
        use proto::WiFiScanMsgType as T;
        let group_channels = if self.link().over_device_access_point() {
            SOFTAP_GROUP_CHANNELS
        } else {
            0
        };
        self.scan(
            P::CmdScanStart(proto::CmdScanStart {
                blocking: true,
                passive: false,
                group_channels,
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
}
