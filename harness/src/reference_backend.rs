//! `demo --backend reference`: the demo through claimlink's reference backend (backend/, crate
//! `claimlink-backend`) instead of the emulator's built-in backend contract.
//!
//! The harness does not link the backend (the backend's tests use the harness, so a dependency the other
//! way would make two copies of one of them): it runs the backend's binary as a child process, configured
//! for this emulator — AWS IoT at the emulator's endpoint with credentials the emulator issued, records
//! in a SQLite file in a temporary directory — and plays the installers' OIDC issuer itself: an ES256
//! key, its JWKS served on 127.0.0.1, and a signed-in installer's token. The emulator's template then
//! calls the backend's HTTP pre-provisioning hook, so every device is bound to its serial.
//!
//! `serve --backend reference` starts it the same way with [`BackendOptions`]: over HTTPS (the SDK's
//! FFI refuses plain-http backends) with a certificate under the emulator's CA, which the emulator's
//! hook client and the apps already trust, and optionally with its records in PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use zeroize::Zeroizing;

use crate::emulator::{Emulator, PreProvisioningHook, Template};

/// The audience of the demo installer's token.
const AUDIENCE: &str = "claimlink-demo-app";
/// The demo installer's site.
pub const SITE: &str = "demo-site";
/// The demo installer's `sub`.
pub const INSTALLER: &str = "demo-installer";

/// How to start the backend, beyond what `demo --backend reference` needs.
#[derive(Clone, Default)]
pub struct BackendOptions {
    /// Serve HTTPS with a server certificate for 127.0.0.1 and `localhost` under the emulator's CA
    /// ([`Emulator::ca_pem`]); plain HTTP otherwise.
    pub https: bool,
    /// Where the records go (`postgres://…`); default: a SQLite file in the backend's temporary
    /// directory.
    pub database_url: Option<String>,
}

