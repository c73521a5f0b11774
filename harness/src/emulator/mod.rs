//! The AWS IoT emulator: in process, real TLS on 127.0.0.1.
//!
//! Part 1 (this module): the HTTPS control plane.
//! * The **app-backend contract** (`docs/backend-api.md`): `POST /v1/provisioning-claims` and
//!   `GET /v1/things/{thingName}`, behind bearer tokens.
//! * **AWS IoT's own API**, SigV4-verified: `CreateProvisioningClaim`, `DescribeThing`,
//!   `ListThingPrincipals`, `DescribeCertificate`.
//!
//! Claims are real: a fresh RSA-2048 key and an X.509 certificate from the emulator's claim CA, valid
//! five minutes by default. Tests steer the emulator through [`Emulator`]'s methods: templates, tokens,
//! credentials, a thing registry, and scripted [`Fault`]s for the next requests.

mod control;
pub mod credentials;
pub mod mqtt;
pub mod pki;
pub mod sigv4;
pub mod template;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

pub use pki::IssuedCertificate;
use pki::Pki;
pub use sigv4::KnownCredentials;

/// Failures of the emulator itself.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Generating keys or certificates failed.
    #[error("PKI: {0}")]
    Pki(String),
    /// Binding or configuring a server failed.
    #[error("server: {0}")]
    Server(String),
}

/// Which API a scripted fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// The app-backend contract (`/v1/...`).
    Backend,
    /// AWS IoT's SigV4 API.
    Aws,
}

/// A scripted misbehaviour, applied to the next request of an [`Api`] (first in, first out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and the API's usual error body.
    Status(u16),
    /// Throttle: 429 on the backend, 400 `ThrottlingException` on AWS.
    Throttle,
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with a claim answer lacking this field (`certificateId`, `certificatePem`, `keyPair`,
    /// `expiration`).
    MissingField(&'static str),
    /// 200 with a `certificatePem` that is not a certificate.
    GarbageCertificate,
    /// 200 with a private key that belongs to another certificate.
    WrongKey,
    /// 200 with a `certificateId` that is not the certificate's hash.
    WrongCertificateId,
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// A provisioning template known to the emulator.
#[derive(Clone, Debug)]
pub struct Template {
    /// Its name.
    pub name: String,
    /// The template body (JSON).
    pub body: serde_json::Value,
    /// Disabled templates issue no claims.
    pub enabled: bool,
}

impl Template {
    /// An enabled template with a minimal body that creates a thing named by the `SerialNumber`
    /// parameter.
    pub fn simple(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            body: serde_json::json!({
                "Parameters": {"SerialNumber": {"Type": "String"}},
                "Resources": {
                    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}}},
                    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
                        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
                }
            }),
            enabled: true,
        }
    }

    /// Like [`simple`](Self::simple), and attaches the existing policy `policy` to the certificate.
    pub fn simple_with_policy(name: &str, policy: &str) -> Self {
        let mut t = Self::simple(name);
        t.body["Resources"]["policy"] =
            serde_json::json!({"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": policy}});
        t
    }
}

/// An in-process pre-provisioning hook: AWS's hook input in, the hook's answer (or a failure) out.
pub type HookRule =
    Arc<dyn Fn(&serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync>;

/// A template's pre-provisioning hook: an HTTP(S) endpoint on 127.0.0.1 (standing in for AWS Lambda)
/// or an in-process rule. It receives AWS's input (`claimCertificateId`, `certificateId`,
/// `certificatePem`, `templateArn`, `clientId`, `parameters`) and answers `{"allowProvisioning": bool,
/// "parameterOverrides": {...}}`.
#[derive(Clone)]
pub enum PreProvisioningHook {
    /// POST the input as JSON to this URL.
    Url(String),
    /// Call this function.
    Rule(HookRule),
}

impl std::fmt::Debug for PreProvisioningHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreProvisioningHook::Url(u) => write!(f, "PreProvisioningHook::Url({u})"),
            PreProvisioningHook::Rule(_) => f.write_str("PreProvisioningHook::Rule(..)"),
        }
    }
}

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

