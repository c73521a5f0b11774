//! The device's cloud half: MQTT over mutual TLS (its own client, `mqtt.rs`) and AWS IoT's fleet-provisioning
//! API in JSON or CBOR ([`PayloadFormat`]), exactly as a device talks to AWS — nothing here knows about the emulator. Point
//! [`CloudEndpoint`] at `xxxx-ats.iot.<region>.amazonaws.com:8883` with Amazon's root CA and it talks to
//! AWS IoT Core.
//!
//! * this file — the MQTT connection and the fleet-provisioning API calls;
//! * `mqtt.rs` — the MQTT client (3.1.1 or 5) over tokio-rustls ([`mqtt::MqttClient`]), and `wire.rs`,
//!   its two codecs;
//! * `flow.rs` — the flow a device runs with its claim, step by step ([`fleet_provision`]);
//! * `credentials.rs` — proving the permanent certificate at the credentials provider
//!   ([`fetch_role_credentials`]).

mod credentials;
mod flow;
pub mod mqtt;
mod wire;

pub use credentials::fetch_role_credentials;
pub use flow::{fleet_provision, FlowFailure, FlowInput, FlowStage, Provisioned};

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

use mqtt::{ConnectOptions, Delivery, MqttClient, MqttError};

pub use crate::fleet_payload::PayloadFormat;
pub use mqtt::MqttProtocol;

/// Where the device's MQTT broker is, and whom to trust.
#[derive(Clone, Debug)]
pub struct CloudEndpoint {
    /// Host name or IP.
    pub host: String,
    /// Port (AWS IoT: 8883).
    pub port: u16,
    /// Trust anchors for the server certificate, PEM.
    pub ca_pem: String,
    /// How long to wait for each answer.
    pub timeout: Duration,
}

/// A client identity: certificate chain and private key (DER).
pub struct MqttIdentity {
    /// Leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The key (PKCS#1, PKCS#8 or SEC1).
    pub key: PrivateKeyDer<'static>,
}

/// Why talking to the cloud failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The TLS handshake or the MQTT CONNECT was refused, or the connection dropped.
    #[error("connection failed: {0}")]
    Connection(String),
    /// Nothing answered the TCP connection (refused, reset, no route): worth another attempt.
    #[error("{0}")]
    Unreachable(String),
    /// No answer in time (to what, and after how many attempts when there were several).
    #[error("timed out awaiting {0}")]
    Timeout(String),
    /// AWS rejected the request.
    #[error("{topic} rejected: {status_code} {error_code}: {error_message}")]
    Rejected {
        /// The request topic.
        topic: String,
        /// AWS's statusCode.
        status_code: u32,
        /// AWS's errorCode.
        error_code: String,
        /// AWS's errorMessage.
        error_message: String,
    },
    /// An answer did not carry what it should.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// Bad local configuration (certificates, keys).
    #[error("configuration: {0}")]
    Config(String),
}

impl MqttIdentity {
    /// The identity a device gets from a claim: the claim certificate and its key.
    pub fn from_claim(claim: &claimlink_core::Claim) -> Result<Self, CloudError> {
        Ok(Self {
            chain: vec![claim.certificate().der().to_vec()],
            key: PrivateKeyDer::from_pem_slice(claim.private_key().expose().as_bytes())
                .map_err(|e| CloudError::Config(e.to_string()))?,
        })
    }
}

/// One MQTT connection.
pub struct Connection {
    client: MqttClient,
    timeout: Duration,
    format: PayloadFormat,
}

/// The keep-alive a device announces (AWS IoT accepts 30 s to 1200 s).
const KEEP_ALIVE: Duration = Duration::from_secs(30);

impl From<MqttError> for CloudError {
    fn from(e: MqttError) -> Self {
        match e {
            MqttError::Timeout { awaiting } => CloudError::Timeout(awaiting),
            e @ MqttError::Unreachable(_) => CloudError::Unreachable(e.to_string()),
            other => CloudError::Connection(other.to_string()),
        }
    }
}

fn tls_config(
    endpoint: &CloudEndpoint,
    identity: MqttIdentity,
) -> Result<rustls::ClientConfig, CloudError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(endpoint.ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| CloudError::Config(e.to_string()))?)
            .map_err(|e| CloudError::Config(e.to_string()))?;
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| CloudError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            identity
                .chain
                .into_iter()
                .map(CertificateDer::from)
                .collect(),
            identity.key,
        )
        .map_err(|e| CloudError::Config(e.to_string()))
}

impl Connection {
    /// Connects with `identity` as `client_id` over MQTT 3.1.1; returns once the broker accepted the
    /// CONNECT.
    pub async fn open(
        endpoint: &CloudEndpoint,
        identity: MqttIdentity,
        client_id: &str,
    ) -> Result<Self, CloudError> {
        Self::open_with(endpoint, identity, client_id, MqttProtocol::V311).await
    }

    /// Connects with `identity` as `client_id` over `protocol` (MQTT 3.1.1 or 5); returns once the
    /// broker accepted the CONNECT.
    pub async fn open_with(
        endpoint: &CloudEndpoint,
        identity: MqttIdentity,
        client_id: &str,
        protocol: MqttProtocol,
    ) -> Result<Self, CloudError> {
        let options = ConnectOptions {
            host: &endpoint.host,
            port: endpoint.port,
            tls: Arc::new(tls_config(endpoint, identity)?),
            client_id,
            keep_alive: KEEP_ALIVE,
            protocol,
        };
        let deadline = tokio::time::Instant::now() + endpoint.timeout;
        let client = MqttClient::connect(options, deadline).await?;
        Ok(Self {
            client,
            timeout: endpoint.timeout,
            format: PayloadFormat::Json,
        })
    }

