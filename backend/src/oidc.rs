//! Installers' bearer tokens: OIDC JWTs from any issuer (Cognito, Auth0, Entra ID, Keycloak), checked
//! with `jsonwebtoken` (on ring, which the tree already builds for rustls) against the issuer's JWKS.
//!
//! Only RS256 and ES256 are accepted (never `none` or the HMAC family, whose "key" would be public).
//! The JWKS (configured, or named by the issuer's OIDC discovery document) is fetched on first use, cached, and fetched again when a token names an unknown `kid`
//! (the issuer rotated its keys) — at most once per refresh floor, so that tokens with made-up `kid`s
//! cannot make the backend hammer the issuer — and when the cache is older than an hour. `iss`, `aud`,
//! `exp` and `nbf` are checked with a small leeway; `sub` names the installer; the roles come from a
//! configurable claim.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::OidcConfig;
use crate::BackendError;

/// The JWKS is fetched again after this long even when every `kid` is known.
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);

/// A signed-in installer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installer {
    /// The token's `sub`.
    pub subject: String,
    /// Its roles (from the configured claim).
    pub roles: Vec<String>,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejection {
    /// The token is missing, malformed, badly signed, expired, not yet valid, or for someone else
    /// (401). The words are for the log and the answer; they never contain the token.
    #[error("{0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched (503).
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// Checks bearer tokens.
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    keys_at: Mutex<Option<KeysAt>>,
    roles_claim: String,
    leeway: u64,
    refresh_floor: Duration,
    http: reqwest::Client,
    cache: Mutex<KeyCache>,
}

/// Where the issuer's keys are.
#[derive(Clone, Debug)]
enum KeysAt {
    /// The JWKS itself.
    Jwks(url::Url),
    /// The issuer's discovery document, whose `jwks_uri` names it (read once).
    Discovery(url::Url),
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    fetches: u64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for `config`'s issuer. Without an issuer every token is refused.
    pub fn new(config: &OidcConfig) -> Result<Self, BackendError> {
        let checked = |u: &str| {
            let url = url::Url::parse(u)
                .map_err(|e| BackendError::Config(format!("OIDC URL {u:?}: {e}")))?;
            if !crate::tls::acceptable_url(&url) {
                return Err(BackendError::Config(format!(
                    "OIDC URL {u:?}: must be https (plain http only on the loopback interface)"
                )));
            }
            Ok(url)
        };
        // The JWKS URL as configured, else found through the issuer's OIDC discovery document.
        let keys_at = match (&config.jwks_url, config.issuer.is_empty()) {
            (Some(u), _) => Some(KeysAt::Jwks(checked(u)?)),
            (None, false) => Some(KeysAt::Discovery(checked(&format!(
                "{}/.well-known/openid-configuration",
                config.issuer.trim_end_matches('/')
            ))?)),
            (None, true) => None,
        };
        Ok(Self {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            keys_at: Mutex::new(keys_at),
            roles_claim: config.roles_claim.clone(),
            leeway: config.leeway_secs,
            refresh_floor: Duration::from_secs(config.jwks_refresh_floor_secs),
            http: crate::tls::http_client(config.extra_ca_file.as_deref(), Duration::from_secs(5))?,
            cache: Mutex::new(KeyCache::default()),
        })
    }

    /// How many times the JWKS was fetched (for tests of the refresh floor).
    pub async fn jwks_fetches(&self) -> u64 {
        self.cache.lock().await.fetches
    }

