//! SigV4 verification, written independently of the SDK's signer (which is the `aws-sigv4` crate), so
//! that each checks the other. Rejections carry AWS's error types and messages.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// AWS accepts a signature this far from its own clock.
pub const MAX_CLOCK_DIFFERENCE: Duration = Duration::from_secs(15 * 60);

/// A set of temporary credentials the emulator accepts.
#[derive(Clone)]
pub struct KnownCredentials {
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token the request must carry, if any.
    pub session_token: Option<String>,
}

/// Why a request was refused: AWS's HTTP status, error type and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status (403 for all signature problems).
    pub status: u16,
    /// AWS's error type (`x-amzn-ErrorType`).
    pub error_type: &'static str,
    /// AWS's message.
    pub message: String,
}

fn reject(error_type: &'static str, message: impl Into<String>) -> Rejection {
    Rejection {
        status: 403,
        error_type,
        message: message.into(),
    }
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// Verifies SigV4-signed requests for one region and service.
pub struct Verifier<'a> {
    /// The region requests must be scoped to.
    pub region: &'a str,
    /// The signing name (`iot`).
    pub service: &'a str,
    /// Access key id → credentials.
    pub credentials: &'a HashMap<String, KnownCredentials>,
    /// The emulator's clock.
    pub now: SystemTime,
}

struct Authorization<'h> {
    access_key_id: &'h str,
    date: &'h str,
    region: &'h str,
    service: &'h str,
    signed_headers: Vec<&'h str>,
    signature: &'h str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key_id: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    if scope.next()? != "aws4_request" || scope.next().is_some() {
        return None;
    }
    Some(auth)
}

/// `20261122T233000Z` → time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    let secs = date.with_time(t).assume_utc().unix_timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Formats a time as `yyyymmddThhmmssZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 wants.
fn uri_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() || path == "/" {
        return "/".to_owned();
    }
    // Non-S3 services encode each (already encoded) segment once more.
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query else { return String::new() };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl Verifier<'_> {
    /// Checks a request's signature. Returns the access key id that signed it.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<String, Rejection> {
        let Some(auth_value) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(reject(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ));
        };
        let auth = parse_authorization(auth_value).ok_or_else(|| {
            reject(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
            )
        })?;
        let known = self
            .credentials
            .get(auth.access_key_id)
            .ok_or_else(|| reject("UnrecognizedClientException", INVALID_TOKEN))?;
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if let Some(expected) = known.session_token.as_deref() {
            let presented = token.unwrap_or("");
            if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(reject("UnrecognizedClientException", INVALID_TOKEN));
            }
            if !auth.signed_headers.contains(&"x-amz-security-token") {
                return Err(reject("InvalidSignatureException", MISMATCH));
            }
        }
        let amz_date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| reject("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))?;
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            reject(
                "IncompleteSignatureException",
                format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."),
            )
        })?;
        if let Ok(ahead) = self.now.duration_since(signed_at) {
            if ahead > MAX_CLOCK_DIFFERENCE {
                return Err(reject(
                    "InvalidSignatureException",
                    format!(
                        "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                        format_amz_date(self.now - MAX_CLOCK_DIFFERENCE),
                        format_amz_date(self.now)
                    ),
                ));
            }
        }
        if let Ok(behind) = signed_at.duration_since(self.now) {
            if behind > MAX_CLOCK_DIFFERENCE {
                return Err(reject(
                    "InvalidSignatureException",
                    format!(
                        "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                        format_amz_date(self.now + MAX_CLOCK_DIFFERENCE),
                        format_amz_date(self.now)
                    ),
                ));
            }
        }
        if auth.date != &amz_date[..8] {
            return Err(reject(
                "InvalidSignatureException",
                format!("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'", auth.date, &amz_date[..8]),
            ));
        }
        if auth.region != self.region {
            return Err(reject(
                "InvalidSignatureException",
                format!(
                    "Credential should be scoped to a valid region. Expected '{}'.",
                    self.region
                ),
            ));
        }
        if auth.service != self.service {
            return Err(reject(
                "InvalidSignatureException",
                format!(
                    "Credential should be scoped to correct service: '{}'.",
                    self.service
                ),
            ));
        }
        if !auth.signed_headers.contains(&"host") {
            return Err(reject("InvalidSignatureException", MISMATCH));
        }

        let mut canonical_headers = String::new();
        for name in &auth.signed_headers {
            let values: Vec<String> = headers
                .get_all(*name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            if values.is_empty() {
                return Err(reject("InvalidSignatureException", MISMATCH));
            }
            canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        // The payload hash is the body's, computed here: a client's `x-amz-content-sha256` is
        // checked against it, never trusted in its place (only the literal `UNSIGNED-PAYLOAD`
        // stands for itself).
        let body_hash = hex::encode(Sha256::digest(body));
        let payload_hash =
            match headers.get("x-amz-content-sha256") {
                None => body_hash,
                Some(v) if v.as_bytes() == b"UNSIGNED-PAYLOAD" => "UNSIGNED-PAYLOAD".to_owned(),
                Some(v) if v.as_bytes() == body_hash.as_bytes() => body_hash,
                Some(_) => return Err(reject(
                    "InvalidSignatureException",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )),
            };
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            method.as_str(),
            canonical_uri(uri.path()),
            canonical_query(uri.query()),
            canonical_headers,
            auth.signed_headers.join(";"),
            payload_hash
        );
        let scope = format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let k_date = hmac(
            format!("AWS4{}", known.secret_access_key).as_bytes(),
            auth.date.as_bytes(),
        );
        let k_region = hmac(&k_date, auth.region.as_bytes());
        let k_service = hmac(&k_region, auth.service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");
        let expected = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
        if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            Ok(auth.access_key_id.to_owned())
        } else {
            Err(reject("InvalidSignatureException", MISMATCH))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let s = format_amz_date(t);
        assert_eq!(parse_amz_date(&s), Some(t));
        assert_eq!(parse_amz_date("20261322T000000Z"), None);
        assert_eq!(parse_amz_date("garbage"), None);
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri("/things/a%20b"), "/things/a%2520b");
        assert_eq!(canonical_query(Some("b=2&a=1&a=0")), "a=0&a=1&b=2");
        assert_eq!(canonical_query(Some("nextToken=x%2By")), "nextToken=x%2By");
    }
}
