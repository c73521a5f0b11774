//! A simulated device served over HTTP on 127.0.0.1, as ESP-IDF's `protocomm_httpd` serves it in
//! SoftAP mode: `POST /<endpoint>`, body ≤ 4096 bytes.
//!
//! Sessions follow ESP-IDF: a request whose `Cookie: session=<id>` matches the current session, or
//! that arrives on the current session's TCP connection, continues it; any other request starts a new
//! session (closing the old one) and its answer carries `Set-Cookie: session=<id>`. Header names are
//! sent in Title-Case, as ESP-IDF's httpd does (ESP-IDF's own Python client matches `Set-Cookie`
//! case-sensitively).
//!
//! A request whose handler fails gets no HTTP answer: the socket is closed, as ESP-IDF does
//! (`protocomm_httpd.c` `common_post_handler` returns `ESP_FAIL` for an empty or over-4096-byte body
//! and for a failed endpoint handler; esp_http_server's `httpd_uri.c` then returns `ESP_FAIL` —
//! "Handler returns error, this socket should be closed" — and `httpd_sess.c` deletes the session,
//! closing the socket). Once provisioning has stopped the server is gone: the listener is closed, a
//! connection is refused.
//!
//! Not in ESP-IDF: `GET /_sim/state` reports what the simulated device holds, so that binding tests in
//! other languages can check that a cancelled run wiped the claim; `GET /_sim/gatt` gives the GATT
//! table the device would offer over BLE ([`super::gatt::FakeGatt`]'s layout), so that a test's fake
//! BLE stack in another language (the Android binding's JVM tests) offers the same table and carries
//! each characteristic's write + read as a `POST` of that endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinHandle;

use crate::device::{DeviceFailure, SimDevice};

/// ESP-IDF's httpd refuses larger bodies.
pub const MAX_BODY: usize = 4096;

/// Marks an answer that must not be sent: the connection is closed instead (a failed handler).
#[derive(Clone, Copy)]
struct CloseWithoutAnswer;

/// What the connection task gets back for a [`CloseWithoutAnswer`] answer: hyper closes the
/// connection without writing a response when the service fails.
#[derive(Debug)]
struct HandlerFailed;

impl std::fmt::Display for HandlerFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handler failed: socket closed")
    }
}

impl std::error::Error for HandlerFailed {}

/// How often the server looks whether provisioning stopped (then it stops listening).
const STOP_POLL: std::time::Duration = std::time::Duration::from_millis(5);

#[derive(Clone, Copy)]
struct Connection(u64);

#[derive(Default)]
struct Sessions {
    cookie: Option<u32>,
    socket: Option<u64>,
}

struct Shared {
    device: Arc<SimDevice>,
    sessions: Mutex<Sessions>,
}

/// A device reachable at `http://127.0.0.1:<port>`. Dropping it stops the server.
pub struct HttpDevice {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpDevice {
    /// Serves `device` on an ephemeral port.
    pub async fn serve(device: Arc<SimDevice>) -> std::io::Result<Self> {
        Self::serve_on(device, 0).await
    }

