//! Lifecycle and oversight: `POST /v1/claims/{certificateId}/revoke` (the installer who took the
//! claim, or an admin; the hook then refuses it) and `GET /v1/audit` (admins: the trail as JSON lines).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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

/// `?after=&limit=` of the audit export: entries after id `after` (default 0), at most `limit`
/// (1–10000, default 1000). Anything else is a 400 in the API's error shape.
pub fn audit_query(raw: Option<&str>) -> Result<(i64, i64), String> {
    let (mut after, mut limit) = (0_i64, 1000_i64);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let n: i64 = v.parse().map_err(|_| format!("{k} must be an integer"))?;
        match k.as_ref() {
            "after" if n >= 0 => after = n,
            "limit" if (1..=10_000).contains(&n) => limit = n,
            "after" | "limit" => return Err(format!("{k} is out of range")),
            _ => {}
        }
    }
    Ok((after, limit))
}

/// The handler of `GET /v1/audit`: `application/x-ndjson`, one entry a line, oldest first.
pub async fn audit_trail(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
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
    let (after, limit) = match audit_query(query.as_deref()) {
        Ok(q) => q,
        Err(why) => return error(StatusCode::BAD_REQUEST, "InvalidRequest", &why),
    };
    match state.store().audit_entries(after, limit).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_queries() {
        assert_eq!(audit_query(None), Ok((0, 1000)));
        assert_eq!(audit_query(Some("after=5&limit=10")), Ok((5, 10)));
        assert!(audit_query(Some("after=-1")).is_err());
        assert!(audit_query(Some("limit=0")).is_err());
        assert!(audit_query(Some("limit=10001")).is_err());
        assert!(audit_query(Some("after=14581693335570432000")).is_err());
        assert!(audit_query(Some("after=x")).is_err());
    }
}
