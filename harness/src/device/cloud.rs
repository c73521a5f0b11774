//! The device's cloud half: MQTT over mutual TLS (rumqttc + rustls) and AWS IoT's fleet-provisioning
//! API, exactly as a device talks to AWS — nothing here knows about the emulator. Point
//! [`CloudEndpoint`] at `xxxx-ats.iot.<region>.amazonaws.com:8883` with Amazon's root CA and it talks to
//! AWS IoT Core.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use claimlink_core::internal::proto::CloudFailureKind as K;

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
    /// No answer in time.
    #[error("no answer on {0} in time")]
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
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Result<rumqttc::Publish, String>>,
    driver: JoinHandle<()>,
    timeout: Duration,
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
    /// Connects with `identity` as `client_id`; returns once the broker accepted the CONNECT.
    pub async fn open(
        endpoint: &CloudEndpoint,
        identity: MqttIdentity,
        client_id: &str,
    ) -> Result<Self, CloudError> {
        let mut options = MqttOptions::new(client_id, endpoint.host.clone(), endpoint.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(endpoint, identity)?),
        )));
        let (client, mut eventloop): (AsyncClient, EventLoop) = AsyncClient::new(options, 16);
        // Wait for CONNACK (or the failure) before handing the connection out.
        let first = tokio::time::timeout(endpoint.timeout, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .map_err(|_| CloudError::Timeout("CONNECT".into()))?;
        first.map_err(CloudError::Connection)?;
        let (tx, incoming) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        Ok(Self {
            client,
            incoming,
            driver,
            timeout: endpoint.timeout,
        })
    }

    /// Publishes `payload` on `topic` after subscribing to its `/accepted` and `/rejected` replies,
    /// and returns the accepted answer.
    pub async fn request(&mut self, topic: &str, payload: &Value) -> Result<Value, CloudError> {
        for suffix in ["accepted", "rejected"] {
            self.client
                .subscribe(format!("{topic}/{suffix}"), QoS::AtLeastOnce)
                .await
                .map_err(|e| CloudError::Connection(e.to_string()))?;
        }
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
            .await
            .map_err(|e| CloudError::Connection(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .map_err(|_| CloudError::Timeout(topic.to_owned()))?;
            let publish = match next {
                Some(Ok(p)) => p,
                Some(Err(e)) => return Err(CloudError::Connection(e)),
                None => return Err(CloudError::Connection("closed".into())),
            };
            let body: Value = serde_json::from_slice(&publish.payload)
                .map_err(|e| CloudError::Malformed(e.to_string()))?;
            if publish.topic == format!("{topic}/accepted") {
                return Ok(body);
            }
            if publish.topic == format!("{topic}/rejected") {
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

    /// Publishes without waiting for anything.
    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), CloudError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .map_err(|e| CloudError::Connection(e.to_string()))
    }

    /// Waits until the broker closes the connection (or `within` passes): `true` if it closed.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Disconnects cleanly.
    pub async fn close(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.driver).await;
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
    let a = conn
        .request(
            "$aws/certificates/create-from-csr/json",
            &json!({"certificateSigningRequest": csr_pem}),
        )
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
    let a = conn
        .request("$aws/certificates/create/json", &json!({}))
        .await?;
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
    let a = conn
        .request(
            &format!("$aws/provisioning-templates/{template}/provision/json"),
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

/// What the fleet-provisioning flow needs.
pub struct FlowInput {
    /// The MQTT endpoint (from the claim bundle's `iot_endpoint`) and trust.
    pub endpoint: CloudEndpoint,
    /// The claim certificate and key.
    pub claim: MqttIdentity,
    /// MQTT client id.
    pub client_id: String,
    /// Template to register with.
    pub template: String,
    /// Its parameters.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// CSR path (the key never leaves the device) rather than CreateKeysAndCertificate.
    pub use_csr: bool,
}

/// The outcome of a successful flow.
pub struct Provisioned {
    /// The thing registered.
    pub thing_name: String,
    /// The permanent certificate's id.
    pub certificate_id: String,
    /// The permanent certificate, PEM.
    pub certificate_pem: String,
    /// Its private key (PKCS#8 DER for the CSR path, PKCS#1 for the keys path).
    pub key: PrivateKeyDer<'static>,
}

/// The stages the flow reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowStage {
    /// Connected with the claim.
    ConnectedWithClaim,
    /// Permanent certificate issued.
    CertificateIssued,
    /// RegisterThing accepted.
    ThingRegistered,
    /// Reconnected with the permanent certificate.
    Reconnected,
}

/// A failure of the flow: the kind the device reports on `aws-status`, and AWS's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowFailure {
    /// What failed.
    pub kind: claimlink_core::internal::proto::CloudFailureKind,
    /// AWS's statusCode, when AWS answered.
    pub status_code: u32,
    /// AWS's errorCode.
    pub error_code: String,
    /// AWS's errorMessage or the local error.
    pub error_message: String,
    /// The permanent certificate, when AWS had issued one before the failure: it may be ACTIVE (and, if
    /// RegisterThing went through but its answer was lost, attached to a thing), so the app must hear
    /// of it.
    pub certificate_id: Option<String>,
}

fn failure(kind: K, e: CloudError) -> FlowFailure {
    match e {
        CloudError::Rejected {
            status_code,
            error_code,
            error_message,
            ..
        } => FlowFailure {
            kind,
            status_code,
            error_code,
            error_message,
            certificate_id: None,
        },
        // A connection that drops or goes silent mid-request is not AWS rejecting the request.
        other @ (CloudError::Connection(_) | CloudError::Timeout(_))
            if matches!(kind, K::CertificateRejected | K::RegisterThingRejected) =>
        {
            FlowFailure {
                kind: K::MqttRejected,
                status_code: 0,
                error_code: String::new(),
                error_message: other.to_string(),
                certificate_id: None,
            }
        }
        other => FlowFailure {
            kind,
            status_code: 0,
            error_code: String::new(),
            error_message: other.to_string(),
            certificate_id: None,
        },
    }
}

/// Claim → certificate → RegisterThing → reconnect with the permanent certificate, reporting each
/// stage reached. Each step fails with its own [`FlowFailure`] kind.
pub async fn fleet_provision(
    input: FlowInput,
    mut on_stage: impl FnMut(FlowStage) + Send,
) -> Result<Provisioned, FlowFailure> {
    let FlowInput {
        endpoint,
        claim,
        client_id,
        template,
        parameters,
        use_csr,
    } = input;
    let mut conn = connect_with_claim(&endpoint, claim, &client_id).await?;
    on_stage(FlowStage::ConnectedWithClaim);
    let (obtained, key) = obtain_certificate(&mut conn, use_csr, &client_id).await?;
    on_stage(FlowStage::CertificateIssued);
    // From here on AWS has issued a certificate: a failure names it.
    let issued = |mut f: FlowFailure| {
        f.certificate_id = Some(obtained.certificate_id.clone());
        f
    };
    let thing_name = register(&mut conn, &template, &parameters, &obtained)
        .await
        .map_err(issued)?;
    on_stage(FlowStage::ThingRegistered);
    conn.close().await;
    reconnect_with_permanent(&endpoint, &client_id, &obtained, &key)
        .await
        .map_err(issued)?;
    on_stage(FlowStage::Reconnected);
    Ok(Provisioned {
        thing_name,
        certificate_id: obtained.certificate_id,
        certificate_pem: obtained.certificate_pem,
        key,
    })
}

/// Step 1: MQTT over mutual TLS with the claim certificate.
async fn connect_with_claim(
    endpoint: &CloudEndpoint,
    claim: MqttIdentity,
    client_id: &str,
) -> Result<Connection, FlowFailure> {
    Connection::open(endpoint, claim, client_id)
        .await
        .map_err(|e| failure(K::TlsRejected, e))
}

/// Step 2: a permanent certificate and its key — from a CSR (the key never leaves the device) or
/// CreateKeysAndCertificate.
async fn obtain_certificate(
    conn: &mut Connection,
    use_csr: bool,
    client_id: &str,
) -> Result<(Obtained, PrivateKeyDer<'static>), FlowFailure> {
    if use_csr {
        let internal = |e: rcgen::Error| failure(K::Internal, CloudError::Config(e.to_string()));
        let key = rcgen::KeyPair::generate().map_err(internal)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, client_id.to_owned());
        let csr = params
            .serialize_request(&key)
            .and_then(|c| c.pem())
            .map_err(internal)?;
        let obtained = create_certificate_from_csr(conn, &csr)
            .await
            .map_err(|e| failure(K::CertificateRejected, e))?;
        let der = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| failure(K::Internal, CloudError::Config(e.to_string())))?;
        Ok((obtained, der))
    } else {
        let obtained = create_keys_and_certificate(conn)
            .await
            .map_err(|e| failure(K::CertificateRejected, e))?;
        let pem = obtained.private_key_pem.clone().unwrap_or_default();
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| failure(K::CertificateRejected, CloudError::Malformed(e.to_string())))?;
        Ok((obtained, der))
    }
}

