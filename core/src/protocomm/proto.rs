//! The protocomm / network-provisioning protobuf messages, declared by hand with `prost`'s derive
//! (no `protoc` needed). Field numbers and enum values match ESP-IDF's `.proto` files byte for byte
//! (`components/protocomm/proto`, `components/wifi_provisioning/proto`); `docs/protocol.md` lists them.
//!
//! Both roles use these types: the SDK as the client, the harness's device simulator as the device.
#![allow(missing_docs)] // the message and field names are the protocol's own

use prost::{Enumeration, Message};

/// `constants.proto` `Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum Status {
    Success = 0,
    InvalidSecScheme = 1,
    InvalidProto = 2,
    TooManySessions = 3,
    InvalidArgument = 4,
    InternalError = 5,
    CryptoError = 6,
    InvalidSession = 7,
}

// ---- session.proto ----

/// `session.proto` `SecSchemeVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum SecSchemeVersion {
    SecScheme0 = 0,
    SecScheme1 = 1,
    SecScheme2 = 2,
}

/// `session.proto` `SessionData`: every message on `prov-session`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionData {
    #[prost(enumeration = "SecSchemeVersion", tag = "2")]
    pub sec_ver: i32,
    #[prost(oneof = "session_data::Proto", tags = "10, 11, 12")]
    pub proto: Option<session_data::Proto>,
}

impl SessionData {
    /// A Sec1 handshake message; its `msg` type follows from the payload.
    pub fn sec1(payload: sec1_payload::Payload) -> Self {
        use sec1_payload::Payload as P;
        let msg = match &payload {
            P::Sc0(_) => Sec1MsgType::SessionCommand0,
            P::Sr0(_) => Sec1MsgType::SessionResponse0,
            P::Sc1(_) => Sec1MsgType::SessionCommand1,
            P::Sr1(_) => Sec1MsgType::SessionResponse1,
        };
        Self {
            sec_ver: SecSchemeVersion::SecScheme1 as i32,
            proto: Some(session_data::Proto::Sec1(Sec1Payload {
                msg: msg as i32,
                payload: Some(payload),
            })),
        }
    }

    /// A Sec2 handshake message; its `msg` type follows from the payload.
    pub fn sec2(payload: sec2_payload::Payload) -> Self {
        use sec2_payload::Payload as P;
        let msg = match &payload {
            P::Sc0(_) => Sec2MsgType::S2SessionCommand0,
            P::Sr0(_) => Sec2MsgType::S2SessionResponse0,
            P::Sc1(_) => Sec2MsgType::S2SessionCommand1,
            P::Sr1(_) => Sec2MsgType::S2SessionResponse1,
        };
        Self {
            sec_ver: SecSchemeVersion::SecScheme2 as i32,
            proto: Some(session_data::Proto::Sec2(Sec2Payload {
                msg: msg as i32,
                payload: Some(payload),
            })),
        }
    }
}

pub mod session_data {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Proto {
        #[prost(message, tag = "10")]
        Sec0(super::Sec0Payload),
        #[prost(message, tag = "11")]
        Sec1(super::Sec1Payload),
        #[prost(message, tag = "12")]
        Sec2(super::Sec2Payload),
    }
}

// ---- sec0.proto ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum Sec0MsgType {
    S0SessionCommand = 0,
    S0SessionResponse = 1,
}

#[derive(Clone, PartialEq, Message)]
pub struct S0SessionCmd {}

#[derive(Clone, PartialEq, Message)]
pub struct S0SessionResp {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sec0Payload {
    #[prost(enumeration = "Sec0MsgType", tag = "1")]
    pub msg: i32,
    #[prost(oneof = "sec0_payload::Payload", tags = "20, 21")]
    pub payload: Option<sec0_payload::Payload>,
}

pub mod sec0_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "20")]
        Sc(super::S0SessionCmd),
        #[prost(message, tag = "21")]
        Sr(super::S0SessionResp),
    }
}

