//! `proto-ver`: what a device says about itself, in plaintext JSON, before any session exists. The
//! `aws` object is read by [`aws_extension`](super::aws_extension), which knows its versions.
//!
//! `{"prov":{"ver":"v1.1","sec_ver":2,"sec_patch_ver":1,"cap":["wifi_scan"]},
//!   "aws":{"ver":"1","cap":["claim","status"]}}`

use serde_json::Value;

use super::aws_extension::AwsExtension;
use super::{MalformedReason, ProtocolError, SecurityScheme};

/// The largest `proto-ver` answer accepted.
pub const MAX_VERSION_JSON: usize = 4096;

/// A device's capabilities, parsed from `proto-ver`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCapabilities {
    /// The provisioning protocol version (`"v1.1"`).
    pub version: String,
    /// The security scheme it requires.
    pub security: SecurityScheme,
    /// The Sec2 patch level (0 when absent).
    pub security_patch: u32,
    /// The raw capability strings.
    pub capabilities: Vec<String>,
    /// It can scan for Wi-Fi networks (`wifi_scan`).
    pub wifi_scan: bool,
    /// Sec1 without a proof of possession (`no_pop`).
    pub no_pop: bool,
    /// claimlink's extension, if the firmware has it.
    pub aws: Option<AwsExtension>,
}

fn malformed(reason: MalformedReason) -> ProtocolError {
    ProtocolError::Malformed {
        endpoint: crate::endpoint::VERSION.into(),
        reason,
    }
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, ProtocolError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(MalformedReason::CapabilityNotString))
            })
            .collect(),
        Some(_) => Err(malformed(MalformedReason::CapabilitiesNotArray)),
    }
}

impl DeviceCapabilities {
    /// Parses the `proto-ver` answer.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_VERSION_JSON {
            return Err(malformed(MalformedReason::VersionTooLong {
                max: MAX_VERSION_JSON,
            }));
        }
        let root: Value = serde_json::from_slice(bytes).map_err(|e| {
            malformed(MalformedReason::VersionNotJson {
                line: e.line(),
                column: e.column(),
            })
        })?;
        let prov = root
            .get("prov")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed(MalformedReason::NoProvObject))?;
        let version = prov
            .get("ver")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(MalformedReason::NoProvVersion))?
            .to_owned();
        let capabilities = strings(prov.get("cap"))?;
        let has = |c: &str| capabilities.iter().any(|x| x == c);
        let security = match prov.get("sec_ver") {
            // Firmware older than sec_ver: Sec1, or Sec0 when it says `no_sec`.
            None => {
                if has("no_sec") {
                    SecurityScheme::Sec0
                } else {
                    SecurityScheme::Sec1
                }
            }
            Some(v) => match v.as_u64() {
                Some(0) => SecurityScheme::Sec0,
                Some(1) => SecurityScheme::Sec1,
                Some(2) => SecurityScheme::Sec2,
                _ => return Err(malformed(MalformedReason::SecurityVersion)),
            },
        };
        let security_patch = match prov.get("sec_patch_ver") {
            None => 0,
            Some(v) => v
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| malformed(MalformedReason::SecurityPatch))?,
        };
        let aws = match root.get("aws") {
            None => None,
            Some(Value::Object(aws)) => Some(AwsExtension::parse(aws, strings(aws.get("cap"))?)?),
            Some(_) => return Err(malformed(MalformedReason::AwsNotObject)),
        };
        Ok(Self {
            version,
            security,
            security_patch,
            wifi_scan: has("wifi_scan"),
            no_pop: has("no_pop"),
            capabilities,
            aws,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_current_device() {
        let c = DeviceCapabilities::parse(
            br#"{"prov":{"ver":"v1.1","sec_ver":2,"sec_patch_ver":1,"cap":["wifi_scan"]},"aws":{"ver":"1","cap":["claim","status"]}}"#,
        )
        .expect("parses");
        assert_eq!(c.security, SecurityScheme::Sec2);
        assert_eq!(c.security_patch, 1);
        assert!(c.wifi_scan);
        assert_eq!(
            c.aws.as_ref().map(|a| (a.claim, a.status)),
            Some((true, true))
        );
    }

    #[test]
    fn old_firmware_defaults() {
        let c = DeviceCapabilities::parse(br#"{"prov":{"ver":"v1.0","cap":["no_pop"]}}"#)
            .expect("parses");
        assert_eq!(
            (c.security, c.security_patch, c.no_pop, c.aws),
            (SecurityScheme::Sec1, 0, true, None)
        );
        let c = DeviceCapabilities::parse(br#"{"prov":{"ver":"v1.0","cap":["no_sec"]}}"#)
            .expect("parses");
        assert_eq!(c.security, SecurityScheme::Sec0);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        use MalformedReason as R;
        let too_long = vec![b' '; MAX_VERSION_JSON + 1];
        for (bad, expected) in [
            (&b"v1.1"[..], R::VersionNotJson { line: 1, column: 1 }),
            (br#"{"prov":"x"}"#, R::NoProvObject),
            (br#"{"prov":{"ver":"v1","sec_ver":9}}"#, R::SecurityVersion),
            (
                br#"{"prov":{"ver":"v1","cap":"wifi_scan"}}"#,
                R::CapabilitiesNotArray,
            ),
            (br#"{"prov":{"sec_ver":2}}"#, R::NoProvVersion),
            (br#"{"prov":{"ver":"v1"},"aws":[]}"#, R::AwsNotObject),
            (
                &too_long,
                R::VersionTooLong {
                    max: MAX_VERSION_JSON,
                },
            ),
        ] {
            match DeviceCapabilities::parse(bad) {
                Err(ProtocolError::Malformed { endpoint, reason }) => {
                    assert_eq!((endpoint.as_str(), reason), ("proto-ver", expected))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
