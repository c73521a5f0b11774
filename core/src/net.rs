//! The HTTPS client every cloud call goes through, and the retry discipline around it.
//!
//! TLS is rustls with the *ring* crypto provider (no OpenSSL, and about 0.7 MiB smaller on a phone than
//! aws-lc-rs). Trust anchors are the Mozilla roots (webpki-roots) plus any CA certificates the app adds
//! for a private backend; certificate verification cannot be turned off.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

/// Why an HTTPS exchange failed, as the network layer sees it. The callers (the claim sources) turn it
/// into their own error; a service's *answer* (401, 404, a refusal) is theirs to classify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The HTTPS client could not be set up (an extra root certificate that is not a certificate, a
    /// TLS configuration the provider refuses).
    #[error("{0}")]
    Setup(String),
    /// Throttled on every attempt.
    #[error("throttled on all {attempts} attempts")]
    Throttled {
        /// Attempts made.
        attempts: u32,
    },
    /// The service failed (5xx) on every attempt.
    #[error("HTTP {status} on all {attempts} attempts")]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The service could not be reached, or did not answer in time.
    #[error("{message}")]
    Network {
        /// What failed (URL and cause; never headers or bodies).
        message: String,
        /// Whether the last attempt timed out.
        timed_out: bool,
    },
    /// The answer's body was larger than the SDK reads.
    #[error("the answer body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
}

/// How the SDK talks HTTPS.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Extra trust anchors (PEM, one or more `CERTIFICATE` blocks), added to the Mozilla roots. For a
    /// backend behind a private CA, or the harness's emulator.
    pub extra_root_certificates_pem: Vec<String>,
    /// Time allowed to establish a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Time allowed for one whole request/response exchange.
    pub request_timeout: Duration,
    /// The proxy the backend and AWS requests go through (`http://host:port`), as the platform
    /// reports it (Android: `ConnectivityManager.getDefaultProxy()`; iOS: the system's proxy
    /// settings). `None`: the environment's `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY`,
    /// as reqwest reads them. Never used for a device: the SoftAP link goes straight to the device
    /// (192.168.4.1 is on the device's own network, which no proxy reaches).
    pub proxy: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            extra_root_certificates_pem: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(20),
            proxy: None,
        }
    }
}

/// The largest answer body the SDK reads. A claim answer is about 4 KiB.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

impl HttpConfig {
    /// Builds the client for the backend and AWS: rustls + ring, TLS 1.2/1.3, HTTP/1.1, through
    /// [`proxy`](Self::proxy) when set, else the environment's proxies.
    pub(crate) fn client(&self) -> Result<reqwest::Client, NetError> {
        let mut builder = self.builder()?;
        if let Some(url) = &self.proxy {
            // An explicit proxy replaces the environment's (reqwest stops reading them).
            let proxy = reqwest::Proxy::all(url.as_str())
                .map_err(|e| NetError::Setup(format!("the proxy URL is not usable: {e}")))?;
            builder = builder.proxy(proxy);
        }
        builder
            .build()
            .map_err(|e| NetError::Setup(format!("HTTP client setup failed: {e}")))
    }

    /// Builds the client for a device's SoftAP link: as [`client`](Self::client), but never through a
    /// proxy, neither [`proxy`](Self::proxy) nor the environment's.
    pub(crate) fn device_client(&self) -> Result<reqwest::Client, NetError> {
        self.builder()?
            .no_proxy()
            .build()
            .map_err(|e| NetError::Setup(format!("HTTP client setup failed: {e}")))
    }

