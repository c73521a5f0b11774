//! What the emulator holds: the registry records ([`Thing`], [`CertificateRecord`]), the request log,
//! the temporary credentials it hands out, and the [`State`] behind its lock that every server
//! ([`Shared`]) reads and writes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::pki::{IssuedCertificate, Pki};
use super::sigv4::KnownCredentials;
use super::{credentials, mqtt, Api, Fault, PreProvisioningHook, Template};

/// AWS-style temporary credentials the emulator hands out and accepts.
#[derive(Clone)]
pub struct TemporaryCredentials {
    /// `ASIA…` access key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One request the emulator answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// The status answered.
    pub status: u16,
}

/// A thing in the emulator's registry.
#[derive(Clone, Debug, Default)]
pub struct Thing {
    /// Its name.
    pub name: String,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// Attached certificate ids.
    pub principals: Vec<String>,
    /// Thing groups it belongs to.
    pub groups: Vec<String>,
    /// Its thing type.
    pub thing_type: Option<String>,
    /// Its billing group.
    pub billing_group: Option<String>,
}

/// A certificate in the registry.
#[derive(Clone, Debug)]
pub struct CertificateRecord {
    /// `ACTIVE`, `INACTIVE`, `PENDING_ACTIVATION`, …
    pub status: String,
    /// The certificate, PEM.
    pub pem: String,
    /// When it entered the registry (DescribeCertificate's `creationDate`), on the emulator's clock.
    pub created: SystemTime,
    /// When it last changed (`lastModifiedDate`).
    pub last_modified: SystemTime,
    /// Counts its changes, from 1 (`customerVersion`).
    pub customer_version: u32,
}

impl CertificateRecord {
    /// A certificate entering the registry at `now` with `status`.
    pub fn new(status: &str, pem: &str, now: SystemTime) -> Self {
        Self {
            status: status.to_owned(),
            pem: pem.to_owned(),
            created: now,
            last_modified: now,
            customer_version: 1,
        }
    }

    /// Changes its status at `now`.
    pub fn set_status(&mut self, status: &str, now: SystemTime) {
        if self.status != status {
            self.status = status.to_owned();
            self.last_modified = now;
            self.customer_version = self.customer_version.saturating_add(1);
        }
    }
}

/// Everything behind the emulator's lock.
#[derive(Default)]
pub(crate) struct State {
    pub templates: HashMap<String, Template>,
    pub bearer_tokens: HashSet<String>,
    pub credentials: HashMap<String, KnownCredentials>,
    /// Access key id → when those (temporary) credentials expire, on the emulator's clock.
    pub credential_expiry: HashMap<String, SystemTime>,
    pub faults: HashMap<Api, VecDeque<Fault>>,
    pub claims: Vec<IssuedCertificate>,
    /// Claim certificate id → the template it was issued for (its claim policy names that one).
    pub claim_templates: HashMap<String, String>,
    pub things: HashMap<String, Thing>,
    pub certificates: HashMap<String, CertificateRecord>,
    pub log: Vec<RequestRecord>,
    pub ownership_tokens: HashMap<String, mqtt::OwnershipToken>,
    pub ownership_token_lifetime: Duration,
    pub claim_connection_window: Duration,
    pub thing_groups: HashSet<String>,
    pub policies: HashMap<String, serde_json::Value>,
    pub policy_attachments: Vec<(String, String)>,
    pub role_aliases: HashMap<String, credentials::RoleAlias>,
    pub hooks: HashMap<String, PreProvisioningHook>,
    pub mqtt_down: bool,
    /// The next request a claim connection publishes drops that connection and takes the endpoint
    /// down (a protocol-defined "broker gone mid-flow").
    pub down_at_claim_request: bool,
    pub hook_timeout: Duration,
    pub claim_validity: Duration,
    pub claim_backdate: Duration,
    pub clock_offset_secs: i64,
    /// Certificates registered through `RegisterCertificate[WithoutCA]` (their policies are enforced).
    pub registered_certificates: HashSet<String>,
}

/// What the request handlers share.
pub(crate) struct Shared {
    pub pki: Pki,
    pub region: String,
    pub account_id: String,
    pub state: Mutex<State>,
    pub broker: Mutex<mqtt::Broker>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked mid-update leaves plain data behind; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The emulator's own clock (system time, optionally offset for tests).
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.lock().clock_offset_secs;
        let magnitude = Duration::from_secs(offset.unsigned_abs());
        if offset >= 0 {
            SystemTime::now() + magnitude
        } else {
            SystemTime::now() - magnitude
        }
    }
}

pub(super) fn random_token(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let body: String = (0..len)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!("{prefix}{body}")
}

/// Fresh AWS-style temporary credentials (not yet known to the emulator).
pub(crate) fn random_credentials() -> TemporaryCredentials {
    TemporaryCredentials {
        access_key_id: random_token("ASIA", 16),
        secret_access_key: random_token("", 40),
        session_token: random_token("IQoJb3JpZ2luX2Vj", 64),
    }
}
