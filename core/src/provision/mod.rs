//! The orchestrator: what an installer app runs to bring one device onto AWS IoT.
//!
//! [`Provisioner`] (one per app, shared by many devices) opens a [`ProvisioningSession`] on a
//! `DeviceLink`; [`ProvisioningSession::provision`] then requests a claim *just in time* (after the
//! secure session is up and the network chosen), hands it and the Wi-Fi settings over, and watches the
//! device join Wi-Fi, get its certificate, register its thing and reconnect — every event carrying the
//! time left on the claim — until the cloud itself confirms the thing with the device's certificate.
//!
//! Deadlines: a claim with less than the safety margin left is never handed over (a fresh one is
//! fetched); a device that has not obtained its certificate when the claim expires fails with
//! [`ProvisionError::DeadlineMissed`] naming the stage it was in; the Wi-Fi and cloud timeouts
//! ([`ProvisionError::WifiTimeout`], [`ProvisionError::StageTimeout`]) and the whole run's
//! ([`ProvisionError::OverallTimeout`]) bound the rest. Cancelling (dropping the future, or [`ProvisioningSession::cancel`]) wipes the claim from
//! the device.
//!
//! The files follow a run: `session.rs` (the [`Provisioner`], its sessions and the driver of one
//! run), `handover.rs` (the device's Wi-Fi settled, a claim with the safety margin, its transfer),
//! `watch.rs` (the device's `aws-status` polled through its stages), `confirm.rs` (the cloud's
//! confirmation), `cleanup.rs` (the claim wiped when a run fails or is dropped) and `progress.rs` (what
//! a run reports), with `config.rs`, `error.rs`, `events.rs`, `stages.rs` and `bundle.rs` around them.
//!
//! **Adding a stage** is one row in the table in `stages.rs` (its doc; what a run has reached by then;
//! the `aws-status` stages that report it, when the device does; whether it repeats), placed where it
//! comes in a run, plus its variant at the same place in the FFI crate's `Stage` (`src/progress.rs`,
//! which uniffi needs): the build and the test `stages_follow_the_core_table` fail until the two
//! agree. A device step is then reported as the device reaches it; a step of the SDK's own is
//! reported with `progress.emit` where it happens. Nothing else lists the stages: the watchdog, the
//! progress log and the FFI conversion read the table.
//!
//! ```no_run
//! use std::sync::Arc;
//! use claimlink_core::{BackendClaimSource, TemplateName, TokenProvider};
//! use claimlink_core::{DeviceCredentials, DeviceLink, WifiCredentials};
//! use claimlink_core::{ProvisionError, ProvisionOptions, Provisioner, ProvisionerConfig, ProvisioningListener};
//!
//! async fn bring_online(
//!     tokens: Arc<dyn TokenProvider>,
//!     link: Arc<dyn DeviceLink>,
//!     listener: &dyn ProvisioningListener,
//! ) -> Result<(), ProvisionError> {
//!     let claims = Arc::new(BackendClaimSource::builder("https://api.example.com/", tokens).build()?);
//!     let config = ProvisionerConfig::new(TemplateName::new("my-fleet-template")?, "a1b2c3-ats.iot.eu-west-1.amazonaws.com");
//!     let provisioner = Provisioner::new(claims, config);
//!     let session = provisioner.connect(link, DeviceCredentials::password("from-the-QR-code"), listener).await?;
//!     let networks = session.scan_wifi().await?;
//!     let ssid = networks.first().map(|n| n.ssid.clone()).unwrap_or_default();
//!     let wifi = WifiCredentials::new(ssid, "the passphrase".into())?;
//!     let device = session.provision(&wifi, &ProvisionOptions::default(), listener).await?;
//!     println!("{} is online with certificate {:?}", device.thing_name, device.certificate_id);
//!     Ok(())
//! }
//! ```
mod bundle;
mod cleanup;
mod codes;
mod config;
mod confirm;
mod error;
mod events;
mod handover;
mod prepared;
mod progress;
mod reconfigure;
mod report;
mod session;
mod stages;
mod watch;

pub use bundle::claim_bundle;
pub use codes::FailureCode;
pub use config::{ProvisionOptions, ProvisionedDevice, ProvisionerConfig};
pub use error::ProvisionError;
pub use events::{NoListener, ProvisioningEvent, ProvisioningListener};
pub use reconfigure::ReconfiguredDevice;
pub use report::{
    CloudWords, DeviceReport, FailureReport, LinkReport, OutcomeReport, RunReport, StageReport,
    SupportReport, SUPPORT_REPORT_FORMAT,
};
pub use session::{Provisioner, ProvisioningSession};
pub use stages::Stage;
