//! A fake AWS Lambda Runtime API on 127.0.0.1, for running the real `claimlink-backend` binary as a
//! Lambda function would be run: the binary (started with `AWS_LAMBDA_RUNTIME_API` pointing here) polls
//! `GET /2018-06-01/runtime/invocation/next`, gets the invocation the test queued, with the headers
//! Lambda sends (`Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`,
//! `-Trace-Id`), and posts its answer to `/2018-06-01/runtime/invocation/{id}/response` or
//! `/error` (or `/2018-06-01/runtime/init/error` when it cannot start), which the test reads back.
//! Paths, methods, headers and the 202 answers follow AWS's "Using the Lambda runtime API for custom
//! runtimes" (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, Mutex};

/// How long a test waits for the function's answer before failing (a hang guard, not a timing test).
const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// The ARN the fake hands the function as `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:claimlink-test";

/// What the function posted back for one invocation (or at start). Some fields are read only through
/// `Debug`, in failure messages.
#[allow(dead_code)]
#[derive(Debug)]
pub enum Posted {
    /// `POST /runtime/invocation/{id}/response`: the function's result.
    Response {
        request_id: String,
        body: serde_json::Value,
    },
    /// `POST /runtime/invocation/{id}/error`: the function failed this invocation.
    Error {
        request_id: String,
        error_type: Option<String>,
        body: serde_json::Value,
    },
    /// `POST /runtime/init/error`: the function could not start.
    InitError {
        error_type: Option<String>,
        body: serde_json::Value,
    },
    /// A request to a path or with a method the Runtime API does not have.
    Unknown { method: String, path: String },
}

struct Queued {
    request_id: String,
    event: Vec<u8>,
}

#[derive(Clone)]
struct Shared {
    queued: Arc<Mutex<mpsc::UnboundedReceiver<Queued>>>,
    posted: mpsc::UnboundedSender<Posted>,
}

/// The fake Runtime API: queue invocations with [`FakeRuntimeApi::invoke`], read the answers with
/// [`FakeRuntimeApi::next_posted`].
pub struct FakeRuntimeApi {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Queued>,
    posted: mpsc::UnboundedReceiver<Posted>,
    next_id: u32,
}

impl FakeRuntimeApi {
    /// Starts the fake on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let (posted_tx, posted) = mpsc::unbounded_channel();
        let shared = Shared {
            queued: Arc::new(Mutex::new(queued)),
            posted: posted_tx,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(unknown)
            .with_state(shared);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake Runtime API");
        });
        FakeRuntimeApi {
            addr,
            queue,
            posted,
            next_id: 0,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues one invocation with `event` as its payload; returns its request id.
    pub fn invoke(&mut self, event: &[u8]) -> String {
        self.next_id += 1;
        let request_id = format!("8476a536-e9f4-11e8-9739-{:012x}", self.next_id);
        self.queue
            .send(Queued {
                request_id: request_id.clone(),
                event: event.to_vec(),
            })
            .expect("the fake Runtime API is running");
        request_id
    }

    /// The next thing the function posted (its answer to an invocation, or an init error).
    pub async fn next_posted(&mut self) -> Posted {
        tokio::time::timeout(ANSWER_WAIT, self.posted.recv())
            .await
            .expect("the function posted nothing to the Runtime API within 60 s")
            .expect("the fake Runtime API stopped")
    }

    /// Invokes the function with `event` and returns the JSON it posted as its response; fails the
    /// test when it posted anything else, or for another request.
    pub async fn invoke_for_response(&mut self, event: &serde_json::Value) -> serde_json::Value {
        let id = self.invoke(&serde_json::to_vec(event).expect("a JSON event"));
        match self.next_posted().await {
            Posted::Response { request_id, body } if request_id == id => body,
            other => {
                panic!("wanted the response to invocation {id}, the function posted {other:?}")
            }
        }
    }

    /// Starts `binary` as Lambda starts a custom runtime's `bootstrap`: no arguments, the Runtime API's
    /// address and the function's reserved variables in its environment, plus `extra_env`. Its stderr
    /// is piped; the child is killed when dropped.
    pub fn spawn_function(&self, binary: &Path, extra_env: &BTreeMap<String, String>) -> Child {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "claimlink-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/30/[$LATEST]0123456789abcdef",
            )
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/claimlink-test")
            .env("AWS_REGION", "eu-west-1")
            .envs(extra_env)
            .stdin(Stdio::null())
            // Read by tests that wait for the function to stop (keep RUST_LOG low in the others).
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command.spawn().expect("start the backend binary")
    }
}

async fn next_invocation(State(shared): State<Shared>) -> Response {
    // Like Lambda, this answers only when there is an invocation: the function waits here meanwhile.
    let next = shared.queued.lock().await.recv().await;
    let Some(Queued { request_id, event }) = next else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|now| now.as_millis() + 5_000)
        .unwrap_or_default();
    (
        [
            ("lambda-runtime-aws-request-id", request_id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                FUNCTION_ARN.to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                    .to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        event,
    )
        .into_response()
}

fn json_or_text(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn invocation_response(
    State(shared): State<Shared>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let _ = shared.posted.send(Posted::Response {
        request_id,
        body: json_or_text(&body),
    });
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn invocation_error(
    State(shared): State<Shared>,
    UrlPath(request_id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = error_type(&headers);
    let _ = shared.posted.send(Posted::Error {
        request_id,
        error_type,
        body: json_or_text(&body),
    });
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn init_error(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let error_type = error_type(&headers);
    let _ = shared.posted.send(Posted::InitError {
        error_type,
        body: json_or_text(&body),
    });
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn unknown(State(shared): State<Shared>, request: axum::extract::Request) -> Response {
    let _ = shared.posted.send(Posted::Unknown {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    });
    StatusCode::NOT_FOUND.into_response()
}
