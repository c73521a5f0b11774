//! What the backend's tests share: an OIDC issuer of their own (RSA and EC keys, a JWKS server on
//! 127.0.0.1), the harness's emulator and world, and the backend over real HTTP on 127.0.0.1 with a
//! real SQLite file (or a fresh PostgreSQL database when `CLAIMLINK_TEST_POSTGRES_URL` is set).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use claimlink_backend::credentials::{AwsCredentials, StaticCredentials};
use claimlink_backend::{AppState, Config};
use claimlink_core::{
    BackendClaimSource, ClaimSource, ProviderError, Provisioner, SecretString, ThingDirectory,
    TokenProvider,
};
use claimlink_harness::emulator::PreProvisioningHook;
use claimlink_harness::testing::TEMPLATE;
use claimlink_harness::world::World;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// The audience every test token is for.
pub const AUDIENCE: &str = "claimlink-installer-app";
/// The installer role (the demo template at site lyon-3).
pub const INSTALLER: &str = "installer";
/// A role granted only another template.
pub const OTHER_TEMPLATE_ROLE: &str = "other-fleet";
/// The admin role.
pub const ADMIN: &str = "auditor";
/// The installer role's one site.
pub const SITE: &str = "lyon-3";

/// The policy every test runs with.
pub const POLICY: &str = r#"
[roles.installer]
templates = ["claimlink-demo"]
sites = ["lyon-3"]

[roles.other-fleet]
templates = ["other-template"]
sites = ["lyon-3"]

[roles.auditor]
admin = true

[roles.replacer]
templates = ["claimlink-demo"]
sites = ["lyon-3"]
reprovision = true

[roles.roamer]
templates = ["*"]
sites = ["lyon-3", "paris-1"]
"#;

struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

/// An OIDC issuer: signing keys and a JWKS endpoint on 127.0.0.1.
pub struct Issuer {
    pub url: String,
    keys: Arc<Mutex<Vec<SigningKey>>>,
    published: Arc<Mutex<Vec<Value>>>,
    pub fetches: Arc<AtomicU64>,
    server: JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn rsa_key(kid: &str) -> SigningKey {
    let key = claimlink_harness::rsa_key::RsaKey::generate().expect("RSA key");
    let der = key.to_pkcs1_der();
    let pair = ring::signature::RsaKeyPair::from_der(&der).expect("ring reads the key");
    let components = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
    let (n, e) = (components.n, components.e);
    SigningKey {
        kid: kid.to_owned(),
        alg: Algorithm::RS256,
        key: EncodingKey::from_rsa_der(&der),
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                    "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}),
    }
}

fn ec_key(kid: &str) -> SigningKey {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as P256};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&P256, &rng).expect("EC key");
    let pair = EcdsaKeyPair::from_pkcs8(&P256, pkcs8.as_ref(), &rng).expect("EC key");
    let point = pair.public_key().as_ref();
    SigningKey {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        key: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    claimlink_backend::store::now_secs()
}

impl Issuer {
    /// An issuer with one RSA key (`rsa-1`) and one EC key (`ec-1`), both published.
    pub async fn start() -> Self {
        let keys = vec![rsa_key("rsa-1"), ec_key("ec-1")];
        let published = Arc::new(Mutex::new(
            keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
        ));
        let fetches = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (p, f) = (published.clone(), fetches.clone());
        let url = format!("http://{addr}");
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/oauth2/keys"),
                               "id_token_signing_alg_values_supported": ["RS256", "ES256"]});
        let app = axum::Router::new()
            // OIDC discovery names the JWKS (not at the conventional path: it must be followed).
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let d = discovery.clone();
                    async move { axum::Json(d) }
                }),
            )
            .route(
                "/oauth2/keys",
                axum::routing::get(move || {
                    let (p, f) = (p.clone(), f.clone());
                    async move {
                        f.fetch_add(1, Ordering::SeqCst);
                        let keys = p.lock().unwrap().clone();
                        axum::Json(json!({ "keys": keys }))
                    }
                }),
            );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            keys: Arc::new(Mutex::new(keys)),
            published,
            fetches,
            server,
        }
    }

    /// Makes a new key `kid` (RSA or EC); published only when `publish`.
    pub fn add_key(&self, kid: &str, ec: bool, publish: bool) {
        let key = if ec { ec_key(kid) } else { rsa_key(kid) };
        if publish {
            self.published.lock().unwrap().push(key.jwk.clone());
        }
        self.keys.lock().unwrap().push(key);
    }

    /// Publishes every key made so far.
    pub fn publish_all(&self) {
        let all = self
            .keys
            .lock()
            .unwrap()
            .iter()
            .map(|k| k.jwk.clone())
            .collect();
        *self.published.lock().unwrap() = all;
    }

    /// A token signed with key `kid` carrying `claims` (merged over a valid default set).
    pub fn token_with(&self, kid: &str, claims: Value) -> String {
        self.token_signed_by(kid, kid, claims)
    }

    /// A token whose header names `kid` but that key `signer` signed.
    pub fn token_signed_by(&self, kid: &str, signer: &str, claims: Value) -> String {
        let keys = self.keys.lock().unwrap();
        let key = keys.iter().find(|k| k.kid == signer).expect("known kid");
        let mut body = json!({
            "iss": self.url, "aud": AUDIENCE, "sub": "installer-1",
            "iat": now(), "nbf": now() - 5, "exp": now() + 600, "roles": [INSTALLER],
        });
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), claims) {
            for (k, v) in extra {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    b.insert(k, v);
                }
            }
        }
        let mut header = Header::new(key.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &body, &key.key).expect("token")
    }

    /// A valid RS256 token for `sub` with `roles`.
    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        self.token_with("rsa-1", json!({"sub": sub, "roles": roles}))
    }
}

