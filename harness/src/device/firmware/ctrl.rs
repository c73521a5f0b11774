//! The `prov-ctrl` endpoint: Wi-Fi reset and reprovision, as network_provisioning (≥ 1.2.1) answers
//! them (`network_ctrl.c` turns the manager's error into `InternalError`; `manager.c`):
//!
//! * `Reset` (`network_prov_mgr_reset_wifi_sm_state_on_failure`): accepted in STARTED (nothing
//!   applied: a no-op since 1.2.1) and FAIL (the join gave up: the station settings are cleared, state
//!   back to STARTED); refused while joining (an attempt failed but more are to come included) and
//!   once connected.
//! * `Reprov` (`network_prov_mgr_reset_wifi_sm_state_for_reprovision`): refused unless the firmware
//!   disabled auto-stop; then accepted in any state (disconnects, state back to STARTED).
//!
//! Neither touches the `wifi_state` `GetStatus` reports: it keeps saying what it said.

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
        let now = Instant::now();
        let state = self.wifi_state_of(&inner.wifi, now);
        let (msg, payload, ok) = match by_msg_ctrl(req) {
            Some(P::CmdCtrlReset(_)) => {
                let ok = match state {
                    SimWifiState::Disconnected => true,
                    SimWifiState::Failed { .. } => {
                        !self.config.breaks(Broken::RefusesResetAfterFailure)
                    }
                    SimWifiState::Connecting
                    | SimWifiState::AttemptFailed { .. }
                    | SimWifiState::Connected { .. } => false,
                };
                (
                    T::TypeRespCtrlReset,
                    P::RespCtrlReset(proto::RespCtrlReset {}),
                    ok,
                )
            }
            Some(P::CmdCtrlReprov(_)) => {
                let ok = self.config.auto_stop_after_ip.is_none();
                (
                    T::TypeRespCtrlReprov,
                    P::RespCtrlReprov(proto::RespCtrlReprov {}),
                    ok,
                )
            }
            _ => return Err(DeviceFailure::Refused("unexpected ctrl message".into())),
        };
        if ok {
            // Settings set but not applied stay (they live in the config handler's context, which
            // only ApplyConfig frees); the station's are cleared.
            let report = self.reported_wifi_state(&inner.wifi, now);
            let old = std::mem::take(&mut inner.wifi);
            inner.wifi = WifiMachine {
                set: old.set,
                ..WifiMachine::default()
            };
            inner.wifi.stale_report = Some(report);
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
