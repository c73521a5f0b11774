//! Parsing the services' JSON answers into typed values, once.
//!
//! Error messages name the field that is wrong, never its value: a misplaced private key must not end
//! up in an error string.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{CertificateStatus, ClaimError, ThingCertificate, ThingDescription};
use crate::secret::SecretString;

/// The fields of a `CreateProvisioningClaim` answer (AWS's names, also used by the backend contract).
pub(crate) struct ClaimAnswer {
    pub certificate_id: String,
    pub certificate_pem: String,
    pub private_key: SecretString,
    pub expiration: SystemTime,
}

fn malformed(problem: impl Into<String>) -> ClaimError {
    ClaimError::Malformed {
        problem: problem.into(),
    }
}

/// Parses a JSON object; the error never quotes the body.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ClaimError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(not_an_object()),
        Err(e) => Err(not_json(&e)),
    }
}

fn not_an_object() -> ClaimError {
    malformed("the body is JSON but not an object")
}

/// Where the body stops being JSON; never the body itself.
fn not_json(e: &serde_json::Error) -> ClaimError {
    malformed(format!(
        "the body is not JSON (line {}, column {})",
        e.line(),
        e.column()
    ))
}

fn string_field(map: &Map<String, Value>, name: &str) -> Result<String, ClaimError> {
    string_value(map.get(name), name)
}

fn string_value(value: Option<&Value>, name: &str) -> Result<String, ClaimError> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(malformed(format!("field `{name}` is empty"))),
        Some(_) => Err(malformed(format!("field `{name}` is not a string"))),
        None => Err(malformed(format!("field `{name}` is missing"))),
    }
}

/// The claim answer's fields; `keyPair` is kept as its raw JSON text, so the key is never unescaped
/// into a buffer of serde_json's (which it frees without wiping: a PEM key always has `\n` escapes).
#[derive(serde::Deserialize)]
struct ClaimJson<'a> {
    #[serde(rename = "certificateId", default)]
    certificate_id: Option<Value>,
    #[serde(rename = "certificatePem", default)]
    certificate_pem: Option<Value>,
    #[serde(rename = "keyPair", borrow, default)]
    key_pair: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    expiration: Option<Value>,
}

/// `keyPair`, with `PrivateKey` still raw JSON text.
#[derive(serde::Deserialize)]
struct KeyPairJson<'a> {
    #[serde(rename = "PrivateKey", borrow, default)]
    private_key: Option<&'a serde_json::value::RawValue>,
}

/// Parses `{certificateId, certificatePem, keyPair: {PrivateKey, PublicKey}, expiration}`.
pub(crate) fn claim_answer(body: &[u8]) -> Result<ClaimAnswer, ClaimError> {
    // serde would also take a struct from a JSON array: only an object is a claim.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => not_an_object(),
                Err(e) => not_json(&e),
            },
        );
    }
    let json: ClaimJson<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => malformed(
            "the body is JSON but not a claim object (a field has the wrong shape or is repeated)",
        ),
        _ => not_json(&e),
    })?;
    let pair = json
        .key_pair
        .filter(|raw| raw.get() != "null")
        .ok_or_else(|| malformed("field `keyPair` is missing"))?;
    let pair: KeyPairJson<'_> = serde_json::from_str(pair.get())
        .map_err(|_| malformed("field `keyPair` is not an object"))?;
    let raw_key = pair
        .private_key
        .map(|raw| raw.get())
        .filter(|raw| *raw != "null")
        .ok_or_else(|| malformed("field `keyPair.PrivateKey` is missing"))?;
    let mut private_key = unescape_string(raw_key)
        .ok_or_else(|| malformed("field `keyPair.PrivateKey` is not a string"))?;
    if private_key.is_empty() {
        return Err(malformed("field `keyPair.PrivateKey` is empty"));
    }
    // Moved, not copied, into the secret.
    let private_key = SecretString::new(std::mem::take(&mut *private_key));
    let certificate_id = string_value(json.certificate_id.as_ref(), "certificateId")?;
    let certificate_pem = string_value(json.certificate_pem.as_ref(), "certificatePem")?;
    let expiration = match json.expiration.as_ref() {
        Some(v) => {
            epoch_seconds(v).ok_or_else(|| malformed("field `expiration` is not epoch seconds"))?
        }
        None => return Err(malformed("field `expiration` is missing")),
    };
    Ok(ClaimAnswer {
        certificate_id,
        certificate_pem,
        private_key,
        expiration,
    })
}

/// The text of a JSON string literal (`raw` is its source, quotes included), unescaped into a
/// zeroizing buffer that never grows (unescaping only shortens). `None` when `raw` is not a string
/// literal or escapes a lone surrogate.
fn unescape_string(raw: &str) -> Option<zeroize::Zeroizing<String>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = zeroize::Zeroizing::new(String::with_capacity(inner.len()));
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let unescaped = match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)?;
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(unescaped);
    }
    Some(out)
}

