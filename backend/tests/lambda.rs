//! The real `claimlink-backend` binary run as AWS Lambda runs a custom runtime: started with no
//! arguments and `AWS_LAMBDA_RUNTIME_API` pointing at a fake Runtime API on 127.0.0.1
//! (`fake_runtime_api`), configured the way `backend/deploy/template.yaml` configures it (the TOML
//! from an SSM parameter, the database URL from a Secrets Manager secret, both served by a fake AWS
//! JSON endpoint here that checks the SigV4 signature's scope), then handed invocations: AWS IoT's
//! pre-provisioning hook input for the hook function, API Gateway HTTP API (payload 2.0) events for
//! the API function. The tests assert on what the binary posts back to the Runtime API. The records
//! are in SQLite, or in PostgreSQL when `CLAIMLINK_TEST_POSTGRES_URL` is set.

mod fake_runtime_api;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use claimlink_backend::store::AuditEntry;
use claimlink_backend::{ClaimRecord, ClaimStatus, Store};
use fake_runtime_api::{FakeRuntimeApi, Posted};
use serde_json::{json, Value};

const TEMPLATE: &str = "claimlink-device";
const TEMPLATE_ARN: &str =
    "arn:aws:iot:eu-west-1:123456789012:provisioningtemplate/claimlink-device";
const SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:claimlink-db-AbCdEf";
const CONFIG_PARAMETER: &str = "/claimlink/backend/config";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_claimlink-backend"))
}

fn now() -> i64 {
    claimlink_backend::store::now_secs()
}

/// A claim id as AWS makes them: 64 hex digits.
fn claim_id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn record(n: u8, serial: &str, expires_at: i64) -> ClaimRecord {
    ClaimRecord {
        certificate_id: claim_id(n),
        serial: serial.to_owned(),
        installer: "installer-sub-1".to_owned(),
        template: TEMPLATE.to_owned(),
        parameters: BTreeMap::new(),
        site: "lyon-3".to_owned(),
        thing_name: format!("claimlink-{serial}"),
        device_certificate_id: None,
        reprovision: false,
        issued_at: now(),
        expires_at,
        status: ClaimStatus::Issued,
    }
}

/// A fresh database holding `records` (a SQLite file in `dir`, or a new PostgreSQL database when
/// `CLAIMLINK_TEST_POSTGRES_URL` is set, as ./scripts/test does); its URL, which the function reads
/// from the fake Secrets Manager.
async fn database_with(dir: &Path, records: &[ClaimRecord]) -> (String, Store) {
    let url = support::database_url(dir).await;
    let store = Store::connect(&url).await.expect("open the test database");
    for r in records {
        let audit = AuditEntry::new(&r.installer, "claim.issue", "issued", "test");
        store.insert_claim(r, audit).await.expect("insert a claim");
    }
    (url, store)
}

/// What the fake AWS endpoint saw: (X-Amz-Target, Authorization, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

#[derive(Clone)]
struct FakeAws {
    seen: Seen,
    secret_string: Option<String>,
    config_toml: String,
}

/// A fake of the two AWS JSON 1.1 calls the functions make at start (SSM GetParameter, Secrets
/// Manager GetSecretValue) on 127.0.0.1; `secret_string: None` answers AccessDeniedException.
async fn start_fake_aws(secret_string: Option<String>, config_toml: &str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let state = FakeAws {
        seen: seen.clone(),
        secret_string,
        config_toml: config_toml.to_owned(),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(fake_aws_call))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("fake AWS") });
    (format!("http://{addr}"), seen)
}

async fn fake_aws_call(State(aws): State<FakeAws>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let target = header("x-amz-target");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    aws.seen
        .lock()
        .expect("lock")
        .push((target.clone(), header("authorization"), body.clone()));
    if header("content-type") != "application/x-amz-json-1.1" {
        return (StatusCode::BAD_REQUEST, "wrong content type").into_response();
    }
    let json_1_1 = [("content-type", "application/x-amz-json-1.1")];
    match target.as_str() {
        "AmazonSSM.GetParameter" if body["Name"] == CONFIG_PARAMETER && body["WithDecryption"] == true => (
            json_1_1,
            json!({"Parameter": {"Name": CONFIG_PARAMETER, "Type": "SecureString", "Value": aws.config_toml, "Version": 1}})
                .to_string(),
        )
            .into_response(),
        "secretsmanager.GetSecretValue" if body["SecretId"] == SECRET_ARN => match aws.secret_string {
            Some(s) => (json_1_1, json!({"ARN": SECRET_ARN, "Name": "claimlink-db", "SecretString": s}).to_string())
                .into_response(),
            None => (
                StatusCode::BAD_REQUEST,
                json_1_1,
                json!({"__type": "AccessDeniedException", "Message": "not authorized to perform: secretsmanager:GetSecretValue"})
                    .to_string(),
            )
                .into_response(),
        },
        _ => (
            StatusCode::BAD_REQUEST,
            json_1_1,
            json!({"__type": "com.amazon.coral.validate#ValidationException", "message": "unexpected call"}).to_string(),
        )
            .into_response(),
    }
}

