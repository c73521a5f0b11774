//! The `prov-config` endpoint: Wi-Fi settings, applying them, and the station status.

use std::time::Instant;

use claimlink_core::internal::proto::{self, Status};
use zeroize::Zeroizing;

use super::{DeviceFailure, Inner, SimDevice, SimWifiState};

impl SimDevice {
    /// Answers a `prov-config` request.
    pub(super) fn config_endpoint(
        &self,
        inner: &mut Inner,
        req: proto::WiFiConfigPayload,
    ) -> Result<proto::WiFiConfigPayload, DeviceFailure> {
        use proto::resp_get_status::State as S;
        use proto::wi_fi_config_payload::Payload as P;
        use proto::WiFiConfigMsgType as T;
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
        Ok(proto::WiFiConfigPayload {
            msg: msg as i32,
            payload: Some(payload),
        })
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