/// Step 3: RegisterThing with the certificate's ownership token; the thing's name.
async fn register(
    conn: &mut Connection,
    template: &str,
    parameters: &std::collections::BTreeMap<String, String>,
    obtained: &Obtained,
) -> Result<String, FlowFailure> {
    let (thing, _config) = register_thing(conn, template, &obtained.ownership_token, parameters)
        .await
        .map_err(|e| failure(K::RegisterThingRejected, e))?;
    Ok(thing.unwrap_or_default())
}

/// Step 4: a new connection with the permanent certificate proves it works.
async fn reconnect_with_permanent(
    endpoint: &CloudEndpoint,
    client_id: &str,
    obtained: &Obtained,
    key: &PrivateKeyDer<'static>,
) -> Result<(), FlowFailure> {
    let cert = CertificateDer::from_pem_slice(obtained.certificate_pem.as_bytes())
        .map_err(|e| failure(K::CertificateRejected, CloudError::Malformed(e.to_string())))?;
    let identity = MqttIdentity {
        chain: vec![cert.to_vec()],
        key: key.clone_key(),
    };
    let permanent = Connection::open(endpoint, identity, client_id)
        .await
        .map_err(|e| failure(K::ReconnectFailed, e))?;
    permanent.close().await;
    Ok(())
}

