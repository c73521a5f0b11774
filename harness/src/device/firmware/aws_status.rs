//! The `aws-status` endpoint: where the device is, from Wi-Fi to the cloud half's last stage.

use std::time::Instant;

use crate::device::broken::BrokenBehaviour as Broken;

use super::{DeviceFailure, Inner, SimDevice, SimWifiState};
use claimlink_core::internal::proto::{self, Status};

impl SimDevice {
    /// Answers an `aws-status` request.
    pub(super) fn cloud_status(
        &self,
        inner: &mut Inner,
        req: proto::AwsStatusPayload,
    ) -> Result<proto::AwsStatusPayload, DeviceFailure> {
        use proto::aws_status_payload::Payload as P;
        use proto::{CloudFailureKind as K, CloudStage as St};
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
            SimWifiState::Disconnected
                if inner.claim.is_some() && !self.config.breaks(Broken::StatusHidesClaim) =>
            {
                (St::ClaimReceived, None)
            }
            SimWifiState::Disconnected if self.config.breaks(Broken::StatusClaimsWithoutClaim) => {
                (St::ClaimReceived, None)
            }
            // A provisioned device says who it is from boot on (identity.rs).
            SimWifiState::Disconnected if inner.cloud.stage == Some(St::Done) => (St::Done, None),
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
        let mut answer = proto::RespGetCloudStatus {
            stage: stage as i32,
            ip4_addr: ip,
            thing_name: inner.cloud.thing_name.clone(),
            certificate_id: inner.cloud.certificate_id.clone(),
            failure: fail,
        };
        // The test fault: once on Wi-Fi, a lying device says it is done as whatever it was told to.
        if let (Some(lie), SimWifiState::Connected { .. }) = (&self.config.lie_done_as, &wifi) {
            answer.stage = St::Done as i32;
            answer.thing_name = lie.thing_name.clone();
            answer.certificate_id = lie.certificate_id.clone();
            answer.failure = None;
        }
        if self.config.breaks(Broken::DoneWithoutCertificate)
            && matches!(wifi, SimWifiState::Connected { .. })
        {
            answer.stage = St::Done as i32;
            answer.certificate_id = String::new();
            answer.failure = None;
        }
        Ok(proto::AwsStatusPayload {
            msg: proto::AwsStatusMsgType::TypeRespGetCloudStatus as i32,
            status: Status::Success as i32,
            payload: Some(P::RespGet(answer)),
        })
    }
}
