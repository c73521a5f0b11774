//! The provisioning QR code: ESP-IDF's JSON payload, parsed into what the SDK needs to connect.
//!
//! `{"ver":"v1","name":"PROV_1A2B3C","pop":"abcd1234","transport":"ble","security":2}` — `security` is 2
//! when absent; for Sec2 the secret is `password` (or `pop`, as ESP-IDF's tools put it) and the username
//! `username` (default `wifiprov`); for Sec1 it is `pop` (optional: devices may have none).

use serde_json::{Map, Value};

use crate::protocomm::{DeviceCredentials, SecurityScheme};
use crate::secret::{SecretString, WipedOnDrop};

/// How to reach the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrTransport {
    /// Bluetooth Low Energy, by advertised name.
    Ble,
    /// The device's own access point (SSID = name), then HTTP.
    SoftAp,
}

/// A parsed provisioning QR code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisioningQr {
    /// The advertised BLE name or SoftAP SSID.
    pub name: String,
    /// How to reach it.
    pub transport: QrTransport,
    /// The security scheme it uses (also in `credentials`, which refuse a device offering another).
    pub security: SecurityScheme,
    /// What to prove (PoP or username + password), for `security` only. Redacted in `Debug`.
    pub credentials: DeviceCredentials,
}

/// Why a QR payload is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// Not JSON, or not an object.
    #[error("the QR code is not a provisioning code (not a JSON object)")]
    NotJson,
    /// A version this SDK does not know.
    #[error("unsupported QR code version {0:?}")]
    UnsupportedVersion(String),
    /// A field is missing or of the wrong type.
    #[error("the QR code's {0} is missing or invalid")]
    Invalid(&'static str),
    /// A transport other than ble or softap.
    #[error("unsupported transport {0:?} (expected \"ble\" or \"softap\")")]
    UnsupportedTransport(String),
    /// A security level other than 0, 1 or 2.
    #[error("unsupported security level {0}")]
    UnsupportedSecurity(i64),
}

fn text<'a>(
    map: &'a Map<String, Value>,
    key: &'static str,
    max: usize,
) -> Result<Option<&'a str>, QrError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(Some(s)),
        Some(_) => Err(QrError::Invalid(key)),
    }
}

