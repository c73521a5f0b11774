//! Endpoint names, as the device's BLE descriptors and HTTP paths spell them. A leaf: the transports
//! (which map endpoints to characteristics or paths) and the protocol (which talks to them) both read it.

/// Version and capabilities (plaintext JSON).
pub const VERSION: &str = "proto-ver";
/// Session establishment.
pub const SESSION: &str = "prov-session";
/// Wi-Fi configuration.
pub const CONFIG: &str = "prov-config";
/// Wi-Fi scan.
pub const SCAN: &str = "prov-scan";
/// Provisioning control (reset, reprovision).
pub const CTRL: &str = "prov-ctrl";
/// claimlink: the claim transfer.
pub const AWS_CLAIM: &str = "aws-claim";
/// claimlink: the device's cloud progress.
pub const AWS_STATUS: &str = "aws-status";