    fn builder(&self) -> Result<reqwest::ClientBuilder, NetError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for pem in &self.extra_root_certificates_pem {
            let mut found = 0usize;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|_| {
                    NetError::Setup("an extra root certificate is not valid PEM".into())
                })?;
                roots.add(cert).map_err(|e| {
                    NetError::Setup(format!("an extra root certificate was refused: {e}"))
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(NetError::Setup(
                    "an extra root certificate PEM holds no CERTIFICATE block".into(),
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Setup(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .user_agent(concat!("claimlink/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none()))
    }
}

/// Bounded exponential backoff with jitter, for throttling, 5xx answers and network failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub base_delay: Duration,
    /// No delay is longer than this, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based): between half and all of
    /// `base · 2^(attempt−1)`, capped at `max_delay`; a server's `Retry-After` is honoured up to the cap.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = half.mul_f64(fastrand::f64());
        let backoff = half + jitter;
        match retry_after {
            Some(asked) => asked.min(self.max_delay).max(backoff),
            None => backoff,
        }
    }
}

/// An HTTP answer, read whole, with what the deadline logic needs: the server's `Date` and the
/// monotonic instant the answer arrived. Its body may be a claim (with its private key): it is wiped
/// when dropped, and `Debug` shows only its length.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Zeroizing<Vec<u8>>,
    pub server_date: Option<SystemTime>,
    pub received_at: Instant,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("server_date", &self.server_date)
            .finish_non_exhaustive()
    }
}

/// Appends `chunk`; when the buffer must grow, the old allocation is wiped, not just freed.
fn append_wiping(body: &mut Zeroizing<Vec<u8>>, chunk: &[u8]) {
    if body.capacity() - body.len() < chunk.len() {
        let capacity = (body.len() + chunk.len())
            .max(body.capacity().saturating_mul(2))
            .min(MAX_BODY_BYTES);
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(body);
        *body = grown;
    }
    body.extend_from_slice(chunk);
}

impl Answer {
    /// Sends `request` and reads the answer (body capped at [`MAX_BODY_BYTES`], checked against
    /// `Content-Length` first and while reading; the client's timeout covers the body).
    pub async fn fetch<E: From<NetError>>(
        request: reqwest::RequestBuilder,
    ) -> Result<Self, Failure<E>> {
        let mut response = request.send().await.map_err(Failure::from_reqwest)?;
        let received_at = Instant::now();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let server_date = headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        // A stated length over the cap is refused before any of the body is read (dropping the
        // response closes the connection); an answer without one is capped while it is read.
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(Failure::Fatal(
                NetError::BodyTooLarge {
                    limit: MAX_BODY_BYTES,
                }
                .into(),
            ));
        }
        let expected = response
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(MAX_BODY_BYTES);
        let mut body = Zeroizing::new(Vec::with_capacity(expected));
        while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Failure::Fatal(
                    NetError::BodyTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                    .into(),
                ));
            }
            append_wiping(&mut body, &chunk);
        }
        Ok(Self {
            status,
            headers,
            body,
            server_date,
            received_at,
        })
    }

    /// The `Retry-After` header in seconds, if present.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// Why one attempt did not produce a usable answer. `E` is the caller's error, for answers that
/// retrying cannot fix.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    /// Throttled: try again later.
    Throttled { retry_after: Option<Duration> },
    /// The service failed (5xx): try again later.
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The service could not be reached or did not answer in time: try again.
    Network { message: String, timed_out: bool },
    /// Retrying will not help.
    Fatal(E),
}

impl<E> Failure<E> {
    fn from_reqwest(e: reqwest::Error) -> Self {
        // reqwest's message names the URL and the cause, never headers or bodies.
        let timed_out = e.is_timeout();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Failure::Network { message, timed_out }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's attempts are used up; sleeps
/// between attempts as the policy says. `attempt` gets the 1-based attempt number.
pub(crate) async fn with_retries<T, E, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Result<T, E>
where
    E: From<NetError>,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let max = policy.max_attempts.max(1);
    let mut n = 1;
    loop {
        let failure = match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(failure) => failure,
        };
        if n >= max {
            return Err(match failure {
                Failure::Throttled { .. } => NetError::Throttled { attempts: n }.into(),
                Failure::Unavailable { status, .. } => NetError::Unavailable {
                    status,
                    attempts: n,
                }
                .into(),
                Failure::Network { message, timed_out } => {
                    NetError::Network { message, timed_out }.into()
                }
                Failure::Fatal(e) => e,
            });
        }
        let retry_after = match &failure {
            Failure::Throttled { retry_after } | Failure::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        };
        let delay = policy.delay_after(n, retry_after);
        tracing::debug!(attempt = n, ?delay, reason = ?failure_kind(&failure), "retrying");
        tokio::time::sleep(delay).await;
        n += 1;
    }
}

fn failure_kind<E>(f: &Failure<E>) -> &'static str {
    match f {
        Failure::Throttled { .. } => "throttled",
        Failure::Unavailable { .. } => "unavailable",
        Failure::Network { .. } => "network",
        Failure::Fatal(_) => "fatal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        for _ in 0..50 {
            let d1 = p.delay_after(1, None);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.delay_after(3, None);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = p.delay_after(9, None);
            assert!(d9 <= Duration::from_millis(700), "{d9:?}");
        }
        assert_eq!(
            p.delay_after(1, Some(Duration::from_secs(60))),
            Duration::from_millis(700)
        );
    }

    #[tokio::test]
    async fn retries_stop_after_the_policy_and_name_the_last_failure() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<(), NetError> = with_retries(&p, |_| {
            calls += 1;
            async {
                Err(Failure::Unavailable {
                    status: 503,
                    retry_after: None,
                })
            }
        })
        .await;
        assert_eq!(calls, 3);
        assert!(matches!(
            r,
            Err(NetError::Unavailable {
                status: 503,
                attempts: 3
            })
        ));
    }

    #[test]
    fn extra_roots_must_be_certificates() {
        let cfg = HttpConfig {
            extra_root_certificates_pem: vec!["not a pem".into()],
            ..HttpConfig::default()
        };
        assert!(matches!(cfg.client(), Err(NetError::Setup(_))));
    }
}
