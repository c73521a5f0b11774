//! AWS IoT directly as a claim source: `CreateProvisioningClaim`, `DescribeThing`,
//! `ListThingPrincipals` and `DescribeCertificate`, signed with SigV4 by the `aws-sigv4` crate.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::Url;

use super::answer;
use super::{
    Claim, ClaimError, ClaimRequest, ClaimSource, ProviderError, Service, ThingCertificate,
    ThingDescription, ThingDirectory, ThingName,
};
use crate::net::{with_retries, Answer, Failure, HttpConfig, RetryPolicy};
use crate::secret::SecretString;
use crate::time::{shift, signed_secs_between, Clock, SystemClock};

/// Temporary AWS credentials, as Amazon Cognito or STS hand them out.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    /// The access key id (not secret: it appears in every signed request).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
}

/// Supplies AWS credentials. Implemented by the app (typically from a Cognito identity pool).
///
/// `refresh` is `true` when AWS rejected the previous credentials; the provider should then fetch new
/// ones. The SDK asks for a refresh at most once per call.
#[async_trait]
pub trait CredentialsProvider: Send + Sync {
    /// Current credentials, or fresh ones when `refresh` is set.
    async fn credentials(&self, refresh: bool) -> Result<AwsCredentials, ProviderError>;
}

/// Claims straight from AWS IoT's control plane.
pub struct AwsClaimSource {
    region: String,
    endpoint: Url,
    credentials: Arc<dyn CredentialsProvider>,
    http: reqwest::Client,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    /// AWS's clock minus ours, in seconds, learnt from a "Signature expired" answer.
    skew_secs: AtomicI64,
}

