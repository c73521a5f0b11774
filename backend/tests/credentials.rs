//! The AWS credential chain, each link against its real protocol on 127.0.0.1: environment, profile
//! files, web identity (STS AssumeRoleWithWebIdentity), container credentials, IMDSv2; the order
//! between them, and the cache of temporary credentials.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use claimlink_backend::credentials::{CredentialChain, CredentialSource};
use serde_json::json;

const LATER: &str = "2099-01-01T00:00:00Z";

/// The AWS endpoints the chain talks to, on 127.0.0.1; counts the credential answers.
async fn fake_aws(served: Arc<AtomicU64>) -> String {
    let (s1, s2, s3) = (served.clone(), served.clone(), served);
    let app = axum::Router::new()
        .route("/container-creds", get(move |h: HeaderMap| async move {
            if h.get("authorization").map(|v| v.as_bytes()) != Some(b"container-token") {
                return StatusCode::FORBIDDEN.into_response();
            }
            s1.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"AccessKeyId": "ASIACONTAINER", "SecretAccessKey": "s", "Token": "t", "Expiration": LATER})).into_response()
        }))
        .route("/latest/api/token", put(|h: HeaderMap| async move {
            if h.get("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                return (StatusCode::BAD_REQUEST, String::new());
            }
            (StatusCode::OK, "imds-session".to_owned())
        }))
        .route("/latest/meta-data/iam/security-credentials/", get(|h: HeaderMap| async move {
            if h.get("x-aws-ec2-metadata-token").map(|v| v.as_bytes()) != Some(b"imds-session") {
                return (StatusCode::UNAUTHORIZED, String::new());
            }
            (StatusCode::OK, "backend-role\n".to_owned())
        }))
        .route("/latest/meta-data/iam/security-credentials/backend-role", get(move |h: HeaderMap| async move {
            if h.get("x-aws-ec2-metadata-token").map(|v| v.as_bytes()) != Some(b"imds-session") {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            s2.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"Code": "Success", "AccessKeyId": "ASIAIMDS", "SecretAccessKey": "s", "Token": "t", "Expiration": LATER})).into_response()
        }))
        .route("/sts/", post(move |body: axum::body::Bytes| async move {
            let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            let ok = form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity")
                && form.get("RoleArn").map(String::as_str) == Some("arn:aws:iam::123456789012:role/backend")
                && form.get("WebIdentityToken").map(String::as_str) == Some("oidc-jwt");
            if !ok {
                return (StatusCode::BAD_REQUEST, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>".to_owned());
            }
            s3.fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                 <AccessKeyId>ASIAWEBID</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
                 <SessionToken>t</SessionToken><Expiration>{LATER}</Expiration></Credentials>\
                 </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"))
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn chain(vars: &[(&str, String)], home: Option<&std::path::Path>) -> CredentialChain {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    CredentialChain::new(
        |k| vars.get(k).cloned(),
        home.map(|h| h.to_path_buf()),
        "us-east-1",
    )
    .unwrap()
}

async fn key_id(c: &CredentialChain) -> Result<String, String> {
    c.credentials()
        .await
        .map(|c| c.access_key_id)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn each_link_of_the_chain_in_order() {
    let served = Arc::new(AtomicU64::new(0));
    let base = fake_aws(served.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("web-identity");
    std::fs::write(&token_file, "oidc-jwt\n").unwrap();
    let imds = ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.clone());
    let container = (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{base}/container-creds"),
    );
    let container_token = (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "container-token".to_owned(),
    );
    let web = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/backend".to_owned(),
        ),
        ("AWS_ENDPOINT_URL_STS", format!("{base}/sts/")),
    ];
    // IMDSv2 last.
    assert_eq!(
        key_id(&chain(std::slice::from_ref(&imds), Some(home.path())))
            .await
            .unwrap(),
        "ASIAIMDS"
    );
    // Container credentials before IMDS; the authorization token is sent.
    let c = [imds.clone(), container.clone(), container_token.clone()];
    assert_eq!(
        key_id(&chain(&c, Some(home.path()))).await.unwrap(),
        "ASIACONTAINER"
    );
    let wrong = [
        container.clone(),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "nope".to_owned()),
    ];
    assert!(key_id(&chain(&wrong, None))
        .await
        .unwrap_err()
        .contains("403"));
    // Web identity before the container.
    let mut w = c.to_vec();
    w.extend(web.iter().cloned());
    assert_eq!(
        key_id(&chain(&w, Some(home.path()))).await.unwrap(),
        "ASIAWEBID"
    );
    // The profile files before web identity: the named profile in ~/.aws/credentials, then config.
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = s\n",
    )
    .unwrap();
    assert_eq!(
        key_id(&chain(&w, Some(home.path()))).await.unwrap(),
        "AKIADEFAULT"
    );
    let mut p = w.clone();
    p.push(("AWS_PROFILE", "ops".to_owned()));
    assert_eq!(
        key_id(&chain(&p, Some(home.path()))).await.unwrap(),
        "AKIAOPS"
    );
    // The environment first.
    let mut e = p.clone();
    e.push(("AWS_ACCESS_KEY_ID", "AKIAENV".to_owned()));
    e.push(("AWS_SECRET_ACCESS_KEY", "s".to_owned()));
    assert_eq!(
        key_id(&chain(&e, Some(home.path()))).await.unwrap(),
        "AKIAENV"
    );
    // Nothing at all, IMDS disabled: a clear error.
    let none = chain(&[("AWS_EC2_METADATA_DISABLED", "true".to_owned())], None);
    assert!(key_id(&none)
        .await
        .unwrap_err()
        .contains("IMDS is disabled"));
}

#[tokio::test]
async fn temporary_credentials_are_cached_until_near_expiry() {
    let served = Arc::new(AtomicU64::new(0));
    let base = fake_aws(served.clone()).await;
    let c = chain(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", base)], None);
    for _ in 0..3 {
        assert_eq!(key_id(&c).await.unwrap(), "ASIAIMDS");
    }
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_container_url_off_loopback_over_http_is_refused() {
    let c = chain(
        &[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://203.0.113.9/creds".to_owned(),
        )],
        None,
    );
    assert!(key_id(&c)
        .await
        .unwrap_err()
        .contains("container credentials URL"));
}