// ---- sec1.proto ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum Sec1MsgType {
    SessionCommand0 = 0,
    SessionResponse0 = 1,
    SessionCommand1 = 2,
    SessionResponse1 = 3,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionCmd0 {
    #[prost(bytes = "vec", tag = "1")]
    pub client_pubkey: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionResp0 {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub device_pubkey: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub device_random: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionCmd1 {
    #[prost(bytes = "vec", tag = "2")]
    pub client_verify_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionResp1 {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub device_verify_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sec1Payload {
    #[prost(enumeration = "Sec1MsgType", tag = "1")]
    pub msg: i32,
    #[prost(oneof = "sec1_payload::Payload", tags = "20, 21, 22, 23")]
    pub payload: Option<sec1_payload::Payload>,
}

pub mod sec1_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "20")]
        Sc0(super::SessionCmd0),
        #[prost(message, tag = "21")]
        Sr0(super::SessionResp0),
        #[prost(message, tag = "22")]
        Sc1(super::SessionCmd1),
        #[prost(message, tag = "23")]
        Sr1(super::SessionResp1),
    }
}

// ---- sec2.proto ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum Sec2MsgType {
    S2SessionCommand0 = 0,
    S2SessionResponse0 = 1,
    S2SessionCommand1 = 2,
    S2SessionResponse1 = 3,
}

#[derive(Clone, PartialEq, Message)]
pub struct S2SessionCmd0 {
    #[prost(bytes = "vec", tag = "1")]
    pub client_username: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub client_pubkey: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct S2SessionResp0 {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub device_pubkey: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub device_salt: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct S2SessionCmd1 {
    #[prost(bytes = "vec", tag = "1")]
    pub client_proof: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct S2SessionResp1 {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub device_proof: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub device_nonce: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sec2Payload {
    #[prost(enumeration = "Sec2MsgType", tag = "1")]
    pub msg: i32,
    #[prost(oneof = "sec2_payload::Payload", tags = "20, 21, 22, 23")]
    pub payload: Option<sec2_payload::Payload>,
}

pub mod sec2_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "20")]
        Sc0(super::S2SessionCmd0),
        #[prost(message, tag = "21")]
        Sr0(super::S2SessionResp0),
        #[prost(message, tag = "22")]
        Sc1(super::S2SessionCmd1),
        #[prost(message, tag = "23")]
        Sr1(super::S2SessionResp1),
    }
}

// ---- wifi_constants.proto ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum WifiStationState {
    Connected = 0,
    Connecting = 1,
    Disconnected = 2,
    ConnectionFailed = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum WifiConnectFailedReason {
    AuthError = 0,
    NetworkNotFound = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum WifiAuthMode {
    Open = 0,
    Wep = 1,
    WpaPsk = 2,
    Wpa2Psk = 3,
    WpaWpa2Psk = 4,
    Wpa2Enterprise = 5,
    Wpa3Psk = 6,
    Wpa2Wpa3Psk = 7,
}

#[derive(Clone, PartialEq, Message)]
pub struct WifiConnectedState {
    #[prost(string, tag = "1")]
    pub ip4_addr: String,
    #[prost(enumeration = "WifiAuthMode", tag = "2")]
    pub auth_mode: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub ssid: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub bssid: Vec<u8>,
    #[prost(int32, tag = "5")]
    pub channel: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct WifiAttemptFailed {
    #[prost(uint32, tag = "1")]
    pub attempts_remaining: u32,
}

// ---- wifi_config.proto (prov-config) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum WiFiConfigMsgType {
    TypeCmdGetStatus = 0,
    TypeRespGetStatus = 1,
    TypeCmdSetConfig = 2,
    TypeRespSetConfig = 3,
    TypeCmdApplyConfig = 4,
    TypeRespApplyConfig = 5,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdGetStatus {}

#[derive(Clone, PartialEq, Message)]
pub struct RespGetStatus {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
    #[prost(enumeration = "WifiStationState", tag = "2")]
    pub sta_state: i32,
    #[prost(oneof = "resp_get_status::State", tags = "10, 11, 12")]
    pub state: Option<resp_get_status::State>,
}

pub mod resp_get_status {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum State {
        #[prost(enumeration = "super::WifiConnectFailedReason", tag = "10")]
        FailReason(i32),
        #[prost(message, tag = "11")]
        Connected(super::WifiConnectedState),
        #[prost(message, tag = "12")]
        AttemptFailed(super::WifiAttemptFailed),
    }
}

#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct CmdSetConfig {
    #[prost(bytes = "vec", tag = "1")]
    pub ssid: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub passphrase: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub bssid: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub channel: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct RespSetConfig {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdApplyConfig {}

#[derive(Clone, PartialEq, Message)]
pub struct RespApplyConfig {
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct WiFiConfigPayload {
    #[prost(enumeration = "WiFiConfigMsgType", tag = "1")]
    pub msg: i32,
    #[prost(
        oneof = "wi_fi_config_payload::Payload",
        tags = "10, 11, 12, 13, 14, 15"
    )]
    pub payload: Option<wi_fi_config_payload::Payload>,
}

pub mod wi_fi_config_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "10")]
        CmdGetStatus(super::CmdGetStatus),
        #[prost(message, tag = "11")]
        RespGetStatus(super::RespGetStatus),
        #[prost(message, tag = "12")]
        CmdSetConfig(super::CmdSetConfig),
        #[prost(message, tag = "13")]
        RespSetConfig(super::RespSetConfig),
        #[prost(message, tag = "14")]
        CmdApplyConfig(super::CmdApplyConfig),
        #[prost(message, tag = "15")]
        RespApplyConfig(super::RespApplyConfig),
    }
}

