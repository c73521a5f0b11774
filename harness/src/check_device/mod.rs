//! The device conformance checker behind `claimlink-harness check-device`: runs the device side of
//! the contract (docs/protocol.md, "Checking a device") against any device — a real ESP32 over its
//! SoftAP or BLE, or the simulator — and reports one line per case, PASS or FAIL with the reason.
//!
//! The device is spoken to as the SDK speaks to it: the SDK's own [`DeviceSession`] (handshake, cipher,
//! `scan_wifi`, `send_claim`, `cloud_status`, reset/reprovision) over the SDK's links, with every
//! message kept under the smallest cap ([`MAX_MESSAGE_BYTES`], 480 bytes) by [`CappedLink`]. The
//! hostile cases (a wrong SHA-256, a corrupted chunk, an oversize bundle) need what the SDK never
//! sends: they encode `aws-claim` messages with the internal protobuf types and send them through the
//! session's cipher ([`DeviceSession::request`]).
//!
//! What is expected comes from stock ESP-IDF and from docs/protocol.md, not from the simulator:
//! where ESP-IDF releases differ (prov-ctrl Reset before any failure, Reprov with auto-stop on, how a
//! wrong proof is refused over HTTP) every stock answer passes and the line says which one was seen.
//!
//! * this file — the report, how links are opened, the claim the checker sends;
//! * `session_cases` — `proto-ver`, the handshake with a right and a wrong password, scan, status,
//!   reset/reprov;
//! * `claim_cases` — the `aws-claim` transfer and what a device must refuse and wipe;
//! * `raw` — raw `aws-claim` messages and the oversize HTTP body;
//! * `wifi_case` — the Wi-Fi retry (wrong passphrase, Reset, right one), when given a network;
//! * `cloud_case` — one whole provisioning through the SDK against the embedded emulator (`--cloud`).

mod claim_cases;
mod cloud_case;
mod raw;
mod session_cases;
mod wifi_case;

pub use cloud_case::CloudOptions;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use claimlink_core::internal::{proto, DeviceSession};
use claimlink_core::{
    DeviceCredentials, DeviceLink, HttpLink, LinkError, SecretString, SecurityPolicy,
    WifiCredentials, MAX_MESSAGE_BYTES,
};
use prost::Message;
use zeroize::Zeroizing;

/// One case's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseOutcome {
    /// The case's name (`proto-ver`, `wrong-sha256`…).
    pub case: &'static str,
    /// What was seen when it passed; why it failed.
    pub result: Result<String, String>,
}

impl fmt::Display for CaseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(seen) => write!(f, "PASS {:<24} {seen}", self.case),
            Err(why) => write!(f, "FAIL {:<24} {why}", self.case),
        }
    }
}

/// Every case's result, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// The cases.
    pub cases: Vec<CaseOutcome>,
}

impl CheckReport {
    /// How many passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.result.is_ok()).count()
    }

    /// How many failed.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// The outcome of `case`, if it ran.
    pub fn outcome(&self, case: &str) -> Option<&CaseOutcome> {
        self.cases.iter().find(|c| c.case == case)
    }
}

/// Opens a new connection to the device under test: each opened link is a new protocomm session.
#[async_trait]
pub trait LinkOpener: Send + Sync {
    /// A link on a new connection (the device forgets the previous session).
    async fn open(&self) -> Result<Arc<dyn DeviceLink>, LinkError>;

    /// The device's HTTP base URL, when it is reached over HTTP (for the raw oversize body).
    fn http_base(&self) -> Option<&str> {
        None
    }
}

/// A device on its SoftAP: every [`open`](LinkOpener::open) is a new [`HttpLink`], hence a new TCP
/// connection without a cookie, which ESP-IDF's `protocomm_httpd.c` (`common_post_handler`) treats
/// as a new session, closing the old one.
#[derive(Debug)]
pub struct HttpOpener {
    base: String,
    timeout: Duration,
}

impl HttpOpener {
    /// A device at `base_url` (`http://192.168.4.1:80`), each exchange bounded by `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        HttpLink::new(base_url, timeout).map_err(|e| e.to_string())?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }
}

#[async_trait]
impl LinkOpener for HttpOpener {
    async fn open(&self) -> Result<Arc<dyn DeviceLink>, LinkError> {
        Ok(Arc::new(HttpLink::new(&self.base, self.timeout)?))
    }

    fn http_base(&self) -> Option<&str> {
        Some(&self.base)
    }
}

/// A connected link (BLE) reopened by disconnecting and connecting again: a new connection, so a new
/// session.
#[derive(Debug)]
pub struct ReconnectOpener {
    link: Arc<dyn DeviceLink>,
    opened: std::sync::atomic::AtomicBool,
}

