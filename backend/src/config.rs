//! What the service is told: the database, where it listens, the OIDC issuer, the policy file, AWS
//! IoT, rate limits. Read from a TOML file (`--config`, or `CLAIMLINK_CONFIG`) and environment
//! variables that override single settings (handy on Lambda); every setting has a default, so
//! `claimlink-backend serve` with no configuration starts on a local SQLite file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::BackendError;

/// The whole configuration. Its `Debug` shows no password (of the database URL) and no hook key.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://<path>` (created if missing) or `postgres://...`. Default: `sqlite://claimlink-backend.db`
    /// in the working directory. Env: `CLAIMLINK_DATABASE_URL`.
    pub database_url: String,
    /// Where `serve` listens (plain HTTP: put TLS in front, or set [`tls`](Self::tls)). Env:
    /// `CLAIMLINK_LISTEN`.
    pub listen: SocketAddr,
    /// Serve HTTPS directly with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// The OIDC issuer whose bearer tokens identify installers.
    pub oidc: OidcConfig,
    /// The policy: which roles may use which templates and sites (inline; or see
    /// [`policy_file`](Self::policy_file)).
    pub policy: Option<crate::policy::Policy>,
    /// A TOML policy file (see docs/backend.md). Env: `CLAIMLINK_POLICY_FILE`.
    pub policy_file: Option<PathBuf>,
    /// AWS IoT.
    pub aws: AwsConfig,
    /// Claims per installer: a token bucket.
    pub rate_limit: RateLimitConfig,
    /// The claims and their binding to a device.
    pub claims: ClaimsConfig,
    /// The HTTP pre-provisioning hook (`POST /v1/hooks/pre-provisioning`).
    pub hook: HookConfig,
}

/// TLS for `serve`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub certificate_chain: PathBuf,
    /// Its private key, PEM.
    pub private_key: PathBuf,
}

/// The OIDC issuer.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` every token must carry. Env: `CLAIMLINK_OIDC_ISSUER`.
    pub issuer: String,
    /// The `aud` every token must carry (one of). Env: `CLAIMLINK_OIDC_AUDIENCE`.
    pub audience: String,
    /// Where the issuer's keys are; default: the `jwks_uri` of `<issuer>/.well-known/openid-configuration`.
    /// Env: `CLAIMLINK_OIDC_JWKS_URL`.
    pub jwks_url: Option<String>,
    /// The claim holding the installer's roles (a string or an array of strings), e.g.
    /// `cognito:groups`, `roles`, `realm_access.roles` (dots walk into objects).
    pub roles_claim: String,
    /// Clock leeway for `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
    /// The shortest time between two JWKS fetches caused by unknown `kid`s, seconds.
    pub jwks_refresh_floor_secs: u64,
    /// Extra CA certificates (PEM file) trusted for the JWKS endpoint (tests, private issuers).
    pub extra_ca_file: Option<PathBuf>,
}

/// AWS IoT.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// The region. Env: `CLAIMLINK_AWS_REGION`, then `AWS_REGION`.
    pub region: String,
    /// The IoT control-plane endpoint; default `https://iot.<region>.amazonaws.com`. Env:
    /// `CLAIMLINK_AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Extra CA certificates (PEM file) trusted for the endpoint (the emulator's CA in tests).
    pub extra_ca_file: Option<PathBuf>,
    /// Per-call timeout, seconds.
    pub timeout_secs: u64,
}

/// The per-installer token bucket.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Claims an installer may take in a burst.
    pub burst: u32,
    /// Claims per minute refilled.
    pub per_minute: u32,
}

/// Claims and their binding.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimsConfig {
    /// The template parameter the device sends its serial in (RegisterThing's `parameters`).
    pub serial_parameter: String,
    /// Things are named `<thing_name_prefix><serial>`.
    pub thing_name_prefix: String,
}