// ---- wifi_scan.proto (prov-scan) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum WiFiScanMsgType {
    TypeCmdScanStart = 0,
    TypeRespScanStart = 1,
    TypeCmdScanStatus = 2,
    TypeRespScanStatus = 3,
    TypeCmdScanResult = 4,
    TypeRespScanResult = 5,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdScanStart {
    #[prost(bool, tag = "1")]
    pub blocking: bool,
    #[prost(bool, tag = "2")]
    pub passive: bool,
    #[prost(uint32, tag = "3")]
    pub group_channels: u32,
    #[prost(uint32, tag = "4")]
    pub period_ms: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct RespScanStart {}

#[derive(Clone, PartialEq, Message)]
pub struct CmdScanStatus {}

#[derive(Clone, PartialEq, Message)]
pub struct RespScanStatus {
    #[prost(bool, tag = "1")]
    pub scan_finished: bool,
    #[prost(uint32, tag = "2")]
    pub result_count: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdScanResult {
    #[prost(uint32, tag = "1")]
    pub start_index: u32,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct WiFiScanResult {
    #[prost(bytes = "vec", tag = "1")]
    pub ssid: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub channel: u32,
    #[prost(int32, tag = "3")]
    pub rssi: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub bssid: Vec<u8>,
    #[prost(enumeration = "WifiAuthMode", tag = "5")]
    pub auth: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct RespScanResult {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<WiFiScanResult>,
}

#[derive(Clone, PartialEq, Message)]
pub struct WiFiScanPayload {
    #[prost(enumeration = "WiFiScanMsgType", tag = "1")]
    pub msg: i32,
    #[prost(enumeration = "Status", tag = "2")]
    pub status: i32,
    #[prost(oneof = "wi_fi_scan_payload::Payload", tags = "10, 11, 12, 13, 14, 15")]
    pub payload: Option<wi_fi_scan_payload::Payload>,
}

pub mod wi_fi_scan_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "10")]
        CmdScanStart(super::CmdScanStart),
        #[prost(message, tag = "11")]
        RespScanStart(super::RespScanStart),
        #[prost(message, tag = "12")]
        CmdScanStatus(super::CmdScanStatus),
        #[prost(message, tag = "13")]
        RespScanStatus(super::RespScanStatus),
        #[prost(message, tag = "14")]
        CmdScanResult(super::CmdScanResult),
        #[prost(message, tag = "15")]
        RespScanResult(super::RespScanResult),
    }
}

// ---- wifi_ctrl.proto (prov-ctrl) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum WiFiCtrlMsgType {
    TypeCtrlReserved = 0,
    TypeCmdCtrlReset = 1,
    TypeRespCtrlReset = 2,
    TypeCmdCtrlReprov = 3,
    TypeRespCtrlReprov = 4,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdCtrlReset {}

