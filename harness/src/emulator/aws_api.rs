//! AWS IoT's own API, SigV4-verified: `CreateProvisioningClaim`, `DescribeThing`,
//! `ListThingPrincipals`, `DescribeCertificate`, answering in the shapes of AWS's service model
//! (botocore's `iot/2015-05-28/service-2.json`; harness/tests/aws_shapes.rs checks every answer against
//! an extract of it). Optional fields that have no value are left out, never `null`; timestamps are
//! epoch seconds, as rest-json sends them.
//!
//! Temporary credentials expire on the emulator's clock: a request signed with expired ones is refused
//! with 403 `ExpiredTokenException`, as AWS refuses it.

// Handlers return finished responses as their error values (axum style); boxing them buys nothing here.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::control::{answer_fault, aws_error, issue_claim, json_response, take_fault};
use super::sigv4::Verifier;
use super::{Api, Fault, Shared};

type Shared_ = Arc<Shared>;

/// AWS's message for a request signed with temporary credentials past their expiration.
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";

/// Verifies the signature and that the signing credentials have not expired; `Err` is AWS's answer.
fn sigv4(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Response> {
    let now = shared.now();
    let (credentials, expiry) = {
        let state = shared.lock();
        (state.credentials.clone(), state.credential_expiry.clone())
    };
    let verifier = Verifier {
        region: &shared.region,
        service: "iot",
        credentials: &credentials,
        now,
    };
    let access_key_id = verifier
        .verify(method, uri, headers, body)
        .map_err(|r| aws_error(r.status, r.error_type, &r.message))?;
    match expiry.get(&access_key_id) {
        Some(expires) if now >= *expires => {
            Err(aws_error(403, "ExpiredTokenException", EXPIRED_TOKEN))
        }
        _ => Ok(()),
    }
}

/// A request to a SigV4 route that got past what every such route does first: the scripted fault to
/// answer, if any, then the signature check (and the signing credentials' expiry). A handler takes it
/// as its last argument; its rejection is AWS's answer (or axum's, for a body it cannot read).
pub(super) struct SignedRequest {
    /// The request's URI (its query holds some calls' parameters).
    pub(super) uri: Uri,
    /// The request's headers.
    pub(super) headers: HeaderMap,
    /// The request's body, as signed.
    pub(super) body: Bytes,
    /// A fault the handler applies itself (one that replaces the whole answer was answered already).
    pub(super) fault: Option<Fault>,
}

impl FromRequest<Shared_> for SignedRequest {
    type Rejection = Response;

    async fn from_request(request: Request, shared: &Shared_) -> Result<Self, Response> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        let fault = take_fault(shared, Api::Aws);
        if let Some(r) = answer_fault(Api::Aws, &fault).await {
            return Err(r);
        }
        sigv4(shared, &method, &uri, &headers, &body)?;
        Ok(Self {
            uri,
            headers,
            body,
            fault,
        })
    }
}

/// AWS's 404 `ResourceNotFoundException` with `message`.
pub(super) fn not_found(message: &str) -> Response {
    aws_error(404, "ResourceNotFoundException", message)
}

/// AWS's answer for a thing that does not exist.
pub(super) fn thing_not_found(thing: &str) -> Response {
    not_found(&format!("Thing {thing} cannot be found."))
}

/// AWS's answer for a certificate that does not exist.
pub(super) fn certificate_not_found() -> Response {
    not_found("The certificate does not exist.")
}

/// A timestamp as rest-json sends it: epoch seconds, milliseconds as the fraction.
fn epoch_seconds(t: SystemTime) -> Value {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    json!((since.as_millis() as f64) / 1000.0)
}

/// A UUID-formatted id derived from `seed` (AWS's thing ids and generation ids are UUIDs).
fn uuid_from(seed: &str) -> String {
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The validity of a PEM certificate, as (notBefore, notAfter); `None` if it does not parse.
fn validity(pem: &str) -> Option<(SystemTime, SystemTime)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let at = |secs: i64| Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?));
    Some((
        at(cert.validity().not_before.timestamp())?,
        at(cert.validity().not_after.timestamp())?,
    ))
}

pub(super) async fn create_provisioning_claim(
    State(shared): State<Shared_>,
    Path(template): Path<String>,
    signed: SignedRequest,
) -> Response {
    let enabled = shared.lock().templates.get(&template).map(|t| t.enabled);
    if enabled != Some(true) {
        return not_found(&format!(
            "The provisioning template {template} does not exist or is disabled."
        ));
    }
    match issue_claim(&shared, &template, signed.fault).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(r) => r,
    }
}

pub(super) async fn describe_thing(
    State(shared): State<Shared_>,
    Path(thing): Path<String>,
    _signed: SignedRequest,
) -> Response {
    let state = shared.lock();
    let Some(t) = state.things.get(&thing) else {
        return thing_not_found(&thing);
    };
    let mut answer = json!({
        // AWS: the client id a device connecting as this thing uses by default is the thing's name.
        "defaultClientId": t.name,
        "thingName": t.name,
        "thingId": uuid_from(&t.name),
        "thingArn": format!("arn:aws:iot:{}:{}:thing/{}", shared.region, shared.account_id, t.name),
        "attributes": t.attributes,
        "version": 1,
    });
    if let Some(thing_type) = &t.thing_type {
        answer["thingTypeName"] = json!(thing_type);
    }
    if let Some(billing_group) = &t.billing_group {
        answer["billingGroupName"] = json!(billing_group);
    }
    json_response(StatusCode::OK, answer)
}

pub(super) async fn list_thing_principals(
    State(shared): State<Shared_>,
    Path(thing): Path<String>,
    _signed: SignedRequest,
) -> Response {
    let state = shared.lock();
    let Some(t) = state.things.get(&thing) else {
        return thing_not_found(&thing);
    };
    let principals: Vec<String> = t
        .principals
        .iter()
        .map(|id| {
            format!(
                "arn:aws:iot:{}:{}:cert/{id}",
                shared.region, shared.account_id
            )
        })
        .collect();
    json_response(StatusCode::OK, json!({"principals": principals}))
}

pub(super) async fn describe_certificate(
    State(shared): State<Shared_>,
    Path(id): Path<String>,
    _signed: SignedRequest,
) -> Response {
    let state = shared.lock();
    let Some(c) = state.certificates.get(&id) else {
        return certificate_not_found();
    };
    let mut description = json!({
        "certificateArn": format!("arn:aws:iot:{}:{}:cert/{id}", shared.region, shared.account_id),
        "certificateId": id,
        "status": c.status,
        "certificatePem": c.pem,
        "ownedBy": shared.account_id,
        "creationDate": epoch_seconds(c.created),
        "lastModifiedDate": epoch_seconds(c.last_modified),
        "customerVersion": c.customer_version,
        "transferData": {},
        "generationId": uuid_from(&format!("{id}/{}", c.customer_version)),
        "certificateMode": "DEFAULT",
    });
    if let Some((not_before, not_after)) = validity(&c.pem) {
        description["validity"] = json!({
            "notBefore": epoch_seconds(not_before),
            "notAfter": epoch_seconds(not_after),
        });
    }
    json_response(
        StatusCode::OK,
        json!({"certificateDescription": description}),
    )
}
