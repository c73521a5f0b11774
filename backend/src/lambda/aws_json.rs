//! The two AWS calls a Lambda function makes at start: SSM `GetParameter` (the configuration's TOML)
//! and Secrets Manager `GetSecretValue` (the database URL). Both are AWS JSON 1.1 (`POST /`,
//! `X-Amz-Target`, `Content-Type: application/x-amz-json-1.1`), signed with SigV4 by the AWS SDK's
//! own signer and the backend's credential chain (on Lambda: the function role's credentials in the
//! environment). Endpoints: `https://ssm.<region>.amazonaws.com` and
//! `https://secretsmanager.<region>.amazonaws.com`, or the AWS SDKs' service-specific overrides
//! `AWS_ENDPOINT_URL_SSM` and `AWS_ENDPOINT_URL_SECRETS_MANAGER` (the tests' fakes on 127.0.0.1).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::credentials::{CredentialChain, CredentialSource};
use crate::{BackendError, Config};

/// A signed AWS JSON 1.1 client for SSM and Secrets Manager.
pub(crate) struct AwsJsonClient {
    region: String,
    ssm: String,
    secrets: String,
    credentials: Arc<dyn CredentialSource>,
    http: reqwest::Client,
}

impl AwsJsonClient {
    /// A client for `config.aws.region`, endpoints from `var` (or AWS's).
    pub(crate) fn new(
        config: &Config,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BackendError> {
        let region = config.aws.region.clone();
        let endpoint = |variable: &str, service: &str| -> Result<String, BackendError> {
            let raw = var(variable)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"));
            let url = url::Url::parse(&raw)
                .map_err(|e| BackendError::Config(format!("{variable} {raw:?}: {e}")))?;
            if !crate::tls::acceptable_url(&url) {
                return Err(BackendError::Config(format!(
                    "{variable} {raw:?}: must be https (plain http only on the loopback interface)"
                )));
            }
            Ok(raw)
        };
        Ok(Self {
            ssm: endpoint("AWS_ENDPOINT_URL_SSM", "ssm")?,
            secrets: endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER", "secretsmanager")?,
            credentials: Arc::new(CredentialChain::from_environment(config)?),
            http: crate::tls::http_client(
                config.aws.extra_ca_file.as_deref(),
                Duration::from_secs(10),
            )?,
            region,
        })
    }

    /// SSM `GetParameter` with decryption: the parameter's value.
    pub(crate) async fn ssm_parameter(&self, name: &str) -> Result<String, BackendError> {
        let body = serde_json::json!({"Name": name, "WithDecryption": true});
        let what = format!("SSM parameter {name}");
        let answer = self
            .call(&what, "ssm", &self.ssm, "AmazonSSM.GetParameter", &body)
            .await?;
        let v: Value = serde_json::from_slice(&answer).map_err(|_| {
            BackendError::Config(format!("SSM parameter {name}: the answer is not JSON"))
        })?;
        v.pointer("/Parameter/Value")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                BackendError::Config(format!(
                    "SSM parameter {name}: the answer has no Parameter.Value"
                ))
            })
    }

    /// Secrets Manager `GetSecretValue`: the secret's `SecretString` (wiped when dropped).
    pub(crate) async fn secret_string(
        &self,
        secret_id: &str,
    ) -> Result<Zeroizing<String>, BackendError> {
        let body = serde_json::json!({"SecretId": secret_id});
        let answer = self
            .call(
                &format!("secret {secret_id}"),
                "secretsmanager",
                &self.secrets,
                "secretsmanager.GetSecretValue",
                &body,
            )
            .await?;
        let bad = || {
            BackendError::Config(format!(
                "secret {secret_id}: the answer has no SecretString"
            ))
        };
        let parsed: SecretAnswer = serde_json::from_slice(&answer).map_err(|_| bad())?;
        parsed.secret_string.map(Zeroizing::new).ok_or_else(bad)
    }

    /// One signed JSON 1.1 call to `endpoint` about `what`; the answer's body on 2xx, AWS's error words
    /// otherwise.
    async fn call(
        &self,
        what: &str,
        service: &str,
        endpoint: &str,
        target: &str,
        body: &Value,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let failed =
            |why: String| BackendError::Config(format!("{what} ({target} at {endpoint}): {why}"));
        let creds = self
            .credentials
            .credentials()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let payload = serde_json::to_vec(body).map_err(|e| failed(e.to_string()))?;
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let signed = crate::sigv4::signed_headers(
            &creds,
            &self.region,
            service,
            "POST",
            endpoint,
            &headers,
            &payload,
        )
        .map_err(|e| failed(format!("signing: {e}")))?;
        let mut request = self.http.post(endpoint).body(payload.clone());
        for (name, value) in headers
            .into_iter()
            .chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        {
            request = request.header(name, value);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| failed(format!("no answer: {e}")))?;
        let status = answer.status();
        let bytes = Zeroizing::new(
            answer
                .bytes()
                .await
                .map_err(|e| failed(format!("answer cut: {e}")))?
                .to_vec(),
        );
        if status.is_success() {
            return Ok(bytes);
        }
        // AWS JSON errors: {"__type": "...#ResourceNotFoundException", "message"/"Message": "..."}.
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = parsed.get("__type").and_then(Value::as_str).unwrap_or("");
        let code = code.rsplit('#').next().unwrap_or(code);
        let message = parsed
            .get("message")
            .or_else(|| parsed.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        Err(failed(format!(
            "HTTP {}: {code}: {message}",
            status.as_u16()
        )))
    }
}

