//! The fleet-provisioning requests on `$aws/...` topics, in JSON or CBOR (`…/json`, `…/cbor`):
//! `CreateKeysAndCertificate` (`$aws/certificates/create/<format>`) and `CreateCertificateFromCsr`
//! (`$aws/certificates/create-from-csr/<format>`), each minting a certificate with an ownership token,
//! and the dispatch of a template's `provision/<format>` topic to `RegisterThing`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::register_thing::{pre_provisioning, register_thing};
use super::server::reply;
use super::{OwnershipToken, Principal};
use crate::emulator::{CertificateRecord, Shared};
use crate::fleet_payload::PayloadFormat;

pub(super) fn rejection(status: u16, code: &str, message: &str) -> Value {
    json!({"statusCode": status, "errorCode": code, "errorMessage": message})
}

fn random_token() -> String {
    (0..96)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[fastrand::usize(..36)]))
        .collect()
}

fn new_certificate(shared: &Shared, certificate_id: &str, pem: &str) -> String {
    let token = random_token();
    let created = shared.now();
    let mut state = shared.lock();
    // Certificates whose token expired before a RegisterThing activated them are deleted, as in AWS.
    let now = Instant::now();
    let expired: Vec<String> = state
        .ownership_tokens
        .iter()
        .filter(|(_, t)| t.expires <= now)
        .map(|(k, _)| k.clone())
        .collect();
    for t in expired {
        if let Some(tok) = state.ownership_tokens.remove(&t) {
            if state
                .certificates
                .get(&tok.certificate_id)
                .is_some_and(|c| c.status != "ACTIVE")
            {
                state.certificates.remove(&tok.certificate_id);
            }
        }
    }
    // AWS: a certificate from CreateKeysAndCertificate / CreateCertificateFromCsr waits in
    // PENDING_ACTIVATION until RegisterThing activates it (the template's certificate status).
    state.certificates.insert(
        certificate_id.to_owned(),
        CertificateRecord::new("PENDING_ACTIVATION", pem, created),
    );
    let expires = now + state.ownership_token_lifetime;
    state.ownership_tokens.insert(
        token.clone(),
        OwnershipToken {
            certificate_id: certificate_id.to_owned(),
            expires,
        },
    );
    token
}

pub(super) async fn provisioning_request(
    shared: Arc<Shared>,
    conn: u64,
    topic: String,
    payload: bytes::Bytes,
) {
    let (principal, connected_at) = {
        let broker = shared.broker();
        match broker.clients.get(&conn) {
            Some(c) => (c.principal.clone(), c.connected_at),
            None => return,
        }
    };
    let reject = |status, code: &str, message: &str| {
        reply(
            &shared,
            conn,
            &topic,
            false,
            rejection(status, code, message),
        )
    };
    let Some((api, format)) = PayloadFormat::split(&topic) else {
        return reject(404, "NotFound", "Unknown topic.");
    };
    let Some(body) = format.decode(&payload) else {
        return reject(
            400,
            "InvalidPayload",
            match format {
                PayloadFormat::Json => "The payload is not valid JSON.",
                PayloadFormat::Cbor => "The payload is not valid CBOR.",
            },
        );
    };
    let late = matches!(principal, Principal::Claim { .. })
        && connected_at.elapsed() > shared.lock().claim_connection_window;
    match api {
        "$aws/certificates/create" | "$aws/certificates/create-from-csr" if late => reject(
            403,
            "AccessDenied",
            "The claim connection has exceeded its provisioning window.",
        ),
        "$aws/certificates/create" => {
            let s = shared.clone();
            let Ok(Ok((id, pem, _der, key))) =
                tokio::task::spawn_blocking(move || s.pki.create_keys_and_certificate()).await
            else {
                return reject(500, "InternalError", "Certificate creation failed.");
            };
            let token = new_certificate(&shared, &id, &pem);
            reply(
                &shared,
                conn,
                &topic,
                true,
                json!({"certificateId": id, "certificatePem": pem, "privateKey": key.as_str(), "certificateOwnershipToken": token}),
            );
        }
        "$aws/certificates/create-from-csr" => {
            let Some(csr) = body
                .get("certificateSigningRequest")
                .and_then(Value::as_str)
            else {
                return reject(
                    400,
                    "InvalidPayload",
                    "certificateSigningRequest is required.",
                );
            };
            match shared.pki.sign_csr(csr) {
                Ok((id, pem, _der)) => {
                    let token = new_certificate(&shared, &id, &pem);
                    reply(
                        &shared,
                        conn,
                        &topic,
                        true,
                        json!({"certificateId": id, "certificatePem": pem, "certificateOwnershipToken": token}),
                    );
                }
                Err(_) => reject(
                    400,
                    "InvalidCsr",
                    "The certificate signing request is not valid.",
                ),
            }
        }
        api => match api
            .strip_prefix("$aws/provisioning-templates/")
            .and_then(|r| r.strip_suffix("/provision"))
        {
            Some(template_name) => {
                let (ok, answer) =
                    match pre_provisioning(&shared, template_name, &principal, conn, body).await {
                        Ok(body) => register_thing(&shared, template_name, &body),
                        Err(denied) => (false, denied),
                    };
                reply(&shared, conn, &topic, ok, answer);
            }
            None => reject(404, "NotFound", "Unknown topic."),
        },
    }
}
