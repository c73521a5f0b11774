//! The MQTT-over-mTLS server: the TLS listener, the principal a client certificate stands for, and
//! each connection's MQTT session, 3.1.1 or 5 as its CONNECT says (`codec`): connect, subscribe,
//! publish, ping, unsubscribe, with device messages routed between subscribers and fleet-provisioning
//! replies sent to the requester.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::codec::{self, Inbound, MqttVersion, Outbound};
use super::fleet::provisioning_request;
use super::topics::{claim_may_use, topic_matches};
use super::{Client, MqttEvent, Principal};
use crate::emulator::control;
use crate::emulator::iot_policy::Action;
use crate::emulator::pki::{pki_error, ServerIdentity};
use crate::emulator::registry_api::may;
use crate::emulator::{EmulatorError, Shared};
use crate::fleet_payload::PayloadFormat;

pub(crate) async fn serve(
    shared: Arc<Shared>,
    identity: ServerIdentity,
    bind: std::net::IpAddr,
) -> Result<(SocketAddr, JoinHandle<()>), EmulatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = crate::emulator::registry_api::mqtt_client_verifier(
        shared.clone(),
        &[shared.pki.claim_ca.pem(), shared.pki.device_ca.pem()],
    )?;
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pki_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(pki_error)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind((bind, 0))
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
                let Some(certificate_id) = control::peer_certificate_id(&tls) else {
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
    if let Some(template) = state.claim_templates.get(&certificate_id) {
        return Some(Principal::Claim {
            template: template.clone(),
            certificate_id,
        });
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Outbound>>();
    let mut buf = BytesMut::with_capacity(4096);
    // The CONNECT's protocol level decides the session's protocol: MQTT 3.1.1 or 5.
    let version = loop {
        match codec::detect(&buf) {
            Ok(Some(v)) => break v,
            Ok(None) => {
                let mut chunk = [0u8; 4096];
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            Err(()) => return,
        }
    };
    let writer_task = tokio::spawn(async move {
        let mut out = BytesMut::new();
        while let Some(Some(packet)) = rx.recv().await {
            out.clear();
            if version.write(&packet, &mut out).is_err() || writer.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut connected = false;
    'read: loop {
        let packet = loop {
            match version.read(&mut buf) {
                Ok(Some(p)) => break p,
                Ok(None) => {
                    let mut chunk = [0u8; 4096];
                    match reader.read(&mut chunk).await {
                        Ok(0) | Err(_) => break 'read,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                Err(()) => break 'read,
            }
        };
        match packet {
            Inbound::Connect { client_id } if !connected => {
                // A registered certificate without iot:Connect for this client id: closed, no CONNACK.
                if !may(&shared, &principal, Action::Connect, &client_id) {
                    break;
                }
                connected = true;
                let mut broker = shared.broker();
                // AWS: a second connection with the same client id ends the first.
                let stale: Vec<u64> = broker
                    .clients
                    .iter()
                    .filter(|(_, cl)| cl.client_id == client_id)
                    .map(|(id, _)| *id)
                    .collect();
                for id in stale {
                    if let Some(old) = broker.clients.remove(&id) {
                        let _ = old.tx.send(None);
                    }
                }
                broker.events.push(MqttEvent::Connected {
                    client_id: client_id.clone(),
                    principal: principal.clone(),
                    version,
                });
                broker.clients.insert(
                    conn,
                    Client {
                        client_id,
                        principal: principal.clone(),
                        connected_at: Instant::now(),
                        subscriptions: Vec::new(),
                        tx: tx.clone(),
                    },
                );
                let _ = tx.send(Some(Outbound::ConnAck));
            }
            _ if !connected => break,
            Inbound::Subscribe { pkid, filters } => {
                let mut granted = Vec::new();
                let mut allowed = Vec::new();
                for (filter, at_least_once) in filters {
                    if may_use(&principal, &filter)
                        && may(&shared, &principal, Action::Subscribe, &filter)
                    {
                        granted.push(Some(at_least_once));
                        allowed.push(filter);
                    } else {
                        forbid(&shared, conn, &filter);
                        if version == MqttVersion::V311 {
                            // MQTT 3.1.1 has no way to say "not authorized": AWS disconnects.
                            break 'read;
                        }
                        granted.push(None);
                    }
                }
                if let Some(client) = shared.broker().clients.get_mut(&conn) {
                    client.subscriptions.extend(allowed);
                }
                let _ = tx.send(Some(Outbound::SubAck { pkid, granted }));
            }
            Inbound::Publish {
                topic,
                at_least_once,
                pkid,
                payload,
            } => {
                if !may_use(&principal, &topic)
                    || !may(&shared, &principal, Action::Publish, &topic)
                {
                    forbid(&shared, conn, &topic);
                    match (version, at_least_once) {
                        // MQTT 5 at QoS 1: PUBACK 0x87 "Not authorized", and the session goes on.
                        (MqttVersion::V5, true) => {
                            let _ = tx.send(Some(Outbound::PubAck {
                                pkid,
                                not_authorized: true,
                            }));
                            continue;
                        }
                        // No acknowledgement to carry the refusal: disconnected (MQTT 5 hears why).
                        _ => {
                            let _ = tx.send(Some(Outbound::DisconnectNotAuthorized));
                            break 'read;
                        }
                    }
                }
                if matches!(principal, Principal::Claim { .. }) {
                    let mut state = shared.lock();
                    if state.down_at_claim_request {
                        state.down_at_claim_request = false;
                        state.mqtt_down = true;
                        break 'read;
                    }
                }
                if at_least_once {
                    let _ = tx.send(Some(Outbound::PubAck {
                        pkid,
                        not_authorized: false,
                    }));
                }
                if topic.starts_with("$aws/") {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        provisioning_request(shared, conn, topic, payload).await
                    });
                } else {
                    route(&shared, conn, &topic, &payload);
                }
            }
            Inbound::PingReq => {
                let _ = tx.send(Some(Outbound::PingResp));
            }
            Inbound::Unsubscribe { pkid, topics } => {
                let count = topics.len();
                if let Some(client) = shared.broker().clients.get_mut(&conn) {
                    client.subscriptions.retain(|s| !topics.contains(s));
                }
                let _ = tx.send(Some(Outbound::UnsubAck { pkid, count }));
            }
            Inbound::Disconnect => break,
            Inbound::Connect { .. } | Inbound::Other => {}
        }
    }
    shared.broker().clients.remove(&conn);
    let _ = tx.send(None);
    let _ = writer_task.await;
}

/// Whether `principal`'s policy allows `topic_or_filter`: a claim's is its template's claim policy.
fn may_use(principal: &Principal, topic_or_filter: &str) -> bool {
    match principal {
        Principal::Claim { template, .. } => claim_may_use(topic_or_filter, template),
        Principal::Device { .. } => true,
    }
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
fn route(shared: &Shared, from: u64, topic: &str, payload: &[u8]) {
    let broker = shared.broker();
    for (id, client) in &broker.clients {
        if *id != from
            && matches!(client.principal, Principal::Device { .. })
            && client.subscriptions.iter().any(|f| topic_matches(f, topic))
        {
            let _ = client.tx.send(Some(Outbound::Publish {
                topic: topic.to_owned(),
                payload: payload.to_vec(),
            }));
        }
    }
}

/// Sends a reply to the requesting client only, if it subscribed to the reply topic.
pub(super) fn reply(shared: &Shared, conn: u64, request_topic: &str, accepted: bool, body: Value) {
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
        // The answer is in the request's format (`…/json` or `…/cbor`).
        let format = PayloadFormat::split(request_topic).map_or(PayloadFormat::Json, |(_, f)| f);
        let _ = client.tx.send(Some(Outbound::Publish {
            topic,
            payload: format.encode(&body),
        }));
    }
    broker.events.push(MqttEvent::Answered {
        client_id,
        topic: request_topic.to_owned(),
        accepted,
    });
}
