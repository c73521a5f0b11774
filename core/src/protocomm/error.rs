//! Why talking to a device failed: [`ProtocolError`] and the typed reasons it carries, in the manner
//! of rustls (`Error::InvalidMessage(InvalidMessage)`): a reason is an enum a caller can match, with a
//! `Display` that reads as an English sentence, never a free-form string built at the failure site.

use super::SecurityScheme;
use crate::transport::LinkError;

/// Why talking to the device failed.
#[derive(Debug, thiserror::Error)]
// Exhaustive on purpose: the FFI crate maps every variant to an app action, and a new variant
// must fail its build until it is mapped.
pub enum ProtocolError {
    /// The transport failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The device refused the proof of possession or password: ask the installer again.
    #[error("the device refused the password / proof of possession")]
    WrongCredentials,
    /// The device could not prove it knows the password: not the expected device, or a relay.
    #[error("the device failed to prove it knows the password (impostor or relay?)")]
    DeviceNotAuthentic,
    /// A message failed authentication: the session is dropped.
    #[error("a message from the device failed authentication; the session was dropped")]
    Tampered,
    /// The device offers another security scheme than the one its credentials are for (from the QR
    /// code, or set explicitly): not the device the credentials are for, or an impostor trying to
    /// downgrade the session. Refused before anything beyond `proto-ver` was sent.
    #[error("the device offers {offered}, but its credentials are for {expected} (an impostor?)")]
    UnexpectedSecurity {
        /// The scheme the credentials are for.
        expected: SecurityScheme,
        /// What the device offered.
        offered: SecurityScheme,
    },
    /// The device's security is below what the app's policy accepts.
    #[error("refused {offered} (patch {patch}): {reason}")]
    SecurityRefused {
        /// What the device offered.
        offered: SecurityScheme,
        /// Its patch level.
        patch: u32,
        /// Why it is refused.
        reason: String,
    },
    /// The device sent bytes that do not decode, or an answer that makes no sense.
    #[error("malformed answer on {endpoint}: {reason}")]
    Malformed {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        reason: MalformedReason,
    },
    /// The device answered with an error status.
    #[error("the device refused the request on {endpoint}: {status}")]
    DeviceRefused {
        /// The endpoint.
        endpoint: String,
        /// The status, as the protocol names it.
        status: String,
    },
    /// An earlier exchange failed; encrypted state is lost and a new session is needed.
    #[error("the session is broken by an earlier failure; open a new session")]
    SessionBroken,
    /// A message would exceed the link's size limit.
    #[error("a {len}-byte message exceeds the link's {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The device does not offer what was asked (an endpoint, the AWS extension).
    #[error("the device does not support {0}")]
    Unsupported(UnsupportedReason),
    /// The app passed something unusable (an SSID too long, a claim key that is not RSA, …).
    #[error("invalid input: {0}")]
    InvalidInput(InvalidInputReason),
    /// The encoded claim bundle does not fit the protocol's 32-bit length field. Not the app's input:
    /// a claim this large cannot come from a working claim source.
    #[error("claim bundle too large: {len} bytes do not fit the protocol's 32-bit length")]
    ClaimBundleTooLarge {
        /// The encoded bundle's size.
        len: usize,
    },
    /// The device's `aws` extension is a major version this SDK does not speak (see
    /// [`aws_extension`](super::aws_extension)): refused before the secure session opens.
    #[error("the device's aws extension is version {offered}; this SDK speaks {spoken}")]
    AwsVersionUnsupported {
        /// The version the device advertised (`aws.ver`).
        offered: String,
        /// The versions this SDK speaks (`"1.x"`).
        spoken: String,
    },
}

/// What the device lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedReason {
    /// It does not serve `aws-claim` (claimlink's firmware extension).
    #[error("the aws-claim endpoint (claimlink firmware extension)")]
    AwsClaimEndpoint,
    /// It does not serve `aws-status` (claimlink's firmware extension).
    #[error("the aws-status endpoint (claimlink firmware extension)")]
    AwsStatusEndpoint,
    /// It lacks claimlink's extension, or one of its two endpoints: provisioning needs both.
    #[error("the claimlink firmware extension (aws-claim, aws-status)")]
    AwsExtension,
}

/// What the app (or its claim source) passed that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInputReason {
    /// The SSID is empty or longer than 32 bytes.
    #[error("an SSID is 1 to 32 bytes")]
    SsidLength,
    /// The Wi-Fi passphrase has a length no network accepts (its content is never quoted).
    #[error(
        "a Wi-Fi passphrase is 8 to 63 characters, or 64 hex digits (empty for open networks)"
    )]
    WifiPassphrase,
    /// A Security 2 device needs a password, and none was given.
    #[error("Security 2 needs a password")]
    Sec2Password,
    /// A Security 2 device needs a username, and it is empty.
    #[error("Security 2 needs a username")]
    Sec2Username,
    /// The claim's private key is not PEM.
    #[error("the claim key is not PEM")]
    ClaimKeyNotPem,
    /// The claim's `PRIVATE KEY` PEM does not hold PKCS#8.
    #[error("the claim key is not PKCS#8")]
    ClaimKeyNotPkcs8,
    /// The claim's private key is not an RSA key.
    #[error("the claim key is not an RSA key")]
    ClaimKeyNotRsa,
}

