//! # claimlink
//!
//! An SDK for installer apps that bring IoT devices onto AWS IoT with *fleet provisioning by trusted
//! user*: the app obtains a short-lived provisioning claim (certificate + private key), hands it to the
//! device over an end-to-end encrypted session, and watches the device trade it for its own certificate
//! before the claim expires.
//!
//! The crate is layered, and data flows one way only:
//!
//! * [`ffi`] — the only module that knows about uniffi: thin wrappers exported to Kotlin, Swift and Python.
//! * [`claim`] — obtaining a [`claim::Claim`] from the app maker's backend or from AWS IoT directly
//!   (SigV4), and asking the cloud whether a thing exists.
//! * [`time`] — the phone's clock and the [`time::Deadline`] every claim carries.
//! * [`secret`] — wrappers for secrets (keys, tokens, passphrases) that are zeroized on drop and never
//!   printed.
//! * [`net`] — the HTTPS client every cloud call uses (rustls with the *ring* provider, no OpenSSL).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod claim;
pub mod ffi;
pub mod net;
pub mod protocomm;
pub mod provision;
pub mod qr;
pub mod secret;
pub mod time;
pub mod transport;

uniffi::setup_scaffolding!();
