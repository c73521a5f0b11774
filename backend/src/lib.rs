//! claimlink's reference app backend.
//!
//! Installers sign in with any OIDC issuer; the backend checks their bearer tokens ([`oidc`]), their
//! roles against a policy file ([`policy`]) and a per-installer rate limit ([`rate_limit`]), asks AWS IoT
//! for a provisioning claim bound to the device serial they name ([`iot`], signed with SigV4 from our
//! own credential chain, [`credentials`]), stores it ([`store`]: SQLite by default, PostgreSQL for
//! several instances) and answers exactly as `docs/backend-api.openapi.yaml` says ([`api`]). AWS IoT
//! then asks the pre-provisioning hook ([`hook`]) before it registers the device: only the device with
//! the claim's serial gets through, once.
//!
//! The public shape the deployments use: [`Config`] → [`AppState::new`] → [`router`] (the HTTP API
//! and the HTTP hook) and [`decide_hook`] (the hook, for a Lambda handler).

pub mod api;
pub mod config;
pub mod credentials;
pub mod hook;
pub mod iot;
pub mod lambda;
pub mod oidc;
pub mod policy;
pub mod rate_limit;
mod sigv4;
pub mod store;
mod tls;

use std::sync::Arc;

pub use api::router;
pub use config::Config;
pub use hook::{decide_hook, HookInput, HookOutput};
pub use store::{ClaimRecord, ClaimStatus, Store};

/// Failures that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The configuration or the policy file is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The database cannot be opened or migrated.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Serving failed.
    #[error("server: {0}")]
    Server(String),
}

/// Everything a request needs, shared by all of them (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Store,
    policy: policy::Policy,
    tokens: oidc::TokenVerifier,
    iot: iot::IotClient,
    limiter: rate_limit::RateLimiter,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("database", &self.inner.store.dialect())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the database (applying migrations), reads the policy, sets up the OIDC verifier and the
    /// AWS client with the default credential chain.
    pub async fn new(config: Config) -> Result<Self, BackendError> {
        let credentials = credentials::CredentialChain::from_environment(&config)?;
        Self::with_credentials(config, Arc::new(credentials)).await
    }

    /// [`new`](Self::new) with the AWS credentials from `credentials` (tests, embedders).
    pub async fn with_credentials(
        config: Config,
        credentials: Arc<dyn credentials::CredentialSource>,
    ) -> Result<Self, BackendError> {
        let store = Store::connect(&config.database_url).await?;
        let policy = config.resolve_policy()?;
        let tokens = oidc::TokenVerifier::new(&config.oidc)?;
        let iot = iot::IotClient::new(&config, credentials)?;
        let limiter = rate_limit::RateLimiter::new(&config.rate_limit);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                policy,
                tokens,
                iot,
                limiter,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The policy.
    pub fn policy(&self) -> &policy::Policy {
        &self.inner.policy
    }

    /// The bearer-token verifier.
    pub fn tokens(&self) -> &oidc::TokenVerifier {
        &self.inner.tokens
    }

    /// The AWS IoT client.
    pub fn iot(&self) -> &iot::IotClient {
        &self.inner.iot
    }

    /// The per-installer rate limiter.
    pub fn limiter(&self) -> &rate_limit::RateLimiter {
        &self.inner.limiter
    }
}

/// Serves [`router`] on `config.listen` (HTTPS when `config.tls` is set) until ctrl-c; `on_ready`
/// learns the bound address first.
pub async fn serve(
    state: AppState,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), BackendError> {
    let listener = tokio::net::TcpListener::bind(state.config().listen)
        .await
        .map_err(|e| BackendError::Server(format!("{}: {e}", state.config().listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BackendError::Server(e.to_string()))?;
    on_ready(addr);
    if state.config().hook.key.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "the HTTP pre-provisioning hook answers anyone who reaches {addr}: set hook.key (CLAIMLINK_HOOK_KEY) \
             and give AWS IoT's gateway the URL with ?key=, or keep the hook on Lambda"
        );
    }
    let tls = state.config().tls.clone();
    let app = router(state);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| BackendError::Server(e.to_string())),
        Some(files) => tls::serve_https(listener, app, &files, shutdown).await,
    }
}