/// The function's environment as the SAM template sets it, with the fakes' endpoints and the
/// function role's (fake) credentials, as Lambda puts them in the environment.
fn lambda_env(function: &str, aws_endpoint: &str) -> BTreeMap<String, String> {
    [
        ("CLAIMLINK_LAMBDA", function),
        ("CLAIMLINK_CONFIG_PARAMETER", CONFIG_PARAMETER),
        ("CLAIMLINK_DATABASE_SECRET_ARN", SECRET_ARN),
        (
            "CLAIMLINK_OIDC_ISSUER",
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
        ),
        ("CLAIMLINK_OIDC_AUDIENCE", "app-client-id"),
        ("AWS_ENDPOINT_URL_SSM", aws_endpoint),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_endpoint),
        ("AWS_ACCESS_KEY_ID", "ASIATESTFUNCTIONROLE"),
        ("AWS_SECRET_ACCESS_KEY", "function-role-secret"),
        ("AWS_SESSION_TOKEN", "function-role-session"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn hook_input(claim: &str, serial_parameter: &str, serial: &str) -> Value {
    json!({
        "claimCertificateId": claim,
        "certificateId": "ab".repeat(32),
        "certificatePem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "templateArn": TEMPLATE_ARN,
        "clientId": "221a6d10-9c7f-42f1-9153-e52e6fc869c1",
        "parameters": {serial_parameter: serial, "ThingName": "chosen-by-the-device"}
    })
}

fn denied() -> Value {
    json!({"allowProvisioning": false})
}

#[tokio::test]
async fn the_hook_function_lets_each_claim_register_its_own_serial_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db_url, store) = database_with(
        dir.path(),
        &[
            record(1, "SN-1", now() + 300),
            record(2, "SN-2", now() + 300),
            record(3, "SN-3", now() - 1),
        ],
    )
    .await;
    // The configuration in SSM names the serial parameter `Serial`: the hook must read that one.
    let config = "[claims]\nserial_parameter = \"Serial\"\nthing_name_prefix = \"claimlink-\"\n";
    let (aws, seen) = start_fake_aws(Some(db_url), config).await;
    let mut api = FakeRuntimeApi::start().await;
    let _function = api.spawn_function(binary(), &lambda_env("hook", &aws));

    // A claim that leaked, used by a device with another serial: refused, and not used up.
    assert_eq!(
        api.invoke_for_response(&hook_input(&claim_id(2), "Serial", "SN-1"))
            .await,
        denied()
    );
    // The device the claim was issued for: allowed, named from the record, not from what it sent.
    let allowed = api
        .invoke_for_response(&hook_input(&claim_id(1), "Serial", "SN-1"))
        .await;
    assert_eq!(allowed["allowProvisioning"], true, "{allowed}");
    let overrides = &allowed["parameterOverrides"];
    assert_eq!(overrides["ThingName"], "claimlink-SN-1", "{allowed}");
    assert_eq!(overrides["Serial"], "SN-1", "{allowed}");
    assert_eq!(overrides["Installer"], "installer-sub-1", "{allowed}");
    assert_eq!(overrides["Site"], "lyon-3", "{allowed}");
    // Used once: the same claim again is refused, even for its own serial.
    assert_eq!(
        api.invoke_for_response(&hook_input(&claim_id(1), "Serial", "SN-1"))
            .await,
        denied()
    );
    // Expired, unknown, or without the configured serial parameter: refused.
    assert_eq!(
        api.invoke_for_response(&hook_input(&claim_id(3), "Serial", "SN-3"))
            .await,
        denied()
    );
    assert_eq!(
        api.invoke_for_response(&hook_input(&claim_id(9), "Serial", "SN-9"))
            .await,
        denied()
    );
    assert_eq!(
        api.invoke_for_response(&hook_input(&claim_id(2), "SerialNumber", "SN-2"))
            .await,
        denied()
    );
    // The claim used through another template (its ARN in the hook input): refused.
    let mut other_template = hook_input(&claim_id(2), "Serial", "SN-2");
    other_template["templateArn"] =
        json!("arn:aws:iot:eu-west-1:123456789012:provisioningtemplate/other");
    assert_eq!(api.invoke_for_response(&other_template).await, denied());

    // Not AWS's hook input: an invocation error (AWS IoT then answers ACCESS_DENIED), and the
    // function goes on serving.
    for hostile in [&b"{\"parameters\": 42}"[..], b"not json", b"[]"] {
        let id = api.invoke(hostile);
        match api.next_posted().await {
            Posted::Error {
                request_id, body, ..
            } => {
                assert_eq!(request_id, id);
                assert!(
                    body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
                    "{body}"
                );
            }
            other => panic!("wanted an invocation error for {hostile:?}, got {other:?}"),
        }
    }
    // The claim the leaked use did not spend still registers its own device.
    let allowed = api
        .invoke_for_response(&hook_input(&claim_id(2), "Serial", "SN-2"))
        .await;
    assert_eq!(allowed["allowProvisioning"], true, "{allowed}");

    let consumed = store
        .claim(&claim_id(1))
        .await
        .expect("read")
        .expect("the claim");
    assert_eq!(consumed.status, ClaimStatus::Consumed);
    assert_eq!(consumed.device_certificate_id, Some("ab".repeat(32)));
    assert_eq!(
        store
            .claim(&claim_id(3))
            .await
            .expect("read")
            .expect("the claim")
            .status,
        ClaimStatus::Issued
    );

    // At start: the configuration from SSM, then the database URL from Secrets Manager, each signed
    // with the function role's credentials for its own service and the function's Region.
    let seen = seen.lock().expect("lock").clone();
    let targets: Vec<&str> = seen.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        ["AmazonSSM.GetParameter", "secretsmanager.GetSecretValue"]
    );
    for ((_, authorization, _), service) in seen.iter().zip(["ssm", "secretsmanager"]) {
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=ASIATESTFUNCTIONROLE/")
                && authorization.contains(&format!("/eu-west-1/{service}/aws4_request"))
                && authorization.contains("x-amz-target"),
            "{authorization}"
        );
    }
}

