//! The `prov-scan` endpoint: Wi-Fi scan start, status and results.

use crate::device::broken::BrokenBehaviour as Broken;

use super::{DeviceFailure, Inner, SimDevice};
use claimlink_core::internal::proto::{self, Status};

impl SimDevice {
    /// Answers a `prov-scan` request.
    pub(super) fn scan(
        &self,
        inner: &mut Inner,
        req: proto::WiFiScanPayload,
    ) -> Result<proto::WiFiScanPayload, DeviceFailure> {
        use proto::wi_fi_scan_payload::Payload as P;
        use proto::WiFiScanMsgType as T;
        let mut status = Status::Success;
        let (msg, payload) = match by_msg_scan(req) {
            Some(P::CmdScanStart(start)) => {
                inner.scan_done = true;
                inner.scan_group_channels = Some(start.group_channels);
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
                let entries =
                    if status == Status::Success && !self.config.breaks(Broken::ScanResultsEmpty) {
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
        Ok(proto::WiFiScanPayload {
            msg: msg as i32,
            status: status as i32,
            payload: Some(payload),
        })
    }
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
