//! The binary: `claimlink-backend serve` with no configuration starts on a local SQLite file and says
//! where; with a certificate in its configuration it serves HTTPS.

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::AsyncBufReadExt;

/// Starts the binary in `dir` with `args` and `env`; its first line.
async fn start(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_claimlink-backend"))
        .args(args)
        .envs(env.iter().copied())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("a first line");
    (child, line)
}

#[tokio::test]
async fn serve_without_configuration_uses_a_local_sqlite_file_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, line) = start(
        dir.path(),
        &["serve"],
        &[("CLAIMLINK_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let expected = format!(
        "records in SQLite file {}",
        dir.path().join("claimlink-backend.db").display()
    );
    assert!(
        line.starts_with("claimlink-backend listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(line.ends_with(&expected), "{line}");
    assert!(dir.path().join("claimlink-backend.db").is_file());
}

#[tokio::test]
async fn serve_speaks_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("backend.toml"),
        "database_url = \"sqlite://records.db\"\nlisten = \"127.0.0.1:0\"\n\
         [tls]\ncertificate_chain = \"cert.pem\"\nprivate_key = \"key.pem\"\n",
    )
    .unwrap();
    let (_child, line) = start(dir.path(), &["serve", "--config", "backend.toml"], &[]).await;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("an https URL")
        .trim_end_matches(',')
        .to_owned();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let health = client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(health.status(), 200);
    let claim = client
        .post(format!("{url}/v1/provisioning-claims"))
        .json(&serde_json::json!({"templateName": "claimlink-demo", "deviceHint": "SN-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        claim.status(),
        401,
        "no issuer configured: nobody is signed in"
    );
    assert!(claim.headers().contains_key("date"));
}
