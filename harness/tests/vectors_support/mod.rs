//! What the vector tests share: chosen randomness ([`Scripted`]), a link straight into the
//! simulator that records every exchange ([`DirectLink`]), and the check of a vector file against
//! the committed one ([`check_or_update`]).

mod aws_status;
mod negative;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claimlink_core::{DeviceLink, DeviceRefusal, LinkError};
use claimlink_harness::device::{DeviceFailure, SimDevice, SimDeviceConfig};
use rand::{CryptoRng, RngCore};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The encoded `aws-status` request (`CmdGetCloudStatus`), the one request that endpoint has.
pub fn status_request() -> Vec<u8> {
    use claimlink_core::internal::proto;
    use prost::Message;
    proto::AwsStatusPayload {
        msg: proto::AwsStatusMsgType::TypeCmdGetCloudStatus as i32,
        status: 0,
        payload: Some(proto::aws_status_payload::Payload::CmdGet(
            proto::CmdGetCloudStatus {},
        )),
    }
    .encode_to_vec()
}

/// The environment variable that makes the vector tests rewrite the files instead of comparing.
pub const UPDATE_VARIABLE: &str = "CLAIMLINK_UPDATE_VECTORS";

/// `len` bytes that look random but are chosen: SHA-256 of `claimlink vectors: <label>`, repeated
/// as needed (so anyone can recompute them from the label).
pub fn fixed(label: &str, len: usize) -> Vec<u8> {
    let digest = Sha256::digest(format!("claimlink vectors: {label}").as_bytes());
    digest.iter().copied().cycle().take(len).collect()
}

/// Randomness that yields the chosen byte strings, one per `fill_bytes`, in order, and fails the
/// test when a draw does not match the script (another length, one too many, a `next_u64`). Marked
/// cryptographic only so that the SDK's handshake accepts it: it exists for the vectors.
pub struct Scripted {
    who: &'static str,
    draws: VecDeque<Vec<u8>>,
}

impl Scripted {
    /// `draws`, in the order `who` will ask for them.
    pub fn new(who: &'static str, draws: Vec<Vec<u8>>) -> Self {
        Self {
            who,
            draws: draws.into(),
        }
    }

    /// A simulator built from `config` that draws `draws`.
    pub fn device(config: SimDeviceConfig, draws: Vec<Vec<u8>>) -> Arc<SimDevice> {
        Arc::new(SimDevice::with_randomness(
            config,
            Box::new(Self::new("device", draws)),
        ))
    }
}

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        panic!("{}: only byte strings are scripted", self.who)
    }
    fn next_u64(&mut self) -> u64 {
        panic!("{}: only byte strings are scripted", self.who)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let Some(next) = self.draws.pop_front() else {
            panic!(
                "{}: a draw of {} bytes beyond the script",
                self.who,
                dest.len()
            )
        };
        assert_eq!(
            next.len(),
            dest.len(),
            "{}: a draw of another size",
            self.who
        );
        dest.copy_from_slice(&next);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Scripted {}

/// One request and its answer on a [`DirectLink`].
#[derive(Clone, Debug)]
pub struct Exchange {
    pub endpoint: String,
    pub request: Vec<u8>,
    pub answer: Vec<u8>,
}

impl Exchange {
    pub fn to_json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "request": hex::encode(&self.request),
            "answer": hex::encode(&self.answer),
        })
    }
}

/// A link into one simulator (connection 1), carrying at most `cap` bytes a message, recording
/// every exchange the device answered.
#[derive(Debug)]
pub struct DirectLink {
    device: Arc<SimDevice>,
    cap: usize,
    seen: Mutex<Vec<Exchange>>,
}

impl DirectLink {
    pub fn new(device: Arc<SimDevice>, cap: usize) -> Arc<Self> {
        Arc::new(Self {
            device,
            cap,
            seen: Mutex::new(Vec::new()),
        })
    }

    /// The exchanges so far.
    pub fn seen(&self) -> Vec<Exchange> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

#[async_trait]
impl DeviceLink for DirectLink {
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        match self.device.handle(1, endpoint, request) {
            Ok(answer) => {
                self.seen.lock().expect("not poisoned").push(Exchange {
                    endpoint: endpoint.to_owned(),
                    request: request.to_vec(),
                    answer: answer.clone(),
                });
                Ok(answer)
            }
            Err(DeviceFailure::Refused(why)) => {
                Err(LinkError::DeviceError(DeviceRefusal::Reported(why)))
            }
            Err(other) => Err(LinkError::DeviceError(DeviceRefusal::Reported(format!(
                "{other:?}"
            )))),
        }
    }

    fn max_message_bytes(&self) -> usize {
        self.cap
    }

    async fn disconnect(&self) {}

    fn describe(&self) -> String {
        format!("direct link, {} bytes", self.cap)
    }
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/vectors")
}

/// Compares `vector` with `proto/vectors/<name>`, or rewrites the file when
/// `CLAIMLINK_UPDATE_VECTORS=1`.
pub fn check_or_update(name: &str, vector: &Value) {
    let path = vectors_dir().join(name);
    let text = serde_json::to_string_pretty(vector).expect("JSON") + "\n";
    if std::env::var(UPDATE_VARIABLE).is_ok_and(|v| v == "1") {
        std::fs::write(&path, text).expect("the vector file is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "proto/vectors/{name} is stale (or missing): what the SDK and the simulator exchange \
         changed. If the change is meant, rewrite the vectors with \
         `{UPDATE_VARIABLE}=1 cargo test -p claimlink-harness --test vectors`, review the diff and \
         run proto/vectors/check.py"
    );
}