/// The database URL for one test: a fresh SQLite file in `dir`, or a fresh PostgreSQL database.
pub async fn database_url(dir: &std::path::Path) -> String {
    match std::env::var("CLAIMLINK_TEST_POSTGRES_URL") {
        Ok(base) if !base.is_empty() => fresh_postgres_database(&base).await,
        _ => format!("sqlite://{}", dir.join("records.db").display()),
    }
}

static DATABASES: AtomicU64 = AtomicU64::new(0);

async fn fresh_postgres_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!(
        "claimlink_t{}_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst),
        fastrand::u32(..)
    );
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .expect("PostgreSQL reachable");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let mut url = url::Url::parse(base).expect("URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The backend under test, its world (emulator, provisioner config) and its issuer.
pub struct Rig {
    pub world: World,
    pub issuer: Issuer,
    pub state: AppState,
    pub addr: SocketAddr,
    server: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Rig {
    /// A world whose template is bound by the backend's hook, and the backend serving on 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`start`](Self::start) with `edit` applied to the configuration first.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let world = claimlink_harness::testing::quick_world().await;
        world
            .emulator
            .put_template(claimlink_harness::reference_backend::bound_template(
                TEMPLATE,
            ));
        let issuer = Issuer::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("emulator-ca.pem");
        std::fs::write(&ca, world.emulator.ca_pem()).expect("write CA");
        let mut config = Config {
            database_url: database_url(dir.path()).await,
            ..Config::default()
        };
        config.oidc.issuer = issuer.url.clone();
        config.oidc.audience = AUDIENCE.to_owned();
        config.policy = Some(claimlink_backend::policy::Policy::parse(POLICY).expect("policy"));
        config.aws.region = world.emulator.region().to_owned();
        config.aws.endpoint_url = Some(world.emulator.base_url());
        config.aws.extra_ca_file = Some(ca);
        edit(&mut config);
        let creds = world.emulator.issue_credentials();
        let credentials = Arc::new(StaticCredentials(AwsCredentials {
            access_key_id: creds.access_key_id.clone(),
            secret_access_key: creds.secret_access_key.clone().into(),
            session_token: Some(creds.session_token.clone().into()),
            expires_at: None,
        }));
        let state = AppState::with_credentials(config, credentials)
            .await
            .expect("backend starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = claimlink_backend::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        world.emulator.set_pre_provisioning_hook(
            TEMPLATE,
            Some(PreProvisioningHook::Url(format!(
                "http://{addr}/v1/hooks/pre-provisioning"
            ))),
        );
        Self {
            world,
            issuer,
            state,
            addr,
            server,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SDK's backend claim source for this backend, signed in as `sub` with `roles`.
    pub fn source(&self, sub: &str, roles: &[&str]) -> Arc<BackendClaimSource> {
        let token = self.issuer.token(sub, roles);
        Arc::new(
            BackendClaimSource::builder(self.base_url(), Arc::new(FixedToken(token)))
                .danger_allow_plain_http(true)
                .build()
                .expect("source"),
        )
    }

    /// A provisioner using `source` and the world's configuration.
    pub fn provisioner<S: ClaimSource + ThingDirectory + 'static>(
        &self,
        source: Arc<S>,
    ) -> Provisioner {
        Provisioner::new(source, self.world.provisioner.config().clone())
    }

    /// A raw HTTP call with `token`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = http_client().request(method, format!("{}{path}", self.base_url()));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("the backend answers")
    }

    /// `POST /v1/provisioning-claims` for `serial` as `token`.
    pub async fn claim(&self, token: &str, serial: &str) -> reqwest::Response {
        self.call(
            reqwest::Method::POST,
            "/v1/provisioning-claims",
            Some(token),
            Some(json!({"templateName": TEMPLATE, "deviceHint": serial})),
        )
        .await
    }

    /// AWS's hook input for a device that connected with `claim_id` and sent `serial`.
    pub fn hook_input(&self, claim_id: &str, serial: &str) -> Value {
        json!({
            "claimCertificateId": claim_id, "certificateId": "0".repeat(64), "certificatePem": "",
            "templateArn": format!("arn:aws:iot:us-east-1:123456789012:provisioningtemplate/{TEMPLATE}"),
            "clientId": "device", "parameters": {"SerialNumber": serial},
        })
    }

    /// Calls the HTTP pre-provisioning hook for claim `claim_id` and device `serial`; its answer.
    pub async fn hook(&self, claim_id: &str, serial: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/v1/hooks/pre-provisioning",
            None,
            Some(self.hook_input(claim_id, serial)),
        )
        .await
        .json()
        .await
        .expect("the hook answers JSON")
    }

    /// The audit trail as JSON values, read with an admin token.
    pub async fn audit(&self) -> Vec<Value> {
        let token = self.issuer.token("admin-1", &[ADMIN]);
        let r = self
            .call(reqwest::Method::GET, "/v1/audit", Some(&token), None)
            .await;
        assert_eq!(r.status(), 200);
        r.text()
            .await
            .expect("body")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

/// A plain HTTP client for 127.0.0.1 (reqwest's rustls without a default provider needs one given).
pub fn http_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .expect("client")
}

/// A token provider that always answers the same token.
pub struct FixedToken(pub String);

#[async_trait]
impl TokenProvider for FixedToken {
    async fn bearer_token(&self, _refresh: bool) -> Result<SecretString, ProviderError> {
        Ok(SecretString::from(self.0.clone()))
    }
}

/// Template parameters for `serial`.
pub fn serial_parameters(serial: &str) -> BTreeMap<String, String> {
    claimlink_harness::testing::serial_parameters(serial)
}