    /// Serves `device` on `port` of 127.0.0.1 (0: any free port).
    pub async fn serve_on(device: Arc<SimDevice>, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            device,
            sessions: Mutex::new(Sessions::default()),
        });
        let app = Router::new()
            .route("/{endpoint}", post(handle))
            .route("/_sim/state", axum::routing::get(state))
            .route("/_sim/gatt", axum::routing::get(gatt_table))
            // Larger bodies reach the handler, which closes the socket as ESP-IDF does.
            .layer(DefaultBodyLimit::max(64 * 1024))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let mut poll = tokio::time::interval(STOP_POLL);
            loop {
                let tcp = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                    _ = poll.tick() => {
                        if shared.device.provisioning_stopped() {
                            // The SoftAP service is gone: nothing listens any more.
                            return;
                        }
                        continue;
                    }
                };
                let connection = Connection(shared.device.new_connection_id());
                let app = app.clone().layer(Extension(connection));
                let service = hyper::service::service_fn(move |request| {
                    let app = app.clone();
                    async move {
                        let response = match tower::ServiceExt::oneshot(app, request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        };
                        if response.extensions().get::<CloseWithoutAnswer>().is_some() {
                            return Err(HandlerFailed);
                        }
                        Ok(response)
                    }
                });
                tokio::spawn(async move {
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http1().title_case_headers(true);
                    let _ = builder
                        .http1_only()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /_sim/state`: what the simulated device holds, for binding tests (a real device has no such
/// page): `{"name":…,"holds_claim":…,"thing_name":…}`.
async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let device = &shared.device;
    let body = serde_json::json!({
        "name": device.config().name,
        "holds_claim": device.holds_claim(),
        "thing_name": device.thing_name(),
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /_sim/gatt`: the device's GATT table, for binding tests (a real device has no such page):
/// `{"characteristics":[{"service":UUID,"uuid":UUID,"user_description":"prov-session"|null}]}`,
/// UUIDs in the canonical lower-case form. A description that is not UTF-8 is given as `null`
/// (the table built here has none).
async fn gatt_table(State(shared): State<Arc<Shared>>) -> Response {
    let uuid = |u: u128| {
        let hex = format!("{u:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    };
    let gatt = super::gatt::FakeGatt::new(shared.device.clone(), Default::default());
    let characteristics: Vec<_> = gatt
        .layout()
        .into_iter()
        .map(|(c, description)| {
            serde_json::json!({
                "service": uuid(c.service),
                "uuid": uuid(c.uuid),
                "user_description": description.and_then(|d| String::from_utf8(d).ok()),
            })
        })
        .collect();
    let body = serde_json::json!({ "characteristics": characteristics });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn cookie_of(headers: &HeaderMap) -> Option<u32> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix("session=")
                .and_then(|id| id.parse().ok())
        })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(Connection(connection)): Extension<Connection>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, new) = {
        let mut s = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let cookie = cookie_of(&headers);
        match s.cookie {
            Some(current)
                if cookie == Some(current)
                    || (cookie.is_none() && s.socket == Some(connection)) =>
            {
                (current, false)
            }
            _ => {
                let id = (shared.device.new_connection_id() & 0x7fff_ffff) as u32;
                s.cookie = Some(id);
                s.socket = Some(connection);
                (id, true)
            }
        }
    };
    let close = || {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(CloseWithoutAnswer);
        response
    };
    // protocomm_httpd.c: no body (Content-Length 0) or one over 4096 bytes fails the request.
    if body.is_empty() || body.len() > MAX_BODY {
        tracing::debug!(endpoint, len = body.len(), "request refused: body length");
        return close();
    }
    let mut response = match shared.device.handle(u64::from(session), &endpoint, &body) {
        Ok(answer) => (StatusCode::OK, answer).into_response(),
        Err(DeviceFailure::UnknownEndpoint) => StatusCode::NOT_FOUND.into_response(),
        Err(DeviceFailure::Refused(why)) => {
            tracing::debug!(endpoint, %why, "request refused");
            return close();
        }
        Err(DeviceFailure::Stopped) => return close(),
    };
    if new {
        if let Ok(v) = HeaderValue::from_str(&format!("session={session}")) {
            response
                .headers_mut()
                .insert(axum::http::header::SET_COOKIE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::SimDeviceConfig;

    /// `GET /_sim/gatt` is the fake GATT table's layout (what the Android binding's JVM tests offer
    /// to the SDK): every endpoint under ESP-IDF's service, named by its 0x2901 description.
    #[tokio::test]
    async fn the_gatt_table_is_served_as_the_fake_gatt_lays_it_out() {
        let device = Arc::new(SimDevice::new(SimDeviceConfig::default()));
        let server = HttpDevice::serve(device.clone()).await.expect("serve");
        // Plain HTTP/1.1 over a socket (no client with a TLS provider needed).
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = server.base_url().trim_start_matches("http://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        tcp.write_all(b"GET /_sim/gatt HTTP/1.1\r\nHost: device\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).await.expect("response");
        let (head, json) = raw.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let body: serde_json::Value = serde_json::from_str(json).expect("json");
        let characteristics = body["characteristics"].as_array().expect("characteristics");
        let layout = super::super::gatt::FakeGatt::new(device, Default::default()).layout();
        assert_eq!(characteristics.len(), layout.len());
        let names: Vec<&str> = characteristics
            .iter()
            .filter_map(|c| c["user_description"].as_str())
            .collect();
        for endpoint in ["prov-session", "proto-ver", "prov-config", "aws-claim"] {
            assert!(
                names.contains(&endpoint),
                "{endpoint} missing from {names:?}"
            );
        }
        for c in characteristics {
            assert_eq!(c["service"], "021a9004-0382-4aea-bff4-6b3f1c5adfb4");
            let uuid = c["uuid"].as_str().expect("uuid");
            assert_eq!(uuid.len(), 36, "{uuid}");
            assert!(uuid.starts_with("021aff"), "{uuid}");
        }
    }
}
