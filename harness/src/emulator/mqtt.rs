//! The emulator's MQTT endpoint: MQTT 3.1.1 over TLS with client-certificate authentication (packets
//! through rumqttc's maintained codec), and AWS IoT's fleet-provisioning API on `$aws/...` topics.
//!
//! * A client certificate must chain to the claim CA or the device CA and be inside its validity (TLS
//!   refuses it otherwise). A claim certificate must be one the emulator issued; a device certificate
//!   must be registered and `ACTIVE`.
//! * A claim certificate may use only the provisioning topics (the claim policy of the AWS guide); any
//!   other publish or subscribe disconnects the client, as AWS does.
//! * Replies (`…/accepted`, `…/rejected`) go to the requesting client only, and only if it subscribed.
//! * Device certificates may publish and subscribe elsewhere; messages are routed between them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::QoS;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::pki::{pki_error, ServerIdentity};
use super::template;
use super::{CertificateRecord, EmulatorError, Shared, Thing};

/// Largest MQTT packet accepted (AWS IoT: 128 KiB).
const MAX_PACKET: usize = 128 * 1024;
/// Certificate ownership tokens live an hour.
pub const OWNERSHIP_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// A trusted-user claim must obtain its certificate within this long of connecting.
pub const CLAIM_CONNECTION_WINDOW: Duration = Duration::from_secs(300);

/// Who is connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A provisioning claim certificate.
    Claim {
        /// Its id.
        certificate_id: String,
    },
    /// A registered device certificate.
    Device {
        /// Its id.
        certificate_id: String,
    },
}

/// A provisioning event, for tests and the chaos campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MqttEvent {
    /// A client connected.
    Connected {
        /// Its client id.
        client_id: String,
        /// With what.
        principal: Principal,
    },
    /// A client was disconnected for using a topic its certificate may not use.
    Forbidden {
        /// Its client id.
        client_id: String,
        /// The topic.
        topic: String,
    },
    /// A fleet-provisioning request was answered.
    Answered {
        /// Its client id.
        client_id: String,
        /// The request topic.
        topic: String,
        /// Accepted or rejected.
        accepted: bool,
    },
}

impl Client {
    /// Ends the connection.
    pub(crate) fn close(&self) {
        let _ = self.tx.send(None);
    }
}

pub(crate) struct Client {
    client_id: String,
    principal: Principal,
    connected_at: Instant,
    subscriptions: Vec<String>,
    tx: mpsc::UnboundedSender<Option<Packet>>,
}

#[derive(Default)]
pub(crate) struct Broker {
    pub clients: HashMap<u64, Client>,
    pub events: Vec<MqttEvent>,
}

pub(crate) struct OwnershipToken {
    pub certificate_id: String,
    pub expires: Instant,
}

/// MQTT topic filter matching with `+` and `#`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The claim policy: create / create-from-csr and any template's provision topics (and their replies).
fn claim_may_use(topic_or_filter: &str) -> bool {
    [
        "$aws/certificates/create/",
        "$aws/certificates/create-from-csr/",
    ]
    .iter()
    .any(|p| topic_or_filter.starts_with(p))
        || topic_or_filter
            .strip_prefix("$aws/provisioning-templates/")
            .is_some_and(|rest| rest.split('/').nth(1) == Some("provision"))
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    identity: ServerIdentity,
) -> Result<(SocketAddr, JoinHandle<()>), EmulatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        super::control::client_verifier(&[shared.pki.claim_ca.pem(), shared.pki.device_ca.pem()])?;
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pki_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(pki_error)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| EmulatorError::Server(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| EmulatorError::Server(e.to_string()))?;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let shared = shared.clone();
            let conn = NEXT.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                // Expired or foreign certificates fail right here, in the TLS handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if shared.lock().mqtt_down {
                    return;
                }
                let Some(certificate_id) = super::control::peer_certificate_id(&tls) else {
                    return;
                };
                let Some(principal) = principal_of(&shared, certificate_id) else {
                    return;
                };
                connection(shared, conn, principal, tls).await;
            });
        }
    });
    Ok((addr, task))
}

fn principal_of(shared: &Shared, certificate_id: String) -> Option<Principal> {
    let state = shared.lock();
    if state
        .claims
        .iter()
        .any(|c| c.certificate_id == certificate_id)
    {
        return Some(Principal::Claim { certificate_id });
    }
    match state.certificates.get(&certificate_id) {
        Some(c) if c.status == "ACTIVE" => Some(Principal::Device { certificate_id }),
        _ => None,
    }
}

