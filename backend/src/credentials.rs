//! AWS credentials for the backend's own calls, found the way the AWS SDKs' default chain finds them
//! (aws-config's order): environment variables, the shared profile files, web identity (STS
//! `AssumeRoleWithWebIdentity`: EKS, GitHub OIDC), container credentials (ECS, Lambda's SnapStart,
//! EKS Pod Identity), then EC2's instance metadata service (IMDSv2). Temporary credentials are cached
//! until five minutes before they expire.
//!
//! Why not `aws-config` + `aws-sdk-iot` (measured on this project's 2-core machine, busy, one job, a
//! scratch crate calling CreateProvisioningClaim and DescribeThing, against one signing with `aws-sigv4`
//! over reqwest as [`crate::iot`] does): cold debug build 1570 s instead of 260 s, cold release build
//! 803 s instead of 120 s, release binary 23.9 MB instead of 4.1 MB, 231 crates instead of 153 — among
//! them aws-lc-sys (C, built with cmake) and a second rustls (0.21) whose rustls-webpki 0.101 has
//! published advisories (scripts/test refuses it). The chain below is what the SDK's default chain
//! does for a server, each link tested against its protocol on 127.0.0.1 (tests/credentials.rs).
//!
//! On Lambda the runtime puts the function role's credentials in the environment: the first link.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::BackendError;

/// A set of AWS credentials. The secret and the session token are wiped when dropped and never shown
/// by `Debug`.
#[derive(Clone)]
pub struct AwsCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
    /// When temporary credentials expire.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// No credentials could be found or fetched.
#[derive(Debug, thiserror::Error)]
#[error("AWS credentials: {0}")]
pub struct CredentialsError(pub String);

/// Where the backend gets its AWS credentials.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Current credentials.
    async fn credentials(&self) -> Result<AwsCredentials, CredentialsError>;
}

/// Always the same credentials (tests, embedders).
#[derive(Debug)]
pub struct StaticCredentials(pub AwsCredentials);

#[async_trait]
impl CredentialSource for StaticCredentials {
    async fn credentials(&self) -> Result<AwsCredentials, CredentialsError> {
        Ok(self.0.clone())
    }
}

/// The default chain over a snapshot of the environment.
pub struct CredentialChain {
    env: BTreeMap<String, String>,
    home: Option<PathBuf>,
    region: String,
    http: reqwest::Client,
    cache: Mutex<Option<AwsCredentials>>,
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialChain").finish_non_exhaustive()
    }
}

/// The environment variables the chain reads.
const VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// Credentials are fetched again this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

