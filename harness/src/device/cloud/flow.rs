//! The fleet-provisioning flow a device runs with its claim, one function per step: connect with the
//! claim, obtain a certificate, register the thing, reconnect with the permanent certificate.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use claimlink_core::internal::proto::CloudFailureKind as K;

use super::{
    create_certificate_from_csr, create_keys_and_certificate, register_thing, CloudEndpoint,
    CloudError, Connection, MqttIdentity, Obtained,
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
