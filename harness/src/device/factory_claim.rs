//! The device simulator's factory-claim mode: fleet provisioning *by claim* (the first flow of AWS's
//! fleet-provisioning guide). The device leaves the factory holding a claim certificate and key that
//! the manufacturer registered in the account with the claim policy; at first boot it connects with
//! them and provisions itself — CreateKeysAndCertificate (or CreateCertificateFromCsr), RegisterThing
//! with its serial number, reconnect with the permanent certificate — with no app and no BLE session.
//! The MQTT fleet-provisioning client is the one every simulated device uses ([`cloud`](super::cloud)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use super::cloud::{
    fleet_provision, CloudEndpoint, FlowFailure, FlowInput, FlowStage, MqttIdentity,
};
use super::cloud::{CloudError, MqttProtocol, PayloadFormat, Provisioned};

/// What the factory puts in every device of a batch: the claim certificate, its key and the template
/// to provision with.
pub struct FactoryClaim {
    /// The claim certificate, PEM.
    pub certificate_pem: String,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: Zeroizing<String>,
    /// The provisioning template the claim policy allows.
    pub template: String,
}

impl std::fmt::Debug for FactoryClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactoryClaim")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl FactoryClaim {
    fn identity(&self) -> Result<MqttIdentity, FlowFailure> {
        let config = |e: String| FlowFailure {
            kind: claimlink_core::internal::proto::CloudFailureKind::Internal,
            status_code: 0,
            error_code: String::new(),
            error_message: CloudError::Config(e).to_string(),
            certificate_id: None,
        };
        let chain = CertificateDer::pem_slice_iter(self.certificate_pem.as_bytes())
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config(format!("claim certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(self.private_key_pem.as_bytes())
            .map_err(|e| config(format!("claim key: {e}")))?;
        Ok(MqttIdentity { chain, key })
    }
}

/// One device fresh from the factory.
#[derive(Debug, Clone)]
pub struct FactoryDevice {
    /// Its serial number: the MQTT client id and the template's `SerialNumber` parameter.
    pub serial: String,
    /// The claim it was manufactured with (shared by the batch).
    pub claim: Arc<FactoryClaim>,
    /// The AWS IoT data endpoint and the roots it trusts (Amazon's on a real device).
    pub endpoint: CloudEndpoint,
    /// CreateCertificateFromCsr (the key never leaves the device) rather than
    /// CreateKeysAndCertificate. The guide's claim policy allows only the latter.
    pub use_csr: bool,
    /// How long connection attempts are retried when nothing answers (a claim from the factory does
    /// not expire soon; the device keeps trying for this long at first boot).
    pub retry_for: Duration,
}

impl FactoryDevice {
    /// First boot: provisions itself with the factory claim, reporting each stage reached.
    pub async fn first_boot(
        &self,
        on_stage: impl FnMut(FlowStage) + Send,
    ) -> Result<Provisioned, FlowFailure> {
        let input = FlowInput {
            endpoint: self.endpoint.clone(),
            claim: self.claim.identity()?,
            client_id: self.serial.clone(),
            template: self.claim.template.clone(),
            parameters: [("SerialNumber".to_owned(), self.serial.clone())].into(),
            use_csr: self.use_csr,
            retry_until: Some(Instant::now() + self.retry_for),
            payload_format: PayloadFormat::Json,
            mqtt_protocol: MqttProtocol::default(),
        };
        fleet_provision(input, on_stage).await
    }
}
