//! `POST /v1/provisioning-claims`: authenticate, authorise the template and the site, check the
//! serial (the request's `deviceHint`), rate-limit, then CreateProvisioningClaim, store the record
//! bound to the serial and audit it — and only then hand AWS's answer to the app. If the record cannot
//! be stored, the claim is not handed out (503): the hook would refuse it anyway.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{authenticate, error, unavailable};
use crate::policy::SiteRefusal;
use crate::store::{now_secs, AuditEntry, ClaimRecord, ClaimStatus};
use crate::AppState;

/// The request body (the contract's `ClaimRequest`, plus two optional fields of this backend).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimRequestBody {
    /// The provisioning template.
    pub template_name: String,
    /// The device serial (required by this backend: the claim is bound to it).
    #[serde(default)]
    pub device_hint: Option<String>,
    /// The site (optional when the installer has one).
    #[serde(default)]
    pub site: Option<String>,
    /// Template parameters that will override the device's at RegisterThing.
    #[serde(default)]
    pub parameters: Option<BTreeMap<String, String>>,
}

/// Whether `s` is a serial this backend accepts: 1–128 of `[A-Za-z0-9:_-]` (it becomes a thing name).
pub fn valid_serial(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

fn valid_template(s: &str) -> bool {
    (1..=36).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// The handler.
pub async fn create_claim(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let installer = match authenticate(&state, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Ok(request) = serde_json::from_slice::<ClaimRequestBody>(&body) else {
        return bad_request("the body must be a JSON ClaimRequest");
    };
    if !valid_template(&request.template_name) {
        return bad_request("templateName must match [0-9A-Za-z_-]{1,36}");
    }
    let grants = state.policy().grants(&installer.roles);
    let deny = |detail: String| {
        let mut a = AuditEntry::new(&installer.subject, "claim.issue", "denied", detail);
        a.template = Some(request.template_name.clone());
        a.serial = request.device_hint.clone();
        a
    };
    if !grants.allows_template(&request.template_name) {
        let _ = state
            .store()
            .append_audit(deny("template not granted".into()))
            .await;
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "you may not provision devices with this template",
        );
    }
    let Some(serial) = request.device_hint.as_deref() else {
        return bad_request("deviceHint must carry the device serial: claims are bound to it");
    };
    let thing_name = format!("{}{serial}", state.config().claims.thing_name_prefix);
    if serial.len() > 256 || !valid_serial(serial) || !valid_serial(&thing_name) {
        return bad_request("deviceHint is not a valid serial ([A-Za-z0-9:_-], at most 128)");
    }
    let parameters = request.parameters.clone().unwrap_or_default();
    if parameters.len() > 32
        || parameters
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 512)
    {
        return bad_request("parameters: at most 32, names 1-64 bytes, values up to 512 bytes");
    }
    let site = match grants.site_for(request.site.as_deref()) {
        Ok(s) => s,
        Err(SiteRefusal::NotGranted) => {
            let _ = state
                .store()
                .append_audit(deny("site not granted".into()))
                .await;
            return error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "you may not install at this site",
            );
        }
        Err(SiteRefusal::Ambiguous) => {
            return bad_request("name the site: you may install at several")
        }
    };
    if let Err(wait) = state.limiter().take(&installer.subject, Instant::now()) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttled",
            "too many claims; retry later",
        );
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return r;
    }
    match state.store().serial_provisioned(serial).await {
        Err(e) => return unavailable(&e),
        Ok(true) if !grants.reprovision => {
            let _ = state
                .store()
                .append_audit(deny("serial already provisioned".into()))
                .await;
            return error(
                StatusCode::CONFLICT,
                "AlreadyProvisioned",
                "a device with this serial is already provisioned",
            );
        }
        Ok(_) => {}
    }
    let mut issued = match state
        .iot()
        .create_provisioning_claim(&request.template_name)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            let mut a = deny(format!("AWS: {}: {}", e.code, e.message));
            a.outcome = "failed".into();
            let _ = state.store().append_audit(a).await;
            return if e.is_not_found() {
                error(
                    StatusCode::NOT_FOUND,
                    "TemplateNotFound",
                    "no enabled template of that name",
                )
            } else if e.code.contains("Throttl") || e.status >= 500 || e.status == 0 {
                unavailable(&e)
            } else {
                tracing::warn!(error = %e, "CreateProvisioningClaim failed");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "AwsError",
                    "AWS IoT refused the claim",
                )
            };
        }
    };
    let reprovision = grants.reprovision;
    let record = ClaimRecord {
        certificate_id: issued.certificate_id.clone(),
        serial: serial.to_owned(),
        installer: installer.subject.clone(),
        template: request.template_name.clone(),
        parameters,
        site,
        thing_name,
        device_certificate_id: None,
        reprovision,
        issued_at: now_secs(),
        expires_at: issued.expiration,
        status: ClaimStatus::Issued,
    };
    let audit =
        AuditEntry::new(&installer.subject, "claim.issue", "ok", "claim issued").about(&record);
    if let Err(e) = state.store().insert_claim(&record, audit).await {
        // Not recorded, so the hook would refuse it: do not hand it out.
        return unavailable(&e);
    }
    tracing::info!(certificate_id = %record.certificate_id, serial = %record.serial, installer = %record.installer, "claim issued");
    (
        StatusCode::OK,
        [
            (http::header::CONTENT_TYPE, "application/json"),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
        // Moved, not copied: the one copy of the claim's key goes out in the body.
        std::mem::take(&mut *issued.answer),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials() {
        assert!(valid_serial("SN-0042"));
        assert!(valid_serial("a:b_c"));
        assert!(!valid_serial(""));
        assert!(!valid_serial("SN 42"));
        assert!(!valid_serial("SN/42"));
        assert!(!valid_serial(&"x".repeat(129)));
    }
}
