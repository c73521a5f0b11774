//! What an installer does with a session: scan for Wi-Fi, hand over the network and the claim, apply,
//! watch the Wi-Fi and cloud status, and reset or reprovision after a wrong password.
//!
//! * `wifi` — the Wi-Fi types and the `prov-scan`, `prov-config` and `prov-ctrl` exchanges;
//! * `aws` — the claim transfer on `aws-claim` (the [`ClaimBundle`], its encoding, the chunks,
//!   the abort) and the cloud status on `aws-status`.

mod aws;
mod wifi;

pub use aws::{ClaimBundle, ClaimTransfer, CloudFailure, CloudStatus};
pub use wifi::{WifiAuth, WifiCredentials, WifiFailure, WifiNetwork, WifiState};

use super::proto::Status;
use super::session::malformed;
use super::session::status_name;
use super::{MalformedReason, ProtocolError};

/// An answer on `endpoint` that is not the message expected.
fn unexpected(endpoint: &str, expected: &'static str) -> ProtocolError {
    malformed(endpoint, MalformedReason::UnexpectedMessage { expected })
}

fn check_status(endpoint: &str, status: i32) -> Result<(), ProtocolError> {
    if status == Status::Success as i32 {
        Ok(())
    } else {
        Err(ProtocolError::DeviceRefused {
            endpoint: endpoint.to_owned(),
            status: status_name(status),
        })
    }
}