/// How the emulator starts.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The AWS region it pretends to be.
    pub region: String,
    /// The AWS account id in ARNs.
    pub account_id: String,
    /// How long claims are valid (AWS: 5 minutes).
    pub claim_validity: Duration,
    /// Templates present at start.
    pub templates: Vec<Template>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            claim_validity: Duration::from_secs(300),
            templates: vec![Template::simple("claimlink-demo")],
        }
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
    /// `ACTIVE`, `INACTIVE`, …
    pub status: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// Everything behind the emulator's lock.
#[derive(Default)]
pub(crate) struct State {
    pub templates: HashMap<String, Template>,
    pub bearer_tokens: HashSet<String>,
    pub credentials: HashMap<String, KnownCredentials>,
    pub faults: HashMap<Api, VecDeque<Fault>>,
    pub claims: Vec<IssuedCertificate>,
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
    pub hook_timeout: Duration,
    pub claim_validity: Duration,
    pub claim_backdate: Duration,
    pub clock_offset_secs: i64,
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

/// A running emulator. Dropping it stops its servers.
pub struct Emulator {
    shared: Arc<Shared>,
    https_addr: SocketAddr,
    server: JoinHandle<()>,
    mqtt_addr: SocketAddr,
    mqtt_server: JoinHandle<()>,
    credentials_addr: SocketAddr,
    credentials_server: JoinHandle<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("https", &self.https_addr)
            .finish_non_exhaustive()
    }
}