impl ReconnectOpener {
    /// Reopens `link` for each session.
    pub fn new(link: Arc<dyn DeviceLink>) -> Self {
        Self {
            link,
            opened: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl LinkOpener for ReconnectOpener {
    async fn open(&self) -> Result<Arc<dyn DeviceLink>, LinkError> {
        if self.opened.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.link.disconnect().await;
        }
        self.link.connect().await?;
        Ok(self.link.clone())
    }
}

/// A link that keeps every message under `cap` bytes, whatever the link below carries: the SDK sizes
/// its claim chunks and scan pages from [`DeviceLink::max_message_bytes`].
#[derive(Debug)]
pub struct CappedLink {
    inner: Arc<dyn DeviceLink>,
    cap: usize,
    session_steps: std::sync::atomic::AtomicUsize,
}

impl CappedLink {
    /// `inner`, capped at `cap` bytes per message.
    pub fn new(inner: Arc<dyn DeviceLink>, cap: usize) -> Self {
        Self {
            inner,
            cap,
            session_steps: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many `prov-session` requests were sent (the handshake's steps).
    pub fn session_steps(&self) -> usize {
        self.session_steps.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl DeviceLink for CappedLink {
    async fn connect(&self) -> Result<(), LinkError> {
        self.inner.connect().await
    }

    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        if request.len() > self.cap {
            return Err(LinkError::TooLarge {
                len: request.len(),
                max: self.cap,
            });
        }
        if endpoint == claimlink_core::internal::endpoint::SESSION {
            self.session_steps
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.exchange(endpoint, request).await
    }

    fn endpoints(&self) -> Option<Vec<String>> {
        self.inner.endpoints()
    }

    fn max_message_bytes(&self) -> usize {
        self.cap.min(self.inner.max_message_bytes())
    }

    fn mtu(&self) -> Option<u16> {
        self.inner.mtu()
    }

    async fn disconnect(&self) {
        self.inner.disconnect().await
    }

    async fn disconnected(&self) {
        self.inner.disconnected().await
    }

    fn describe(&self) -> String {
        format!("{} (capped at {} bytes)", self.inner.describe(), self.cap)
    }
}

/// The claim the checker hands over: a fresh RSA-2048 key and a self-signed certificate for it, so a
/// device that checks the key against the certificate accepts it. It is never used with AWS.
pub struct TestClaim {
    certificate_der: Vec<u8>,
    private_key_pem: SecretString,
    certificate_id: String,
    parameters: BTreeMap<String, String>,
    /// The serialized `ClaimBundle` (primes form, as the SDK sends it).
    bundle: Zeroizing<Vec<u8>>,
}

/// The AWS IoT endpoint named in the test claim (never contacted).
const TEST_ENDPOINT: &str = "check-device.invalid";
/// The template named in the test claim.
const TEST_TEMPLATE: &str = "check-device";

impl TestClaim {
    /// A new claim.
    pub fn generate() -> Result<Self, String> {
        use sha2::Digest;
        let error = |e: &dyn fmt::Display| format!("cannot make the test claim: {e}");
        let key = crate::rsa_key::RsaKey::generate().map_err(|e| error(&e))?;
        let pkcs8 = key.to_pkcs8_der();
        let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| error(&e))?;
        let mut params = rcgen::CertificateParams::new(vec!["check-device".to_owned()])
            .map_err(|e| error(&e))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "claimlink check-device claim");
        let certificate_der = params
            .self_signed(&signer)
            .map_err(|e| error(&e))?
            .der()
            .to_vec();
        let pem = key.to_pkcs1_pem();
        let certificate_id = hex::encode(sha2::Sha256::digest(&certificate_der));
        let parameters = BTreeMap::from([("SerialNumber".to_owned(), "check-device".to_owned())]);
        let (p, q) = (key.p_bytes().to_vec(), key.q_bytes().to_vec());
        let mut message = proto::ClaimBundle {
            certificate_der: certificate_der.clone(),
            private_key_der: Vec::new(),
            certificate_id: certificate_id.clone(),
            expires_at_epoch: epoch_secs(SystemTime::now() + Duration::from_secs(300)),
            seconds_left: 300,
            iot_endpoint: TEST_ENDPOINT.to_owned(),
            template_name: TEST_TEMPLATE.to_owned(),
            template_parameters: parameters.clone(),
            rsa_key: Some(proto::RsaPrimes {
                p,
                q,
                e: key.e_bytes(),
            }),
        };
        let bundle = Zeroizing::new(message.encode_to_vec());
        if let Some(primes) = message.rsa_key.as_mut() {
            zeroize::Zeroize::zeroize(&mut primes.p);
            zeroize::Zeroize::zeroize(&mut primes.q);
        }
        Ok(Self {
            certificate_der,
            private_key_pem: SecretString::new(pem.to_string()),
            certificate_id,
            parameters,
            bundle,
        })
    }

    /// The claim as the SDK's `send_claim` takes it.
    fn sdk_bundle(&self) -> claimlink_core::internal::ClaimBundle<'_> {
        claimlink_core::internal::ClaimBundle {
            certificate_der: &self.certificate_der,
            private_key_pem: &self.private_key_pem,
            certificate_id: &self.certificate_id,
            expires_at: SystemTime::now() + Duration::from_secs(300),
            seconds_left: 300,
            iot_endpoint: TEST_ENDPOINT,
            template_name: TEST_TEMPLATE,
            template_parameters: &self.parameters,
        }
    }
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What every case needs: how to reach the device, its credentials, the claim to send.
pub(crate) struct Checker {
    opener: Arc<dyn LinkOpener>,
    credentials: DeviceCredentials,
    claim: TestClaim,
}

/// A case's result before it is named: what was seen, or why it failed.
type CaseResult = Result<String, String>;

impl Checker {
    /// A secure session on a new connection, every message capped at 480 bytes. The policy lets
    /// every scheme through: whether the device's scheme is one claimlink accepts is `proto-ver`'s
    /// case, and the rest is still worth checking.
    async fn session(&self) -> Result<DeviceSession, String> {
        self.establish(&self.credentials)
            .await
            .map_err(|e| format!("no session: {e}"))
    }

    async fn establish(
        &self,
        credentials: &DeviceCredentials,
    ) -> Result<DeviceSession, claimlink_core::ProtocolError> {
        self.establish_counted(credentials).await.1
    }

    /// [`establish`](Self::establish), also saying how many handshake steps were sent.
    async fn establish_counted(
        &self,
        credentials: &DeviceCredentials,
    ) -> (usize, Result<DeviceSession, claimlink_core::ProtocolError>) {
        let link = match self.opener.open().await {
            Ok(link) => link,
            Err(e) => return (0, Err(claimlink_core::ProtocolError::Link(e))),
        };
        let capped = Arc::new(CappedLink::new(link, MAX_MESSAGE_BYTES));
        let policy = SecurityPolicy {
            allow_sec1: true,
            danger_allow_sec2_patch0: true,
            danger_allow_sec0: true,
        };
        let link: Arc<dyn DeviceLink> = capped.clone();
        let result =
            DeviceSession::establish(link, credentials, &policy, &mut rand::rngs::OsRng).await;
        (capped.session_steps(), result)
    }
}

/// What to check a device with.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The device's credentials (the scheme they are for is the one expected).
    pub credentials: DeviceCredentials,
    /// A network the device can join: adds the `wifi-retry` case, run last (the device may stop
    /// provisioning once it has joined).
    pub wifi: Option<WifiCredentials>,
    /// Run the whole flow through the SDK against the embedded emulator: adds the `cloud` case, run
    /// after every other.
    pub cloud: Option<CloudOptions>,
}

impl CheckOptions {
    /// Checks with `credentials`, without joining a network.
    pub fn new(credentials: DeviceCredentials) -> Self {
        Self {
            credentials,
            wifi: None,
            cloud: None,
        }
    }
}

/// Runs every case against the device `opener` reaches, calling `line` with each case's line as it
/// ends. A case that fails does not stop the others; each starts on a new session and leaves the
/// device without a claim.
pub async fn check(
    opener: Arc<dyn LinkOpener>,
    options: CheckOptions,
    mut line: impl FnMut(&CaseOutcome),
) -> CheckReport {
    let mut report = CheckReport::default();
    let mut record = |case: &'static str, result: CaseResult| {
        let outcome = CaseOutcome { case, result };
        line(&outcome);
        report.cases.push(outcome);
    };
    let claim = match TestClaim::generate() {
        Ok(c) => c,
        Err(e) => {
            record("test-claim", Err(e));
            return report;
        }
    };
    let checker = Checker {
        opener,
        credentials: options.credentials,
        claim,
    };
    record("proto-ver", checker.proto_ver().await);
    record("wrong-password", checker.wrong_password().await);
    record("handshake", checker.handshake().await);
    record("status-before", checker.status_before().await);
    record("scan", checker.scan().await);
    record("claim-transfer", checker.claim_transfer().await);
    record("status-after", checker.status_after().await);
    record("abort", checker.abort().await);
    record("begin-while-held", checker.begin_while_held().await);
    record("wrong-sha256", checker.wrong_sha256().await);
    record("corrupted-chunk", checker.corrupted_chunk().await);
    record("oversize", checker.oversize().await);
    record("dropped-session", checker.dropped_session().await);
    record("reset-reprov", checker.reset_reprov().await);
    if let Some(wifi) = &options.wifi {
        record("wifi-retry", checker.wifi_retry(wifi).await);
    }
    if let Some(cloud) = &options.cloud {
        record("cloud", checker.cloud(cloud).await);
    }
    report
}
