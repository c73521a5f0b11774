//! The HTTPS control plane: the backend contract and AWS IoT's SigV4 API (`aws_api`) on one TLS
//! listener, and what both share: scripted faults, claim issuance, AWS's error answers.

// Handlers return finished responses as their error values (axum style); boxing them buys nothing here.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::aws_api;
use super::pki::{pki_error, ServerIdentity};
use super::{Api, EmulatorError, Fault, RequestRecord, Shared};

type Shared_ = Arc<Shared>;

pub(crate) async fn serve(
    shared: Shared_,
    identity: ServerIdentity,
) -> Result<(SocketAddr, JoinHandle<()>), EmulatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pki_error)?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(pki_error)?;
    serve_https(
        tls,
        router(shared),
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    )
    .await
}

/// A verifier that requires client certificates chaining to one of `ca_pems`, inside their validity.
pub(crate) fn client_verifier(
    ca_pems: &[&str],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, EmulatorError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.map_err(pki_error)?).map_err(pki_error)?;
        }
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(pki_error)
}

/// The id (hex SHA-256 of the DER, as AWS names certificates) of the client certificate a TLS
/// connection presented.
pub(crate) fn peer_certificate_id<IO>(tls: &tokio_rustls::server::TlsStream<IO>) -> Option<String> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| hex::encode(Sha256::digest(c.as_ref())))
}

/// The id (hex SHA-256 of the DER) of the client certificate a TLS connection presented.
#[derive(Clone, Debug)]
pub(crate) struct PeerCertificate(pub Option<String>);

/// Serves `app` over HTTPS/1.1 on an ephemeral port of `bind`; each request carries the connection's
/// [`PeerCertificate`] as an extension.
pub(crate) async fn serve_https(
    mut tls: rustls::ServerConfig,
    app: Router,
    bind: std::net::IpAddr,
) -> Result<(SocketAddr, JoinHandle<()>), EmulatorError> {
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind((bind, 0))
        .await
        .map_err(|e| EmulatorError::Server(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| EmulatorError::Server(e.to_string()))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _peer)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let app = app.layer(axum::Extension(PeerCertificate(peer_certificate_id(&tls))));
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http1_only()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

fn router(shared: Shared_) -> Router {
    Router::new()
        .route("/v1/provisioning-claims", post(backend_claim))
        .route("/v1/things/{thing}", get(backend_thing))
        .route(
            "/provisioning-templates/{template}/provisioning-claim",
            post(aws_api::create_provisioning_claim),
        )
        .route("/things/{thing}", get(aws_api::describe_thing))
        .route(
            "/things/{thing}/principals",
            get(aws_api::list_thing_principals),
        )
        .route("/certificates/{id}", get(aws_api::describe_certificate))
        .merge(super::registry_api::routes())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            stamp_and_log,
        ))
        .with_state(shared)
}

/// Every answer carries the emulator's `Date`, and is logged.
async fn stamp_and_log(State(shared): State<Shared_>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let date = httpdate::fmt_http_date(shared.now());
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(axum::http::header::DATE, v);
    }
    shared.lock().log.push(RequestRecord {
        method,
        path,
        status: response.status().as_u16(),
    });
    response
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn backend_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({"error": code, "message": message}))
}

pub(crate) fn aws_error(status: u16, error_type: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, json!({"message": message}));
    let header = format!("{error_type}:http://internal.amazon.com/coral/com.amazonaws.iot/");
    if let Ok(v) = HeaderValue::from_str(&header) {
        response.headers_mut().insert("x-amzn-ErrorType", v);
    }
    response
}

pub(super) fn take_fault(shared: &Shared, api: Api) -> Option<Fault> {
    shared
        .lock()
        .faults
        .get_mut(&api)
        .and_then(|q| q.pop_front())
}

/// Faults that replace the whole answer; `None` when the handler should go on (possibly with a
/// body-level fault it applies itself).
pub(super) async fn answer_fault(api: Api, fault: &Option<Fault>) -> Option<Response> {
    match fault.as_ref()? {
        Fault::Delay(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        Fault::Status(code) => Some(match api {
            Api::Backend => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                backend_error(status, "ScriptedFault", "scripted failure")
            }
            Api::Aws => {
                let kind = match code {
                    400 => "InvalidRequestException",
                    401 => "UnauthorizedException",
                    404 => "ResourceNotFoundException",
                    503 => "ServiceUnavailableException",
                    _ => "InternalFailureException",
                };
                aws_error(*code, kind, "scripted failure")
            }
        }),
        Fault::Throttle => Some(match api {
            Api::Backend => {
                let mut r = backend_error(StatusCode::TOO_MANY_REQUESTS, "Throttled", "slow down");
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from_static("0"),
                );
                r
            }
            Api::Aws => aws_error(400, "ThrottlingException", "Rate exceeded"),
        }),
        Fault::MalformedJson => Some(
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{\"certificateId\": ",
            )
                .into_response(),
        ),
        _ => None,
    }
}

