//! The SoftAP transport: protocomm over plain HTTP on the device's own access point (ESP-IDF's
//! `protocomm_httpd`). `POST /<endpoint>` with the raw message as body; the device ties requests to a
//! session with a `session` cookie. Confidentiality comes from the protocomm security layer, not HTTP.
//!
//! A failed request gets no HTTP status from ESP-IDF: `protocomm_httpd.c` returns an error and
//! esp_http_server (`httpd_uri.c`, `httpd_sess.c`) closes the socket. So a connection closed after the
//! whole request was sent, before any answer, is told apart from a lost device by connecting again:
//! a device that accepts the new connection refused the request
//! ([`DeviceRefusal::ClosedWithoutAnswer`]); one that does not is gone ([`LinkError::Disconnected`]).
//! The probe is a bare TCP connect, no request: it starts no protocomm session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;

use super::{DeviceLink, DeviceRefusal, LinkError, LinkFault};

/// How long the probe after a closed connection waits to connect ([`HttpLink::failed`]).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether reqwest failed because the connection closed before any answer came (the request went).
fn closed_without_answer(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(hyper_error) = err.downcast_ref::<hyper::Error>() {
            return hyper_error.is_incomplete_message();
        }
        source = err.source();
    }
    false
}

/// ESP-IDF's httpd transport refuses bodies larger than this.
pub const HTTP_MAX_MESSAGE_BYTES: usize = 4096;

/// A device reached over HTTP (typically `http://192.168.4.1:80` on its SoftAP).
#[derive(Debug)]
pub struct HttpLink {
    base: Url,
    client: reqwest::Client,
    cookie: Mutex<Option<String>>,
    in_flight: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    timeout: Duration,
}

impl HttpLink {
    /// A link to the device at `base_url` (`http://host:port`), with a per-exchange timeout.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, LinkError> {
        let invalid = || {
            LinkError::Other(LinkFault::DeviceUrl {
                url: base_url.to_owned(),
            })
        };
        let base = Url::parse(base_url).map_err(|_| invalid())?;
        if base.scheme() != "http" || base.cannot_be_a_base() {
            return Err(invalid());
        }
        let client = crate::net::HttpConfig {
            connect_timeout: timeout,
            request_timeout: timeout,
            ..crate::net::HttpConfig::default()
        }
        // Never through a proxy: `HTTP_PROXY` in the environment must not send 192.168.4.1 away.
        .device_client()
        .map_err(|e| LinkError::Other(LinkFault::HttpClient(e)))?;
        Ok(Self {
            base,
            client,
            cookie: Mutex::new(None),
            in_flight: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
            timeout,
        })
    }

    /// What a failed request (or body read) means for the link: the client's timeout, which
    /// covers the whole exchange body included, is [`LinkError::Timeout`].
    fn link_error(&self, e: reqwest::Error) -> LinkError {
        if e.is_timeout() {
            LinkError::Timeout {
                millis: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            }
        } else if e.is_connect() {
            LinkError::Disconnected
        } else {
            LinkError::Other(LinkFault::Http(e.to_string()))
        }
    }

    /// A failed request: a connection the device closed without answering (hyper's "incomplete
    /// message") is a refusal if the device still takes connections, a lost device if not.
    async fn failed(&self, e: reqwest::Error) -> LinkError {
        if !closed_without_answer(&e) {
            return self.link_error(e);
        }
        if self.device_listens().await {
            LinkError::DeviceError(DeviceRefusal::ClosedWithoutAnswer)
        } else {
            LinkError::Disconnected
        }
    }

    /// Whether a new TCP connection to the device succeeds (closed again at once).
    async fn device_listens(&self) -> bool {
        let (Some(host), Some(port)) = (self.base.host_str(), self.base.port_or_known_default())
        else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let wait = self.timeout.min(PROBE_TIMEOUT);
        matches!(
            tokio::time::timeout(wait, tokio::net::TcpStream::connect((host, port))).await,
            Ok(Ok(_))
        )
    }

    fn cookie(&self) -> Option<String> {
        self.cookie
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl DeviceLink for HttpLink {
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(LinkError::Disconnected);
        }
        if request.len() > HTTP_MAX_MESSAGE_BYTES {
            return Err(LinkError::TooLarge {
                len: request.len(),
                max: HTTP_MAX_MESSAGE_BYTES,
            });
        }
        let _one_at_a_time = self.in_flight.try_lock().map_err(|_| LinkError::Busy)?;
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(endpoint);
        }
        let mut req = self
            .client
            .post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "text/plain")
            .body(request.to_vec());
        if let Some(cookie) = self.cookie() {
            req = req.header(http::header::COOKIE, cookie);
        }
        let mut response = match req.send().await {
            Ok(response) => response,
            Err(e) => return Err(self.failed(e).await),
        };
        if let Some(set) = response
            .headers()
            .get(http::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            if let Some(pair) = set
                .split(';')
                .next()
                .filter(|p| p.trim_start().starts_with("session="))
            {
                *self.cookie.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(pair.trim().to_owned());
            }
        }
        match response.status().as_u16() {
            200 => {}
            404 => return Err(LinkError::UnknownEndpoint(endpoint.to_owned())),
            413 => {
                return Err(LinkError::TooLarge {
                    len: request.len(),
                    max: HTTP_MAX_MESSAGE_BYTES,
                })
            }
            500 => return Err(LinkError::DeviceError(DeviceRefusal::HttpStatus(500))),
            status => return Err(LinkError::Other(LinkFault::HttpStatus(status))),
        }
        // Bounded reads: a stated length over the cap is refused before any of the body is read, and
        // an answer without one (chunked) is refused as soon as it passes the cap. Dropping the
        // response closes the connection. The client's timeout covers the body too, so a device
        // that drips bytes ends in `Timeout`.
        if let Some(len) = response.content_length() {
            if len > HTTP_MAX_MESSAGE_BYTES as u64 {
                return Err(LinkError::TooLarge {
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                    max: HTTP_MAX_MESSAGE_BYTES,
                });
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.link_error(e))? {
            if body.len() + chunk.len() > HTTP_MAX_MESSAGE_BYTES {
                return Err(LinkError::TooLarge {
                    len: body.len() + chunk.len(),
                    max: HTTP_MAX_MESSAGE_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn max_message_bytes(&self) -> usize {
        HTTP_MAX_MESSAGE_BYTES
    }

    fn over_device_access_point(&self) -> bool {
        true
    }

    /// Opens the link again after [`disconnect`](DeviceLink::disconnect); the device's session cookie
    /// is forgotten, as a new connection forgets the session.
    async fn connect(&self) -> Result<(), LinkError> {
        *self.cookie.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.closed.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn disconnect(&self) {
        self.closed.store(true, Ordering::SeqCst);
        *self.cookie.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn describe(&self) -> String {
        format!("http {}", self.base.authority())
    }
}
