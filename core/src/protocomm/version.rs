//! `proto-ver`: what a device says about itself, in plaintext JSON, before any session exists. The
//! `aws` object is read by [`aws_extension`](super::aws_extension), which knows its versions.
//!
//! `{"prov":{"ver":"v1.1","sec_ver":2,"sec_patch_ver":1,"cap":["wifi_scan"]},
//!   "aws":{"ver":"1","cap":["claim","status"]}}`

use serde_json::Value;

use super::aws_extension::AwsExtension;
use super::{ProtocolError, SecurityScheme};

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

fn malformed(what: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed {
        endpoint: "proto-ver".into(),
        what: what.into(),
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
                    .ok_or_else(|| malformed("a capability is not a string"))
            })
            .collect(),
        Some(_) => Err(malformed("`cap` is not an array")),
    }
}

impl DeviceCapabilities {
    /// Parses the `proto-ver` answer.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_VERSION_JSON {
            return Err(malformed(format!(
                "answer longer than {MAX_VERSION_JSON} bytes"
            )));
        }
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let prov = root
            .get("prov")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("no `prov` object"))?;
        let version = prov
            .get("ver")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("`prov.ver` is missing"))?
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
                _ => return Err(malformed("`prov.sec_ver` is not 0, 1 or 2")),
            },
        };
        let security_patch = match prov.get("sec_patch_ver") {
            None => 0,
            Some(v) => v
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| malformed("`prov.sec_patch_ver` is not a small integer"))?,
        };
        let aws = match root.get("aws") {
            None => None,
            Some(Value::Object(aws)) => Some(AwsExtension::parse(aws, strings(aws.get("cap"))?)?),
            Some(_) => return Err(malformed("`aws` is not an object")),
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
        for bad in [
            &b"v1.1"[..],
            br#"{"prov":"x"}"#,
            br#"{"prov":{"ver":"v1","sec_ver":9}}"#,
            br#"{"prov":{"ver":"v1","cap":"wifi_scan"}}"#,
            br#"{"prov":{"sec_ver":2}}"#,
            br#"{"prov":{"ver":"v1"},"aws":[]}"#,
        ] {
            assert!(
                matches!(
                    DeviceCapabilities::parse(bad),
                    Err(ProtocolError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(DeviceCapabilities::parse(&vec![b' '; MAX_VERSION_JSON + 1]).is_err());
    }
}