#[derive(Clone, PartialEq, Message)]
pub struct RespCtrlReset {}

#[derive(Clone, PartialEq, Message)]
pub struct CmdCtrlReprov {}

#[derive(Clone, PartialEq, Message)]
pub struct RespCtrlReprov {}

#[derive(Clone, PartialEq, Message)]
pub struct WiFiCtrlPayload {
    #[prost(enumeration = "WiFiCtrlMsgType", tag = "1")]
    pub msg: i32,
    #[prost(enumeration = "Status", tag = "2")]
    pub status: i32,
    #[prost(oneof = "wi_fi_ctrl_payload::Payload", tags = "11, 12, 13, 14")]
    pub payload: Option<wi_fi_ctrl_payload::Payload>,
}

pub mod wi_fi_ctrl_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "11")]
        CmdCtrlReset(super::CmdCtrlReset),
        #[prost(message, tag = "12")]
        RespCtrlReset(super::RespCtrlReset),
        #[prost(message, tag = "13")]
        CmdCtrlReprov(super::CmdCtrlReprov),
        #[prost(message, tag = "14")]
        RespCtrlReprov(super::RespCtrlReprov),
    }
}

// ---- claimlink's extension: aws-claim (see docs/protocol.md) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum AwsClaimMsgType {
    TypeCmdBegin = 0,
    TypeRespBegin = 1,
    TypeCmdChunk = 2,
    TypeRespChunk = 3,
    TypeCmdAbort = 4,
    TypeRespAbort = 5,
}

/// Why the device refused a claim-transfer step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum ClaimTransferError {
    None = 0,
    NotStarted = 1,
    TooLarge = 2,
    OutOfOrder = 3,
    DigestMismatch = 4,
    BundleInvalid = 5,
    Incomplete = 6,
}

/// Starts a transfer: the bundle's length and SHA-256, and its first bytes.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct CmdClaimBegin {
    #[prost(uint32, tag = "1")]
    pub total_length: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub sha256: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "4")]
    pub commit: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct RespClaimBegin {
    #[prost(uint32, tag = "1")]
    pub received: u32,
    #[prost(uint32, tag = "2")]
    pub max_bundle_length: u32,
    #[prost(bool, tag = "3")]
    pub committed: bool,
}

/// The next bytes at `offset`; `commit` on the last one makes the device check the digest and keep
/// the bundle.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct CmdClaimChunk {
    #[prost(uint32, tag = "1")]
    pub offset: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "3")]
    pub commit: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct RespClaimChunk {
    #[prost(uint32, tag = "1")]
    pub received: u32,
    #[prost(bool, tag = "2")]
    pub committed: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdClaimAbort {}

#[derive(Clone, PartialEq, Message)]
pub struct RespClaimAbort {}

#[derive(Clone, PartialEq, Message)]
pub struct AwsClaimPayload {
    #[prost(enumeration = "AwsClaimMsgType", tag = "1")]
    pub msg: i32,
    #[prost(enumeration = "Status", tag = "2")]
    pub status: i32,
    #[prost(enumeration = "ClaimTransferError", tag = "3")]
    pub error: i32,
    #[prost(oneof = "aws_claim_payload::Payload", tags = "10, 11, 12, 13, 14, 15")]
    pub payload: Option<aws_claim_payload::Payload>,
}

pub mod aws_claim_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "10")]
        CmdBegin(super::CmdClaimBegin),
        #[prost(message, tag = "11")]
        RespBegin(super::RespClaimBegin),
        #[prost(message, tag = "12")]
        CmdChunk(super::CmdClaimChunk),
        #[prost(message, tag = "13")]
        RespChunk(super::RespClaimChunk),
        #[prost(message, tag = "14")]
        CmdAbort(super::CmdClaimAbort),
        #[prost(message, tag = "15")]
        RespAbort(super::RespClaimAbort),
    }
}

/// An RSA private key as its two primes and public exponent: the device rebuilds the rest
/// (`n = p·q`, `d = e⁻¹ mod λ(n)`, CRT values; mbedTLS: `mbedtls_rsa_import_raw` + `mbedtls_rsa_complete`).
/// A quarter of the PKCS#1 size.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct RsaPrimes {
    #[prost(bytes = "vec", tag = "1")]
    pub p: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub q: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub e: Vec<u8>,
}

