//! `GET /v1/things/{thingName}`: the thing from AWS IoT's registry (DescribeThing,
//! ListThingPrincipals, DescribeCertificate), for the installer whose claim registered it (or an
//! admin); the claim becomes `CONFIRMED` once the thing holds, active, the certificate the device
//! registered with through that claim.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{authenticate, error, unavailable};
use crate::AppState;

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "ThingNotFound", "no such thing")
}

/// The handler.
pub async fn describe_thing(
    State(state): State<AppState>,
    Path(thing_name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let installer = match authenticate(&state, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !super::claims::valid_serial(&thing_name) {
        return not_found();
    }
    let admin = state.policy().grants(&installer.roles).admin;
    let record = match state.store().claim_for_thing(&thing_name).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    // Things registered through someone else's claim are not shown (no enumeration of the fleet).
    let Some(record) = record.filter(|r| admin || r.installer == installer.subject) else {
        return not_found();
    };
    let aws_unavailable = |e: &crate::iot::AwsError| {
        tracing::warn!(error = %e, "answering 503");
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "AWS IoT did not answer; try again",
        )
    };
    let thing = match state.iot().describe_thing(&thing_name).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found(),
        Err(e) => return aws_unavailable(&e),
    };
    let principals = match state.iot().list_thing_principals(&thing_name).await {
        Ok(p) => p,
        Err(e) => return aws_unavailable(&e),
    };
    let mut certificates = Vec::new();
    for arn in principals {
        let Some((_, id)) = arn.rsplit_once(":cert/") else {
            continue;
        };
        match state.iot().certificate_status(id).await {
            Ok(Some(status)) => certificates.push(json!({"certificateId": id, "status": status})),
            Ok(None) => {}
            Err(e) => return aws_unavailable(&e),
        }
    }
    // Confirmed when the certificate the device registered with (through this claim) is attached and
    // active: another certificate on a thing of that name proves nothing about this device.
    let active = certificates.iter().any(|c| {
        c["status"] == "ACTIVE"
            && record.device_certificate_id.as_deref() == c["certificateId"].as_str()
    });
    if active {
        if let Err(e) = state.store().confirm(&record, &installer.subject).await {
            return unavailable(&e);
        }
    }
    let mut body = json!({"thingName": thing.get("thingName").cloned().unwrap_or(Value::String(thing_name)), "certificates": certificates});
    if let Some(arn) = thing.get("thingArn").filter(|v| v.is_string()) {
        body["thingArn"] = arn.clone();
    }
    if let Some(Value::Object(attributes)) = thing.get("attributes") {
        let strings: serde_json::Map<String, Value> = attributes
            .iter()
            .filter(|(_, v)| v.is_string())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        body["attributes"] = Value::Object(strings);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}