impl CredentialChain {
    /// The chain over this process's environment and home directory.
    pub fn from_environment(config: &Config) -> Result<Self, BackendError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self::new(|k| std::env::var(k).ok(), home, &config.aws.region)
    }

    /// The chain over the variables `var` gives and the home directory `home`.
    pub fn new(
        var: impl Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
        region: &str,
    ) -> Result<Self, BackendError> {
        let env = VARIABLES
            .iter()
            .filter_map(|k| {
                var(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*k).to_owned(), v))
            })
            .collect();
        Ok(Self {
            env,
            home,
            region: region.to_owned(),
            http: crate::tls::http_client(None, Duration::from_secs(5))?,
            cache: Mutex::new(None),
        })
    }

    fn var(&self, k: &str) -> Option<&str> {
        self.env.get(k).map(String::as_str)
    }

    async fn resolve(&self) -> Result<AwsCredentials, CredentialsError> {
        if let (Some(id), Some(secret)) = (
            self.var("AWS_ACCESS_KEY_ID"),
            self.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(AwsCredentials {
                access_key_id: id.to_owned(),
                secret_access_key: Zeroizing::new(secret.to_owned()),
                session_token: self
                    .var("AWS_SESSION_TOKEN")
                    .map(|t| Zeroizing::new(t.to_owned())),
                expires_at: None,
            });
        }
        if let Some(c) = self.profile_keys()? {
            return Ok(c);
        }
        if let (Some(file), Some(role)) = (
            self.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
            self.var("AWS_ROLE_ARN"),
        ) {
            return self.web_identity(file, role).await;
        }
        if let Some(url) = self.container_url()? {
            return self.container_credentials(&url).await;
        }
        if self
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(CredentialsError(
                "none in the environment, the profile files or the container, and IMDS is disabled"
                    .into(),
            ));
        }
        self.imds_credentials().await
    }

    /// Static keys of the profile (`AWS_PROFILE`, else `default`) in the shared credentials file, then
    /// the shared config file.
    fn profile_keys(&self) -> Result<Option<AwsCredentials>, CredentialsError> {
        let profile = self.var("AWS_PROFILE").unwrap_or("default");
        let path = |var: &str, default: &str| -> Option<PathBuf> {
            self.var(var)
                .map(PathBuf::from)
                .or_else(|| self.home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let sources = [
            (
                path("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
                profile.to_owned(),
            ),
            (
                path("AWS_CONFIG_FILE", "config"),
                if profile == "default" {
                    profile.to_owned()
                } else {
                    format!("profile {profile}")
                },
            ),
        ];
        for (file, section) in sources {
            let Some(file) = file else { continue };
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let keys = ini_section(&text, &section);
            if let (Some(id), Some(secret)) = (
                keys.get("aws_access_key_id"),
                keys.get("aws_secret_access_key"),
            ) {
                return Ok(Some(AwsCredentials {
                    access_key_id: id.clone(),
                    secret_access_key: Zeroizing::new(secret.clone()),
                    session_token: keys
                        .get("aws_session_token")
                        .map(|t| Zeroizing::new(t.clone())),
                    expires_at: None,
                }));
            }
        }
        Ok(None)
    }

    async fn web_identity(
        &self,
        token_file: &str,
        role: &str,
    ) -> Result<AwsCredentials, CredentialsError> {
        let token = Zeroizing::new(
            std::fs::read_to_string(token_file)
                .map_err(|e| CredentialsError(format!("{token_file}: {e}")))?
                .trim()
                .to_owned(),
        );
        let endpoint = self
            .var("AWS_ENDPOINT_URL_STS")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com/", self.region));
        let session = self
            .var("AWS_ROLE_SESSION_NAME")
            .unwrap_or("claimlink-backend");
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", session),
            ("WebIdentityToken", token.as_str()),
        ];
        let answer = self
            .http
            .post(&endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| CredentialsError(format!("STS: {e}")))?;
        let status = answer.status();
        let body = Zeroizing::new(
            answer
                .text()
                .await
                .map_err(|e| CredentialsError(format!("STS: {e}")))?,
        );
        if !status.is_success() {
            let code = xml_text(&body, "Code").unwrap_or_default();
            return Err(CredentialsError(format!(
                "STS AssumeRoleWithWebIdentity: HTTP {status} {code}"
            )));
        }
        let field = |tag: &str| {
            xml_text(&body, tag).ok_or_else(|| CredentialsError(format!("STS answer lacks {tag}")))
        };
        Ok(AwsCredentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: Zeroizing::new(field("SecretAccessKey")?),
            session_token: Some(Zeroizing::new(field("SessionToken")?)),
            expires_at: Some(parse_rfc3339(&field("Expiration")?)?),
        })
    }

    /// The container credentials URL: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on ECS's link-local
    /// agent, or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (HTTPS, or HTTP on loopback/the agents' addresses).
    fn container_url(&self) -> Result<Option<url::Url>, CredentialsError> {
        let raw = if let Some(relative) = self.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            format!("http://169.254.170.2{relative}")
        } else if let Some(full) = self.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            full.to_owned()
        } else {
            return Ok(None);
        };
        let url = url::Url::parse(&raw)
            .map_err(|e| CredentialsError(format!("container credentials URL: {e}")))?;
        let agent = matches!(
            url.host(),
            Some(url::Host::Ipv4(a)) if a == std::net::Ipv4Addr::new(169, 254, 170, 2) || a == std::net::Ipv4Addr::new(169, 254, 170, 23)
        );
        if !(crate::tls::acceptable_url(&url) || (url.scheme() == "http" && agent)) {
            return Err(CredentialsError(
                "container credentials URL must be https, loopback or the ECS/EKS agent".into(),
            ));
        }
        Ok(Some(url))
    }

    async fn container_credentials(
        &self,
        url: &url::Url,
    ) -> Result<AwsCredentials, CredentialsError> {
        let mut request = self.http.get(url.clone());
        let token = match self.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(file) => Some(Zeroizing::new(
                std::fs::read_to_string(file)
                    .map_err(|e| CredentialsError(format!("{file}: {e}")))?
                    .trim()
                    .to_owned(),
            )),
            None => self
                .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(|t| Zeroizing::new(t.to_owned())),
        };
        if let Some(t) = &token {
            request = request.header(http::header::AUTHORIZATION, t.as_str());
        }
        let answer = request
            .send()
            .await
            .map_err(|e| CredentialsError(format!("container credentials: {e}")))?;
        json_credentials(answer, "container credentials").await
    }

    async fn imds_credentials(&self) -> Result<AwsCredentials, CredentialsError> {
        let base = self
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or("http://169.254.169.254");
        let base = base.trim_end_matches('/');
        let fail = |e: &dyn std::fmt::Display| CredentialsError(format!("IMDS: {e}"));
        // The instance may not be an EC2 instance at all: a short timeout.
        let token = self
            .http
            .put(format!("{base}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .map_err(|e| fail(&e))?;
        if !token.status().is_success() {
            return Err(fail(&format!("token: HTTP {}", token.status())));
        }
        let token = Zeroizing::new(token.text().await.map_err(|e| fail(&e))?);
        let path = format!("{base}/latest/meta-data/iam/security-credentials/");
        let role = self
            .http
            .get(&path)
            .header("x-aws-ec2-metadata-token", token.as_str())
            .send()
            .await
            .map_err(|e| fail(&e))?;
        if !role.status().is_success() {
            return Err(fail(&format!("role: HTTP {}", role.status())));
        }
        let role = role.text().await.map_err(|e| fail(&e))?;
        let role = role.lines().next().unwrap_or("").trim();
        if role.is_empty() || role.contains('/') {
            return Err(fail(&"the instance has no role"));
        }
        let answer = self
            .http
            .get(format!("{path}{role}"))
            .header("x-aws-ec2-metadata-token", token.as_str())
            .send()
            .await
            .map_err(|e| fail(&e))?;
        json_credentials(answer, "IMDS").await
    }
}

#[async_trait]
impl CredentialSource for CredentialChain {
    async fn credentials(&self) -> Result<AwsCredentials, CredentialsError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            let fresh = c
                .expires_at
                .is_none_or(|at| at > SystemTime::now() + EXPIRY_MARGIN);
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self.resolve().await?;
        *cache = Some(c.clone());
        Ok(c)
    }
}

