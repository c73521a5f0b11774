//! # claimlink-core
//!
//! The logic of claimlink, an SDK for installer apps that bring IoT devices onto AWS IoT with *fleet
//! provisioning by trusted user*: the app obtains a short-lived provisioning claim (certificate +
//! private key), hands it to the device over an end-to-end encrypted session, and watches the device
//! trade it for its own certificate before the claim expires.
//!
//! This crate knows nothing of uniffi: the Kotlin/Swift/Python surface is the `claimlink` crate (the
//! repository's `src/`), a thin layer over the types re-exported here. `docs/architecture.md` explains
//! the layers and where to add a transport, a claim source, a stage or a protocol version.
//!
//! Modules are private; what apps and the FFI layer use is re-exported at the crate root. Data flows one
//! way only, from the top of this list to the bottom (a test, `tests/layering.rs`, fails when an import
//! runs back up):
//!
//! * `provision` — the orchestrator: [`Provisioner`], [`ProvisioningSession`], stages, events,
//!   deadlines, cloud confirmation, clean-up.
//! * `qr` — the provisioning QR code ([`ProvisioningQr`]).
//! * `claim` — obtaining a [`Claim`] ([`ClaimSource`]) from the app maker's backend or from AWS IoT
//!   directly (SigV4), and asking the cloud what it knows about a thing ([`ThingDirectory`]).
//! * `protocomm` — the device wire protocol: protobuf messages, Sec0/1/2 sessions, Wi-Fi scan, config
//!   and control, the `aws-claim` / `aws-status` extension (its versions in one module:
//!   [`AwsDialect`]).
//! * `transport` — how bytes reach the device: [`DeviceLink`], BLE ([`BleLink`] over a
//!   [`GattPeripheral`]), SoftAP/HTTP ([`HttpLink`]).
//! * `net` — the HTTPS client every cloud call uses (rustls with the *ring* provider, no OpenSSL).
//! * `time` — the phone's clock and the [`Deadline`] every claim carries.
//! * `endpoint` — the protocomm endpoint names (a leaf both `transport` and `protocomm` read).
//! * `secret` — wrappers for secrets (keys, tokens, passphrases) that are zeroized on drop and never
//!   printed.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod claim;
mod endpoint;
mod net;
mod protocomm;
mod provision;
mod qr;
mod secret;
mod time;
mod transport;

pub use claim::{
    AwsClaimSource, AwsClaimSourceBuilder, AwsCredentials, BackendClaimSource,
    BackendClaimSourceBuilder, CertificateStatus, Claim, ClaimCertificate, ClaimError,
    ClaimRequest, ClaimSource, CredentialsProvider, ProviderError, Service, TemplateName,
    ThingCertificate, ThingDescription, ThingDirectory, ThingName, TokenProvider,
};
pub use net::{HttpConfig, NetError, RetryPolicy};
pub use protocomm::ops::{
    ClaimTransfer, CloudFailure, CloudStatus, WifiAuth, WifiCredentials, WifiFailure, WifiNetwork,
    WifiState,
};
pub use protocomm::proto::{CloudFailureKind, CloudStage};
pub use protocomm::{
    AwsDialect, AwsExtension, AwsVersion, DeviceCapabilities, DeviceCredentials,
    InvalidInputReason, MalformedReason, ProtocolError, SecurityPolicy, SecurityScheme,
    UnsupportedReason,
};
pub use provision::{
    CloudWords, DeviceReport, FailureCode, FailureReport, LinkReport, OutcomeReport,
    ReconfiguredDevice, RunReport, StageReport, SupportReport, SUPPORT_REPORT_FORMAT,
};
pub use provision::{
    NoListener, ProvisionError, ProvisionOptions, ProvisionedDevice, Provisioner,
    ProvisionerConfig, ProvisioningEvent, ProvisioningListener, ProvisioningSession, Stage,
};
pub use qr::{ProvisioningQr, QrError, QrTransport};
pub use secret::{SecretBytes, SecretString};
pub use time::{suspend_aware_time, Clock, Deadline, SkewedClock, SystemClock};
#[cfg(feature = "ble")]
pub use transport::ble::btle;
pub use transport::ble::{
    BleConfig, BleLink, GattCharacteristic, GattError, GattPeripheral, USER_DESCRIPTION_UUID,
};
pub use transport::http::{HttpLink, HTTP_MAX_MESSAGE_BYTES};
pub use transport::{DeviceLink, DeviceRefusal, LinkError, LinkFault, MAX_MESSAGE_BYTES};

/// Internals the harness (device simulator, benches) and the fuzz targets reach into. Not API: no
/// stability promise, and apps have no reason to use any of it.
#[doc(hidden)]
pub mod internal {
    /// The protocomm endpoint names.
    pub mod endpoint {
        pub use crate::endpoint::*;
    }
    pub use crate::protocomm::ops::ClaimBundle;
    pub use crate::protocomm::{cipher, proto, srp, DeviceSession};
    pub use crate::provision::claim_bundle;
    pub use crate::transport::ble::single_write_payload;

    /// The services' answer decoders (feature `fuzzing`).
    #[cfg(feature = "fuzzing")]
    pub use crate::claim::fuzzing;
}
