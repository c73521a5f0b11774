//! The HTTP API: `docs/backend-api.openapi.yaml`, exactly. Every answer carries `Date` (the SDK
//! measures a claim's lifetime on the server's clock); errors are `{"error", "message"}`.
//!
//! * `POST /v1/provisioning-claims` ([`claims`]) — a claim bound to one device serial;
//! * `GET /v1/things/{thingName}` ([`things`]) — confirmation from AWS IoT's registry;
//! * `POST /v1/claims/{certificateId}/revoke`, `GET /v1/audit` ([`admin`]);
//! * `POST /v1/hooks/pre-provisioning` — the pre-provisioning hook over HTTP ([`crate::hook`]).

pub mod admin;
pub mod claims;
pub mod things;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::oidc::{Installer, TokenRejection};
use crate::AppState;

/// The whole API over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/provisioning-claims", post(claims::create_claim))
        .route("/v1/things/{thing_name}", get(things::describe_thing))
        .route(
            "/v1/claims/{certificate_id}/revoke",
            post(admin::revoke_claim),
        )
        .route("/v1/audit", get(admin::audit_trail))
        .route("/v1/hooks/pre-provisioning", post(hook_route))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NotFound", "no such route") })
        .layer(axum::middleware::from_fn(stamp_date))
        .with_state(state)
}

/// Every answer carries `Date` (hyper adds one on a plain server; Lambda's front does not).
async fn stamp_date(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if !response.headers().contains_key(http::header::DATE) {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(v) = HeaderValue::from_str(&date) {
            response.headers_mut().insert(http::header::DATE, v);
        }
    }
    response
}

/// An error answer.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        json!({"error": code, "message": message}).to_string(),
    )
        .into_response()
}

/// The database failed: 503, retried by the SDK.
pub(crate) fn unavailable(what: &dyn std::fmt::Display) -> Response {
    tracing::warn!(error = %what, "answering 503");
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "the backend cannot reach its database; try again",
    );
    r.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The installer behind the request's bearer token, or the 401 (503 when the issuer's keys cannot be
/// fetched).
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Installer, Response> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized("a bearer token is required"));
    };
    match state.tokens().verify(token).await {
        Ok(installer) => Ok(installer),
        Err(TokenRejection::Invalid(why)) => Err(unauthorized(&why)),
        Err(e @ TokenRejection::KeysUnavailable(_)) => {
            tracing::warn!(error = %e, "answering 503");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "the identity provider's keys are unavailable",
            ))
        }
    }
}

fn unauthorized(why: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", why);
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// `?key=` of the HTTP hook.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct HookKey {
    key: Option<String>,
}

/// `POST /v1/hooks/pre-provisioning`: AWS's hook input in, AWS's hook answer out.
async fn hook_route(
    State(state): State<AppState>,
    Query(key): Query<HookKey>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(expected) = &state.config().hook.key {
        use subtle::ConstantTimeEq;
        let given = key.key.unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return error(StatusCode::FORBIDDEN, "Forbidden", "wrong hook key");
        }
    }
    let input: crate::HookInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "not a pre-provisioning hook input",
            )
        }
    };
    let output = crate::decide_hook(&state, input).await;
    (StatusCode::OK, axum::Json(output)).into_response()
}
