//! The app maker's backend as a claim source: the contract in `docs/backend-api.md`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Url;

use super::answer;
use super::{
    Claim, ClaimError, ClaimRequest, ClaimSource, ProviderError, Service, ThingDescription,
    ThingDirectory, ThingName,
};
use crate::net::{with_retries, Answer, Failure, HttpConfig, RetryPolicy};
use crate::secret::SecretString;
use crate::time::{Clock, SystemClock};

/// Supplies the bearer token the app's backend expects (the signed-in installer's session).
///
/// Implemented by the app. `refresh` is `true` when the previous token was rejected (HTTP 401): the
/// provider should then obtain a new one (refresh the sign-in) rather than return a cached one. The SDK
/// asks for a refresh at most once per call.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// The current bearer token, or a fresh one when `refresh` is set.
    async fn bearer_token(&self, refresh: bool) -> Result<SecretString, ProviderError>;
}

/// Claims from the app maker's backend: `POST /v1/provisioning-claims`, and thing look-ups through
/// `GET /v1/things/{thingName}`.
pub struct BackendClaimSource {
    base: Url,
    tokens: Arc<dyn TokenProvider>,
    http: reqwest::Client,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for BackendClaimSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendClaimSource")
            .field("base", &self.base.as_str())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Builds a [`BackendClaimSource`].
pub struct BackendClaimSourceBuilder {
    base_url: String,
    tokens: Arc<dyn TokenProvider>,
    http: HttpConfig,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    danger_allow_plain_http: bool,
}

impl BackendClaimSource {
    /// Starts building a source for the backend at `base_url` (for example `https://api.example.com/`).
    pub fn builder(
        base_url: impl Into<String>,
        tokens: Arc<dyn TokenProvider>,
    ) -> BackendClaimSourceBuilder {
        BackendClaimSourceBuilder {
            base_url: base_url.into(),
            tokens,
            http: HttpConfig::default(),
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            danger_allow_plain_http: false,
        }
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One authorized call: a token, retries for throttling/5xx/network, and one token refresh on 401.
    async fn call<T>(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
        accept: impl Fn(Answer) -> Result<T, Failure<ClaimError>>,
    ) -> Result<T, ClaimError> {
        let mut refresh = false;
        loop {
            let token = self.tokens.bearer_token(refresh).await?;
            let result = with_retries(&self.retry, |_| {
                let request = build(token.expose());
                let accept = &accept;
                async move { accept(classify(Answer::fetch(request).await?)?) }
            })
            .await;
            match result {
                Err(ClaimError::Unauthorized { .. }) if !refresh => {
                    tracing::info!("backend rejected the token; asking the app for a fresh one");
                    refresh = true;
                }
                other => return other,
            }
        }
    }
}

/// Sorts a backend answer: 2xx and 404 go to the caller, the rest become failures.
fn classify(a: Answer) -> Result<Answer, Failure<ClaimError>> {
    match a.status {
        200..=299 | 404 => Ok(a),
        401 => Err(Failure::Fatal(ClaimError::Unauthorized {
            service: Service::Backend,
            message: answer::error_answer(&a.headers, &a.body).message,
        })),
        429 => Err(Failure::Throttled {
            retry_after: a.retry_after(),
        }),
        500..=599 => Err(Failure::Unavailable {
            status: a.status,
            retry_after: a.retry_after(),
        }),
        status => {
            let e = answer::error_answer(&a.headers, &a.body);
            Err(Failure::Fatal(ClaimError::Rejected {
                service: Service::Backend,
                status,
                code: e.code,
                message: e.message,
            }))
        }
    }
}

impl BackendClaimSourceBuilder {
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

    /// The wall clock to read (the phone's, by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Allows an `http://` backend URL: the bearer token and the claim's private key then cross the
    /// network in clear text. For local development only.
    pub fn danger_allow_plain_http(mut self, allow: bool) -> Self {
        self.danger_allow_plain_http = allow;
        self
    }

    /// Checks the configuration and builds the source.
    pub fn build(self) -> Result<BackendClaimSource, ClaimError> {
        let base = Url::parse(&self.base_url).map_err(|e| {
            ClaimError::InvalidInput(format!("backend URL {:?}: {e}", self.base_url))
        })?;
        match base.scheme() {
            "https" => {}
            "http" if self.danger_allow_plain_http => {
                tracing::warn!("backend over plain HTTP: tokens and claim keys are not protected");
            }
            scheme => {
                return Err(ClaimError::InvalidInput(format!(
                    "backend URL must be https (got {scheme}:)"
                )))
            }
        }
        if base.cannot_be_a_base() || base.query().is_some() {
            return Err(ClaimError::InvalidInput(
                "backend URL must be a plain base URL".into(),
            ));
        }
        Ok(BackendClaimSource {
            base,
            tokens: self.tokens,
            http: self.http.client()?,
            retry: self.retry,
            clock: self.clock,
        })
    }
}

#[async_trait]
impl ClaimSource for BackendClaimSource {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        let url = self.endpoint(&["v1", "provisioning-claims"]);
        let mut body = serde_json::Map::new();
        body.insert("templateName".into(), request.template.as_str().into());
        if let Some(hint) = &request.device_hint {
            body.insert("deviceHint".into(), hint.as_str().into());
        }
        let body = serde_json::Value::Object(body).to_string();
        let template = request.template.clone();
        let answer = self
            .call(
                |token| {
                    self.http
                        .post(url.clone())
                        .bearer_auth(token)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .header(http::header::ACCEPT, "application/json")
                        // The answer carries the claim's private key: the connection closes after
                        // it, so its TLS and HTTP buffers are freed (and wiped, see
                        // docs/architecture.md, "Secrets in memory") instead of idling in the pool.
                        .header(http::header::CONNECTION, "close")
                        .body(body.clone())
                },
                |a| {
                    if a.status == 404 {
                        Err(Failure::Fatal(ClaimError::TemplateNotFound {
                            service: Service::Backend,
                            template: template.to_string(),
                        }))
                    } else {
                        Ok(a)
                    }
                },
            )
            .await?;
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
impl ThingDirectory for BackendClaimSource {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        let url = self.endpoint(&["v1", "things", thing.as_str()]);
        let answer = self
            .call(
                |token| {
                    self.http
                        .get(url.clone())
                        .bearer_auth(token)
                        .header(http::header::ACCEPT, "application/json")
                },
                Ok,
            )
            .await?;
        if answer.status == 404 {
            return Ok(None);
        }
        answer::backend_thing(&answer.body).map(Some)
    }
}
