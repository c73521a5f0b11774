//! The device wire protocol: Espressif's protocomm / network-provisioning protocol (so stock ESP32
//! firmware and any client of that protocol interoperate), plus claimlink's `aws-claim` and
//! `aws-status` endpoints. `docs/protocol.md` is the specification.
//!
//! * [`proto`] — the protobuf messages, byte-compatible with ESP-IDF's `.proto` files;
//! * [`version`] — `proto-ver` capabilities;
//! * [`aws_extension`] — claimlink's `aws` extension by version: which versions are spoken, what each
//!   offers (the one place to add a version 2);
//! * [`srp`], [`cipher`] — Security 2 (SRP-6a + AES-256-GCM) and Security 1 (X25519 + AES-256-CTR);
//! * [`session`] — a secure session over a [`DeviceLink`](crate::transport::DeviceLink): handshake,
//!   one request in flight, never a silent retry of an encrypted exchange;
//! * [`ops`] — Wi-Fi scan, configuration and control, the claim transfer, the cloud status;
//! * `error` — [`ProtocolError`] and its typed reasons.

pub mod aws_extension;
pub mod cipher;
mod error;
pub mod ops;
pub mod proto;
pub mod session;
pub mod srp;
pub mod version;

use std::fmt;

pub use aws_extension::{AwsDialect, AwsExtension, AwsVersion};
pub use error::{InvalidInputReason, MalformedReason, ProtocolError, UnsupportedReason};
pub use session::DeviceSession;
pub use version::DeviceCapabilities;

use crate::secret::SecretString;

/// The protocomm security schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityScheme {
    /// No security at all.
    Sec0,
    /// X25519 + PoP, AES-256-CTR: confidentiality without integrity.
    Sec1,
    /// SRP-6a + AES-256-GCM.
    Sec2,
}

impl fmt::Display for SecurityScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityScheme::Sec0 => "Security 0 (plaintext)",
            SecurityScheme::Sec1 => "Security 1 (X25519 + AES-CTR, no integrity)",
            SecurityScheme::Sec2 => "Security 2 (SRP-6a + AES-GCM)",
        })
    }
}

/// Which device security the app accepts. The default accepts only Security 2, patch 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// Accept Security 1 devices (no message integrity; the PoP can be brute-forced offline from a
    /// captured handshake).
    pub allow_sec1: bool,
    /// Accept Security 2 patch 0 devices, which reuse one GCM IV for every message of a session.
    pub danger_allow_sec2_patch0: bool,
    /// Accept Security 0 devices: the claim's private key and the Wi-Fi passphrase cross the air in
    /// clear text.
    pub danger_allow_sec0: bool,
}

impl SecurityPolicy {
    /// Checks a device's offer against the policy.
    pub fn check(&self, caps: &DeviceCapabilities) -> Result<(), ProtocolError> {
        let refuse = |reason: &str| {
            Err(ProtocolError::SecurityRefused {
                offered: caps.security,
                patch: caps.security_patch,
                reason: reason.to_owned(),
            })
        };
        match caps.security {
            SecurityScheme::Sec2 if caps.security_patch >= 1 || self.danger_allow_sec2_patch0 => {
                Ok(())
            }
            SecurityScheme::Sec2 => refuse(
                "Security 2 patch 0 reuses its GCM IV; set danger_allow_sec2_patch0 to accept it",
            ),
            SecurityScheme::Sec1 if self.allow_sec1 => Ok(()),
            SecurityScheme::Sec1 => {
                refuse("Security 1 has no integrity protection; set allow_sec1 to accept it")
            }
            SecurityScheme::Sec0 if self.danger_allow_sec0 => Ok(()),
            SecurityScheme::Sec0 => {
                refuse("Security 0 sends secrets in clear text; set danger_allow_sec0 to accept it")
            }
        }
    }
}

/// What the installer knows about the device, and **which security scheme it is for**: the Sec2
/// username and password, or the Sec1 proof of possession (`secret`), or nothing (Sec0).
///
/// The scheme travels with the secret (from the QR code's `security` field, or from the constructor
/// chosen): a device that offers another scheme is refused after `proto-ver`, before anything else is
/// sent, so an impostor cannot downgrade the session, and a Sec2 password is never used as a Sec1
/// PoP. Opting into Sec1 is therefore per connection (these credentials); the provisioner's
/// [`SecurityPolicy`] stays a floor on top (Sec1 also needs `allow_sec1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCredentials {
    /// Sec2 username (ESP-IDF's default is `wifiprov`).
    pub username: String,
    /// Sec2 password or Sec1 proof of possession; `None` for Sec0 and Sec1 without PoP.
    pub secret: Option<SecretString>,
    /// The scheme the device is expected to offer.
    pub security: SecurityScheme,
}

impl DeviceCredentials {
    /// Sec2 credentials with ESP-IDF's default username.
    pub fn password(password: impl Into<SecretString>) -> Self {
        Self::username_password("wifiprov", password)
    }

    /// Sec2 credentials with another username.
    pub fn username_password(
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        Self {
            username: username.into(),
            secret: Some(password.into()),
            security: SecurityScheme::Sec2,
        }
    }

    /// A Sec1 proof of possession.
    pub fn pop(pop: impl Into<SecretString>) -> Self {
        Self {
            username: String::new(),
            secret: Some(pop.into()),
            security: SecurityScheme::Sec1,
        }
    }

    /// Sec1 without a proof of possession (a device that advertises `no_pop`).
    pub fn sec1_without_pop() -> Self {
        Self {
            username: String::new(),
            secret: None,
            security: SecurityScheme::Sec1,
        }
    }

    /// No secret: Sec0 (plaintext).
    pub fn none() -> Self {
        Self {
            username: String::new(),
            secret: None,
            security: SecurityScheme::Sec0,
        }
    }
}
