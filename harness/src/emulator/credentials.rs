//! The AWS IoT credentials provider: `GET /role-aliases/<alias>/credentials` over mutual TLS. A device
//! certificate that is ACTIVE, and whose attached policies allow `iot:AssumeRoleWithCertificate` on the
//! role alias, gets temporary AWS credentials (which the emulator's SigV4 API then accepts). With the
//! `x-amzn-iot-thingname` header, the certificate must be attached to that thing.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Value};

use super::control::{json_response, PeerCertificate};
use super::pki::{pki_error, ServerIdentity};
use super::{EmulatorError, KnownCredentials, Shared};

/// A role alias.
#[derive(Clone, Debug)]
pub struct RoleAlias {
    /// The IAM role it stands for.
    pub role_arn: String,
    /// Lifetime of issued credentials, 900–43200 s.
    pub credential_duration: Duration,
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    identity: ServerIdentity,
    bind: std::net::IpAddr,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), EmulatorError> {
    let verifier = super::control::client_verifier(&[shared.pki.device_ca.pem()])?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(pki_error)?
    .with_client_cert_verifier(verifier)
    .with_single_cert(identity.chain, identity.key)
    .map_err(pki_error)?;
    let app = Router::new()
        .route("/role-aliases/{alias}/credentials", get(credentials))
        .with_state(shared);
    super::control::serve_https(tls, app, bind).await
}

/// The credentials provider's error answer: `{"message": ...}` with the error type in
/// `x-amzn-ErrorType`, as AWS's endpoint answers (a recorded curl transcript against it shows
/// `x-amzn-ErrorType: AccessDeniedException` on a 403).
fn error(status: StatusCode, message: &str) -> Response {
    let error_type = match status {
        StatusCode::FORBIDDEN => "AccessDeniedException",
        StatusCode::NOT_FOUND => "ResourceNotFoundException",
        StatusCode::BAD_REQUEST => "InvalidRequestException",
        _ => "InternalFailureException",
    };
    let mut response = json_response(status, json!({"message": message}));
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        axum::http::HeaderValue::from_static(error_type),
    );
    response
}

/// Whether any policy attached to `certificate_id` allows AssumeRoleWithCertificate on `alias_arn`.
fn allowed(shared: &Shared, certificate_id: &str, alias_arn: &str) -> bool {
    let state = shared.lock();
    state
        .policy_attachments
        .iter()
        .filter(|(_, cert)| cert == certificate_id)
        .filter_map(|(name, _)| state.policies.get(name))
        .flat_map(|doc| match doc.get("Statement") {
            Some(Value::Array(s)) => s.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        })
        .any(|statement| {
            let list = |v: Option<&Value>| -> Vec<String> {
                match v {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            statement.get("Effect").and_then(Value::as_str) == Some("Allow")
                && list(statement.get("Action"))
                    .iter()
                    .any(|a| a == "iot:AssumeRoleWithCertificate" || a == "iot:*")
                && list(statement.get("Resource"))
                    .iter()
                    .any(|r| r == "*" || r == alias_arn)
        })
}

async fn credentials(
    State(shared): State<Arc<Shared>>,
    Extension(PeerCertificate(peer)): Extension<PeerCertificate>,
    Path(alias): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(certificate_id) = peer else {
        return error(StatusCode::FORBIDDEN, "Missing client certificate");
    };
    if shared
        .lock()
        .certificates
        .get(&certificate_id)
        .map(|c| c.status.as_str())
        != Some("ACTIVE")
    {
        return error(StatusCode::FORBIDDEN, "Certificate is not active");
    }
    let Some(role) = shared.lock().role_aliases.get(&alias).cloned() else {
        return error(StatusCode::NOT_FOUND, "Role alias does not exist");
    };
    if let Some(thing) = headers
        .get("x-amzn-iot-thingname")
        .and_then(|v| v.to_str().ok())
    {
        let attached = shared
            .lock()
            .things
            .get(thing)
            .is_some_and(|t| t.principals.contains(&certificate_id));
        if !attached {
            return error(StatusCode::FORBIDDEN, "Invalid thing name passed");
        }
    }
    let alias_arn = format!(
        "arn:aws:iot:{}:{}:rolealias/{alias}",
        shared.region, shared.account_id
    );
    if !allowed(&shared, &certificate_id, &alias_arn) {
        return error(StatusCode::FORBIDDEN, "Access Denied");
    }
    let issued = super::random_credentials();
    // They expire on the emulator's clock, which the SigV4 API checks them against.
    let expires = shared.now() + role.credential_duration;
    {
        let mut state = shared.lock();
        state.credentials.insert(
            issued.access_key_id.clone(),
            KnownCredentials {
                secret_access_key: issued.secret_access_key.clone(),
                session_token: Some(issued.session_token.clone()),
            },
        );
        state
            .credential_expiry
            .insert(issued.access_key_id.clone(), expires);
    }
    let expiration = time::OffsetDateTime::from(expires);
    let expiration = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        expiration.year(),
        u8::from(expiration.month()),
        expiration.day(),
        expiration.hour(),
        expiration.minute(),
        expiration.second()
    );
    json_response(
        StatusCode::OK,
        json!({"credentials": {
            "accessKeyId": issued.access_key_id,
            "secretAccessKey": issued.secret_access_key,
            "sessionToken": issued.session_token,
            "expiration": expiration,
        }}),
    )
}
