//! Watching the device: `aws-status` polled until it is done, failed, or out of time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::endpoint;
use crate::protocomm::ops::CloudStatus;
use crate::protocomm::proto::{CloudFailureKind, CloudStage};
use crate::protocomm::{DeviceSession, MalformedReason, ProtocolError};
use crate::transport::LinkError;

use super::handover::Handover;
use super::progress::ProgressLog;
use super::{ProvisionError, ProvisionOptions, ProvisionedDevice, ProvisioningSession, Stage};

impl ProvisioningSession {
    /// The device can no longer be asked (its link failed after it may have applied Wi-Fi): only the
    /// cloud can tell whether it used the claim. Confirms the thing the device last named, or the
    /// expected one; without either, the link's failure is the run's.
    pub(super) async fn confirm_without_device(
        &self,
        link_error: LinkError,
        last: Option<&CloudStatus>,
        handover: &Handover,
        options: &ProvisionOptions,
        progress: &mut ProgressLog<'_>,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        let thing = last.and_then(|s| s.thing_name.clone()).or_else(|| {
            options
                .expected_thing_name
                .as_ref()
                .map(|t| t.as_str().to_owned())
        });
        let Some(thing) = thing else {
            return Err(ProtocolError::Link(link_error).into());
        };
        let certificate = last.and_then(|s| s.certificate_id.clone());
        self.confirm(&thing, certificate, handover, options, progress)
            .await
    }

    /// Polls `aws-status` until the device is done, failed, or out of time; then confirms with the cloud.
    pub(super) async fn watch(
        &self,
        session: &Arc<DeviceSession>,
        handover: &Handover,
        options: &ProvisionOptions,
        progress: &mut ProgressLog<'_>,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        let config = self.provisioner.config.clone();
        let claim = &handover.claim;
        let applied = Instant::now();
        let mut certificate_at: Option<Instant> = None;
        let mut last: Option<CloudStatus> = None;
        loop {
            let status = match session.cloud_status().await {
                Ok(s) => s,
                // Devices stop BLE soon after they get an address — often before a status read saw
                // the address: once Wi-Fi was applied, go on through the cloud. The same for any
                // other link failure then (an answer too large, or too late): the device holds the
                // claim and may be using it, so only the cloud can tell whether it succeeded.
                Err(ProtocolError::Link(link_error))
                    if progress.last_stage().reached_wifi_applied() =>
                {
                    tracing::info!(
                        error = %link_error,
                        "the device went away or stopped answering after Wi-Fi was applied; confirming through the cloud"
                    );
                    return self
                        .confirm_without_device(
                            link_error,
                            last.as_ref(),
                            handover,
                            options,
                            progress,
                        )
                        .await;
                }
                Err(e) => return Err(e.into()),
            };
            progress.known.learn(
                status.ip,
                status.thing_name.as_deref(),
                status.certificate_id.as_deref(),
            );
            if let Some(stage) = Stage::reported_by_device(status.stage) {
                // The device's stages are sequential: a stage seen implies the ones before it, even
                // when they came and went between two status reads.
                for passed in stage.device_steps_before() {
                    if !progress.timings.iter().any(|(s, _)| *s == passed) {
                        let detail = if passed == Stage::WifiConnected {
                            status.ip.map(|ip| format!("ip {ip}"))
                        } else {
                            Some("reached between two status reads".to_owned())
                        };
                        progress.emit(passed, detail);
                    }
                }
                progress.emit(
                    stage,
                    status
                        .ip
                        .map(|ip| format!("ip {ip}"))
                        .filter(|_| stage == Stage::WifiConnected),
                );
                if stage.reached_certificate() && certificate_at.is_none() {
                    certificate_at = Some(Instant::now());
                }
            }
            match status.stage {
                CloudStage::Done => {
                    let thing =
                        status
                            .thing_name
                            .clone()
                            .ok_or_else(|| ProvisionError::NotConfirmed {
                                thing_name: String::new(),
                            })?;
                    return self
                        .confirm(
                            &thing,
                            status.certificate_id.clone(),
                            handover,
                            options,
                            progress,
                        )
                        .await;
                }
                CloudStage::Failed => return Err(reported_failure(status, progress)),
                _ => {}
            }
            // The watchdog.
            let stage = progress.last_stage();
            if certificate_at.is_none() && claim.deadline().has_passed() {
                return Err(ProvisionError::DeadlineMissed { stage });
            }
            if !stage.reached_wifi() && applied.elapsed() > config.wifi_timeout {
                return Err(ProvisionError::WifiTimeout);
            }
            if certificate_at.is_some_and(|t| t.elapsed() > config.cloud_timeout) {
                return Err(ProvisionError::StageTimeout { stage });
            }
            last = Some(status);
            let next = config
                .poll_interval
                .min(claim.deadline().remaining().max(Duration::from_millis(10)));
            tokio::time::sleep(next).await;
        }
    }
}