    /// Speaks the fleet-provisioning API in `format` from now on (JSON until told otherwise): the
    /// request topics end in `/json` or `/cbor`, and requests and answers are encoded so.
    pub fn set_payload_format(&mut self, format: PayloadFormat) {
        self.format = format;
    }

    /// The topic of fleet-provisioning API `api` (`$aws/certificates/create`, ...) in this
    /// connection's payload format.
    pub fn api_topic(&self, api: &str) -> String {
        format!("{api}/{}", self.format.segment())
    }

    /// Publishes `payload` on `topic` after subscribing to its `/accepted` and `/rejected` replies,
    /// and returns the accepted answer; both are encoded in the connection's payload format. The
    /// whole exchange has the endpoint's timeout.
    pub async fn request(&mut self, topic: &str, payload: &Value) -> Result<Value, CloudError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let accepted = format!("{topic}/accepted");
        let rejected = format!("{topic}/rejected");
        for reply in [&accepted, &rejected] {
            self.client.subscribe(reply, deadline).await?;
        }
        self.client
            .publish(
                topic,
                &self.format.encode(payload),
                Delivery::AtLeastOnce,
                deadline,
            )
            .await?;
        loop {
            let publish = self
                .client
                .next_publish(deadline)
                .await
                .map_err(|e| match e {
                    MqttError::Timeout { .. } => CloudError::Timeout(topic.to_owned()),
                    other => other.into(),
                })?;
            let body: Value = self.format.decode(&publish.payload).ok_or_else(|| {
                CloudError::Malformed(format!(
                    "an answer on {} that is not {}",
                    publish.topic,
                    self.format.segment()
                ))
            })?;
            if publish.topic == accepted {
                return Ok(body);
            }
            if publish.topic == rejected {
                return Err(CloudError::Rejected {
                    topic: topic.to_owned(),
                    status_code: body
                        .get("statusCode")
                        .and_then(Value::as_u64)
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(0),
                    error_code: body
                        .get("errorCode")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    error_message: body
                        .get("errorMessage")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                });
            }
        }
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK (within the endpoint's timeout).
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), CloudError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        Ok(self
            .client
            .publish(topic, payload, Delivery::AtLeastOnce, deadline)
            .await?)
    }

    /// Waits until the broker closes the connection (or `within` passes): `true` if it closed.
    /// Messages that arrive meanwhile are dropped.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.client.next_publish(deadline).await {
                Ok(_) => {}
                Err(MqttError::Timeout { .. }) => return false,
                Err(_) => return true,
            }
        }
    }

    /// Disconnects cleanly.
    pub async fn close(self) {
        self.client.disconnect().await;
    }
}

/// A device certificate obtained through fleet provisioning.
pub struct Obtained {
    /// Its id.
    pub certificate_id: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The ownership token for RegisterThing.
    pub ownership_token: String,
    /// The private key, when AWS generated it (`CreateKeysAndCertificate`).
    pub private_key_pem: Option<String>,
}

impl std::fmt::Debug for Obtained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obtained")
            .field("certificate_id", &self.certificate_id)
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

fn field(v: &Value, name: &str) -> Result<String, CloudError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CloudError::Malformed(format!("answer without {name}")))
}

/// `CreateCertificateFromCsr`: the key stays on the device.
pub async fn create_certificate_from_csr(
    conn: &mut Connection,
    csr_pem: &str,
) -> Result<Obtained, CloudError> {
    let topic = conn.api_topic("$aws/certificates/create-from-csr");
    let a = conn
        .request(&topic, &json!({"certificateSigningRequest": csr_pem}))
        .await?;
    Ok(Obtained {
        certificate_id: field(&a, "certificateId")?,
        certificate_pem: field(&a, "certificatePem")?,
        ownership_token: field(&a, "certificateOwnershipToken")?,
        private_key_pem: None,
    })
}

/// `CreateKeysAndCertificate`: AWS makes the key.
pub async fn create_keys_and_certificate(conn: &mut Connection) -> Result<Obtained, CloudError> {
    let topic = conn.api_topic("$aws/certificates/create");
    let a = conn.request(&topic, &json!({})).await?;
    Ok(Obtained {
        certificate_id: field(&a, "certificateId")?,
        certificate_pem: field(&a, "certificatePem")?,
        ownership_token: field(&a, "certificateOwnershipToken")?,
        private_key_pem: Some(field(&a, "privateKey")?),
    })
}

/// `RegisterThing`: returns the thing name and the device configuration.
pub async fn register_thing(
    conn: &mut Connection,
    template: &str,
    ownership_token: &str,
    parameters: &std::collections::BTreeMap<String, String>,
) -> Result<(Option<String>, Value), CloudError> {
    let topic = conn.api_topic(&format!("$aws/provisioning-templates/{template}/provision"));
    let a = conn
        .request(
            &topic,
            &json!({"certificateOwnershipToken": ownership_token, "parameters": parameters}),
        )
        .await?;
    Ok((
        a.get("thingName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        a.get("deviceConfiguration").cloned().unwrap_or(Value::Null),
    ))
}