/// A shared handle to any source.
pub type SharedCredentials = Arc<dyn CredentialSource>;

/// The `{AccessKeyId, SecretAccessKey, Token, Expiration}` answer of ECS and IMDS.
async fn json_credentials(
    answer: reqwest::Response,
    what: &str,
) -> Result<AwsCredentials, CredentialsError> {
    let status = answer.status();
    if !status.is_success() {
        return Err(CredentialsError(format!("{what}: HTTP {status}")));
    }
    let body = Zeroizing::new(
        answer
            .bytes()
            .await
            .map_err(|e| CredentialsError(format!("{what}: {e}")))?
            .to_vec(),
    );
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| CredentialsError(format!("{what}: not JSON")))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| CredentialsError(format!("{what}: no {k}")))
    };
    if let Some(code) = v.get("Code").and_then(Value::as_str) {
        if code != "Success" {
            return Err(CredentialsError(format!("{what}: {code}")));
        }
    }
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?.to_owned(),
        secret_access_key: Zeroizing::new(field("SecretAccessKey")?.to_owned()),
        session_token: v
            .get("Token")
            .and_then(Value::as_str)
            .map(|t| Zeroizing::new(t.to_owned())),
        expires_at: v
            .get("Expiration")
            .and_then(Value::as_str)
            .map(parse_rfc3339)
            .transpose()?,
    })
}

/// The `key = value` lines of `[section]` in an INI text (the AWS profile files' format).
pub fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut inside = false;
    let mut keys = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                keys.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }
    keys
}

/// The text of the first `<tag>...</tag>` in an XML answer (STS's answers are flat enough).
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].trim().to_owned())
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC, as AWS writes expirations).
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, CredentialsError> {
    let bad = || CredentialsError(format!("bad timestamp {s:?}"));
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !s.ends_with('Z')
    {
        return Err(bad());
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<i64>().ok()).ok_or_else(bad);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).map_err(|_| bad())?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_ini() {
        let t = parse_rfc3339("2026-11-30T16:40:00Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_796_056_800
        );
        assert!(parse_rfc3339("2026-13-30T16:40:00Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
        let ini = "[default]\naws_access_key_id = A\n[profile x]\naws_access_key_id=B\n# c\n";
        assert_eq!(ini_section(ini, "default")["aws_access_key_id"], "A");
        assert_eq!(ini_section(ini, "profile x")["aws_access_key_id"], "B");
        assert!(ini_section(ini, "y").is_empty());
    }

    #[test]
    fn xml_fields() {
        let x = "<R><Credentials><AccessKeyId>AK</AccessKeyId></Credentials></R>";
        assert_eq!(xml_text(x, "AccessKeyId").as_deref(), Some("AK"));
        assert_eq!(xml_text(x, "SessionToken"), None);
    }
}