fn random_token(prefix: &str, len: usize) -> String {
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

impl Emulator {
    /// Starts the emulator on 127.0.0.1 (an ephemeral port). Needs a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let pki = tokio::task::spawn_blocking(Pki::generate)
            .await
            .map_err(|e| EmulatorError::Pki(e.to_string()))??;
        let identity = pki.server_identity()?;
        let mqtt_identity = pki.server_identity()?;
        let credentials_identity = pki.server_identity()?;
        let state = State {
            ownership_token_lifetime: mqtt::OWNERSHIP_TOKEN_LIFETIME,
            hook_timeout: Duration::from_secs(5),
            claim_connection_window: mqtt::CLAIM_CONNECTION_WINDOW,
            templates: config
                .templates
                .into_iter()
                .map(|t| (t.name.clone(), t))
                .collect(),
            claim_validity: config.claim_validity,
            ..State::default()
        };
        let shared = Arc::new(Shared {
            pki,
            region: config.region,
            account_id: config.account_id,
            state: Mutex::new(state),
            broker: Mutex::new(mqtt::Broker::default()),
        });
        let (https_addr, server) = control::serve(shared.clone(), identity).await?;
        let (mqtt_addr, mqtt_server) = mqtt::serve(shared.clone(), mqtt_identity).await?;
        let (credentials_addr, credentials_server) =
            credentials::serve(shared.clone(), credentials_identity).await?;
        tracing::info!(%https_addr, %mqtt_addr, "emulator listening");
        Ok(Self {
            shared,
            https_addr,
            server,
            mqtt_addr,
            mqtt_server,
            credentials_addr,
            credentials_server,
        })
    }

    /// `https://127.0.0.1:<port>`: the base URL of both the backend contract and the AWS API.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    /// The CA certificate (PEM) that clients must trust to reach the emulator.
    pub fn ca_pem(&self) -> &str {
        self.shared.pki.server_ca.pem()
    }

    /// The SDK's backend claim source for this emulator, as an app would set it up: a fresh bearer
    /// token, this emulator's CA trusted. Adjust (clock, timeouts, retries) before `build`.
    pub fn backend_source(&self) -> claimlink_core::BackendClaimSourceBuilder {
        let tokens = Arc::new(crate::providers::TokenSequence::new(vec![
            self.issue_bearer_token()
        ]));
        claimlink_core::BackendClaimSource::builder(self.base_url(), tokens)
            .http_config(self.http_config())
    }

    /// A claim for `template`, obtained the way an app does: through the backend contract, with a
    /// fresh bearer token, by the SDK's own claim source.
    pub async fn claim_via_backend(&self, template: &str) -> Result<claimlink_core::Claim, String> {
        use claimlink_core::{ClaimRequest, ClaimSource, TemplateName};
        self.backend_source()
            .build()
            .map_err(|e| e.to_string())?
            .request_claim(&ClaimRequest::new(
                TemplateName::new(template).map_err(|e| e.to_string())?,
            ))
            .await
            .map_err(|e| e.to_string())
    }

    /// SDK HTTP settings that trust this emulator (its CA as an extra root).
    pub fn http_config(&self) -> claimlink_core::HttpConfig {
        claimlink_core::HttpConfig {
            extra_root_certificates_pem: vec![self.ca_pem().to_owned()],
            ..claimlink_core::HttpConfig::default()
        }
    }

    /// The CA certificate (PEM) that signs claim certificates.
    pub fn claim_ca_pem(&self) -> &str {
        self.shared.pki.claim_ca.pem()
    }

    /// The region the AWS API answers for.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// Creates a bearer token the backend contract accepts.
    pub fn issue_bearer_token(&self) -> String {
        let token = random_token("tok_", 32);
        self.shared.lock().bearer_tokens.insert(token.clone());
        token
    }

    /// Makes a bearer token stop working (as when a session expires).
    pub fn revoke_bearer_token(&self, token: &str) {
        self.shared.lock().bearer_tokens.remove(token);
    }

    /// Creates temporary AWS credentials the SigV4 API accepts (as Cognito would).
    pub fn issue_credentials(&self) -> TemporaryCredentials {
        let creds = random_credentials();
        self.shared.lock().credentials.insert(
            creds.access_key_id.clone(),
            KnownCredentials {
                secret_access_key: creds.secret_access_key.clone(),
                session_token: Some(creds.session_token.clone()),
            },
        );
        creds
    }

    /// Makes AWS credentials stop working (as when they expire).
    pub fn revoke_credentials(&self, access_key_id: &str) {
        self.shared.lock().credentials.remove(access_key_id);
    }

    /// Adds or replaces a template.
    pub fn put_template(&self, template: Template) {
        self.shared
            .lock()
            .templates
            .insert(template.name.clone(), template);
    }

    /// Enables or disables a template.
    pub fn set_template_enabled(&self, name: &str, enabled: bool) {
        if let Some(t) = self.shared.lock().templates.get_mut(name) {
            t.enabled = enabled;
        }
    }

    /// Sets how long new claims are valid.
    pub fn set_claim_validity(&self, validity: Duration) {
        self.shared.lock().claim_validity = validity;
    }

    /// Backdates new claims: their validity starts this long before the request.
    pub fn set_claim_backdate(&self, backdate: Duration) {
        self.shared.lock().claim_backdate = backdate;
    }

    /// Moves the emulator's clock (its `Date` headers, claim validity, SigV4 checks).
    pub fn set_clock_offset_secs(&self, offset: i64) {
        self.shared.lock().clock_offset_secs = offset;
    }

    /// Queues a fault for the next request to `api`.
    pub fn script(&self, api: Api, fault: Fault) {
        self.shared
            .lock()
            .faults
            .entry(api)
            .or_default()
            .push_back(fault);
    }

    /// Faults still queued for `api`.
    pub fn pending_faults(&self, api: Api) -> usize {
        self.shared.lock().faults.get(&api).map_or(0, VecDeque::len)
    }

    /// Claims issued so far, oldest first.
    pub fn issued_claims(&self) -> Vec<IssuedCertificate> {
        self.shared.lock().claims.clone()
    }

    /// Every request answered so far.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Registers a thing with an attached certificate (until the MQTT provisioning flow does it).
    pub fn register_thing(
        &self,
        thing: &str,
        certificate_id: &str,
        certificate_pem: &str,
        status: &str,
    ) {
        let mut state = self.shared.lock();
        state.certificates.insert(
            certificate_id.to_owned(),
            CertificateRecord {
                status: status.to_owned(),
                pem: certificate_pem.to_owned(),
            },
        );
        let entry = state
            .things
            .entry(thing.to_owned())
            .or_insert_with(|| Thing {
                name: thing.to_owned(),
                ..Thing::default()
            });
        if !entry.principals.iter().any(|p| p == certificate_id) {
            entry.principals.push(certificate_id.to_owned());
        }
    }

    /// The MQTT endpoint, `127.0.0.1:<port>` (TLS with client certificates; the server certificate is
    /// signed by [`ca_pem`](Self::ca_pem)).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The CA certificate (PEM) that signs device certificates.
    pub fn device_ca_pem(&self) -> &str {
        self.shared.pki.device_ca.pem()
    }

    /// The credentials provider, `127.0.0.1:<port>` (TLS with device certificates; server certificate
    /// signed by [`ca_pem`](Self::ca_pem)).
    pub fn credentials_addr(&self) -> SocketAddr {
        self.credentials_addr
    }

    /// Creates a role alias for the credentials provider. AWS allows credential durations of 900 to
    /// 43200 seconds; anything else is refused.
    pub fn create_role_alias(
        &self,
        alias: &str,
        role_arn: &str,
        duration_secs: u64,
    ) -> Result<(), String> {
        if !(900..=43_200).contains(&duration_secs) {
            return Err(format!(
                "credentialDurationSeconds must be between 900 and 43200, not {duration_secs}"
            ));
        }
        self.shared.lock().role_aliases.insert(
            alias.to_owned(),
            credentials::RoleAlias {
                role_arn: role_arn.to_owned(),
                credential_duration: Duration::from_secs(duration_secs),
            },
        );
        Ok(())
    }

    /// Creates or replaces an IoT policy (templates attach policies by name).
    pub fn put_policy(&self, name: &str, document: serde_json::Value) {
        self.shared
            .lock()
            .policies
            .insert(name.to_owned(), document);
    }

    /// Gives `template` a pre-provisioning hook (`None` removes it).
    pub fn set_pre_provisioning_hook(&self, template: &str, hook: Option<PreProvisioningHook>) {
        let mut state = self.shared.lock();
        match hook {
            Some(h) => state.hooks.insert(template.to_owned(), h),
            None => state.hooks.remove(template),
        };
    }

    /// How long a pre-provisioning hook may take (AWS: 5 seconds).
    pub fn set_hook_timeout(&self, timeout: Duration) {
        self.shared.lock().hook_timeout = timeout;
    }

    /// Sets how long a claim connection may take to obtain its certificate (AWS: 5 minutes).
    pub fn set_claim_connection_window(&self, window: Duration) {
        self.shared.lock().claim_connection_window = window;
    }

    /// Takes the MQTT endpoint down (connections are dropped right after TLS) or brings it back.
    pub fn set_mqtt_down(&self, down: bool) {
        self.shared.lock().mqtt_down = down;
        if down {
            for client in self.shared.broker().clients.values() {
                client.close();
            }
        }
    }

    /// Creates a thing group (templates may only add things to existing groups).
    pub fn create_thing_group(&self, name: &str) {
        self.shared.lock().thing_groups.insert(name.to_owned());
    }

    /// A thing in the registry.
    pub fn thing(&self, name: &str) -> Option<Thing> {
        self.shared.lock().things.get(name).cloned()
    }

    /// A certificate's status in the registry (`None`: no such certificate).
    pub fn certificate_status(&self, certificate_id: &str) -> Option<String> {
        self.shared
            .lock()
            .certificates
            .get(certificate_id)
            .map(|c| c.status.clone())
    }

    /// Sets how long certificate ownership tokens live (AWS: one hour).
    pub fn set_ownership_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().ownership_token_lifetime = lifetime;
    }

    /// MQTT connections and provisioning answers so far.
    pub fn mqtt_events(&self) -> Vec<mqtt::MqttEvent> {
        self.shared.mqtt_events()
    }

    /// Sets a thing attribute.
    pub fn set_thing_attribute(&self, thing: &str, key: &str, value: &str) {
        if let Some(t) = self.shared.lock().things.get_mut(thing) {
            t.attributes.insert(key.to_owned(), value.to_owned());
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
        self.mqtt_server.abort();
        self.credentials_server.abort();
    }
}
