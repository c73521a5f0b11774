//! The AWS IoT emulator: in process, real TLS on 127.0.0.1.
//!
//! The HTTPS control plane (`control`, `aws_api`):
//! * The **app-backend contract** (`docs/backend-api.md`): `POST /v1/provisioning-claims` and
//!   `GET /v1/things/{thingName}`, behind bearer tokens.
//! * **AWS IoT's own API**, SigV4-verified: `CreateProvisioningClaim`, `DescribeThing`,
//!   `ListThingPrincipals`, `DescribeCertificate`.
//!
//! Claims are real: a fresh RSA-2048 key and an X.509 certificate from the emulator's claim CA, valid
//! five minutes by default from the moment it is issued (the keys are generated ahead, [`key_pool`]). Tests steer the emulator through [`Emulator`]'s methods: templates, tokens,
//! credentials, a thing registry, and scripted [`Fault`]s for the next requests.
//!
//! This module starts the servers and says where they are; the rest is in:
//! * `config` — what tests configure: [`EmulatorConfig`], [`Template`]s, pre-provisioning hooks,
//!   scripted [`Fault`]s;
//! * `state` — the registry records and the state behind the emulator's lock that every server shares;
//! * `steering` — [`Emulator`]'s methods that steer it and read its registry and logs;
//! * [`mqtt`], [`credentials`], [`pki`], [`sigv4`], [`template`] — the MQTT endpoint, the credentials
//!   provider, the certificate authorities, SigV4 checking, provisioning-template evaluation;
//! * `registry_api` and `iot_policy` — the registry calls a manufacturer and a clean-up make
//!   (RegisterCertificate, policies, UpdateCertificate, the deletes) and IoT policy evaluation for the
//!   certificates registered that way (a factory's claim).

mod aws_api;
mod config;
mod control;
pub mod credentials;
mod iot_policy;
pub mod key_pool;
pub mod mqtt;
pub mod pki;
mod registry_api;
pub mod sigv4;
mod state;
mod steering;
pub mod template;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

pub use config::{Api, EmulatorConfig, Fault, HookRule, PreProvisioningHook, Template};
pub use pki::IssuedCertificate;
use pki::Pki;
pub use sigv4::KnownCredentials;
pub(crate) use state::{random_credentials, Shared, State};
pub use state::{CertificateRecord, RequestRecord, TemporaryCredentials, Thing};

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

impl Emulator {
    /// Starts the emulator on 127.0.0.1 (an ephemeral port). Needs a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let pki = tokio::task::spawn_blocking(Pki::generate)
            .await
            .map_err(|e| EmulatorError::Pki(e.to_string()))??;
        let identity = pki.server_identity()?;
        let mqtt_identity = pki.server_identity_for(&config.device_host_names)?;
        let credentials_identity = pki.server_identity_for(&config.device_host_names)?;
        let device_bind = config.device_bind;
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
        let (mqtt_addr, mqtt_server) =
            mqtt::serve(shared.clone(), mqtt_identity, device_bind).await?;
        let (credentials_addr, credentials_server) =
            credentials::serve(shared.clone(), credentials_identity, device_bind).await?;
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

    /// A TLS server certificate for `localhost` and 127.0.0.1 under the emulator's CA
    /// ([`ca_pem`](Self::ca_pem)), for a server standing beside the emulator: the reference backend
    /// of `serve --backend reference`, whose HTTPS hook the emulator calls (trusting only this CA).
    pub fn server_identity(&self) -> Result<pki::ServerIdentity, EmulatorError> {
        self.shared.pki.server_identity()
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

    /// The MQTT endpoint, `127.0.0.1:<port>` unless [`EmulatorConfig::device_bind`] says otherwise (TLS with client certificates; the server certificate is
    /// signed by [`ca_pem`](Self::ca_pem)).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The CA certificate (PEM) that signs device certificates.
    pub fn device_ca_pem(&self) -> &str {
        self.shared.pki.device_ca.pem()
    }

    /// Announces `keys` coming claims (or `CreateKeysAndCertificate` calls): their RSA keys are
    /// generated ahead in the background, so that issuing them under load costs a signature.
    pub fn reserve_keys(&self, keys: usize) {
        self.shared.pki.keys.reserve(keys);
    }

    /// Waits until `keys` keys are ready in the pool (announce them with
    /// [`reserve_keys`](Self::reserve_keys) first).
    pub async fn wait_for_keys(&self, keys: usize) -> Result<(), EmulatorError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.pki.keys.wait_ready(keys))
            .await
            .map_err(pki::pki_error)?
            .map_err(pki::pki_error)
    }

    /// How the key pool has served so far.
    pub fn key_pool_stats(&self) -> key_pool::KeyPoolStats {
        self.shared.pki.keys.stats()
    }

    /// The credentials provider, `127.0.0.1:<port>` unless [`EmulatorConfig::device_bind`] says otherwise (TLS with device certificates; server certificate
    /// signed by [`ca_pem`](Self::ca_pem)).
    pub fn credentials_addr(&self) -> SocketAddr {
        self.credentials_addr
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
        self.mqtt_server.abort();
        self.credentials_server.abort();
    }
}