/// `GetSecretValue`'s answer: only the field we use (the string moves into a `Zeroizing` at once).
#[derive(serde::Deserialize)]
struct SecretAnswer {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// The JSON Amazon RDS keeps in a database's secret (the fields we use).
#[derive(serde::Deserialize)]
struct RdsSecret {
    engine: Option<String>,
    host: Option<String>,
    port: Option<Value>,
    username: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
}

/// The database URL in a secret's `SecretString`: the URL itself (`postgres://`, `postgresql://`,
/// `sqlite:`), or the JSON that Amazon RDS and Aurora keep for a database's credentials (`host`,
/// `port`, `username`, `password`, `dbname`; `engine` if present must be `postgres`). The answer holds
/// the password: it is wiped when dropped, and errors never quote the secret.
pub fn database_url_from_secret(secret: &str) -> Result<Zeroizing<String>, String> {
    let trimmed = secret.trim();
    if ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|p| trimmed.starts_with(p))
    {
        return Ok(Zeroizing::new(trimmed.to_owned()));
    }
    let v: RdsSecret = serde_json::from_str(trimmed).map_err(|_| {
        "neither a postgres:// URL nor RDS's JSON (host, username, password...)".to_owned()
    })?;
    let password = v.password.map(Zeroizing::new);
    let present = |field: &Option<String>| field.clone().filter(|s| !s.is_empty());
    if let Some(engine) = present(&v.engine) {
        if !engine.starts_with("postgres") && engine != "aurora-postgresql" {
            return Err(format!("the secret's engine is {engine:?}, not PostgreSQL"));
        }
    }
    let host = present(&v.host).ok_or("the secret's JSON has no host")?;
    let username = present(&v.username).ok_or("the secret's JSON has no username")?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or("the secret's JSON has no password")?;
    let port = match &v.port {
        None => 5432,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("the secret's port is not a port")?,
        Some(Value::String(s)) => s
            .parse::<u16>()
            .map_err(|_| "the secret's port is not a port")?,
        Some(_) => return Err("the secret's port is not a port".to_owned()),
    };
    if host.contains(['/', '@', '?', '#']) || host.chars().any(char::is_whitespace) {
        return Err("the secret's host is not a host name".to_owned());
    }
    let dbname = present(&v.dbname).unwrap_or_else(|| "postgres".to_owned());
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Ok(Zeroizing::new(format!(
        "postgres://{}:{}@{host}:{port}/{}",
        enc(&username),
        Zeroizing::new(enc(&password)).as_str(),
        enc(&dbname)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_secret_is_taken_as_it_is() {
        let url = database_url_from_secret(" postgres://claimlink:pw@db.internal:5432/claimlink\n")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "postgres://claimlink:pw@db.internal:5432/claimlink"
        );
    }

    #[test]
    fn rds_json_becomes_a_url_with_the_credentials_escaped() {
        let secret = r#"{"engine":"postgres","host":"db.cluster-x.eu-west-1.rds.amazonaws.com","port":5432,
            "username":"claim link","password":"p@ss:w/rd?#","dbname":"claimlink"}"#;
        let url = database_url_from_secret(secret).unwrap();
        assert_eq!(
            url.as_str(),
            "postgres://claim%20link:p%40ss%3Aw%2Frd%3F%23@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/claimlink"
        );
        let defaults = database_url_from_secret(
            r#"{"host":"db","username":"u","password":"p","port":"6543"}"#,
        )
        .unwrap();
        assert_eq!(defaults.as_str(), "postgres://u:p@db:6543/postgres");
    }

    #[test]
    fn hostile_or_wrong_secrets_are_refused_without_quoting_them() {
        for (secret, words) in [
            ("hunter2", "neither"),
            (
                r#"{"engine":"mysql","host":"db","username":"u","password":"hunter2"}"#,
                "mysql",
            ),
            (r#"{"host":"db","username":"u"}"#, "no password"),
            (
                r#"{"host":"evil@db/x","username":"u","password":"hunter2"}"#,
                "host",
            ),
            (
                r#"{"host":"db","username":"u","password":"hunter2","port":70000}"#,
                "port",
            ),
            (
                r#"{"host":"db","username":"u","password":"hunter2","port":[1]}"#,
                "port",
            ),
        ] {
            let err = database_url_from_secret(secret).expect_err(secret);
            assert!(err.contains(words), "{secret}: {err}");
            assert!(
                !err.contains("hunter2"),
                "the error quotes the secret: {err}"
            );
        }
    }
}
