//! AWS IoT's registry API for what a manufacturer and a clean-up do, SigV4-verified like the rest of
//! the control plane (request and answer shapes from AWS IoT's API reference):
//!
//! * `RegisterCertificateWithoutCA` (`POST /certificate/register-no-ca`) and `RegisterCertificate`
//!   (`POST /certificate/register`): a certificate the account did not issue — a factory's claim
//!   certificate — becomes known, `ACTIVE` or `INACTIVE`; the MQTT endpoint then accepts it in the TLS
//!   handshake ([`mqtt_client_verifier`]) and its attached policies decide what it may do
//!   ([`may`], `iot_policy`).
//! * `CreatePolicy` (`POST /policies/{name}`) and `AttachPolicy` (`PUT /target-policies/{name}`).
//! * `UpdateCertificate` (`PUT /certificates/{id}?newStatus=…`): "disable the claim certificate if you
//!   detect misuse" (the fleet-provisioning guide); an `INACTIVE` certificate is refused at the next
//!   connect, and its open connections are closed.
//! * `DetachThingPrincipal` (`DELETE /things/{name}/principals`, principal in `x-amzn-principal`),
//!   `DeleteThing` (`DELETE /things/{name}`) and `DeleteCertificate` (`DELETE /certificates/{id}`,
//!   `forceDelete` detaches its policies): what `--cleanup` calls.

// Handlers return finished responses as their error values (axum style).
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::aws_api::{certificate_not_found, not_found, thing_not_found, SignedRequest};
use super::control::{aws_error, json_response};
use super::iot_policy::{self, Action};
use super::mqtt::Principal;
use super::{CertificateRecord, EmulatorError, Shared};

type Shared_ = Arc<Shared>;

/// The routes, merged into the control plane's router.
pub(crate) fn routes() -> Router<Shared_> {
    Router::new()
        .route("/certificate/register-no-ca", post(register_certificate))
        .route("/certificate/register", post(register_certificate))
        .route("/policies/{name}", post(create_policy))
        .route("/target-policies/{name}", put(attach_policy))
        .route(
            "/certificates/{id}",
            put(update_certificate).delete(delete_certificate),
        )
        .route("/things/{thing}", delete(delete_thing))
        .route("/things/{thing}/principals", delete(detach_thing_principal))
}

fn certificate_arn(shared: &Shared, id: &str) -> String {
    format!(
        "arn:aws:iot:{}:{}:cert/{id}",
        shared.region, shared.account_id
    )
}

fn invalid(message: &str) -> Response {
    aws_error(400, "InvalidRequestException", message)
}

fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(invalid("The request body must be a JSON object.")),
    }
}