/// AWS JSON timestamps are epoch seconds, possibly fractional; also accept them as a numeric string.
fn epoch_seconds(v: &Value) -> Option<SystemTime> {
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !(0.0..=1.0e11).contains(&secs) {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// An error answer: AWS's error type (from `x-amzn-ErrorType`, `__type` or `code`) and message.
#[derive(Debug, Default)]
pub(crate) struct ErrorAnswer {
    pub code: Option<String>,
    pub message: String,
}

/// Reads an error answer leniently: an error body that is not JSON still yields a message.
pub(crate) fn error_answer(headers: &http::HeaderMap, body: &[u8]) -> ErrorAnswer {
    let header_code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(short_error_type);
    let map = object(body).ok();
    let field = |names: &[&str]| -> Option<String> {
        let map = map.as_ref()?;
        names
            .iter()
            .find_map(|n| map.get(*n).and_then(Value::as_str).map(str::to_owned))
    };
    let code =
        header_code.or_else(|| field(&["__type", "code", "error"]).map(|c| short_error_type(&c)));
    let message = field(&["message", "Message", "errorMessage"]).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() || text.len() > 200 {
            "no explanation given".to_owned()
        } else {
            text.to_owned()
        }
    });
    ErrorAnswer { code, message }
}

/// `ResourceNotFoundException:http://internal.amazon.com/…` or `aws.iot#ResourceNotFoundException` →
/// `ResourceNotFoundException`.
fn short_error_type(raw: &str) -> String {
    let head = raw.split(':').next().unwrap_or(raw);
    head.rsplit('#').next().unwrap_or(head).trim().to_owned()
}

/// The backend contract's `GET /v1/things/{thingName}` answer.
pub(crate) fn backend_thing(body: &[u8]) -> Result<ThingDescription, ClaimError> {
    let map = object(body)?;
    let thing_name = string_field(&map, "thingName")?;
    let thing_arn = map
        .get("thingArn")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let attributes = attributes(&map)?;
    let certificates = match map.get("certificates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let obj = item
                    .as_object()
                    .ok_or_else(|| malformed("an entry of `certificates` is not an object"))?;
                Ok(ThingCertificate {
                    certificate_id: string_field(obj, "certificateId")?,
                    status: CertificateStatus::parse(&string_field(obj, "status")?),
                })
            })
            .collect::<Result<_, ClaimError>>()?,
        Some(_) => return Err(malformed("field `certificates` is not an array")),
    };
    Ok(ThingDescription {
        thing_name,
        thing_arn,
        attributes,
        certificates,
    })
}

fn attributes(map: &Map<String, Value>) -> Result<BTreeMap<String, String>, ClaimError> {
    match map.get("attributes") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(attrs)) => attrs
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(malformed(format!("attribute `{k}` is not a string"))),
            })
            .collect(),
        Some(_) => Err(malformed("field `attributes` is not an object")),
    }
}

/// AWS `DescribeThing`: the thing's name, ARN and attributes (certificates come separately).
pub(crate) fn aws_describe_thing(body: &[u8]) -> Result<ThingDescription, ClaimError> {
    let map = object(body)?;
    Ok(ThingDescription {
        thing_name: string_field(&map, "thingName")?,
        thing_arn: map
            .get("thingArn")
            .and_then(Value::as_str)
            .map(str::to_owned),
        attributes: attributes(&map)?,
        certificates: Vec::new(),
    })
}

