//! The `prov-ctrl` endpoint: Wi-Fi reset and reprovision.

use std::time::Instant;

use crate::device::broken::BrokenBehaviour as Broken;

use super::{DeviceFailure, Inner, SimDevice, SimWifiState, WifiMachine};
use claimlink_core::internal::proto::{self, Status};

impl SimDevice {
    /// Answers a `prov-ctrl` request.
    pub(super) fn ctrl(
        &self,
        inner: &mut Inner,
        req: proto::WiFiCtrlPayload,
    ) -> Result<proto::WiFiCtrlPayload, DeviceFailure> {
        use proto::wi_fi_ctrl_payload::Payload as P;
        use proto::WiFiCtrlMsgType as T;
        let state = self.wifi_state_of(&inner.wifi, Instant::now());
        let (msg, payload, ok) = match by_msg_ctrl(req) {
            Some(P::CmdCtrlReset(_)) => {
                let ok = matches!(
                    state,
                    SimWifiState::Disconnected
                        | SimWifiState::Failed { .. }
                        | SimWifiState::AttemptFailed { .. }
                ) && !(self.config.breaks(Broken::RefusesResetAfterFailure)
                    && matches!(state, SimWifiState::Failed { .. }));
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
            if msg == T::TypeRespCtrlReset && self.config.breaks(Broken::ResetWipesClaim) {
                inner.claim = None;
            }
        }
        Ok(proto::WiFiCtrlPayload {
            msg: msg as i32,
            status: if ok {
                Status::Success as i32
            } else {
                Status::InternalError as i32
            },
            payload: Some(payload),
        })
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