impl fmt::Debug for AwsClaimSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsClaimSource")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_str())
            .field("skew_secs", &self.skew_secs.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Builds an [`AwsClaimSource`].
pub struct AwsClaimSourceBuilder {
    region: String,
    endpoint: Option<String>,
    credentials: Arc<dyn CredentialsProvider>,
    http: HttpConfig,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl AwsClaimSourceBuilder {
    /// Overrides `https://iot.<region>.amazonaws.com` (a VPC endpoint, or the harness's emulator).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// TLS trust and timeouts.
    pub fn http_config(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Retries for throttling, 5xx answers and network failures.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The wall clock to sign with (the phone's, by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and builds the source.
    pub fn build(self) -> Result<AwsClaimSource, ClaimError> {
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(ClaimError::InvalidInput(format!(
                "{:?} is not an AWS region",
                self.region
            )));
        }
        let endpoint = self
            .endpoint
            .unwrap_or_else(|| format!("https://iot.{}.amazonaws.com", self.region));
        let endpoint = Url::parse(&endpoint)
            .map_err(|e| ClaimError::InvalidInput(format!("AWS endpoint {endpoint:?}: {e}")))?;
        if endpoint.scheme() != "https" {
            return Err(ClaimError::InvalidInput(
                "the AWS endpoint must be https".into(),
            ));
        }
        if endpoint.cannot_be_a_base() || endpoint.query().is_some() {
            return Err(ClaimError::InvalidInput(
                "the AWS endpoint must be a plain base URL".into(),
            ));
        }
        Ok(AwsClaimSource {
            region: self.region,
            endpoint,
            credentials: self.credentials,
            http: self.http.client()?,
            retry: self.retry,
            clock: self.clock,
            skew_secs: AtomicI64::new(0),
        })
    }
}

/// What a call is for, so that a 404 can be read right.
#[derive(Clone, Copy)]
enum NotFound<'a> {
    Template(&'a str),
    Absent,
}

impl AwsClaimSource {
    /// Starts building a source for `region`, signing with credentials from `credentials`.
    pub fn builder(
        region: impl Into<String>,
        credentials: Arc<dyn CredentialsProvider>,
    ) -> AwsClaimSourceBuilder {
        AwsClaimSourceBuilder {
            region: region.into(),
            endpoint: None,
            credentials,
            http: HttpConfig::default(),
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock correction in use (AWS minus phone, seconds); non-zero after AWS reported a skew.
    pub fn clock_correction_secs(&self) -> i64 {
        self.skew_secs.load(Ordering::Relaxed)
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// SigV4 headers for one request, signed at the phone's time corrected by the learnt skew.
    fn signed_request(
        &self,
        method: reqwest::Method,
        url: &Url,
        creds: &AwsCredentials,
    ) -> Result<reqwest::RequestBuilder, ClaimError> {
        let identity = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose().to_owned(),
            creds.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "claimlink",
        )
        .into();
        let time = shift(self.clock.now(), self.skew_secs.load(Ordering::Relaxed));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("iot")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ClaimError::InvalidInput(format!("SigV4 parameters: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            std::iter::empty(),
            SignableBody::Bytes(&[]),
        )
        .map_err(|e| ClaimError::InvalidInput(format!("request cannot be signed: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| ClaimError::InvalidInput(format!("SigV4 signing failed: {e}")))?
            .into_parts();
        // The one POST is CreateProvisioningClaim, whose answer carries the claim's private key: its
        // connection closes after it, so the TLS and HTTP buffers are freed (and wiped, see
        // docs/architecture.md, "Secrets in memory") instead of idling in the pool. Unsigned: SigV4
        // covers only the headers it was given.
        let closes = method == reqwest::Method::POST;
        let mut request = self
            .http
            .request(method, url.clone())
            .header(http::header::ACCEPT, "application/json");
        if closes {
            request = request.header(http::header::CONNECTION, "close");
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        Ok(request)
    }

    /// One signed call with retries, one credentials refresh on rejection, and one clock correction.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &Url,
        not_found: NotFound<'_>,
    ) -> Result<Option<Answer>, ClaimError> {
        let mut refreshed = false;
        let mut corrected = false;
        loop {
            let creds = self.credentials.credentials(refreshed).await?;
            let result = with_retries(&self.retry, |_| {
                let request = self.signed_request(method.clone(), url, &creds);
                async move {
                    let answer = Answer::fetch(request.map_err(Failure::Fatal)?).await?;
                    self.classify(answer, not_found)
                }
            })
            .await;
            match result {
                Err(ClaimError::Unauthorized { .. }) if !refreshed => {
                    tracing::info!("AWS rejected the credentials; asking the app for fresh ones");
                    refreshed = true;
                }
                Err(ClaimError::SignatureRejected { ref message })
                    if !corrected && is_clock_message(message) =>
                {
                    tracing::info!(
                        correction_secs = self.skew_secs.load(Ordering::Relaxed),
                        "AWS says the phone clock is off; signing again with the corrected time"
                    );
                    corrected = true;
                }
                other => return other,
            }
        }
    }

    fn classify(
        &self,
        a: Answer,
        not_found: NotFound<'_>,
    ) -> Result<Option<Answer>, Failure<ClaimError>> {
        if (200..300).contains(&a.status) {
            return Ok(Some(a));
        }
        let e = answer::error_answer(&a.headers, &a.body);
        let code = e.code.as_deref().unwrap_or("");
        let fatal = |err| Err(Failure::Fatal(err));
        match (a.status, code) {
            (_, "ThrottlingException") | (429, _) => Err(Failure::Throttled {
                retry_after: a.retry_after(),
            }),
            (500..=599, _) => Err(Failure::Unavailable {
                status: a.status,
                retry_after: a.retry_after(),
            }),
            (404, _) | (_, "ResourceNotFoundException") => match not_found {
                NotFound::Template(template) => fatal(ClaimError::TemplateNotFound {
                    service: Service::Aws,
                    template: template.to_owned(),
                }),
                NotFound::Absent => Ok(None),
            },
            (_, "InvalidSignatureException") | (_, "SignatureDoesNotMatch") => {
                if is_clock_message(&e.message) {
                    if let Some(server) = a.server_date {
                        let skew = signed_secs_between(server, self.clock.now());
                        self.skew_secs.store(skew, Ordering::Relaxed);
                    }
                }
                fatal(ClaimError::SignatureRejected { message: e.message })
            }
            (401, _)
            | (_, "UnauthorizedException")
            | (_, "UnrecognizedClientException")
            | (_, "ExpiredTokenException")
            | (_, "InvalidClientTokenId") => fatal(ClaimError::Unauthorized {
                service: Service::Aws,
                message: e.message,
            }),
            (status, _) => fatal(ClaimError::Rejected {
                service: Service::Aws,
                status,
                code: e.code,
                message: e.message,
            }),
        }
    }

    async fn certificate_status(
        &self,
        certificate_id: &str,
    ) -> Result<Option<super::CertificateStatus>, ClaimError> {
        let url = self.url(&["certificates", certificate_id], &[]);
        match self
            .call(reqwest::Method::GET, &url, NotFound::Absent)
            .await?
        {
            Some(a) => answer::aws_certificate_status(&a.body).map(Some),
            None => Ok(None),
        }
    }
}

/// AWS's words for a request signed too far from its own clock.
fn is_clock_message(message: &str) -> bool {
    message.contains("Signature expired") || message.contains("Signature not yet current")
}

#[async_trait]
impl ClaimSource for AwsClaimSource {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        let template = request.template.as_str();
        let url = self.url(
            &["provisioning-templates", template, "provisioning-claim"],
            &[],
        );
        let answer = self
            .call(reqwest::Method::POST, &url, NotFound::Template(template))
            .await?
            .ok_or_else(|| ClaimError::TemplateNotFound {
                service: Service::Aws,
                template: template.to_owned(),
            })?;
        let parsed = answer::claim_answer(&answer.body)?;
        super::claim_from_answer(
            parsed,
            request.template.clone(),
            answer.server_date,
            self.clock.clone(),
            answer.received_at,
        )
    }
}

#[async_trait]
impl ThingDirectory for AwsClaimSource {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        let url = self.url(&["things", thing.as_str()], &[]);
        let Some(a) = self
            .call(reqwest::Method::GET, &url, NotFound::Absent)
            .await?
        else {
            return Ok(None);
        };
        let mut description = answer::aws_describe_thing(&a.body)?;
        // ListThingPrincipals, page by page (bounded: a thing has a handful of principals).
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        for _page in 0..20 {
            let mut query = vec![("maxResults", "25")];
            if let Some(token) = next.as_deref() {
                query.push(("nextToken", token));
            }
            let url = self.url(&["things", thing.as_str(), "principals"], &query);
            let Some(a) = self
                .call(reqwest::Method::GET, &url, NotFound::Absent)
                .await?
            else {
                return Ok(None);
            };
            let (page, token) = answer::aws_thing_principals(&a.body)?;
            ids.extend(page);
            next = token;
            if next.is_none() {
                break;
            }
        }
        for id in ids {
            if let Some(status) = self.certificate_status(&id).await? {
                description.certificates.push(ThingCertificate {
                    certificate_id: id,
                    status,
                });
            }
        }
        Ok(Some(description))
    }
}
