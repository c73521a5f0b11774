//! claimlink's `aws` extension to protocomm, version by version: what `"aws":{"ver":…,"cap":[…]}` in
//! `proto-ver` says, which versions this SDK speaks, and what each version offers.
//!
//! `aws.ver` is `MAJOR` or `MAJOR.MINOR`, in decimal (`"1"`, `"1.3"`). A minor version only adds
//! (a capability, an optional field), so every 1.x is spoken as 1. A new major version may change what
//! the `aws-claim` / `aws-status` messages mean, so a device whose major version this SDK does not know
//! is refused before the secure session opens — [`DeviceSession::establish`] calls
//! [`AwsExtension::dialect`] right after the security policy — with a
//! [`ProtocolError::AwsVersionUnsupported`] naming what the device offered. A `ver` that is not a
//! version at all (missing, not a string, `"one"`, `"1.x"`) makes `proto-ver` malformed.
//!
//! This module is the one place that knows the versions. Adding version 2: a variant of
//! [`AwsDialect`], its major number in [`AwsDialect::of`], its endpoints and capability names in the
//! `match`es below; its messages (`proto.rs`, `ops/`) then branch on the session's dialect.
//!
//! [`DeviceSession::establish`]: super::DeviceSession::establish

use std::fmt;

use serde_json::{Map, Value};

use super::{MalformedReason, ProtocolError};
use crate::endpoint;

/// A version of the extension, as `aws.ver` states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AwsVersion {
    /// The major version: what the messages mean.
    pub major: u32,
    /// The minor version, when stated: additions only.
    pub minor: Option<u32>,
}

impl AwsVersion {
    /// Parses `MAJOR` or `MAJOR.MINOR` (ASCII digits only); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u32>().ok()
        };
        match text.split_once('.') {
            None => Some(Self {
                major: number(text)?,
                minor: None,
            }),
            Some((major, minor)) => Some(Self {
                major: number(major)?,
                minor: Some(number(minor)?),
            }),
        }
    }
}

impl fmt::Display for AwsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            None => write!(f, "{}", self.major),
            Some(minor) => write!(f, "{}.{minor}", self.major),
        }
    }
}

/// A major version of the extension this SDK speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AwsDialect {
    /// Version 1.x: `aws-claim` (chunked claim transfer, abort) and `aws-status` (cloud progress),
    /// as `docs/protocol.md` specifies them.
    V1,
}

impl AwsDialect {
    /// The versions this SDK speaks, as an error message names them.
    pub const SPOKEN: &'static str = "1.x";

    /// The dialect for `version`; `None` when this SDK does not speak its major version.
    pub fn of(version: AwsVersion) -> Option<Self> {
        match version.major {
            1 => Some(Self::V1),
            _ => None,
        }
    }

    /// The endpoints the extension adds, in this version.
    pub fn endpoints(self) -> &'static [&'static str] {
        match self {
            Self::V1 => &[endpoint::AWS_CLAIM, endpoint::AWS_STATUS],
        }
    }

    /// The `aws.cap` entry saying that the claim transfer is served.
    fn claim_capability(self) -> &'static str {
        match self {
            Self::V1 => "claim",
        }
    }

    /// The `aws.cap` entry saying that the cloud status is served.
    fn status_capability(self) -> &'static str {
        match self {
            Self::V1 => "status",
        }
    }
}

/// claimlink's extension as the device advertises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsExtension {
    /// Its version.
    pub version: AwsVersion,
    /// The raw capability strings (`aws.cap`).
    pub capabilities: Vec<String>,
    /// `aws-claim` is served (always `false` for a version this SDK does not speak).
    pub claim: bool,
    /// `aws-status` is served (always `false` for a version this SDK does not speak).
    pub status: bool,
}