fn query_value(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `RegisterCertificate[WithoutCA]`: `{certificatePem, status?, caCertificatePem?}` (and
/// `?setAsActive=true`) → `{certificateArn, certificateId}`.
async fn register_certificate(State(shared): State<Shared_>, signed: SignedRequest) -> Response {
    let request = match body_object(&signed.body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(pem) = request.get("certificatePem").and_then(Value::as_str) else {
        return invalid("certificatePem is required.");
    };
    use rustls_pki_types::pem::PemObject;
    let der = match rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()) {
        Ok(der) => der,
        Err(_) => {
            return aws_error(
                400,
                "CertificateValidationException",
                "The certificate is not a valid PEM certificate.",
            )
        }
    };
    if validity(der.as_ref()).is_none() {
        return aws_error(
            400,
            "CertificateValidationException",
            "The certificate could not be parsed.",
        );
    }
    let set_as_active = query_value(&signed.uri, "setAsActive").as_deref() == Some("true");
    let status = match request.get("status").and_then(Value::as_str) {
        Some(s @ ("ACTIVE" | "INACTIVE")) => s.to_owned(),
        Some(other) => return invalid(&format!("Invalid certificate status {other}.")),
        None if set_as_active => "ACTIVE".to_owned(),
        None => "INACTIVE".to_owned(),
    };
    let id = hex::encode(Sha256::digest(der.as_ref()));
    let now = shared.now();
    let mut state = shared.lock();
    if state.certificates.contains_key(&id) {
        return aws_error(
            409,
            "ResourceAlreadyExistsException",
            "The certificate is already provisioned or registered",
        );
    }
    state
        .certificates
        .insert(id.clone(), CertificateRecord::new(&status, pem, now));
    state.registered_certificates.insert(id.clone());
    drop(state);
    json_response(
        StatusCode::OK,
        json!({"certificateArn": certificate_arn(&shared, &id), "certificateId": id}),
    )
}

/// `CreatePolicy`: `{policyDocument: "<JSON text>"}` → `{policyName, policyArn, policyDocument,
/// policyVersionId}`.
async fn create_policy(
    State(shared): State<Shared_>,
    Path(name): Path<String>,
    signed: SignedRequest,
) -> Response {
    let request = match body_object(&signed.body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(text) = request.get("policyDocument").and_then(Value::as_str) else {
        return invalid("policyDocument is required.");
    };
    let document = match serde_json::from_str::<Value>(text) {
        Ok(d @ Value::Object(_)) if d.get("Statement").is_some() => d,
        _ => {
            return aws_error(
                400,
                "MalformedPolicyException",
                "The policy document is not valid JSON with a Statement.",
            )
        }
    };
    let mut state = shared.lock();
    if state.policies.contains_key(&name) {
        return aws_error(
            409,
            "ResourceAlreadyExistsException",
            &format!("Policy {name} already exists."),
        );
    }
    state.policies.insert(name.clone(), document);
    drop(state);
    json_response(
        StatusCode::OK,
        json!({
            "policyName": name,
            "policyArn": format!("arn:aws:iot:{}:{}:policy/{name}", shared.region, shared.account_id),
            "policyDocument": text,
            "policyVersionId": "1",
        }),
    )
}

/// The certificate id a `cert/…` ARN names, if it is one of this account's.
fn certificate_id_of(shared: &Shared, arn: &str) -> Option<String> {
    let prefix = format!("arn:aws:iot:{}:{}:cert/", shared.region, shared.account_id);
    arn.strip_prefix(&prefix).map(str::to_owned)
}

/// `AttachPolicy`: `{target: "<certificate ARN>"}` → 200, empty.
async fn attach_policy(
    State(shared): State<Shared_>,
    Path(name): Path<String>,
    signed: SignedRequest,
) -> Response {
    let request = match body_object(&signed.body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(target) = request.get("target").and_then(Value::as_str) else {
        return invalid("target is required.");
    };
    let mut state = shared.lock();
    if !state.policies.contains_key(&name) {
        return not_found(&format!("Policy {name} does not exist."));
    }
    let Some(id) =
        certificate_id_of(&shared, target).filter(|id| state.certificates.contains_key(id))
    else {
        return not_found("The target does not exist.");
    };
    let attachment = (name, id);
    if !state.policy_attachments.contains(&attachment) {
        state.policy_attachments.push(attachment);
    }
    StatusCode::OK.into_response()
}

/// `UpdateCertificate`: `?newStatus=ACTIVE|INACTIVE|REVOKED` → 200, empty. Deactivating closes the
/// certificate's open MQTT connections.
async fn update_certificate(
    State(shared): State<Shared_>,
    Path(id): Path<String>,
    signed: SignedRequest,
) -> Response {
    let status = match query_value(&signed.uri, "newStatus").as_deref() {
        Some(s @ ("ACTIVE" | "INACTIVE" | "REVOKED")) => s.to_owned(),
        Some(other) => return invalid(&format!("Invalid newStatus {other}.")),
        None => return invalid("newStatus is required."),
    };
    {
        let now = shared.now();
        let mut state = shared.lock();
        let Some(c) = state.certificates.get_mut(&id) else {
            return certificate_not_found();
        };
        c.set_status(&status, now);
    }
    if status != "ACTIVE" {
        shared.close_connections_of(&id);
    }
    StatusCode::OK.into_response()
}

/// `DeleteCertificate`: refused while `ACTIVE` (`CertificateStateException`) or attached to a thing
/// (`DeleteConflictException`), and while policies are attached unless `?forceDelete=true`.
async fn delete_certificate(
    State(shared): State<Shared_>,
    Path(id): Path<String>,
    signed: SignedRequest,
) -> Response {
    let force = query_value(&signed.uri, "forceDelete").as_deref() == Some("true");
    let mut state = shared.lock();
    let Some(c) = state.certificates.get(&id) else {
        return certificate_not_found();
    };
    if c.status == "ACTIVE" {
        return aws_error(
            409,
            "CertificateStateException",
            &format!("Certificate must be deactivated (not ACTIVE) before deletion. Id: {id}"),
        );
    }
    if state.things.values().any(|t| t.principals.contains(&id)) {
        return aws_error(
            409,
            "DeleteConflictException",
            "Certificate is attached to one or more things.",
        );
    }
    let has_policies = state.policy_attachments.iter().any(|(_, c)| *c == id);
    if has_policies && !force {
        return aws_error(
            409,
            "DeleteConflictException",
            "Certificate policies must be detached before deletion.",
        );
    }
    state.policy_attachments.retain(|(_, c)| *c != id);
    state.certificates.remove(&id);
    state.registered_certificates.remove(&id);
    StatusCode::OK.into_response()
}

/// `DeleteThing`: refused while principals are attached (AWS's words, as reported in
/// rebuy-de/aws-nuke#374 and getmoto/moto#4616); a thing that does not exist is no error.
async fn delete_thing(
    State(shared): State<Shared_>,
    Path(thing): Path<String>,
    _signed: SignedRequest,
) -> Response {
    let mut state = shared.lock();
    if state
        .things
        .get(&thing)
        .is_some_and(|t| !t.principals.is_empty())
    {
        return invalid(&format!(
            "Cannot delete. Thing {thing} is still attached to one or more principals"
        ));
    }
    state.things.remove(&thing);
    json_response(StatusCode::OK, json!({}))
}

/// `DetachThingPrincipal`: the principal (a certificate ARN) in the `x-amzn-principal` header.
async fn detach_thing_principal(
    State(shared): State<Shared_>,
    Path(thing): Path<String>,
    signed: SignedRequest,
) -> Response {
    let Some(principal) = signed
        .headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
    else {
        return invalid("The x-amzn-principal header is required.");
    };
    let id = certificate_id_of(&shared, principal).unwrap_or_default();
    let mut state = shared.lock();
    let Some(t) = state.things.get_mut(&thing) else {
        return thing_not_found(&thing);
    };
    t.principals.retain(|p| *p != id);
    json_response(StatusCode::OK, json!({}))
}

impl super::Emulator {
    /// The AWS account id in its ARNs.
    pub fn account_id(&self) -> &str {
        &self.shared.account_id
    }
}

/// Whether `principal` may do `action` on `topic_or_filter` (or, for [`Action::Connect`], as client
/// id). Certificates registered through this API are held to their attached policies (no policy: no
/// permission, as in AWS); the emulator's own claims and the certificates fleet provisioning issued
/// keep their fixed rules (the claim policy in `mqtt::topics`, anything for devices).
pub(crate) fn may(shared: &Shared, principal: &Principal, action: Action, what: &str) -> bool {
    let Principal::Device { certificate_id } = principal else {
        return true;
    };
    let state = shared.lock();
    if !state.registered_certificates.contains(certificate_id) {
        return true;
    }
    let documents: Vec<&Value> = state
        .policy_attachments
        .iter()
        .filter(|(_, c)| c == certificate_id)
        .filter_map(|(name, _)| state.policies.get(name))
        .collect();
    let resource = action.resource(&shared.region, &shared.account_id, what);
    iot_policy::allows(&documents, action.name(), &resource)
}

/// A certificate's validity (not before, not after), if it parses as X.509.
fn validity(der: &[u8]) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let v = &cert.tbs_certificate.validity;
    Some((v.not_before.to_system_time(), v.not_after.to_system_time()))
}

/// The MQTT endpoint's client-certificate check: a chain to one of `ca_pems` (the emulator's claim
/// and device CAs), or a certificate registered without its CA (`RegisterCertificateWithoutCA`),
/// inside its validity. Whether a registered certificate is `ACTIVE` is decided after the handshake,
/// as for every certificate.
pub(crate) fn mqtt_client_verifier(
    shared: Arc<Shared>,
    ca_pems: &[&str],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, EmulatorError> {
    let chained = super::control::client_verifier(ca_pems)?;
    Ok(Arc::new(RegisteredOrChained { shared, chained }))
}

struct RegisteredOrChained {
    shared: Arc<Shared>,
    chained: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl std::fmt::Debug for RegisteredOrChained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredOrChained")
            .field("chained", &self.chained)
            .finish_non_exhaustive()
    }
}

impl rustls::server::danger::ClientCertVerifier for RegisteredOrChained {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        // No hints: a device sends its one certificate whoever issued it.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let chained = self
            .chained
            .verify_client_cert(end_entity, intermediates, now);
        if chained.is_ok() {
            return chained;
        }
        let id = hex::encode(Sha256::digest(end_entity.as_ref()));
        if !self.shared.lock().registered_certificates.contains(&id) {
            return chained;
        }
        let Some((not_before, not_after)) = validity(end_entity.as_ref()) else {
            return chained;
        };
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.as_secs());
        if now < not_before || now > not_after {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            ));
        }
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chained.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chained.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chained.supported_verify_schemes()
    }
}
