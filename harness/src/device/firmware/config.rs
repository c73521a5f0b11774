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
                // network_provisioning `network_config.c` / `handlers.c`: the lengths are checked
                // (SSID < 33 bytes, passphrase < 64, the C arrays' sizes), then the settings replace
                // any earlier ones, whatever the station does: a second SetConfig is accepted and it
                // is the ApplyConfig that is refused.
                let valid = cmd.ssid.len() <= 32
                    && cmd.passphrase.len() <= 63
                    && (cmd.bssid.is_empty() || cmd.bssid.len() == 6);
                let status = if !valid {
                    Status::InvalidArgument
                } else {
                    inner.wifi.set =
                        Some((cmd.ssid.clone(), Zeroizing::new(cmd.passphrase.clone())));
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
                // `handlers.c` `apply_config_handler`: refused without settings, and by
                // `network_prov_mgr_configure_wifi_sta` once credentials were applied (state
                // CRED_RECV or later: joining, failed, connected) until a Reset / Reprov. The
                // settings are freed either way.
                let settings = inner.wifi.set.take();
                let status =
                    if let (Some((ssid, passphrase)), None) = (settings, inner.wifi.applied_at) {
                        inner.wifi.ssid = ssid;
                        inner.wifi.passphrase = passphrase;
                        inner.wifi.applied_at = Some(now);
                        inner.wifi.stale_report = None;
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
                let reported = self.reported_wifi_state(&inner.wifi, now);
                // `handlers.c` `get_status_handler`: answering Connected calls
                // `network_prov_mgr_done()`, which stops provisioning when auto-stop is on.
                if matches!(reported, SimWifiState::Connected { .. })
                    && self.config.auto_stop_after_ip.is_some()
                    && inner.done_reported_at.is_none()
                {
                    inner.done_reported_at = Some(now);
                }
                let (sta, state) = match reported {
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
