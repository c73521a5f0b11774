//! SigV4 for the backend's own AWS calls (AWS IoT's registry and claims, SSM and Secrets Manager on
//! Lambda), with the aws-sigv4 crate the SDK already builds: the headers to add to one request.

use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::credentials::AwsCredentials;

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`…) for a `method` request
/// to `url` for `service` in `region`, with `headers` (signed too) and `body`, signed now with
/// `creds`. `Err` says why it could not be signed (never a secret).
pub(crate) fn signed_headers(
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.as_str().to_owned(),
        creds.session_token.as_ref().map(|t| t.as_str().to_owned()),
        None,
        "claimlink-backend",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}