/// Issues a claim for `template` and renders AWS's answer, applying body-level faults.
pub(super) async fn issue_claim(
    shared: &Shared_,
    template: &str,
    fault: Option<Fault>,
) -> Result<Value, Response> {
    let (validity, backdate) = {
        let state = shared.lock();
        (state.claim_validity, state.claim_backdate)
    };
    let not_before = shared.now() - backdate;
    let pki_shared = shared.clone();
    let issued =
        tokio::task::spawn_blocking(move || pki_shared.pki.issue_claim(not_before, validity))
            .await
            .map_err(|_| aws_error(500, "InternalFailureException", "claim issuance failed"))?
            .map_err(|_| aws_error(500, "InternalFailureException", "claim issuance failed"))?;
    tracing::debug!(certificate_id = %issued.certificate_id, template, "claim issued");
    {
        let mut state = shared.lock();
        state
            .claim_templates
            .insert(issued.certificate_id.clone(), template.to_owned());
        state.claims.push(issued.clone());
    }
    let expiration = issued
        .not_after
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut body = json!({
        "certificateId": issued.certificate_id,
        "certificatePem": issued.certificate_pem,
        "keyPair": {"PublicKey": issued.public_key_pem, "PrivateKey": issued.private_key_pem.as_str()},
        "expiration": expiration,
    });
    match fault {
        Some(Fault::MissingField(field)) => {
            if let Some(obj) = body.as_object_mut() {
                obj.remove(field);
            }
        }
        Some(Fault::GarbageCertificate) => {
            body["certificatePem"] = json!("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
        }
        Some(Fault::WrongKey) => {
            let other = shared
                .pki
                .issue_claim(not_before, validity)
                .map_err(|_| aws_error(500, "InternalFailureException", "claim issuance failed"))?;
            body["keyPair"]["PrivateKey"] = json!(other.private_key_pem.as_str());
        }
        Some(Fault::WrongCertificateId) => {
            body["certificateId"] = json!("0".repeat(64));
        }
        _ => {}
    }
    Ok(body)
}

// ---- the app-backend contract ----

fn bearer_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) => shared.lock().bearer_tokens.contains(t),
        None => false,
    }
}

fn unauthorized() -> Response {
    let mut r = backend_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "the bearer token is missing, invalid or expired",
    );
    r.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

async fn backend_claim(State(shared): State<Shared_>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = take_fault(&shared, Api::Backend);
    if let Some(r) = answer_fault(Api::Backend, &fault).await {
        return r;
    }
    if !bearer_ok(&shared, &headers) {
        return unauthorized();
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return backend_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "the body must be a JSON object",
        );
    };
    let Some(template) = request.get("templateName").and_then(Value::as_str) else {
        return backend_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "templateName is required",
        );
    };
    if request.get("deviceHint").is_some_and(|h| !h.is_string()) {
        return backend_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "deviceHint must be a string",
        );
    }
    let enabled = shared.lock().templates.get(template).map(|t| t.enabled);
    if enabled != Some(true) {
        return backend_error(
            StatusCode::NOT_FOUND,
            "TemplateNotFound",
            "no enabled provisioning template of that name",
        );
    }
    match issue_claim(&shared, template, fault).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(r) => r,
    }
}

async fn backend_thing(
    State(shared): State<Shared_>,
    Path(thing): Path<String>,
    headers: HeaderMap,
) -> Response {
    let fault = take_fault(&shared, Api::Backend);
    if let Some(r) = answer_fault(Api::Backend, &fault).await {
        return r;
    }
    if !bearer_ok(&shared, &headers) {
        return unauthorized();
    }
    let state = shared.lock();
    let Some(t) = state.things.get(&thing) else {
        return backend_error(StatusCode::NOT_FOUND, "ThingNotFound", "no such thing");
    };
    let certificates: Vec<Value> = t
        .principals
        .iter()
        .map(|id| {
            let status = state
                .certificates
                .get(id)
                .map_or("UNKNOWN", |c| c.status.as_str());
            json!({"certificateId": id, "status": status})
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "thingName": t.name,
            "thingArn": format!("arn:aws:iot:{}:{}:thing/{}", shared.region, shared.account_id, t.name),
            "attributes": t.attributes,
            "certificates": certificates,
        }),
    )
}