/// What is wrong with a device's answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReason {
    /// The bytes are not the protobuf message expected.
    #[error("protobuf: {0}")]
    Protobuf(prost::DecodeError),
    /// The message decodes, but is not the one the request asks for.
    #[error("expected {expected}")]
    UnexpectedMessage {
        /// The message expected (`RespScanStatus`, `Sec2 S2SessionResp0`, …).
        expected: &'static str,
    },
    /// The answer carries no payload.
    #[error("empty answer")]
    EmptyAnswer,
    /// A fixed-size field has another size.
    #[error("{field} is not {expected} bytes (it is {actual})")]
    FieldLength {
        /// The field (`device public key`, `patch-1 device nonce`, …).
        field: &'static str,
        /// Its size in the protocol.
        expected: usize,
        /// Its size in the answer.
        actual: usize,
    },
    /// The Sec2 salt is empty or longer than 64 bytes.
    #[error("device salt missing or too long")]
    SaltLength,
    /// The Sec2 public key B is not a valid SRP public key.
    #[error("device public key B is invalid")]
    SrpPublicKey,
    /// A blocking scan answered that it had not finished.
    #[error("a blocking scan reported unfinished")]
    ScanUnfinished,
    /// A scan result page is empty or holds more entries than asked for.
    #[error("a result page has the wrong number of entries")]
    ScanPageSize,
    /// A scanned network's SSID is longer than 32 bytes.
    #[error("an SSID is longer than 32 bytes")]
    ScannedSsidLength,
    /// A station state this SDK does not know.
    #[error("unknown station state {0}")]
    UnknownStationState(i32),
    /// A connected station without its connection details.
    #[error("connected without connection details")]
    ConnectedWithoutDetails,
    /// The device acknowledged another number of claim bytes than were sent.
    #[error("the device acknowledged the wrong length ({acknowledged} of {sent} bytes)")]
    ClaimLengthAcknowledged {
        /// The bytes sent so far.
        sent: usize,
        /// The bytes the device says it received.
        acknowledged: u32,
    },
    /// The last claim chunk was not confirmed as committed.
    #[error("the device did not confirm the commit")]
    ClaimNotCommitted,
    /// A cloud stage this SDK does not know.
    #[error("unknown stage {0}")]
    UnknownCloudStage(i32),
    /// The device reports its cloud flow `Failed` without saying why.
    #[error("failed without a failure")]
    FailedWithoutReason,
    /// The `proto-ver` answer is longer than [`MAX_VERSION_JSON`](super::version::MAX_VERSION_JSON).
    #[error("answer longer than {max} bytes")]
    VersionTooLong {
        /// The limit.
        max: usize,
    },
    /// The `proto-ver` answer is not JSON.
    #[error("not JSON (line {line}, column {column})")]
    VersionNotJson {
        /// Where the JSON parser stopped.
        line: usize,
        /// Where the JSON parser stopped.
        column: usize,
    },
    /// `proto-ver` has no `prov` object.
    #[error("no `prov` object")]
    NoProvObject,
    /// `proto-ver` has no `prov.ver` string.
    #[error("`prov.ver` is missing")]
    NoProvVersion,
    /// A `cap` list is not an array.
    #[error("`cap` is not an array")]
    CapabilitiesNotArray,
    /// A `cap` list holds something other than strings.
    #[error("a capability is not a string")]
    CapabilityNotString,
    /// `prov.sec_ver` is not 0, 1 or 2.
    #[error("`prov.sec_ver` is not 0, 1 or 2")]
    SecurityVersion,
    /// `prov.sec_patch_ver` is not a small integer.
    #[error("`prov.sec_patch_ver` is not a small integer")]
    SecurityPatch,
    /// `aws` is not an object.
    #[error("`aws` is not an object")]
    AwsNotObject,
    /// `aws.ver` is missing.
    #[error("`aws.ver` is missing")]
    AwsVersionMissing,
    /// `aws.ver` is not a string.
    #[error("`aws.ver` is not a string")]
    AwsVersionNotString,
    /// `aws.ver` is not `MAJOR` or `MAJOR.MINOR`.
    #[error("`aws.ver` is not a version (MAJOR or MAJOR.MINOR)")]
    AwsVersionSyntax,
}
