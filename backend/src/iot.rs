//! AWS IoT's control plane, the four calls the backend makes: `CreateProvisioningClaim`,
//! `DescribeThing`, `ListThingPrincipals`, `DescribeCertificate` — REST-JSON over HTTPS, signed with
//! SigV4 by the AWS SDK's own signer (`aws-sigv4`), the endpoint overridable (the emulator in tests).

use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::credentials::SharedCredentials;
use crate::BackendError;

/// An AWS IoT client.
pub struct IotClient {
    region: String,
    endpoint: url::Url,
    credentials: SharedCredentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for IotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotClient")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// An AWS failure, in AWS's words.
#[derive(Clone, Debug, thiserror::Error)]
#[error("AWS IoT: {code}: {message} (HTTP {status})")]
pub struct AwsError {
    /// HTTP status (0: no answer).
    pub status: u16,
    /// AWS's error type (`ResourceNotFoundException`, `ThrottlingException`...).
    pub code: String,
    /// AWS's message.
    pub message: String,
}

impl AwsError {
    fn local(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: 0,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// AWS said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status == 404 || self.code == "ResourceNotFoundException"
    }
}

/// A claim as AWS issued it. The answer holds the claim's private key: it is wiped when dropped and
/// never logged.
pub struct IssuedClaim {
    /// The certificate id.
    pub certificate_id: String,
    /// Expiry, epoch seconds.
    pub expiration: i64,
    /// AWS's answer, byte for byte (what the app receives).
    pub answer: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for IssuedClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedClaim")
            .field("certificate_id", &self.certificate_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl IotClient {
    /// A client for `config.aws` signing with `credentials`.
    pub fn new(config: &Config, credentials: SharedCredentials) -> Result<Self, BackendError> {
        let raw = config
            .aws
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://iot.{}.amazonaws.com", config.aws.region));
        let endpoint = url::Url::parse(&raw)
            .map_err(|e| BackendError::Config(format!("AWS endpoint {raw:?}: {e}")))?;
        if !crate::tls::acceptable_url(&endpoint) {
            return Err(BackendError::Config(format!(
                "AWS endpoint {raw:?}: must be https (plain http only on the loopback interface)"
            )));
        }
        Ok(Self {
            region: config.aws.region.clone(),
            endpoint,
            credentials,
            http: crate::tls::http_client(
                config.aws.extra_ca_file.as_deref(),
                config.aws_timeout(),
            )?,
        })
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One signed call; the answer's body on 2xx.
    async fn call(
        &self,
        method: reqwest::Method,
        url: url::Url,
    ) -> Result<Zeroizing<Vec<u8>>, AwsError> {
        let creds = self
            .credentials
            .credentials()
            .await
            .map_err(|e| AwsError::local("CredentialsUnavailable", e.to_string()))?;
        let signed = crate::sigv4::signed_headers(
            &creds,
            &self.region,
            "iot",
            method.as_str(),
            url.as_str(),
            &[],
            &[],
        )
        .map_err(|e| AwsError::local("SigningFailed", e))?;
        let mut request = self
            .http
            .request(method, url)
            .header(http::header::ACCEPT, "application/json");
        for (name, value) in &signed {
            request = request.header(name, value);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| AwsError::local("ServiceUnavailable", format!("no answer: {e}")))?;
        let status = answer.status().as_u16();
        let error_type = answer
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_owned());
        let body = Zeroizing::new(
            answer
                .bytes()
                .await
                .map_err(|e| AwsError::local("ServiceUnavailable", format!("answer cut: {e}")))?
                .to_vec(),
        );
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let message = parsed
            .get("message")
            .or_else(|| parsed.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let code = error_type
            .or_else(|| {
                parsed
                    .get("__type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("HTTP{status}"));
        Err(AwsError {
            status,
            code,
            message,
        })
    }

    /// `CreateProvisioningClaim` for `template`.
    pub async fn create_provisioning_claim(&self, template: &str) -> Result<IssuedClaim, AwsError> {
        let url = self.url(&["provisioning-templates", template, "provisioning-claim"]);
        let answer = self.call(reqwest::Method::POST, url).await?;
        let bad = || {
            AwsError::local(
                "InvalidAnswer",
                "CreateProvisioningClaim answered an unexpected body",
            )
        };
        let v: Value = serde_json::from_slice(&answer).map_err(|_| bad())?;
        let certificate_id = v
            .get("certificateId")
            .and_then(Value::as_str)
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(bad)?
            .to_ascii_lowercase();
        let expiration = v
            .get("expiration")
            .and_then(Value::as_f64)
            .ok_or_else(bad)?;
        // `v` holds a copy of the private key: wipe what serde_json lets us reach.
        drop(v);
        Ok(IssuedClaim {
            certificate_id,
            // Epoch seconds. `as` saturates (NaN becomes 0, an expired claim): an absurd value cannot
            // wrap around.
            expiration: expiration as i64,
            answer,
        })
    }

    /// `DescribeThing`: `None` when AWS does not know the thing.
    pub async fn describe_thing(&self, thing: &str) -> Result<Option<Value>, AwsError> {
        self.json_or_none(self.url(&["things", thing])).await
    }

    /// `ListThingPrincipals`: the principals' ARNs.
    pub async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        let v = self
            .json_or_none(self.url(&["things", thing, "principals"]))
            .await?
            .unwrap_or(Value::Null);
        Ok(v.get("principals")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `DescribeCertificate`: the certificate's status, `None` when AWS does not know it.
    pub async fn certificate_status(
        &self,
        certificate_id: &str,
    ) -> Result<Option<String>, AwsError> {
        let v = self
            .json_or_none(self.url(&["certificates", certificate_id]))
            .await?;
        Ok(v.and_then(|v| {
            v.pointer("/certificateDescription/status")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }))
    }

    async fn json_or_none(&self, url: url::Url) -> Result<Option<Value>, AwsError> {
        match self.call(reqwest::Method::GET, url).await {
            Ok(body) => serde_json::from_slice(&body).map(Some).map_err(|_| {
                AwsError::local("InvalidAnswer", "AWS answered a body that is not JSON")
            }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