#[tokio::test]
async fn the_hook_function_stops_at_start_when_it_may_not_read_the_database_secret() {
    let (aws, _seen) = start_fake_aws(None, "").await;
    let api = FakeRuntimeApi::start().await;
    let mut env = lambda_env("hook", &aws);
    env.remove("CLAIMLINK_CONFIG_PARAMETER");
    let function = api.spawn_function(binary(), &env);
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        function.wait_with_output(),
    )
    .await
    .expect("the function stops by itself")
    .expect("its output");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AccessDeniedException") && stderr.contains(SECRET_ARN),
        "{stderr}"
    );
}

/// An API Gateway HTTP API event (payload format 2.0), as AWS documents it.
fn http_api_event(method: &str, path: &str, headers: Value, body: Option<&str>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10", "userAgent": "claimlink-test"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "30/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_796_054_400_000_i64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[tokio::test]
async fn the_api_function_answers_api_gateway_events_through_the_router() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db_url, _store) = database_with(dir.path(), &[]).await;
    let (aws, _seen) = start_fake_aws(Some(db_url), "").await;
    let mut api = FakeRuntimeApi::start().await;
    let mut env = lambda_env("api", &aws);
    env.remove("CLAIMLINK_CONFIG_PARAMETER");
    let _function = api.spawn_function(binary(), &env);
    let host = json!({"host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"});

    let health = api
        .invoke_for_response(&http_api_event("GET", "/healthz", host.clone(), None))
        .await;
    assert_eq!(health["statusCode"], 200, "{health}");
    assert_eq!(health["body"], "ok", "{health}");
    // The SDK measures a claim's lifetime on the server's clock: Date is there on Lambda too.
    assert!(
        health["headers"]["date"]
            .as_str()
            .is_some_and(|d| d.ends_with(" GMT")),
        "{health}"
    );

    // No bearer token, or a token that is not a JWT: 401 in the contract's error shape.
    let mut bad_token = host.clone();
    bad_token["authorization"] = json!("Bearer not-a-jwt");
    for headers in [host.clone(), bad_token] {
        let answer = api
            .invoke_for_response(&http_api_event(
                "GET",
                "/v1/things/claimlink-SN-1",
                headers,
                None,
            ))
            .await;
        assert_eq!(answer["statusCode"], 401, "{answer}");
        let body: Value =
            serde_json::from_str(answer["body"].as_str().unwrap_or("")).expect("a JSON error body");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    let claim = http_api_event(
        "POST",
        "/v1/provisioning-claims",
        host.clone(),
        Some(r#"{"templateName":"x"}"#),
    );
    assert_eq!(api.invoke_for_response(&claim).await["statusCode"], 401);
    let nowhere = api
        .invoke_for_response(&http_api_event("GET", "/v2/nowhere", host.clone(), None))
        .await;
    assert_eq!(nowhere["statusCode"], 404, "{nowhere}");
    // The HTTP hook route is not served behind API Gateway, however its path is spelled: AWS IoT
    // calls the hook function itself.
    let hook_input = json!({"claimCertificateId": claim_id(1), "templateArn": TEMPLATE_ARN, "parameters": {"SerialNumber": "SN-1"}})
        .to_string();
    for path in [
        "/v1/hooks/pre-provisioning",
        "/v1/hooks/pre-provisioning/",
        "/v1/hooks/pre%2Dprovisioning",
        "/V1/Hooks/Pre-Provisioning",
    ] {
        let event = http_api_event("POST", path, host.clone(), Some(&hook_input));
        let answer = api.invoke_for_response(&event).await;
        assert_eq!(answer["statusCode"], 404, "{path}: {answer}");
        assert!(
            !answer["body"]
                .as_str()
                .unwrap_or("")
                .contains("allowProvisioning"),
            "{path}: {answer}"
        );
    }
}