async fn connection<S>(shared: Arc<Shared>, conn: u64, principal: Principal, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Packet>>();
    let writer_task = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        while let Some(Some(packet)) = rx.recv().await {
            buf.clear();
            if packet.write(&mut buf, MAX_PACKET).is_err() || writer.write_all(&buf).await.is_err()
            {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut buf = BytesMut::with_capacity(4096);
    let mut connected = false;
    'read: loop {
        let packet = loop {
            match Packet::read(&mut buf, MAX_PACKET) {
                Ok(p) => break p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {
                    let mut chunk = [0u8; 4096];
                    match reader.read(&mut chunk).await {
                        Ok(0) | Err(_) => break 'read,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                Err(_) => break 'read,
            }
        };
        match packet {
            Packet::Connect(c) if !connected => {
                connected = true;
                let mut broker = shared.broker();
                // AWS: a second connection with the same client id ends the first.
                let stale: Vec<u64> = broker
                    .clients
                    .iter()
                    .filter(|(_, cl)| cl.client_id == c.client_id)
                    .map(|(id, _)| *id)
                    .collect();
                for id in stale {
                    if let Some(old) = broker.clients.remove(&id) {
                        let _ = old.tx.send(None);
                    }
                }
                broker.events.push(MqttEvent::Connected {
                    client_id: c.client_id.clone(),
                    principal: principal.clone(),
                });
                broker.clients.insert(
                    conn,
                    Client {
                        client_id: c.client_id,
                        principal: principal.clone(),
                        connected_at: Instant::now(),
                        subscriptions: Vec::new(),
                        tx: tx.clone(),
                    },
                );
                let _ = tx.send(Some(Packet::ConnAck(ConnAck::new(
                    ConnectReturnCode::Success,
                    false,
                ))));
            }
            _ if !connected => break,
            Packet::Subscribe(s) => {
                let mut codes = Vec::new();
                for f in &s.filters {
                    if matches!(principal, Principal::Claim { .. }) && !claim_may_use(&f.path) {
                        forbid(&shared, conn, &f.path);
                        break 'read;
                    }
                    codes.push(SubscribeReasonCode::Success(if f.qos == QoS::AtMostOnce {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    }));
                }
                if let Some(client) = shared.broker().clients.get_mut(&conn) {
                    client
                        .subscriptions
                        .extend(s.filters.iter().map(|f| f.path.clone()));
                }
                let _ = tx.send(Some(Packet::SubAck(SubAck::new(s.pkid, codes))));
            }
            Packet::Publish(p) => {
                if matches!(principal, Principal::Claim { .. }) && !claim_may_use(&p.topic) {
                    forbid(&shared, conn, &p.topic);
                    break 'read;
                }
                if p.qos != QoS::AtMostOnce {
                    let _ = tx.send(Some(Packet::PubAck(PubAck::new(p.pkid))));
                }
                if p.topic.starts_with("$aws/") {
                    let shared = shared.clone();
                    tokio::spawn(async move { provisioning_request(shared, conn, p).await });
                } else {
                    route(&shared, conn, &p);
                }
            }
            Packet::PingReq => {
                let _ = tx.send(Some(Packet::PingResp));
            }
            Packet::Unsubscribe(u) => {
                if let Some(client) = shared.broker().clients.get_mut(&conn) {
                    client.subscriptions.retain(|s| !u.topics.contains(s));
                }
                let _ = tx.send(Some(Packet::UnsubAck(rumqttc::mqttbytes::v4::UnsubAck {
                    pkid: u.pkid,
                })));
            }
            Packet::Disconnect => break,
            _ => {}
        }
    }
    shared.broker().clients.remove(&conn);
    let _ = tx.send(None);
    let _ = writer_task.await;
}

fn forbid(shared: &Shared, conn: u64, topic: &str) {
    let mut broker = shared.broker();
    let client_id = broker
        .clients
        .get(&conn)
        .map(|c| c.client_id.clone())
        .unwrap_or_default();
    broker.events.push(MqttEvent::Forbidden {
        client_id,
        topic: topic.to_owned(),
    });
}

/// Delivers a device message to every other subscriber whose filter matches.
fn route(shared: &Shared, from: u64, p: &Publish) {
    let broker = shared.broker();
    for (id, client) in &broker.clients {
        if *id != from
            && matches!(client.principal, Principal::Device { .. })
            && client
                .subscriptions
                .iter()
                .any(|f| topic_matches(f, &p.topic))
        {
            let _ = client.tx.send(Some(Packet::Publish(Publish::new(
                p.topic.clone(),
                QoS::AtMostOnce,
                p.payload.to_vec(),
            ))));
        }
    }
}

/// Sends a reply to the requesting client only, if it subscribed to the reply topic.
fn reply(shared: &Shared, conn: u64, request_topic: &str, accepted: bool, body: Value) {
    let topic = format!(
        "{request_topic}/{}",
        if accepted { "accepted" } else { "rejected" }
    );
    let mut broker = shared.broker();
    let Some(client) = broker.clients.get(&conn) else {
        return;
    };
    let client_id = client.client_id.clone();
    if client
        .subscriptions
        .iter()
        .any(|f| topic_matches(f, &topic))
    {
        let _ = client.tx.send(Some(Packet::Publish(Publish::new(
            topic,
            QoS::AtMostOnce,
            body.to_string(),
        ))));
    }
    broker.events.push(MqttEvent::Answered {
        client_id,
        topic: request_topic.to_owned(),
        accepted,
    });
}

fn rejection(status: u16, code: &str, message: &str) -> Value {
    json!({"statusCode": status, "errorCode": code, "errorMessage": message})
}

fn random_token() -> String {
    (0..96)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[fastrand::usize(..36)]))
        .collect()
}

fn new_certificate(shared: &Shared, certificate_id: &str, pem: &str) -> String {
    let token = random_token();
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
    state.certificates.insert(
        certificate_id.to_owned(),
        CertificateRecord {
            status: "INACTIVE".into(),
            pem: pem.to_owned(),
        },
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

async fn provisioning_request(shared: Arc<Shared>, conn: u64, p: Publish) {
    let topic = p.topic.clone();
    let (principal, connected_at) = {
        let broker = shared.broker();
        match broker.clients.get(&conn) {
            Some(c) => (c.principal.clone(), c.connected_at),
            None => return,
        }
    };
    let body: Value = if p.payload.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&p.payload) {
            Ok(v) => v,
            Err(_) => {
                return reply(
                    &shared,
                    conn,
                    &topic,
                    false,
                    rejection(400, "InvalidPayload", "The payload is not valid JSON."),
                )
            }
        }
    };
    let late = matches!(principal, Principal::Claim { .. })
        && connected_at.elapsed() > shared.lock().claim_connection_window;
    match topic.as_str() {
        "$aws/certificates/create/json" | "$aws/certificates/create-from-csr/json" if late => {
            reply(
                &shared,
                conn,
                &topic,
                false,
                rejection(
                    403,
                    "AccessDenied",
                    "The claim connection has exceeded its provisioning window.",
                ),
            )
        }
        "$aws/certificates/create/json" => {
            let s = shared.clone();
            let Ok(Ok((id, pem, _der, key))) =
                tokio::task::spawn_blocking(move || s.pki.create_keys_and_certificate()).await
            else {
                return reply(
                    &shared,
                    conn,
                    &topic,
                    false,
                    rejection(500, "InternalError", "Certificate creation failed."),
                );
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
        "$aws/certificates/create-from-csr/json" => {
            let Some(csr) = body
                .get("certificateSigningRequest")
                .and_then(Value::as_str)
            else {
                return reply(
                    &shared,
                    conn,
                    &topic,
                    false,
                    rejection(
                        400,
                        "InvalidPayload",
                        "certificateSigningRequest is required.",
                    ),
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
                Err(_) => reply(
                    &shared,
                    conn,
                    &topic,
                    false,
                    rejection(
                        400,
                        "InvalidCsr",
                        "The certificate signing request is not valid.",
                    ),
                ),
            }
        }
        t => match t
            .strip_prefix("$aws/provisioning-templates/")
            .and_then(|r| r.strip_suffix("/provision/json"))
        {
            Some(template_name) => {
                let (ok, answer) =
                    match pre_provisioning(&shared, template_name, &principal, conn, body).await {
                        Ok(body) => register_thing(&shared, template_name, &body),
                        Err(denied) => (false, denied),
                    };
                reply(&shared, conn, &topic, ok, answer);
            }
            None => reply(
                &shared,
                conn,
                &topic,
                false,
                rejection(404, "NotFound", "Unknown topic."),
            ),
        },
    }
}

/// Runs the template's pre-provisioning hook, if any: `Ok(body)` with the parameter overrides merged in,
/// or the rejection (403 `ACCESS_DENIED`) when the hook denies, fails or takes too long. Requests whose
/// token is unknown skip the hook: RegisterThing rejects them anyway.
async fn pre_provisioning(
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
            Principal::Claim { certificate_id } | Principal::Device { certificate_id } => {
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
            super::PreProvisioningHook::Rule(rule) => rule(&input),
            super::PreProvisioningHook::Url(url) => {
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
fn register_thing(shared: &Shared, template_name: &str, body: &Value) -> (bool, Value) {
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
            c.status = status.clone();
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

impl Shared {
    /// The broker's state (a panicked holder leaves plain data behind: keep going).
    pub(crate) fn broker(&self) -> std::sync::MutexGuard<'_, Broker> {
        self.broker.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mqtt_events(&self) -> Vec<MqttEvent> {
        self.broker().events.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_the_claim_policy() {
        assert!(topic_matches(
            "$aws/certificates/create/json/+",
            "$aws/certificates/create/json/accepted"
        ));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(claim_may_use("$aws/certificates/create-from-csr/json"));
        assert!(claim_may_use(
            "$aws/provisioning-templates/t1/provision/json/accepted"
        ));
        assert!(!claim_may_use("$aws/things/t1/shadow/update"));
        assert!(!claim_may_use("devices/t1/telemetry"));
        assert!(!claim_may_use("$aws/provisioning-templates/t1/other"));
    }
}