/// The error a device's `Failed` status stands for; a Wi-Fi failure is also reported as
/// [`Stage::WifiFailed`]. A `Failed` without a failure breaks the protocol (the protocol layer
/// refuses one already; this keeps the rule where the status is read).
fn reported_failure(status: CloudStatus, progress: &mut ProgressLog<'_>) -> ProvisionError {
    let Some(f) = status.failure else {
        return ProtocolError::Malformed {
            endpoint: endpoint::AWS_STATUS.to_owned(),
            reason: MalformedReason::FailedWithoutReason,
        }
        .into();
    };
    match f.kind {
        CloudFailureKind::WifiAuth => {
            progress.emit(Stage::WifiFailed, Some("wrong passphrase".into()));
            ProvisionError::WifiAuthFailed
        }
        CloudFailureKind::WifiNotFound => {
            progress.emit(Stage::WifiFailed, Some("network not found".into()));
            ProvisionError::WifiNetworkNotFound
        }
        CloudFailureKind::DhcpTimeout => ProvisionError::WifiTimeout,
        CloudFailureKind::ClaimExpired => ProvisionError::DeadlineMissed {
            stage: progress.last_stage(),
        },
        kind => ProvisionError::CloudRejected {
            kind,
            status_code: f.status_code,
            error_code: f.error_code,
            error_message: f.error_message,
            thing_name: status.thing_name,
            certificate_id: status.certificate_id,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::protocomm::ops::CloudFailure;
    use crate::provision::{ProvisioningEvent, ProvisioningListener};

    #[derive(Default)]
    struct Stages(Mutex<Vec<Stage>>);

    impl ProvisioningListener for Stages {
        fn on_event(&self, event: ProvisioningEvent) {
            self.0.lock().map(|mut s| s.push(event.stage)).ok();
        }
    }

    fn failed(failure: Option<CloudFailure>) -> CloudStatus {
        CloudStatus {
            stage: CloudStage::Failed,
            ip: None,
            thing_name: None,
            certificate_id: None,
            failure,
        }
    }

    fn log(listener: &Stages) -> ProgressLog<'_> {
        ProgressLog {
            start: Instant::now(),
            listener,
            timings: vec![(Stage::WifiApplied, Duration::ZERO)],
            claim: None,
            known: Default::default(),
        }
    }

    #[test]
    fn a_failure_without_a_reason_is_a_protocol_error() {
        let listener = Stages::default();
        let error = reported_failure(failed(None), &mut log(&listener));
        assert!(
            matches!(
                &error,
                ProvisionError::Protocol(ProtocolError::Malformed { endpoint, .. })
                    if endpoint == endpoint::AWS_STATUS
            ),
            "{error:?}"
        );
        assert!(listener.0.lock().map(|s| s.is_empty()).unwrap_or(false));
    }

    #[test]
    fn a_wifi_failure_is_reported_and_typed() {
        let listener = Stages::default();
        let failure = CloudFailure {
            kind: CloudFailureKind::WifiAuth,
            status_code: 0,
            error_code: String::new(),
            error_message: String::new(),
        };
        let error = reported_failure(failed(Some(failure)), &mut log(&listener));
        assert!(matches!(error, ProvisionError::WifiAuthFailed), "{error:?}");
        assert_eq!(
            listener.0.lock().map(|s| s.clone()).unwrap_or_default(),
            [Stage::WifiFailed]
        );
    }
}