/// The HTTP hook.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookConfig {
    /// When set, the HTTP hook answers only requests carrying `?key=<this>` (the hook URL given to
    /// the emulator or a gateway holds it). Env: `CLAIMLINK_HOOK_KEY`.
    pub key: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redacted_url(&self.database_url))
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("oidc", &self.oidc)
            .field("policy_file", &self.policy_file)
            .field("aws", &self.aws)
            .field("rate_limit", &self.rate_limit)
            .field("claims", &self.claims)
            .field("hook", &self.hook)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookConfig")
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// `url` without its password.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://claimlink-backend.db".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            oidc: OidcConfig::default(),
            policy: None,
            policy_file: None,
            aws: AwsConfig::default(),
            rate_limit: RateLimitConfig::default(),
            claims: ClaimsConfig::default(),
            hook: HookConfig::default(),
        }
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: String::new(),
            jwks_url: None,
            roles_claim: "roles".to_owned(),
            leeway_secs: 30,
            jwks_refresh_floor_secs: 60,
            extra_ca_file: None,
        }
    }
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            endpoint_url: None,
            extra_ca_file: None,
            timeout_secs: 10,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            burst: 10,
            per_minute: 30,
        }
    }
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            serial_parameter: "SerialNumber".to_owned(),
            thing_name_prefix: String::new(),
        }
    }
}

impl Config {
    /// The configuration from `path` (TOML; `None`: the defaults), then the environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, BackendError> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| BackendError::Config(format!("{}: {e}", p.display())))?;
                toml::from_str(&text)
                    .map_err(|e| BackendError::Config(format!("{}: {e}", p.display())))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// [`load`](Self::load) from `CLAIMLINK_CONFIG` when set (how a Lambda function is configured).
    pub fn from_env() -> Result<Self, BackendError> {
        let path = std::env::var_os("CLAIMLINK_CONFIG").map(PathBuf::from);
        Self::load(path.as_deref())
    }

    /// Applies the `CLAIMLINK_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), BackendError> {
        if let Some(v) = var("CLAIMLINK_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = var("CLAIMLINK_LISTEN") {
            self.listen = v
                .parse()
                .map_err(|e| BackendError::Config(format!("CLAIMLINK_LISTEN: {e}")))?;
        }
        if let Some(v) = var("CLAIMLINK_OIDC_ISSUER") {
            self.oidc.issuer = v;
        }
        if let Some(v) = var("CLAIMLINK_OIDC_AUDIENCE") {
            self.oidc.audience = v;
        }
        if let Some(v) = var("CLAIMLINK_OIDC_JWKS_URL") {
            self.oidc.jwks_url = Some(v);
        }
        if let Some(v) = var("CLAIMLINK_POLICY_FILE") {
            self.policy_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("CLAIMLINK_AWS_REGION").or_else(|| var("AWS_REGION")) {
            self.aws.region = v;
        }
        if let Some(v) = var("CLAIMLINK_AWS_ENDPOINT_URL") {
            self.aws.endpoint_url = Some(v);
        }
        if let Some(v) = var("CLAIMLINK_HOOK_KEY") {
            self.hook.key = Some(v);
        }
        Ok(())
    }

    /// The policy: inline, else from [`policy_file`](Self::policy_file), else empty (nobody may do anything).
    pub fn resolve_policy(&self) -> Result<crate::policy::Policy, BackendError> {
        if let Some(p) = &self.policy {
            return Ok(p.clone());
        }
        match &self.policy_file {
            Some(path) => crate::policy::Policy::load(path),
            None => Ok(crate::policy::Policy::default()),
        }
    }

    /// AWS call timeout.
    pub(crate) fn aws_timeout(&self) -> Duration {
        Duration::from_secs(self.aws.timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let mut c = Config {
            database_url: "postgres://app:hunter2@db.internal/claims".into(),
            ..Config::default()
        };
        c.hook.key = Some("hook-secret".into());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hook-secret"),
            "{shown}"
        );
        assert!(shown.contains("db.internal"));
    }

    #[test]
    fn environment_overrides() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "CLAIMLINK_DATABASE_URL" => Some("postgres://h/db".into()),
            "AWS_REGION" => Some("eu-west-3".into()),
            "CLAIMLINK_LISTEN" => Some("0.0.0.0:9000".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (c.database_url.as_str(), c.aws.region.as_str()),
            ("postgres://h/db", "eu-west-3")
        );
        assert_eq!(c.listen.port(), 9000);
        assert!(c
            .apply_env(|k| (k == "CLAIMLINK_LISTEN").then(|| "nope".into()))
            .is_err());
        assert!(
            toml::from_str::<Config>("databse_url = 'x'").is_err(),
            "typos are refused"
        );
    }
}
