//! A small SigV4 client for the AWS IoT registry calls the harness makes itself — as a manufacturer
//! registering a factory claim (`by-claim`), and cleaning up after a run against an external account
//! (`--cleanup`): RegisterCertificateWithoutCA, CreatePolicy, AttachPolicy, UpdateCertificate,
//! ListThingPrincipals, DetachThingPrincipal, DeleteThing, DeleteCertificate. Paths, query strings
//! and bodies are AWS IoT's REST API's (the service model's `requestUri`s); requests are signed with
//! the `aws-sigv4` crate, as claimlink-core signs its own. It talks to whatever endpoint it is given:
//! `https://iot.<region>.amazonaws.com` or an emulator.

use std::sync::Arc;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use claimlink_core::AwsCredentials;
use serde_json::{json, Value};

/// An error answer of the AWS IoT API, or a failure to reach it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {}{code} {message}", status.map(|s| format!("HTTP {s} ")).unwrap_or_default())]
pub struct IotApiError {
    /// The operation (`DeleteThing`, …).
    pub operation: &'static str,
    /// The HTTP status, when AWS answered.
    pub status: Option<u16>,
    /// AWS's error type (`x-amzn-ErrorType`, before the `:`), or empty.
    pub code: String,
    /// AWS's message, or the local failure.
    pub message: String,
}