impl ProvisioningQr {
    /// Parses the QR payload. Never echoes the secret in errors.
    pub fn parse(payload: &str) -> Result<Self, QrError> {
        if payload.len() > 1024 {
            return Err(QrError::NotJson);
        }
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(payload) else {
            return Err(QrError::NotJson);
        };
        // The PoP and password strings of the parsed payload are wiped on every return.
        let parsed = WipedOnDrop(map, |map: &mut Map<String, Value>| {
            for key in ["pop", "password"] {
                if let Some(Value::String(s)) = map.get_mut(key) {
                    zeroize::Zeroize::zeroize(s);
                }
            }
        });
        let map = &parsed.0;
        match text(map, "ver", 16)? {
            Some("v1") => {}
            Some(other) => return Err(QrError::UnsupportedVersion(other.to_owned())),
            None => return Err(QrError::Invalid("ver")),
        }
        let name = text(map, "name", 64)?
            .ok_or(QrError::Invalid("name"))?
            .to_owned();
        let transport = match text(map, "transport", 16)? {
            Some("ble") => QrTransport::Ble,
            Some("softap") => QrTransport::SoftAp,
            Some(other) => return Err(QrError::UnsupportedTransport(other.to_owned())),
            None => return Err(QrError::Invalid("transport")),
        };
        let security = match map.get("security") {
            None | Some(Value::Null) => SecurityScheme::Sec2,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(0) => SecurityScheme::Sec0,
                Some(1) => SecurityScheme::Sec1,
                Some(2) => SecurityScheme::Sec2,
                Some(n) => return Err(QrError::UnsupportedSecurity(n)),
                None => return Err(QrError::Invalid("security")),
            },
        };
        let pop = text(map, "pop", 256)?;
        let credentials = match security {
            SecurityScheme::Sec0 => DeviceCredentials::none(),
            SecurityScheme::Sec1 => pop.map_or_else(DeviceCredentials::sec1_without_pop, |p| {
                DeviceCredentials::pop(SecretString::from(p))
            }),
            SecurityScheme::Sec2 => {
                let password = text(map, "password", 256)?
                    .or(pop)
                    .ok_or(QrError::Invalid("password"))?;
                DeviceCredentials::username_password(
                    text(map, "username", 64)?.unwrap_or("wifiprov"),
                    SecretString::from(password),
                )
            }
        };
        Ok(Self {
            name,
            transport,
            security,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_payloads_parse() {
        let qr = ProvisioningQr::parse(
            r#"{"ver":"v1","name":"PROV_1A2B3C","pop":"abcd1234","transport":"ble"}"#,
        )
        .expect("parses");
        assert_eq!(
            (qr.transport, qr.security),
            (QrTransport::Ble, SecurityScheme::Sec2)
        );
        assert_eq!(qr.credentials.username, "wifiprov");
        assert_eq!(
            qr.credentials.secret.as_ref().map(SecretString::expose),
            Some("abcd1234")
        );
        let qr = ProvisioningQr::parse(r#"{"ver":"v1","name":"PROV_X","username":"wifiprov2","password":"s3cret!","transport":"softap","security":2}"#).expect("parses");
        assert_eq!(
            (qr.transport, qr.credentials.username.as_str()),
            (QrTransport::SoftAp, "wifiprov2")
        );
        let qr =
            ProvisioningQr::parse(r#"{"ver":"v1","name":"PROV_Y","transport":"ble","security":1}"#)
                .expect("sec1 without pop");
        assert_eq!(
            (qr.security, qr.credentials.secret.is_none()),
            (SecurityScheme::Sec1, true)
        );
        let qr = ProvisioningQr::parse(
            r#"{"ver":"v1","name":"PROV_Z","transport":"ble","security":"0"}"#,
        )
        .expect("sec0");
        assert_eq!(qr.security, SecurityScheme::Sec0);
    }

    #[test]
    fn the_credentials_are_for_the_codes_security() {
        for (payload, scheme) in [
            (
                r#"{"ver":"v1","name":"P","transport":"ble","pop":"abcd1234"}"#,
                SecurityScheme::Sec2,
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"ble","security":1,"pop":"abcd1234"}"#,
                SecurityScheme::Sec1,
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"ble","security":1}"#,
                SecurityScheme::Sec1,
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"ble","security":0}"#,
                SecurityScheme::Sec0,
            ),
        ] {
            let qr = ProvisioningQr::parse(payload).expect("parses");
            assert_eq!((qr.security, qr.credentials.security), (scheme, scheme));
        }
    }

    #[test]
    fn malformed_or_unsupported_payloads_are_clear_errors() {
        let cases: [(&str, QrError); 9] = [
            ("PROV_1A2B3C", QrError::NotJson),
            ("[1,2]", QrError::NotJson),
            (
                r#"{"ver":"v2","name":"P","transport":"ble","pop":"x"}"#,
                QrError::UnsupportedVersion("v2".into()),
            ),
            (
                r#"{"name":"P","transport":"ble","pop":"x"}"#,
                QrError::Invalid("ver"),
            ),
            (
                r#"{"ver":"v1","transport":"ble","pop":"x"}"#,
                QrError::Invalid("name"),
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"nfc","pop":"x"}"#,
                QrError::UnsupportedTransport("nfc".into()),
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"ble","security":3,"pop":"x"}"#,
                QrError::UnsupportedSecurity(3),
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"ble"}"#,
                QrError::Invalid("password"),
            ),
            (
                r#"{"ver":"v1","name":"P","transport":"ble","pop":12345678}"#,
                QrError::Invalid("pop"),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                ProvisioningQr::parse(payload).err(),
                Some(expected),
                "{payload}"
            );
        }
    }

    #[test]
    fn the_secret_never_shows() {
        let qr = ProvisioningQr::parse(
            r#"{"ver":"v1","name":"P","transport":"ble","pop":"topsecret-pop"}"#,
        )
        .expect("parses");
        assert!(!format!("{qr:?}").contains("topsecret"));
        let err = ProvisioningQr::parse(
            r#"{"ver":"v1","name":"P","transport":"ble","pop":["topsecret"]}"#,
        )
        .expect_err("bad");
        assert!(!err.to_string().contains("topsecret"));
    }
}