impl AwsExtension {
    /// Reads the `aws` object of `proto-ver`; `capabilities` is its already-checked `cap` list.
    pub(super) fn parse(
        aws: &Map<String, Value>,
        capabilities: Vec<String>,
    ) -> Result<Self, ProtocolError> {
        let malformed = |reason| ProtocolError::Malformed {
            endpoint: endpoint::VERSION.into(),
            reason,
        };
        let version = match aws.get("ver") {
            Some(Value::String(text)) => AwsVersion::parse(text)
                .ok_or_else(|| malformed(MalformedReason::AwsVersionSyntax))?,
            Some(_) => return Err(malformed(MalformedReason::AwsVersionNotString)),
            None => return Err(malformed(MalformedReason::AwsVersionMissing)),
        };
        let has = |cap: Option<&str>| cap.is_some_and(|c| capabilities.iter().any(|x| x == c));
        let dialect = AwsDialect::of(version);
        Ok(Self {
            claim: has(dialect.map(AwsDialect::claim_capability)),
            status: has(dialect.map(AwsDialect::status_capability)),
            version,
            capabilities,
        })
    }

    /// The dialect to speak with this device, or [`ProtocolError::AwsVersionUnsupported`] naming
    /// what it offered when this SDK does not speak its major version.
    pub fn dialect(&self) -> Result<AwsDialect, ProtocolError> {
        AwsDialect::of(self.version).ok_or_else(|| ProtocolError::AwsVersionUnsupported {
            offered: self.version.to_string(),
            spoken: AwsDialect::SPOKEN.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extension(json: &str) -> Result<AwsExtension, ProtocolError> {
        let Ok(Value::Object(aws)) = serde_json::from_str::<Value>(json) else {
            panic!("test JSON {json} is not an object");
        };
        let caps = vec!["claim".to_owned(), "status".to_owned()];
        AwsExtension::parse(&aws, caps)
    }

    #[test]
    fn every_1_x_is_spoken_as_1() {
        for (ver, shown) in [("1", "1"), ("1.3", "1.3"), ("1.0", "1.0")] {
            let aws = extension(&format!(r#"{{"ver":"{ver}"}}"#)).expect(ver);
            assert_eq!(aws.version.to_string(), shown);
            assert_eq!(aws.dialect().expect(ver), AwsDialect::V1);
            assert!(aws.claim && aws.status, "{ver}");
        }
    }

    #[test]
    fn an_unknown_major_version_is_refused_naming_it() {
        let aws = extension(r#"{"ver":"2"}"#).expect("well-formed");
        assert!(
            !aws.claim && !aws.status,
            "capabilities of an unknown version mean nothing"
        );
        let err = aws.dialect().expect_err("refused");
        assert_eq!(
            err.to_string(),
            "the device's aws extension is version 2; this SDK speaks 1.x"
        );
        let err = extension(r#"{"ver":"0.9"}"#)
            .expect("well-formed")
            .dialect()
            .expect_err("refused");
        assert!(matches!(
            err,
            ProtocolError::AwsVersionUnsupported { ref offered, .. } if offered == "0.9"
        ));
    }

    #[test]
    fn a_version_that_is_not_a_version_is_malformed() {
        for bad in [
            r#"{}"#,
            r#"{"ver":1}"#,
            r#"{"ver":null}"#,
            r#"{"ver":""}"#,
            r#"{"ver":"one"}"#,
            r#"{"ver":"1.x"}"#,
            r#"{"ver":"1.2.3"}"#,
            r#"{"ver":"v1"}"#,
            r#"{"ver":"-1"}"#,
            r#"{"ver":"+1"}"#,
            r#"{"ver":" 1"}"#,
            r#"{"ver":"99999999999"}"#,
        ] {
            assert!(
                matches!(extension(bad), Err(ProtocolError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn version_1_adds_the_claim_and_status_endpoints() {
        assert_eq!(
            AwsDialect::V1.endpoints(),
            &[endpoint::AWS_CLAIM, endpoint::AWS_STATUS]
        );
    }
}