/// The claim bundle: what `aws-claim` transfers, serialized, in chunks. The certificate is DER; the
/// key is either DER (`private_key_der`) or, for RSA, its primes (`rsa_key`): exactly one is set.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct ClaimBundle {
    #[prost(bytes = "vec", tag = "1")]
    pub certificate_der: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub private_key_der: Vec<u8>,
    #[prost(string, tag = "3")]
    pub certificate_id: String,
    #[prost(uint64, tag = "4")]
    pub expires_at_epoch: u64,
    #[prost(uint32, tag = "5")]
    pub seconds_left: u32,
    #[prost(string, tag = "6")]
    pub iot_endpoint: String,
    #[prost(string, tag = "7")]
    pub template_name: String,
    #[prost(btree_map = "string, string", tag = "8")]
    pub template_parameters: ::std::collections::BTreeMap<String, String>,
    #[prost(message, optional, tag = "9")]
    pub rsa_key: Option<RsaPrimes>,
}

// ---- claimlink's extension: aws-status ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum AwsStatusMsgType {
    TypeCmdGetCloudStatus = 0,
    TypeRespGetCloudStatus = 1,
}

/// How far the device has got with the cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum CloudStage {
    Idle = 0,
    ClaimReceived = 1,
    WifiConnecting = 2,
    WifiConnected = 3,
    TimeSynced = 4,
    MqttConnectedWithClaim = 5,
    CertificateIssued = 6,
    ThingRegistered = 7,
    ReconnectedWithPermanent = 8,
    Done = 9,
    Failed = 10,
}

/// Why the device's cloud flow failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum CloudFailureKind {
    NoFailure = 0,
    WifiAuth = 1,
    WifiNotFound = 2,
    DhcpTimeout = 3,
    TimeSync = 4,
    ClaimExpired = 5,
    TlsRejected = 6,
    MqttRejected = 7,
    CertificateRejected = 8,
    RegisterThingRejected = 9,
    ReconnectFailed = 10,
    CredentialsProvider = 11,
    Internal = 12,
}

#[derive(Clone, PartialEq, Message)]
pub struct CloudFailure {
    #[prost(enumeration = "CloudFailureKind", tag = "1")]
    pub kind: i32,
    #[prost(uint32, tag = "2")]
    pub status_code: u32,
    #[prost(string, tag = "3")]
    pub error_code: String,
    #[prost(string, tag = "4")]
    pub error_message: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CmdGetCloudStatus {}

#[derive(Clone, PartialEq, Message)]
pub struct RespGetCloudStatus {
    #[prost(enumeration = "CloudStage", tag = "1")]
    pub stage: i32,
    #[prost(string, tag = "2")]
    pub ip4_addr: String,
    #[prost(string, tag = "3")]
    pub thing_name: String,
    #[prost(string, tag = "4")]
    pub certificate_id: String,
    #[prost(message, optional, tag = "5")]
    pub failure: Option<CloudFailure>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AwsStatusPayload {
    #[prost(enumeration = "AwsStatusMsgType", tag = "1")]
    pub msg: i32,
    #[prost(enumeration = "Status", tag = "2")]
    pub status: i32,
    #[prost(oneof = "aws_status_payload::Payload", tags = "10, 11")]
    pub payload: Option<aws_status_payload::Payload>,
}

pub mod aws_status_payload {
    use prost::Oneof;
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Payload {
        #[prost(message, tag = "10")]
        CmdGet(super::CmdGetCloudStatus),
        #[prost(message, tag = "11")]
        RespGet(super::RespGetCloudStatus),
    }
}

// Messages that carry secrets (passphrase, claim key bytes) print only their shape.
macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($t), "(<redacted, {} bytes encoded>)"), prost::Message::encoded_len(self))
            }
        }
    )*};
}
redacted_debug!(
    CmdSetConfig,
    CmdClaimBegin,
    CmdClaimChunk,
    ClaimBundle,
    RsaPrimes
);