/// A signed AWS IoT control-plane client.
pub struct IotApi {
    endpoint: url::Url,
    region: String,
    credentials: AwsCredentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for IotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotApi")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A reqwest client trusting Mozilla's roots (Amazon's among them) and `extra_ca_pem`.
pub fn https_client(extra_ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in
        rustls_pki_types::CertificateDer::pem_slice_iter(extra_ca_pem.unwrap_or("").as_bytes())
    {
        roots
            .add(cert.map_err(|e| format!("CA certificate: {e}"))?)
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

impl IotApi {
    /// A client for `endpoint_url` (`https://iot.<region>.amazonaws.com`, or an emulator's base URL)
    /// signing for `region`, trusting Mozilla's roots and `extra_ca_pem`.
    pub fn new(
        endpoint_url: &str,
        region: &str,
        credentials: AwsCredentials,
        extra_ca_pem: Option<&str>,
    ) -> Result<Self, String> {
        let endpoint = url::Url::parse(endpoint_url)
            .map_err(|e| format!("AWS IoT endpoint {endpoint_url:?}: {e}"))?;
        if endpoint.scheme() != "https" || endpoint.cannot_be_a_base() {
            return Err(format!(
                "AWS IoT endpoint {endpoint_url:?}: must be an https base URL"
            ));
        }
        Ok(Self {
            endpoint,
            region: region.to_owned(),
            credentials,
            http: https_client(extra_ca_pem)?,
        })
    }

    /// The region it signs for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// One signed call; the answer's JSON (`Null` for an empty body).
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, &str)],
        extra_headers: &[(&'static str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, IotApiError> {
        let local = |message: String| IotApiError {
            operation,
            status: None,
            code: String::new(),
            message,
        };
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let body_bytes = body.map(Value::to_string).unwrap_or_default();
        let identity = aws_credential_types::Credentials::new(
            self.credentials.access_key_id.clone(),
            self.credentials.secret_access_key.expose().to_owned(),
            self.credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            None,
            "claimlink-harness",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("iot")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| local(format!("SigV4 parameters: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            extra_headers.iter().copied(),
            SignableBody::Bytes(body_bytes.as_bytes()),
        )
        .map_err(|e| local(format!("request cannot be signed: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| local(format!("SigV4 signing failed: {e}")))?
            .into_parts();
        let mut request = self.http.request(method, url.clone());
        for (name, value) in extra_headers {
            request = request.header(*name, *value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        if body.is_some() {
            request = request
                .header("content-type", "application/json")
                .body(body_bytes);
        }
        let response = request.send().await.map_err(|e| local(e.to_string()))?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or("").to_owned());
        let bytes = response.bytes().await.map_err(|e| local(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        Err(IotApiError {
            operation,
            status: Some(status),
            code: error_type
                .or_else(|| {
                    answer
                        .get("__type")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default(),
            message: answer
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
    }

    /// `RegisterCertificateWithoutCA`: returns (certificate ARN, certificate id).
    pub async fn register_certificate_without_ca(
        &self,
        certificate_pem: &str,
        active: bool,
    ) -> Result<(String, String), IotApiError> {
        let status = if active { "ACTIVE" } else { "INACTIVE" };
        let a = self
            .call(
                "RegisterCertificateWithoutCA",
                reqwest::Method::POST,
                &["certificate", "register-no-ca"],
                &[],
                &[],
                Some(&json!({"certificatePem": certificate_pem, "status": status})),
            )
            .await?;
        let field = |name: &str| {
            a.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| IotApiError {
                    operation: "RegisterCertificateWithoutCA",
                    status: Some(200),
                    code: String::new(),
                    message: format!("answer without {name}"),
                })
        };
        Ok((field("certificateArn")?, field("certificateId")?))
    }

    /// `CreatePolicy` with `document`.
    pub async fn create_policy(&self, name: &str, document: &Value) -> Result<(), IotApiError> {
        self.call(
            "CreatePolicy",
            reqwest::Method::POST,
            &["policies", name],
            &[],
            &[],
            Some(&json!({"policyDocument": document.to_string()})),
        )
        .await
        .map(drop)
    }

    /// `AttachPolicy` to `target` (a certificate ARN).
    pub async fn attach_policy(&self, name: &str, target: &str) -> Result<(), IotApiError> {
        self.call(
            "AttachPolicy",
            reqwest::Method::PUT,
            &["target-policies", name],
            &[],
            &[],
            Some(&json!({"target": target})),
        )
        .await
        .map(drop)
    }

    /// `UpdateCertificate` to `status` (`ACTIVE`, `INACTIVE`, `REVOKED`).
    pub async fn update_certificate(
        &self,
        certificate_id: &str,
        status: &str,
    ) -> Result<(), IotApiError> {
        self.call(
            "UpdateCertificate",
            reqwest::Method::PUT,
            &["certificates", certificate_id],
            &[("newStatus", status)],
            &[],
            None,
        )
        .await
        .map(drop)
    }

    /// `ListThingPrincipals` (one page of up to 25: a provisioned thing has one or two).
    pub async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, IotApiError> {
        let a = self
            .call(
                "ListThingPrincipals",
                reqwest::Method::GET,
                &["things", thing, "principals"],
                &[("maxResults", "25")],
                &[],
                None,
            )
            .await?;
        Ok(a.get("principals")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `DetachThingPrincipal`.
    pub async fn detach_thing_principal(
        &self,
        thing: &str,
        principal_arn: &str,
    ) -> Result<(), IotApiError> {
        self.call(
            "DetachThingPrincipal",
            reqwest::Method::DELETE,
            &["things", thing, "principals"],
            &[],
            &[("x-amzn-principal", principal_arn)],
            None,
        )
        .await
        .map(drop)
    }

    /// `DeleteThing`.
    pub async fn delete_thing(&self, thing: &str) -> Result<(), IotApiError> {
        self.call(
            "DeleteThing",
            reqwest::Method::DELETE,
            &["things", thing],
            &[],
            &[],
            None,
        )
        .await
        .map(drop)
    }

    /// `DeleteCertificate`, with `forceDelete` (detaches its policies).
    pub async fn delete_certificate(&self, certificate_id: &str) -> Result<(), IotApiError> {
        self.call(
            "DeleteCertificate",
            reqwest::Method::DELETE,
            &["certificates", certificate_id],
            &[("forceDelete", "true")],
            &[],
            None,
        )
        .await
        .map(drop)
    }
}
