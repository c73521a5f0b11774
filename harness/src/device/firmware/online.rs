//! The cloud half: once the device has joined Wi-Fi with a claim, it runs these steps in the
//! background, recording each stage for `aws-status`:
//!
//! 1. [`CloudHalf::sync_time`] — the join and an SNTP sync;
//! 2. [`CloudHalf::check_claim_fresh`] — a claim that expired on the way is not used;
//! 3. [`CloudHalf::fleet_provision`] — connect with the claim, obtain a certificate, register the
//!    thing, reconnect with the permanent certificate ([`crate::device::cloud::fleet_provision`]);
//! 4. [`CloudHalf::prove_credentials`] — when configured, the permanent certificate gets AWS
//!    credentials from the credentials provider;
//! 5. [`CloudHalf::finish`] — the claim is wiped, whatever the outcome, and the outcome recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use claimlink_core::internal::proto::{self, CloudFailureKind, CloudStage};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{CloudProgress, Inner, ReceivedClaim, SimDevice};
use crate::device::cloud::{self, CloudEndpoint, FlowStage, MqttIdentity, Provisioned};
use crate::device::wifi::JoinOutcome;
use crate::device::DeviceCloud;

impl SimDevice {
    /// Starts the cloud half in the background, if the device has one and holds a claim: after the
    /// Wi-Fi join and a time sync, fleet provisioning with the claim; the claim is wiped afterwards,
    /// whatever the outcome.
    pub(super) fn start_cloud(&self, inner: &mut Inner) {
        if inner.firmware.is_some() {
            // The firmware program runs its own cloud half when it hears of the address.
            return;
        }
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
        inner.cloud_runs += 1;
        let half = CloudHalf {
            run: inner.cloud_runs,
            state: self.inner.clone(),
            cloud,
            claim,
            client_id: self.config.name.clone(),
            connect_time: self.config.world.connect_time,
        };
        runtime.spawn(crate::cpu_time::accounted(half.run()));
    }
}

/// What the background task works with.
struct CloudHalf {
    /// Which of the device's cloud halves this is (`Inner::cloud_runs`).
    run: u64,
    state: Arc<Mutex<Inner>>,
    cloud: DeviceCloud,
    claim: ReceivedClaim,
    client_id: String,
    connect_time: Duration,
}

impl CloudHalf {
    /// The steps, in order.
    async fn run(self) {
        self.sync_time().await;
        let result = self.provision().await;
        self.finish(result);
    }

    /// Steps 2–4: each failure is what `aws-status` reports.
    async fn provision(&self) -> Result<Provisioned, proto::CloudFailure> {
        self.check_claim_fresh()?;
        let mut input = self.flow_input();
        if let Some(path) = &self.cloud.ca_pem_file {
            input.endpoint.ca_pem =
                std::fs::read_to_string(path).map_err(|e| proto::CloudFailure {
                    kind: CloudFailureKind::TlsRejected as i32,
                    error_message: format!(
                        "cannot read the trusted CA from {}: {e}",
                        path.display()
                    ),
                    ..proto::CloudFailure::default()
                })?;
        }
        let endpoint = input.endpoint.clone();
        let done = self.fleet_provision(input).await?;
        if let Some((target, alias)) = &self.cloud.credentials {
            self.prove_credentials(&endpoint, target, alias, &done)
                .await?;
        }
        Ok(done)
    }

