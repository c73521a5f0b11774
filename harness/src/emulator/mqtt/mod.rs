//! The emulator's MQTT endpoint: MQTT 3.1.1 over TLS with client-certificate authentication (packets
//! through rumqttc's maintained codec), and AWS IoT's fleet-provisioning API on `$aws/...` topics.
//!
//! * A client certificate must chain to the claim CA or the device CA and be inside its validity (TLS
//!   refuses it otherwise). A claim certificate must be one the emulator issued; a device certificate
//!   must be registered and `ACTIVE`.
//! * A claim certificate may use only the provisioning topics of the template it was issued for (the
//!   claim policy of the AWS guide); any other publish or subscribe disconnects the client without a
//!   PUBACK or SUBACK, as AWS does with an MQTT 3.1.1 client whose policy does not allow the topic (AWS's
//!   lifecycle events name that disconnect `AUTH_ERROR`: "authorization failed").
//! * Replies (`…/accepted`, `…/rejected`) go to the requesting client only, and only if it subscribed.
//! * Device certificates may publish and subscribe elsewhere; messages are routed between them.
//!
//! Requests and answers are JSON or CBOR, as the topic says ([`crate::fleet_payload`]).
//!
//! The files:
//!
//! * `server` — the TLS listener, who a client certificate makes the client ([`Principal`]), each
//!   connection's MQTT session (connect, subscribe, publish, ping), routing and replies;
//! * `topics` — topic-filter matching and the claim policy;
//! * `fleet` — the fleet-provisioning requests: `CreateKeysAndCertificate`,
//!   `CreateCertificateFromCsr`, and the dispatch to `RegisterThing`;
//! * `register_thing` — the template's pre-provisioning hook and `RegisterThing` itself.

mod codec;
mod fleet;
mod register_thing;
mod server;
mod topics;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use codec::MqttVersion;
pub(crate) use server::serve;
pub use topics::topic_matches;

use super::Shared;

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
        /// The template it was issued for: the only one whose provision topics it may use.
        template: String,
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
        /// Speaking which MQTT.
        version: MqttVersion,
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
    tx: mpsc::UnboundedSender<Option<codec::Outbound>>,
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

impl Shared {
    /// The broker's state (a panicked holder leaves plain data behind: keep going).
    pub(crate) fn broker(&self) -> std::sync::MutexGuard<'_, Broker> {
        self.broker.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mqtt_events(&self) -> Vec<MqttEvent> {
        self.broker().events.clone()
    }

    /// Closes every connection made with the certificate `certificate_id` (it was deactivated).
    pub(crate) fn close_connections_of(&self, certificate_id: &str) {
        for client in self.broker().clients.values() {
            if matches!(&client.principal, Principal::Claim { certificate_id: id, .. }
                | Principal::Device { certificate_id: id } if id == certificate_id)
            {
                client.close();
            }
        }
    }
}
