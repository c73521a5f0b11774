//! # claimlink-harness
//!
//! The desktop world every claimlink test runs in, and a CLI for people:
//!
//! * [`emulator`] — an in-process AWS IoT emulator with real TLS: the app-backend claim contract and
//!   AWS's SigV4 control plane issuing real RSA claim certificates.
//! * [`device`] — the device simulator: protocomm device side over simulated BLE and HTTP.
//! * [`providers`] — token and credentials providers standing in for an app's sign-in.
//! * [`reference_backend`] — `demo --backend reference`: the reference backend's binary as a child.
//! * [`world`] — emulator + provisioner + simulated devices, ready for tests and the demo.
//! * [`chaos`] — the seeded fault campaign.
//! * [`check_device`] — the device conformance checker (`check-device`).
//! * [`demo`] — the CLI's main job, and [`demo_summary`], what it prints at the end.
//! * [`bench`] — `claimlink-harness bench`: many devices in one run, timed.
//! * [`cpu_time`] — CPU time split between the SDK, the simulator and the emulator, for `bench`.
//! * [`rsa_key`] — RSA-2048 key generation and PKCS#1/PKCS#8 encoding for the emulator and devices.
//! * [`timeline`] — the demo's timeline picture (SVG).
//! * [`testing`] — test support shared by claimlink's tests and benches (not for apps).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod bench;
pub mod chaos;
pub mod check_device;
pub mod cpu_time;
pub mod demo;
pub mod demo_summary;
pub mod device;
pub mod emulator;
pub mod providers;
pub mod reference_backend;
pub mod rsa_key;
pub mod testing;
pub mod timeline;
pub mod world;
