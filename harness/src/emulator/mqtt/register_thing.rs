//! `RegisterThing`, and the template's pre-provisioning hook that runs before it: an ownership
//! token, a template and its parameters become registry changes (thing, certificate status, policies)
//! and the `{deviceConfiguration, thingName}` answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::fleet::rejection;
use super::Principal;
use crate::emulator::template;
use crate::emulator::{PreProvisioningHook, Shared, Thing};

/// Runs the template's pre-provisioning hook, if any: `Ok(body)` with the parameter overrides merged in,
/// or the rejection (403 `ACCESS_DENIED`) when the hook denies, fails or takes too long. Requests whose
/// token is unknown skip the hook: RegisterThing rejects them anyway.
pub(super) async fn pre_provisioning(
    shared: &Shared,
    template_name: &str,
    principal: &Principal,
    conn: u64,
    mut body: Value,
) -> Result<Value, Value> {
    let (hook, timeout, input) = {
        let state = shared.lock();
        let Some(hook) = state.hooks.get(template_name).cloned() else {
            return Ok(body);
        };
        let token = body
            .get("certificateOwnershipToken")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(certificate_id) = state
            .ownership_tokens
            .get(token)
            .map(|t| t.certificate_id.clone())
        else {
            return Ok(body);
        };
        let client_id = shared
            .broker()
            .clients
            .get(&conn)
            .map(|c| c.client_id.clone())
            .unwrap_or_default();
        let claim_id = match principal {
            Principal::Claim { certificate_id, .. } | Principal::Device { certificate_id } => {
                certificate_id.clone()
            }
        };
        let input = json!({
            "claimCertificateId": claim_id,
            "certificateId": certificate_id,
            "certificatePem": state.certificates.get(&certificate_id).map(|c| c.pem.clone()).unwrap_or_default(),
            "templateArn": format!("arn:aws:iot:{}:{}:provisioningtemplate/{template_name}", shared.region, shared.account_id),
            "clientId": client_id,
            "parameters": body.get("parameters").cloned().unwrap_or_else(|| json!({})),
        });
        (hook, state.hook_timeout, input)
    };
    let call = async {
        match hook {
            PreProvisioningHook::Rule(rule) => rule(&input),
            PreProvisioningHook::Url(url) => {
                let client = reqwest::Client::builder()
                    .use_preconfigured_tls(
                        rustls::ClientConfig::builder_with_provider(Arc::new(
                            rustls::crypto::ring::default_provider(),
                        ))
                        .with_safe_default_protocol_versions()
                        .map_err(|e| e.to_string())?
                        .with_root_certificates({
                            let mut roots = rustls::RootCertStore::empty();
                            use rustls_pki_types::pem::PemObject;
                            for c in rustls_pki_types::CertificateDer::pem_slice_iter(
                                shared.pki.server_ca.pem().as_bytes(),
                            )
                            .flatten()
                            {
                                let _ = roots.add(c);
                            }
                            roots
                        })
                        .with_no_client_auth(),
                    )
                    .build()
                    .map_err(|e| e.to_string())?;
                let response = client
                    .post(url)
                    .json(&input)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("the hook answered HTTP {}", response.status()));
                }
                let bytes = response.bytes().await.map_err(|e| e.to_string())?;
                serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string())
            }
        }
    };
    let denied = |why: &str| rejection(403, "ACCESS_DENIED", why);
    let output = match tokio::time::timeout(timeout, call).await {
        Err(_) => return Err(denied("The pre-provisioning hook did not answer in time.")),
        Ok(Err(e)) => return Err(denied(&format!("The pre-provisioning hook failed: {e}"))),
        Ok(Ok(v)) => v,
    };
    if output.get("allowProvisioning").and_then(Value::as_bool) != Some(true) {
        return Err(denied("The pre-provisioning hook denied the provisioning."));
    }
    if let Some(Value::Object(overrides)) = output.get("parameterOverrides") {
        let params = body
            .as_object_mut()
            .map(|b| b.entry("parameters").or_insert_with(|| json!({})));
        if let Some(Value::Object(params)) = params {
            for (k, v) in overrides {
                params.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(body)
}

/// `RegisterThing`: token, template, parameters → registry changes and `{deviceConfiguration, thingName}`.
pub(super) fn register_thing(shared: &Shared, template_name: &str, body: &Value) -> (bool, Value) {
    let Some(token) = body
        .get("certificateOwnershipToken")
        .and_then(Value::as_str)
    else {
        return (
            false,
            rejection(
                400,
                "InvalidCertificateOwnershipToken",
                "certificateOwnershipToken is required.",
            ),
        );
    };
    let parameters: BTreeMap<String, String> = match body.get("parameters") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect(),
        Some(_) => {
            return (
                false,
                rejection(
                    400,
                    "InvalidParameters",
                    "parameters must be an object of strings.",
                ),
            )
        }
    };
    let now = shared.now();
    let mut state = shared.lock();
    let Some(template) = state
        .templates
        .get(template_name)
        .filter(|t| t.enabled)
        .cloned()
    else {
        return (
            false,
            rejection(
                404,
                "ResourceNotFound",
                &format!(
                    "The provisioning template {template_name} does not exist or is disabled."
                ),
            ),
        );
    };
    let certificate_id = match state.ownership_tokens.get(token) {
        Some(t) if t.expires > Instant::now() => t.certificate_id.clone(),
        _ => {
            return (
                false,
                rejection(
                    400,
                    "InvalidCertificateOwnershipToken",
                    "The certificate ownership token is invalid or expired.",
                ),
            )
        }
    };
    if !state.certificates.contains_key(&certificate_id) {
        return (
            false,
            rejection(
                400,
                "InvalidCertificateOwnershipToken",
                "The certificate of this token no longer exists.",
            ),
        );
    }
    let plan = match template::evaluate(&template.body, &parameters, &certificate_id) {
        Ok(p) => p,
        Err(e) => return (false, rejection(400, e.code, &e.message)),
    };
    if let Some(thing) = &plan.thing {
        if let Some(missing) = thing
            .groups
            .iter()
            .find(|g| !state.thing_groups.contains(*g))
        {
            return (
                false,
                rejection(
                    400,
                    "InvalidParameters",
                    &format!("Thing group {missing} does not exist."),
                ),
            );
        }
    }
    // All checks passed: apply.
    state.ownership_tokens.remove(token);
    if let Some(status) = &plan.certificate_status {
        if let Some(c) = state.certificates.get_mut(&certificate_id) {
            c.set_status(status, now);
        }
    }
    let thing_name = plan.thing.as_ref().map(|t| t.name.clone());
    if let Some(t) = plan.thing {
        let entry = state.things.entry(t.name.clone()).or_insert_with(|| Thing {
            name: t.name.clone(),
            ..Thing::default()
        });
        if t.attribute_override == "REPLACE" {
            entry.attributes.clear();
        }
        if t.attribute_override != "DO_NOTHING" || entry.attributes.is_empty() {
            entry.attributes.extend(t.attributes);
        }
        if !entry.principals.contains(&certificate_id) {
            entry.principals.push(certificate_id.clone());
        }
        entry.groups = t.groups;
        entry.thing_type = t.thing_type.or(entry.thing_type.take());
        entry.billing_group = t.billing_group.or(entry.billing_group.take());
    }
    for (name, doc) in plan.policies {
        // A named policy must already exist (AWS refuses otherwise): its document is kept as is.
        match doc {
            Some(doc) => {
                state.policies.insert(name.clone(), doc);
            }
            None => {
                state.policies.entry(name.clone()).or_insert(Value::Null);
            }
        }
        state
            .policy_attachments
            .push((name, certificate_id.clone()));
    }
    let mut answer = json!({"deviceConfiguration": plan.device_configuration});
    if let Some(name) = thing_name {
        answer["thingName"] = json!(name);
    }
    (true, answer)
}