impl std::fmt::Debug for BackendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may hold a password: not shown.
        f.debug_struct("BackendOptions")
            .field("https", &self.https)
            .field("database_url", &self.database_url.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// A running reference backend and the issuer that signs its installer in. Dropping it stops both.
pub struct ReferenceBackend {
    /// `http://127.0.0.1:<port>`, or `https://` with [`BackendOptions::https`].
    pub base_url: String,
    /// The demo installer's bearer token.
    pub token: String,
    /// Where the records are, as the backend says it: `SQLite file <path>` or `PostgreSQL at
    /// <host>:<port>/<database>` (no password).
    pub database: String,
    child: tokio::process::Child,
    jwks: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

impl std::fmt::Debug for ReferenceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceBackend")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for ReferenceBackend {
    fn drop(&mut self) {
        self.jwks.abort();
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The backend binary: `CLAIMLINK_BACKEND`, else `claimlink-backend` beside this program (cargo
/// builds both into the same directory: `cargo build -p claimlink-backend`).
pub fn find_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CLAIMLINK_BACKEND") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let beside = exe
        .parent()
        .map(|d| d.join("claimlink-backend"))
        .filter(|p| p.is_file())
        // Test binaries live one level down, in deps/.
        .or_else(|| {
            exe.parent()
                .and_then(Path::parent)
                .map(|d| d.join("claimlink-backend"))
                .filter(|p| p.is_file())
        });
    beside.ok_or_else(|| {
        "the reference backend's binary was not found beside this program: build it with \
         `cargo build -p claimlink-backend`, or set CLAIMLINK_BACKEND to its path"
            .to_owned()
    })
}

/// The demo template for the reference backend: the thing is named and its attributes set from the
/// parameters the backend's hook overrides (`ThingName`, `Installer`, `Site`).
pub fn bound_template(name: &str) -> Template {
    Template {
        name: name.to_owned(),
        body: json!({
            "Parameters": {
                "SerialNumber": {"Type": "String"},
                "ThingName": {"Type": "String"},
                "Installer": {"Type": "String", "Default": "unknown"},
                "Site": {"Type": "String", "Default": "unknown"}
            },
            "Resources": {
                "thing": {"Type": "AWS::IoT::Thing", "Properties": {
                    "ThingName": {"Ref": "ThingName"},
                    "AttributePayload": {"serial": {"Ref": "SerialNumber"},
                                          "installer": {"Ref": "Installer"},
                                          "site": {"Ref": "Site"}}}},
                "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
                    "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
            }
        }),
        enabled: true,
    }
}

fn jwt_part(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Starts the backend `binary` for `emulator`'s template `template`, sized for `devices` claims (plain
/// HTTP, records in SQLite).
pub async fn start(
    binary: &Path,
    emulator: &Emulator,
    template: &str,
    devices: u16,
) -> Result<ReferenceBackend, String> {
    start_with(
        binary,
        emulator,
        template,
        devices,
        &BackendOptions::default(),
    )
    .await
}

/// PEM of one DER object (`label`: `CERTIFICATE`, `PRIVATE KEY`).
fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for line in text.as_bytes().chunks(64) {
        // base64 is ASCII: every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes the backend's TLS certificate and key (under the emulator's CA) into `dir`: the
/// configuration's `[tls]` section.
fn write_tls_files(emulator: &Emulator, dir: &Path) -> Result<String, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("reference backend: {what}: {e}");
    let identity = emulator
        .server_identity()
        .map_err(|e| fail("TLS certificate", &e))?;
    let mut chain = String::new();
    for c in &identity.chain {
        chain.push_str(&pem("CERTIFICATE", c.as_ref()));
    }
    let chain_file = dir.join("tls-chain.pem");
    std::fs::write(&chain_file, chain).map_err(|e| fail("TLS certificate", &e))?;
    let key_file = dir.join("tls-key.pem");
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    std::io::Write::write_all(
        &mut file.open(&key_file).map_err(|e| fail("TLS key", &e))?,
        pem("PRIVATE KEY", identity.key.secret_der()).as_bytes(),
    )
    .map_err(|e| fail("TLS key", &e))?;
    Ok(format!(
        "[tls]\ncertificate_chain = {chain:?}\nprivate_key = {key:?}\n",
        chain = chain_file.display().to_string(),
        key = key_file.display().to_string(),
    ))
}

/// [`start`] with `options`: HTTPS, another database.
pub async fn start_with(
    binary: &Path,
    emulator: &Emulator,
    template: &str,
    devices: u16,
    options: &BackendOptions,
) -> Result<ReferenceBackend, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("reference backend: {what}: {e}");
    // The issuer: one ES256 key, its JWKS on 127.0.0.1.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| fail("issuer key", &e))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| fail("issuer key", &e))?;
    let point = key.public_key().as_ref().to_vec();
    let (x, y) = (point.get(1..33), point.get(33..65));
    let (Some(x), Some(y)) = (x, y) else {
        return Err(
            "reference backend: the issuer's public key is not an uncompressed P-256 point".into(),
        );
    };
    let jwks = Arc::new(
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "demo", "alg": "ES256",
        "use": "sig", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]}),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail("JWKS server", &e))?;
    let issuer = format!(
        "http://{}",
        listener.local_addr().map_err(|e| fail("JWKS server", &e))?
    );
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json((*jwks).clone()) }
        }),
    );
    let jwks_task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let signing_input = format!(
        "{}.{}",
        jwt_part(&json!({"alg": "ES256", "typ": "JWT", "kid": "demo"})),
        jwt_part(
            &json!({"iss": issuer, "aud": AUDIENCE, "sub": INSTALLER, "iat": now,
                         "nbf": now, "exp": now + 3600, "roles": ["installer"]})
        )
    );
    let signature = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|e| fail("token", &e))?;
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    // Its configuration, next to its records.
    let dir = std::env::temp_dir().join(format!(
        "claimlink-demo-backend-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| fail("temporary directory", &e))?;
    let ca = dir.join("emulator-ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).map_err(|e| fail("CA file", &e))?;
    // Given to the backend in its environment, not its configuration file: the URL may hold a password.
    let database_url = match &options.database_url {
        Some(url) => Zeroizing::new(url.clone()),
        None => Zeroizing::new(format!("sqlite://{}", dir.join("records.db").display())),
    };
    let tls = if options.https {
        write_tls_files(emulator, &dir)?
    } else {
        String::new()
    };
    let config = format!(
        "listen = \"127.0.0.1:0\"\n\
         [oidc]\nissuer = {issuer:?}\naudience = {AUDIENCE:?}\njwks_url = {jwks_url:?}\n\
         [policy.roles.installer]\ntemplates = [{template:?}]\nsites = [{SITE:?}]\n\
         [aws]\nregion = {region:?}\nendpoint_url = {endpoint:?}\nextra_ca_file = {ca:?}\n\
         [rate_limit]\nburst = {burst}\nper_minute = {burst}\n{tls}",
        jwks_url = format!("{issuer}/.well-known/jwks.json"),
        region = emulator.region(),
        endpoint = emulator.base_url(),
        ca = ca.display().to_string(),
        burst = u32::from(devices) + 10,
    );
    let config_file = dir.join("claimlink-backend.toml");
    std::fs::write(&config_file, config).map_err(|e| fail("configuration", &e))?;
    let credentials = emulator.issue_credentials();
    let mut child = tokio::process::Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&config_file)
        .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
        .env("AWS_SESSION_TOKEN", &credentials.session_token)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CLAIMLINK_DATABASE_URL", database_url.as_str())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(&binary.display().to_string(), &e))?;
    // Its first line says where it listens.
    let stdout = child.stdout.take().ok_or("reference backend: no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| "reference backend: did not start within 30 s".to_owned())?
        .map_err(|e| fail("its output", &e))?
        .ok_or("reference backend: exited before listening (see its errors above)")?;
    let base_url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .ok_or_else(|| format!("reference backend: unexpected first line {first:?}"))?;
    let database = first
        .split_once(", records in ")
        .map(|(_, where_)| where_.to_owned())
        .unwrap_or_default();
    // The rest of its output is not needed; keep the pipe drained.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    emulator.put_template(bound_template(template));
    emulator.set_pre_provisioning_hook(
        template,
        Some(PreProvisioningHook::Url(format!(
            "{base_url}/v1/hooks/pre-provisioning"
        ))),
    );
    Ok(ReferenceBackend {
        base_url,
        token,
        database,
        child,
        jwks: jwks_task,
        dir,
    })
}