/// Fetches temporary AWS credentials from the credentials provider at `endpoint` (`host:port`) with the
/// device certificate, naming the thing in `x-amzn-iot-thingname`. Returns the `credentials` object.
pub async fn fetch_role_credentials(
    endpoint: &CloudEndpoint,
    identity: MqttIdentity,
    role_alias: &str,
    thing_name: &str,
) -> Result<Value, CloudError> {
    let tls = tls_config(endpoint, identity)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(endpoint.timeout)
        .build()
        .map_err(|e| CloudError::Config(e.to_string()))?;
    let url = format!(
        "https://{}:{}/role-aliases/{role_alias}/credentials",
        endpoint.host, endpoint.port
    );
    let response = client
        .get(url)
        .header("x-amzn-iot-thingname", thing_name)
        .send()
        .await
        .map_err(|e| CloudError::Connection(e.to_string()))?;
    let status = response.status().as_u16();
    let body: Value = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    if status != 200 {
        return Err(CloudError::Rejected {
            topic: "credentials provider".into(),
            status_code: u32::from(status),
            error_code: String::new(),
            error_message: body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        });
    }
    let credentials = body
        .get("credentials")
        .cloned()
        .ok_or_else(|| CloudError::Malformed("no credentials".into()))?;
    for f in [
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
        "expiration",
    ] {
        if credentials.get(f).and_then(Value::as_str).is_none() {
            return Err(CloudError::Malformed(format!("credentials without {f}")));
        }
    }
    Ok(credentials)
}
