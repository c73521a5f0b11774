//! The fleet-provisioning flow a device runs with its claim, one function per step: connect with the
//! claim, obtain a certificate, register the thing, reconnect with the permanent certificate.
//!
//! A connection that nothing answers in time (a timeout, a refused or reset TCP connection) is tried
//! again with exponential backoff and jitter until the claim would expire, as docs/protocol.md's
//! firmware guidance asks of real devices (AWS IoT throttles and drops connections under load). A
//! refusal (TLS alert, CONNACK refused) is final at once.

use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use claimlink_core::internal::proto::CloudFailureKind as K;

use super::{
    create_certificate_from_csr, create_keys_and_certificate, register_thing, CloudEndpoint,
    CloudError, Connection, MqttIdentity, MqttProtocol, Obtained, PayloadFormat,
};

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
    /// Connections are retried until this instant (the claim's expiry); `None`: one attempt.
    pub retry_until: Option<Instant>,
    /// The fleet-provisioning API's payload format (`…/json` or `…/cbor` topics).
    pub payload_format: PayloadFormat,
    /// MQTT 3.1.1 or MQTT 5.
    pub mqtt_protocol: MqttProtocol,
}

/// The first pause between connection attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

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

/// The stages the flow reports, with what each makes known (docs/protocol.md §6: `aws-status`
/// carries the certificate id from `CertificateIssued` on, the thing name from `ThingRegistered` on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowStage {
    /// Connected with the claim.
    ConnectedWithClaim,
    /// Permanent certificate issued.
    CertificateIssued {
        /// Its id.
        certificate_id: String,
    },
    /// RegisterThing accepted.
    ThingRegistered {
        /// The thing AWS registered.
        thing_name: String,
    },
    /// Reconnected with the permanent certificate.
    Reconnected,
}

impl FlowStage {
    /// The stage's name, without what it made known (`"CertificateIssued"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConnectedWithClaim => "ConnectedWithClaim",
            Self::CertificateIssued { .. } => "CertificateIssued",
            Self::ThingRegistered { .. } => "ThingRegistered",
            Self::Reconnected => "Reconnected",
        }
    }
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
        other @ (CloudError::Connection(_)
        | CloudError::Timeout(_)
        | CloudError::Unreachable(_))
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
        retry_until,
        payload_format,
        mqtt_protocol,
    } = input;
    let mut conn =
        connect_with_claim(&endpoint, claim, &client_id, retry_until, mqtt_protocol).await?;
    conn.set_payload_format(payload_format);
    on_stage(FlowStage::ConnectedWithClaim);
    let (obtained, key) = obtain_certificate(&mut conn, use_csr, &client_id).await?;
    on_stage(FlowStage::CertificateIssued {
        certificate_id: obtained.certificate_id.clone(),
    });
    // From here on AWS has issued a certificate: a failure names it.
    let issued = |mut f: FlowFailure| {
        f.certificate_id = Some(obtained.certificate_id.clone());
        f
    };
    let thing_name = register(&mut conn, &template, &parameters, &obtained)
        .await
        .map_err(issued)?;
    on_stage(FlowStage::ThingRegistered {
        thing_name: thing_name.clone(),
    });
    conn.close().await;
    reconnect_with_permanent(
        &endpoint,
        &client_id,
        &obtained,
        &key,
        retry_until,
        mqtt_protocol,
    )
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
    retry_until: Option<Instant>,
    protocol: MqttProtocol,
) -> Result<Connection, FlowFailure> {
    open_with_retries(endpoint, &claim, client_id, retry_until, protocol)
        .await
        .map_err(|e| failure(K::TlsRejected, e))
}

/// Opens a connection, trying again after a timeout or an unanswered TCP connection while the next
/// attempt would start before `retry_until`. The last error says how many attempts were made.
async fn open_with_retries(
    endpoint: &CloudEndpoint,
    identity: &MqttIdentity,
    client_id: &str,
    retry_until: Option<Instant>,
    protocol: MqttProtocol,
) -> Result<Connection, CloudError> {
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 1u32;
    loop {
        let copy = MqttIdentity {
            chain: identity.chain.clone(),
            key: identity.key.clone_key(),
        };
        let error = match Connection::open_with(endpoint, copy, client_id, protocol).await {
            Ok(conn) => return Ok(conn),
            Err(e @ (CloudError::Timeout(_) | CloudError::Unreachable(_))) => e,
            Err(e) => return Err(e),
        };
        // Full jitter on the upper half: devices that failed together do not retry together.
        let pause = backoff / 2 + backoff.mul_f64(fastrand::f64() / 2.0);
        let retry = retry_until.is_some_and(|until| Instant::now() + pause < until);
        if !retry {
            let tried = if attempts == 1 {
                String::new()
            } else {
                format!(
                    " ({attempts} attempts over {:.1} s)",
                    started.elapsed().as_secs_f64()
                )
            };
            return Err(match error {
                CloudError::Timeout(what) => CloudError::Timeout(format!("{what}{tried}")),
                CloudError::Unreachable(what) => CloudError::Unreachable(format!("{what}{tried}")),
                other => other,
            });
        }
        tracing::debug!(client_id, attempts, %error, "connection failed, trying again");
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempts += 1;
    }
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
    retry_until: Option<Instant>,
    protocol: MqttProtocol,
) -> Result<(), FlowFailure> {
    let cert = CertificateDer::from_pem_slice(obtained.certificate_pem.as_bytes())
        .map_err(|e| failure(K::CertificateRejected, CloudError::Malformed(e.to_string())))?;
    let identity = MqttIdentity {
        chain: vec![cert.to_vec()],
        key: key.clone_key(),
    };
    let permanent = open_with_retries(endpoint, &identity, client_id, retry_until, protocol)
        .await
        .map_err(|e| failure(K::ReconnectFailed, e))?;
    permanent.close().await;
    Ok(())
}