/// AWS `ListThingPrincipals`: certificate ids among the principals, and the next page token.
pub(crate) fn aws_thing_principals(
    body: &[u8],
) -> Result<(Vec<String>, Option<String>), ClaimError> {
    let map = object(body)?;
    let principals = match map.get("principals") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| {
                p.as_str()
                    .ok_or_else(|| malformed("a principal is not a string"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(malformed("field `principals` is not an array")),
    };
    // arn:aws:iot:<region>:<account>:cert/<certificateId>
    let ids = principals
        .into_iter()
        .filter_map(|arn| arn.split_once(":cert/").map(|(_, id)| id.to_owned()))
        .collect();
    let next = map
        .get("nextToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((ids, next))
}

/// AWS `DescribeCertificate`: the certificate's status.
pub(crate) fn aws_certificate_status(body: &[u8]) -> Result<CertificateStatus, ClaimError> {
    let map = object(body)?;
    match map.get("certificateDescription") {
        Some(Value::Object(desc)) => Ok(CertificateStatus::parse(&string_field(desc, "status")?)),
        Some(_) => Err(malformed("field `certificateDescription` is not an object")),
        None => Err(malformed("field `certificateDescription` is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_answer_errors_name_the_field_not_the_value() {
        let body = br#"{"certificateId":"ab","certificatePem":"pem","keyPair":{"PrivateKey":"SECRET-KEY"},"expiration":"SECRET-KEY"}"#;
        let err = claim_answer(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("expiration"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");

        let body = br#"{"certificateId":"ab","certificatePem":"pem","keyPair":{"PrivateKey":7},"expiration":1}"#;
        let err = claim_answer(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("keyPair.PrivateKey"), "{err}");

        let err = claim_answer(b"{\"certificateId\": \"SECRET")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not JSON") && !err.contains("SECRET"), "{err}");
    }

    #[test]
    fn the_key_is_unescaped_as_serde_json_would() {
        for literal in [
            r#""-----BEGIN PRIVATE KEY-----\nMIIE\/x+y==\r\n-----END PRIVATE KEY-----\n""#,
            r#""tab\tquote\"back\\slash\u0041\u00e9\u20ac\b\f""#,
            r#""""#,
            r#""plain ascii and é""#,
        ] {
            let ours = unescape_string(literal).map(|s| s.as_str().to_owned());
            let theirs: Option<String> = serde_json::from_str(literal).ok();
            assert_eq!(ours, theirs, "{literal}");
        }
        for bad in [
            r#""\x41""#,
            r#""\u12""#,
            r#""\ud800""#,
            "7",
            r#""open"#,
            r#"{"a":1}"#,
        ] {
            assert!(unescape_string(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn claim_answer_reads_the_key_and_checks_every_field() {
        let ok = br#"{"certificateId":"ab","certificatePem":"pem","keyPair":{"PublicKey":"p","PrivateKey":"-----BEGIN\nK\n"},"expiration":1700000000,"extra":[1,{"x":"\n"}]}"#;
        let parsed = claim_answer(ok).map_err(|e| e.to_string());
        let parsed = parsed
            .as_ref()
            .map(|a| (a.certificate_id.as_str(), a.private_key.expose()));
        assert_eq!(parsed, Ok(("ab", "-----BEGIN\nK\n")));
        let cases: [(&[u8], &str); 9] = [
            (br#"{"certificateId":"ab","certificatePem":"pem","expiration":1}"#, "`keyPair` is missing"),
            (br#"{"certificateId":"ab","certificatePem":"pem","keyPair":null,"expiration":1}"#, "`keyPair` is missing"),
            (br#"{"certificateId":"ab","certificatePem":"pem","keyPair":"k","expiration":1}"#, "`keyPair` is not an object"),
            (br#"{"certificateId":"ab","certificatePem":"pem","keyPair":{},"expiration":1}"#, "`keyPair.PrivateKey` is missing"),
            (br#"{"certificateId":"ab","certificatePem":"pem","keyPair":{"PrivateKey":""},"expiration":1}"#, "`keyPair.PrivateKey` is empty"),
            (br#"{"certificatePem":"pem","keyPair":{"PrivateKey":"k"},"expiration":1}"#, "`certificateId` is missing"),
            (br#"{"certificateId":"ab","certificatePem":3,"keyPair":{"PrivateKey":"k"},"expiration":1}"#, "`certificatePem` is not a string"),
            (br#"{"certificateId":"ab","certificatePem":"pem","keyPair":{"PrivateKey":"k"}}"#, "`expiration` is missing"),
            (br#"[1,2]"#, "not an object"),
        ];
        for (body, field) in cases {
            let err = claim_answer(body)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn expiration_accepts_aws_number_forms() {
        for e in ["1700000000", "1700000000.5", "\"1700000000\""] {
            let body = format!(
                r#"{{"certificateId":"a","certificatePem":"p","keyPair":{{"PrivateKey":"k"}},"expiration":{e}}}"#
            );
            let a = claim_answer(body.as_bytes()).map_err(|e| e.to_string());
            assert!(a.is_ok(), "{e}: {a:?}", a = a.err());
        }
    }

    #[test]
    fn error_type_comes_from_header_or_body() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amzn-ErrorType",
            http::HeaderValue::from_static(
                "ThrottlingException:http://internal.amazon.com/coral/com.amazonaws.iot/",
            ),
        );
        let e = error_answer(&h, br#"{"message":"Rate exceeded"}"#);
        assert_eq!(e.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(e.message, "Rate exceeded");
        let e = error_answer(
            &http::HeaderMap::new(),
            br#"{"__type":"aws.iot#ResourceNotFoundException","message":"m"}"#,
        );
        assert_eq!(e.code.as_deref(), Some("ResourceNotFoundException"));
        let e = error_answer(&http::HeaderMap::new(), b"<html>bad gateway</html>");
        assert_eq!(e.code, None);
        assert_eq!(e.message, "<html>bad gateway</html>");
    }

    #[test]
    fn principals_keep_only_certificates() {
        let (ids, next) = aws_thing_principals(
            br#"{"principals":["arn:aws:iot:eu-west-1:123:cert/abc","arn:aws:cognito-identity:x:y"],"nextToken":"t"}"#,
        )
        .map_err(|e| e.to_string())
        .unwrap_or_default();
        assert_eq!(ids, vec!["abc".to_owned()]);
        assert_eq!(next.as_deref(), Some("t"));
    }
}
