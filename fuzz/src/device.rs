//! The device simulator's decoders (harness/src/device/): what a hostile phone may send it, on every
//! endpoint, in the handshake and in the claim bundle.

use std::sync::{Arc, OnceLock};

use claimlink_core::internal::proto;
use claimlink_core::{DeviceLink, DeviceRefusal, LinkError};
use claimlink_harness::device::security::DeviceSecurity;
use claimlink_harness::device::{DeviceFailure, SimDevice, SimDeviceConfig};
use prost::Message;
use sha2::Digest;

fn sec0_device() -> SimDevice {
    SimDevice::new(SimDeviceConfig {
        security: DeviceSecurity::Sec0,
        ..SimDeviceConfig::default()
    })
}

/// The Sec0 session command: opens a plaintext session on connection 1.
pub fn sec0_hello() -> Vec<u8> {
    proto::SessionData {
        sec_ver: 0,
        proto: Some(proto::session_data::Proto::Sec0(proto::Sec0Payload {
            msg: 0,
            payload: Some(proto::sec0_payload::Payload::Sc(proto::S0SessionCmd {})),
        })),
    }
    .encode_to_vec()
}

/// Every endpoint of a Sec0 device with an open session, given the same request.
pub fn endpoints(input: &[u8]) {
    let device = sec0_device();
    let _ = device.handle(1, "prov-session", &sec0_hello());
    for endpoint in [
        "prov-scan",
        "prov-config",
        "prov-ctrl",
        "aws-claim",
        "aws-status",
        "proto-ver",
        "nope",
    ] {
        let _ = device.handle(1, endpoint, input);
    }
}

/// A Sec2 device's handshake, given the framed session commands (see [`crate::framing`]) and then a
/// `prov-config` request. One device per process: its SRP verifier is the expensive part.
pub fn handshake(input: &[u8]) {
    static DEVICE: OnceLock<SimDevice> = OnceLock::new();
    let device = DEVICE.get_or_init(|| SimDevice::new(SimDeviceConfig::default()));
    let connection = device.new_connection_id();
    for message in crate::framing::split(input) {
        let _ = device.handle(connection, "prov-session", message);
    }
    let _ = device.handle(connection, "prov-config", input);
}

/// A claim bundle (the protobuf `ClaimBundle`), sent to a Sec0 device in one committed chunk with
/// its right SHA-256, so the device decodes it.
pub fn claim_bundle(input: &[u8]) {
    let device = sec0_device();
    let _ = device.handle(1, "prov-session", &sec0_hello());
    let begin = proto::AwsClaimPayload {
        msg: 0,
        status: 0,
        error: 0,
        payload: Some(proto::aws_claim_payload::Payload::CmdBegin(
            proto::CmdClaimBegin {
                total_length: u32::try_from(input.len()).unwrap_or(u32::MAX),
                sha256: sha2::Sha256::digest(input).to_vec(),
                data: input.to_vec(),
                commit: true,
            },
        )),
    };
    let _ = device.handle(1, "aws-claim", &begin.encode_to_vec());
}

/// A link straight into a simulated device's handlers (no BLE framing): the seed recorders'.
#[derive(Debug)]
pub struct DirectLink {
    device: Arc<SimDevice>,
    connection: u64,
}

impl DirectLink {
    /// A new connection to `device`.
    pub fn new(device: Arc<SimDevice>) -> Arc<Self> {
        let connection = device.new_connection_id();
        Arc::new(Self { device, connection })
    }
}

#[async_trait::async_trait]
impl DeviceLink for DirectLink {
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.device
            .handle(self.connection, endpoint, request)
            .map_err(|failure| match failure {
                DeviceFailure::UnknownEndpoint => LinkError::UnknownEndpoint(endpoint.to_owned()),
                DeviceFailure::Refused(_) => LinkError::DeviceError(DeviceRefusal::HttpStatus(500)),
                DeviceFailure::Stopped => LinkError::Disconnected,
            })
    }
    async fn disconnect(&self) {}
    fn describe(&self) -> String {
        "simulated device".into()
    }
}
