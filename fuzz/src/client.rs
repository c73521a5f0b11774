//! The SDK's client side against a device whose answers are the fuzz input: `proto-ver`, the Sec0,
//! Sec1 or Sec2 handshake (through the real client handshake, with a fixed password and a fixed RNG,
//! so a recorded device's answers stay valid and the fuzzer starts past the handshake), then every
//! operation's answers: `aws-status`, Wi-Fi scan, config and status, `aws-claim`, `prov-ctrl`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claimlink_core::internal::{ClaimBundle, DeviceSession};
use claimlink_core::{
    DeviceCredentials, DeviceLink, LinkError, SecretString, SecurityPolicy, SecurityScheme,
    WifiCredentials,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::framing;

/// The Sec1 PoP and Sec2 password of the session targets (the device simulator's default).
pub const PASSWORD: &str = "abcd1234";

/// A device that answers every exchange with the next message of the input, and disconnects when
/// there is none left.
#[derive(Debug)]
struct ScriptedDevice {
    answers: Mutex<VecDeque<Vec<u8>>>,
}

#[async_trait::async_trait]
impl DeviceLink for ScriptedDevice {
    async fn exchange(&self, _endpoint: &str, _request: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .ok_or(LinkError::Disconnected)
    }
    async fn disconnect(&self) {}
    fn describe(&self) -> String {
        "scripted device (fuzz input)".into()
    }
}

/// The credentials and policy the client uses for `scheme`.
fn credentials(scheme: SecurityScheme) -> (DeviceCredentials, SecurityPolicy) {
    match scheme {
        SecurityScheme::Sec0 => (
            DeviceCredentials::none(),
            SecurityPolicy {
                danger_allow_sec0: true,
                ..SecurityPolicy::default()
            },
        ),
        SecurityScheme::Sec1 => (
            DeviceCredentials::pop(SecretString::from(PASSWORD)),
            SecurityPolicy {
                allow_sec1: true,
                ..SecurityPolicy::default()
            },
        ),
        SecurityScheme::Sec2 => (
            DeviceCredentials::password(SecretString::from(PASSWORD)),
            SecurityPolicy::default(),
        ),
    }
}

/// The client's whole conversation with a device on `link`: the handshake, then one of each
/// operation, each going on after the previous one failed (a failure may break the session: the
/// operations after it must then fail cleanly too). Returns how many of the steps (the handshake
/// and [`STEPS`]` - 1` operations) succeeded.
pub async fn converse(link: Arc<dyn DeviceLink>, scheme: SecurityScheme) -> usize {
    let (credentials, policy) = credentials(scheme);
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let Ok(session) = DeviceSession::establish(link, &credentials, &policy, &mut rng).await else {
        return 0;
    };
    let mut ok = vec![
        session.cloud_status().await.is_ok(),
        session.scan_wifi().await.is_ok(),
    ];
    let (certificate_pem, key_pem) = crate::split_claim(crate::SEED_CLAIM);
    let key = SecretString::from(key_pem);
    let parameters = BTreeMap::from([("SerialNumber".to_owned(), "C1A1".to_owned())]);
    let sent = match claimlink_core::ClaimCertificate::from_pem(certificate_pem) {
        Ok(certificate) => session
            .send_claim(&ClaimBundle {
                certificate_der: certificate.der(),
                private_key_pem: &key,
                certificate_id: certificate.id(),
                expires_at: crate::fuzz_now() + Duration::from_secs(300),
                seconds_left: 300,
                iot_endpoint: "127.0.0.1:8883",
                template_name: "fuzz",
                template_parameters: &parameters,
            })
            .await
            .is_ok(),
        Err(_) => false,
    };
    ok.push(sent);
    let configured = match WifiCredentials::new(b"fuzz-net".to_vec(), "passphrase".into()) {
        Ok(wifi) => session.set_wifi_config(&wifi).await.is_ok(),
        Err(_) => false,
    };
    ok.push(configured);
    ok.push(session.apply_wifi_config().await.is_ok());
    ok.push(session.wifi_status().await.is_ok());
    ok.push(session.cloud_status().await.is_ok());
    ok.push(session.reset_wifi().await.is_ok());
    ok.push(session.reprovision().await.is_ok());
    ok.push(session.abort_claim().await.is_ok());
    session.close().await;
    1 + ok.into_iter().filter(|ok| *ok).count()
}

/// The steps of [`converse`]: the handshake and ten operations.
pub const STEPS: usize = 11;

/// The session target for `scheme`: the input is the device's framed answers (see [`framing`]).
pub fn session(scheme: SecurityScheme, input: &[u8]) {
    replay(scheme, input);
}

/// Runs [`converse`] against the framed answers in `input`; returns how many steps succeeded and
/// how many answers were left unread.
pub fn replay(scheme: SecurityScheme, input: &[u8]) -> (usize, usize) {
    let device = Arc::new(ScriptedDevice {
        answers: Mutex::new(
            framing::split(input)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect(),
        ),
    });
    let steps = crate::runtime().block_on(converse(device.clone(), scheme));
    let left = device
        .answers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len();
    (steps, left)
}

/// Frames messages for the session and handshake targets (see [`framing`]).
pub fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    framing::join(messages)
}

/// Records a conversation with a device (each request's endpoint and bytes, and the answer): the
/// answers, framed, seed the session targets; the requests seed the device-side targets.
#[derive(Debug)]
pub struct AnswerRecorder {
    inner: Arc<dyn DeviceLink>,
    answers: Mutex<Vec<Vec<u8>>>,
    requests: Mutex<Vec<(String, Vec<u8>)>>,
}

impl AnswerRecorder {
    /// Records what `inner` answers.
    pub fn new(inner: Arc<dyn DeviceLink>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            answers: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// The requests so far: endpoint and bytes.
    pub fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The answers so far.
    pub fn answers(&self) -> Vec<Vec<u8>> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl DeviceLink for AnswerRecorder {
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((endpoint.to_owned(), request.to_vec()));
        let answer = self.inner.exchange(endpoint, request).await?;
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(answer.clone());
        Ok(answer)
    }
    async fn disconnect(&self) {}
    fn describe(&self) -> String {
        format!("recording {}", self.inner.describe())
    }
}

/// The client's conversation ([`converse`]) with a simulated device of `scheme` (password
/// [`PASSWORD`]), recorded: how many steps succeeded, and the recording.
pub fn record(scheme: SecurityScheme) -> (usize, Arc<AnswerRecorder>) {
    use claimlink_harness::device::security::DeviceSecurity;
    use claimlink_harness::device::{SimDevice, SimDeviceConfig};
    let security = match scheme {
        SecurityScheme::Sec0 => DeviceSecurity::Sec0,
        SecurityScheme::Sec1 => DeviceSecurity::Sec1 {
            pop: Some(PASSWORD.into()),
        },
        SecurityScheme::Sec2 => SimDeviceConfig::default().security,
    };
    let device = Arc::new(SimDevice::new(SimDeviceConfig {
        security,
        ..SimDeviceConfig::default()
    }));
    let recorder = AnswerRecorder::new(crate::device::DirectLink::new(device));
    let steps = crate::runtime().block_on(converse(recorder.clone(), scheme));
    (steps, recorder)
}
