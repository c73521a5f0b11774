//! Lifecycle and oversight: `POST /v1/claims/{certificateId}/revoke` (the installer who took the
//! claim, or an admin; the hook then refuses it) and `GET /v1/audit` (admins: the trail as JSON lines).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{authenticate, error, unavailable};
use crate::store::ClaimStatus;
use crate::AppState;

/// The handler of `POST /v1/claims/{certificateId}/revoke`.
pub async fn revoke_claim(
    State(state): State<AppState>,
    Path(certificate_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let installer = match authenticate(&state, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let admin = state.policy().grants(&installer.roles).admin;
    match state
        .store()
        .revoke(&certificate_id, &installer.subject, admin)
        .await
    {
        Err(e) => unavailable(&e),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "ClaimNotFound",
            "no such claim of yours",
        ),
        Ok(Some(r)) if r.status == ClaimStatus::Revoked => (
            StatusCode::OK,
            axum::Json(json!({"certificateId": r.certificate_id, "status": r.status})),
        )
            .into_response(),
        Ok(Some(r)) => error(
            StatusCode::CONFLICT,
            "ClaimNotRevocable",
            &format!(
                "the claim is {}; only an ISSUED claim can be revoked",
                r.status.as_str()
            ),
        ),
    }
}

/// `?after=&limit=` of the audit export.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Entries after this id.
    #[serde(default)]
    pub after: i64,
    /// At most this many (1–10000, default 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// The handler of `GET /v1/audit`: `application/x-ndjson`, one entry a line, oldest first.
pub async fn audit_trail(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    let installer = match authenticate(&state, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !state.policy().grants(&installer.roles).admin {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "the audit trail is for admins",
        );
    }
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    match state.store().audit_entries(query.after.max(0), limit).await {
        Err(e) => unavailable(&e),
        Ok(entries) => {
            let mut lines = String::new();
            for e in entries {
                if let Ok(line) = serde_json::to_string(&e) {
                    lines.push_str(&line);
                    lines.push('\n');
                }
            }
            (
                StatusCode::OK,
                [(http::header::CONTENT_TYPE, "application/x-ndjson")],
                lines,
            )
                .into_response()
        }
    }
}