    /// Records progress, unless a newer cloud half has started since (after a re-provisioning).
    fn record(&self, update: impl FnOnce(&mut CloudProgress)) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if guard.cloud_runs == self.run {
            update(&mut guard.cloud);
        }
    }

    /// Waits out the Wi-Fi join and the clock sync.
    async fn sync_time(&self) {
        tokio::time::sleep(self.connect_time + self.cloud.time_sync).await;
        self.record(|c| c.stage = Some(CloudStage::TimeSynced));
    }

    /// Refuses a claim whose time ran out before the device got online.
    fn check_claim_fresh(&self) -> Result<(), proto::CloudFailure> {
        let lifetime = Duration::from_secs(u64::from(self.claim.seconds_left));
        if self.claim.received_at.elapsed() >= lifetime {
            return Err(proto::CloudFailure {
                kind: CloudFailureKind::ClaimExpired as i32,
                error_message: "the claim expired before the device got online".to_owned(),
                ..proto::CloudFailure::default()
            });
        }
        Ok(())
    }

    /// The fleet-provisioning flow's input: the bundle's endpoint (default port when it names none)
    /// and the claim as the MQTT identity.
    fn flow_input(&self) -> cloud::FlowInput {
        let (cloud, claim) = (&self.cloud, &self.claim);
        let (host, port) = match claim.iot_endpoint.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(cloud.default_port)),
            None => (claim.iot_endpoint.clone(), cloud.default_port),
        };
        cloud::FlowInput {
            endpoint: CloudEndpoint {
                host,
                port,
                ca_pem: cloud.ca_pem.clone(),
                timeout: cloud.timeout,
            },
            claim: MqttIdentity {
                chain: vec![claim.certificate_der.clone()],
                key: PrivateKeyDer::Pkcs1(claim.private_key_der.to_vec().into()),
            },
            client_id: self.client_id.clone(),
            template: claim.template_name.clone(),
            parameters: claim.template_parameters.clone(),
            use_csr: cloud.use_csr,
            retry_until: claim
                .received_at
                .checked_add(Duration::from_secs(u64::from(claim.seconds_left))),
            payload_format: cloud.payload_format,
            mqtt_protocol: cloud.mqtt_protocol,
        }
    }

    /// Runs the flow, recording its stages. A certificate AWS issued before a failure is recorded with
    /// it.
    async fn fleet_provision(
        &self,
        input: cloud::FlowInput,
    ) -> Result<Provisioned, proto::CloudFailure> {
        cloud::fleet_provision(input, |stage| match stage {
            FlowStage::ConnectedWithClaim => {
                self.record(|c| c.stage = Some(CloudStage::MqttConnectedWithClaim))
            }
            // Reported as soon as known (docs/protocol.md §6), not only at `Done`.
            FlowStage::CertificateIssued { certificate_id } => self.record(|c| {
                c.stage = Some(CloudStage::CertificateIssued);
                c.certificate_id = certificate_id;
            }),
            FlowStage::ThingRegistered { thing_name } => self.record(|c| {
                c.stage = Some(CloudStage::ThingRegistered);
                c.thing_name = thing_name;
            }),
            FlowStage::Reconnected => {
                self.record(|c| c.stage = Some(CloudStage::ReconnectedWithPermanent))
            }
        })
        .await
        .map_err(|f| {
            if let Some(id) = f.certificate_id {
                self.record(|c| c.certificate_id = id);
            }
            proto::CloudFailure {
                kind: f.kind as i32,
                status_code: f.status_code,
                error_code: f.error_code,
                error_message: f.error_message,
            }
        })
    }

    /// Fetches role credentials with the permanent certificate from the credentials provider at
    /// `target` (`host:port`, default 443). A refusal leaves the device provisioned but unable to get
    /// credentials, and says so.
    async fn prove_credentials(
        &self,
        endpoint: &CloudEndpoint,
        target: &str,
        alias: &str,
        done: &Provisioned,
    ) -> Result<(), proto::CloudFailure> {
        let (host, port) = target
            .rsplit_once(':')
            .map_or((target.to_owned(), 443), |(h, p)| {
                (h.to_owned(), p.parse().unwrap_or(443))
            });
        let endpoint = CloudEndpoint {
            host,
            port,
            ..endpoint.clone()
        };
        let identity = MqttIdentity {
            chain: CertificateDer::pem_slice_iter(done.certificate_pem.as_bytes())
                .filter_map(Result::ok)
                .map(|c| c.to_vec())
                .collect(),
            key: done.key.clone_key(),
        };
        let Err(e) =
            cloud::fetch_role_credentials(&endpoint, identity, alias, &done.thing_name).await
        else {
            return Ok(());
        };
        let (status_code, error_message) = match e {
            cloud::CloudError::Rejected {
                status_code,
                error_message,
                ..
            } => (status_code, error_message),
            other => (0, other.to_string()),
        };
        self.record(|c| {
            c.thing_name = done.thing_name.clone();
            c.certificate_id = done.certificate_id.clone();
        });
        Err(proto::CloudFailure {
            kind: CloudFailureKind::CredentialsProvider as i32,
            status_code,
            error_code: String::new(),
            error_message,
        })
    }

    /// Wipes the claim (it has done its job, or failed) and records the outcome.
    fn finish(self, result: Result<Provisioned, proto::CloudFailure>) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.claim = None;
        if guard.cloud_runs != self.run {
            // A newer half reports for the device now; this one's outcome is not its to overwrite.
            return;
        }
        match result {
            Ok(done) => {
                guard.cloud.thing_name = done.thing_name;
                guard.cloud.certificate_id = done.certificate_id;
                guard.cloud.stage = Some(CloudStage::Done);
            }
            Err(f) => guard.cloud.failure = Some(f),
        }
    }
}