    /// The installer a bearer token names, once its signature and claims check out.
    pub async fn verify(&self, token: &str) -> Result<Installer, TokenRejection> {
        let invalid = |why: &str| TokenRejection::Invalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(invalid("the token's algorithm is not RS256 or ES256"));
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        if let Some(alg) = jwk.common.key_algorithm {
            if format!("{alg:?}") != format!("{:?}", header.alg) {
                return Err(invalid("the token's algorithm is not its key's"));
            }
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the issuer's key is unusable"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            TokenRejection::Invalid(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::InvalidAudience => "the token is for another audience",
                    ErrorKind::InvalidIssuer => "the token is from another issuer",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is invalid",
                }
                .to_owned(),
            )
        })?;
        let subject = data
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("the token has no subject"))?
            .to_owned();
        Ok(Installer {
            subject,
            roles: roles_at(&data.claims, &self.roles_claim),
        })
    }

    /// The key named `kid` (or the only key when the token names none), fetching the JWKS when needed.
    async fn key_for(&self, kid: Option<&str>) -> Result<Jwk, TokenRejection> {
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= JWKS_MAX_AGE);
        if stale {
            self.refresh(&mut cache).await?;
        }
        if let Some(k) = find(&cache.keys, kid) {
            return Ok(k.clone());
        }
        // Unknown kid: the issuer may have rotated its keys. Fetch again, at most once per floor.
        let may_refresh = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.refresh_floor);
        if may_refresh {
            self.refresh(&mut cache).await?;
            if let Some(k) = find(&cache.keys, kid) {
                return Ok(k.clone());
            }
        }
        Err(TokenRejection::Invalid(
            "the token's key is not among the issuer's".into(),
        ))
    }

    async fn refresh(&self, cache: &mut KeyCache) -> Result<(), TokenRejection> {
        let unavailable =
            |e: &dyn std::fmt::Display| TokenRejection::KeysUnavailable(e.to_string());
        let url = {
            let mut keys_at = self.keys_at.lock().await;
            match keys_at.clone() {
                None => {
                    return Err(TokenRejection::Invalid(
                        "no OIDC issuer is configured".into(),
                    ))
                }
                Some(KeysAt::Jwks(url)) => url,
                Some(KeysAt::Discovery(discovery)) => {
                    let url = self.discover(&discovery).await?;
                    *keys_at = Some(KeysAt::Jwks(url.clone()));
                    url
                }
            }
        };
        cache.fetches += 1;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!("HTTP {}", response.status())));
        }
        let body: Value = response.json().await.map_err(|e| unavailable(&e))?;
        let keys = body
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| unavailable(&"the JWKS has no keys array"))?;
        // Keys of kinds we do not use (encryption keys, other curves) are skipped, not fatal.
        cache.keys = keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect();
        cache.fetched_at = Some(Instant::now());
        tracing::info!(keys = cache.keys.len(), "JWKS fetched");
        Ok(())
    }
}

impl TokenVerifier {
    /// The `jwks_uri` of the discovery document at `discovery`, whose `issuer` must be ours (OpenID
    /// Connect Discovery 1.0, section 4.3).
    async fn discover(&self, discovery: &url::Url) -> Result<url::Url, TokenRejection> {
        let unavailable = |e: &dyn std::fmt::Display| {
            TokenRejection::KeysUnavailable(format!("OIDC discovery: {e}"))
        };
        let response = self
            .http
            .get(discovery.clone())
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!("HTTP {}", response.status())));
        }
        let document: Value = response.json().await.map_err(|e| unavailable(&e))?;
        let issuer = document.get("issuer").and_then(Value::as_str);
        if issuer.map(|i| i.trim_end_matches('/')) != Some(self.issuer.trim_end_matches('/')) {
            return Err(unavailable(&"the discovery document names another issuer"));
        }
        let jwks = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| unavailable(&"no jwks_uri"))?;
        let url = url::Url::parse(jwks).map_err(|e| unavailable(&e))?;
        if !crate::tls::acceptable_url(&url) {
            return Err(unavailable(&"jwks_uri must be https"));
        }
        Ok(url)
    }
}

fn find<'a>(keys: &'a [Jwk], kid: Option<&str>) -> Option<&'a Jwk> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

/// The roles at `path` in `claims` (dots walk into objects: `realm_access.roles`; a claim whose whole
/// name has dots, such as a namespaced Auth0 claim, is tried first): a string is one role, an array
/// of strings several.
pub fn roles_at(claims: &Value, path: &str) -> Vec<String> {
    let value = claims.get(path).or_else(|| {
        path.split('.')
            .try_fold(claims, |v, segment| v.get(segment))
    });
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_flat_nested_and_namespaced_claims() {
        let claims = serde_json::json!({
            "cognito:groups": ["installer", 3],
            "realm_access": {"roles": ["admin"]},
            "https://example.com/roles": "auditor",
        });
        assert_eq!(roles_at(&claims, "cognito:groups"), vec!["installer"]);
        assert_eq!(roles_at(&claims, "realm_access.roles"), vec!["admin"]);
        assert_eq!(
            roles_at(&claims, "https://example.com/roles"),
            vec!["auditor"]
        );
        assert!(roles_at(&claims, "missing.path").is_empty());
    }
}
