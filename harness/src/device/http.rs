//! A simulated device served over HTTP on 127.0.0.1, as ESP-IDF's `protocomm_httpd` serves it in
//! SoftAP mode: `POST /<endpoint>`, body ≤ 4096 bytes, sessions by `session` cookie.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::task::JoinHandle;

use super::{DeviceFailure, SimDevice};

/// ESP-IDF's httpd refuses larger bodies.
pub const MAX_BODY: usize = 4096;

/// A device reachable at `http://127.0.0.1:<port>`. Dropping it stops the server.
pub struct HttpDevice {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpDevice {
    /// Serves `device` on an ephemeral port.
    pub async fn serve(device: Arc<SimDevice>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/{endpoint}", post(handle))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(device);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
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

fn session_of(headers: &HeaderMap) -> Option<u64> {
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
    State(device): State<Arc<SimDevice>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (id, new) = match session_of(&headers) {
        Some(id) => (id, false),
        None => (device.new_connection_id() >> 1, true),
    };
    let mut response = match device.handle(id, &endpoint, &body) {
        Ok(answer) => (StatusCode::OK, answer).into_response(),
        Err(DeviceFailure::UnknownEndpoint) => StatusCode::NOT_FOUND.into_response(),
        Err(DeviceFailure::Refused(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Err(DeviceFailure::Stopped) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    if new {
        if let Ok(v) = HeaderValue::from_str(&format!("session={id}")) {
            response
                .headers_mut()
                .insert(axum::http::header::SET_COOKIE, v);
        }
    }
    response
}
