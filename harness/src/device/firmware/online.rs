//! The cloud half: once the device has joined Wi-Fi with a claim, it syncs its clock and runs fleet
//! provisioning with the claim (MQTT, [`crate::device::cloud`]), recording each stage for `aws-status`.

use std::time::{Duration, Instant};

use claimlink_core::internal::proto;
use rustls_pki_types::pem::PemObject;

use super::{CloudProgress, Inner, SimDevice};
use crate::device::cloud;
use crate::device::wifi::JoinOutcome;

impl SimDevice {
    /// Starts the cloud half in the background, if the device has one and holds a claim: after the
    /// Wi-Fi join and a time sync, fleet provisioning with the claim; the claim is wiped afterwards,
    /// whatever the outcome.
    pub(super) fn start_cloud(&self, inner: &mut Inner) {
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
}
