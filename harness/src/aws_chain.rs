//! AWS credentials from the standard places, in the AWS CLI's and SDKs' order, for running simulated
//! devices against a real account:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 2. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), section
//!    `[<profile>]`;
//! 3. the shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`), section `[profile <profile>]`
//!    (`[default]` for the default profile),
//!
//! with the profile from `AWS_PROFILE` (else `default`). Static keys only: SSO, `credential_process`,
//! `role_arn`/`source_profile` role assumption, web identity and the EC2/ECS metadata endpoints are
//! not read — export temporary credentials first (`aws configure export-credentials --format env`).
//! A profile that uses one of those is named in the error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use claimlink_core::{AwsCredentials, CredentialsProvider, ProviderError, SecretString};
use zeroize::Zeroizing;

/// Where credentials were found (for a line to the person running).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsOrigin {
    /// Environment variables.
    Environment,
    /// A profile of a shared file.
    Profile {
        /// The profile.
        profile: String,
        /// The file.
        file: PathBuf,
    },
}

impl std::fmt::Display for CredentialsOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialsOrigin::Environment => f.write_str("the environment (AWS_ACCESS_KEY_ID)"),
            CredentialsOrigin::Profile { profile, file } => {
                write!(f, "profile {profile} of {}", file.display())
            }
        }
    }
}

/// A section of an INI file: key → value (values wiped when dropped: they hold secret keys).
type Section = HashMap<String, Zeroizing<String>>;

/// The sections of an INI file: `name → (key → value)`. Comments (`#`, `;`) and blank lines are
/// skipped; keys are lower-cased, values trimmed.
fn ini_sections(text: &str) -> HashMap<String, Section> {
    let mut sections: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            sections.entry(section.clone()).or_default().insert(
                k.trim().to_ascii_lowercase(),
                Zeroizing::new(v.trim().to_owned()),
            );
        }
    }
    sections
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn from_section(section: &Section) -> Result<Option<AwsCredentials>, &'static str> {
    match (
        section.get("aws_access_key_id"),
        section.get("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(Some(AwsCredentials {
            access_key_id: id.to_string(),
            secret_access_key: SecretString::new(secret.to_string()),
            session_token: section
                .get("aws_session_token")
                .map(|t| SecretString::new(t.to_string())),
        })),
        _ => {
            for unsupported in [
                "sso_session",
                "sso_start_url",
                "credential_process",
                "role_arn",
                "web_identity_token_file",
            ] {
                if section.contains_key(unsupported) {
                    return Err(unsupported);
                }
            }
            Ok(None)
        }
    }
}

fn from_file(
    path: &Path,
    section_name: &str,
    profile: &str,
) -> Result<Option<(AwsCredentials, CredentialsOrigin)>, String> {
    let Ok(text) = std::fs::read_to_string(path).map(Zeroizing::new) else {
        return Ok(None);
    };
    let sections = ini_sections(&text);
    let Some(section) = sections.get(section_name) else {
        return Ok(None);
    };
    match from_section(section) {
        Ok(found) => Ok(found.map(|c| {
            (
                c,
                CredentialsOrigin::Profile {
                    profile: profile.to_owned(),
                    file: path.to_owned(),
                },
            )
        })),
        Err(key) => Err(format!(
            "profile {profile} in {} uses {key}, which claimlink-harness does not read: export \
             static or temporary keys first (aws configure export-credentials --profile {profile} \
             --format env)",
            path.display()
        )),
    }
}

/// The keys of `profile` in the shared credentials file at `path` (`Ok(None)`: no such file or
/// profile, or a profile without keys).
pub fn load_profile(path: &Path, profile: &str) -> Result<Option<AwsCredentials>, String> {
    from_file(path, profile, profile).map(|found| found.map(|(c, _)| c))
}

/// Credentials from the standard chain (see the module documentation), and where they came from.
pub fn load() -> Result<(AwsCredentials, CredentialsOrigin), String> {
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok((
            AwsCredentials {
                access_key_id: id,
                secret_access_key: SecretString::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(SecretString::new),
            },
            CredentialsOrigin::Environment,
        ));
    }
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let aws_dir = home().map(|h| h.join(".aws"));
    let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| aws_dir.as_ref().map(|d| d.join("credentials")));
    let config_file = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| aws_dir.as_ref().map(|d| d.join("config")));
    if let Some(path) = &credentials_file {
        if let Some(found) = from_file(path, &profile, &profile)? {
            return Ok(found);
        }
    }
    if let Some(path) = &config_file {
        let section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        if let Some(found) = from_file(path, &section, &profile)? {
            return Ok(found);
        }
    }
    let shown = |p: &Option<PathBuf>| {
        p.as_ref().map_or("(no home directory)".to_owned(), |p| {
            p.display().to_string()
        })
    };
    Err(format!(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), \
         or give profile {profile} keys in {} or {}",
        shown(&credentials_file),
        shown(&config_file)
    ))
}

/// The SDK's credentials provider over [`load`]: a refresh (AWS rejected the keys) reads the chain
/// again, so keys rotated meanwhile are picked up.
#[derive(Debug, Default)]
pub struct StandardChain;

#[async_trait]
impl CredentialsProvider for StandardChain {
    async fn credentials(&self, _refresh: bool) -> Result<AwsCredentials, ProviderError> {
        load().map(|(c, _)| c).map_err(ProviderError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_as_the_aws_cli_writes_them() {
        let text = "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=s1\n\n\
                    [profile  maker]\nAWS_ACCESS_KEY_ID=AKIDMAKER\naws_secret_access_key = s2\naws_session_token = t2\n\
                    [sso]\nsso_session = corp\n";
        let sections = ini_sections(text);
        let default = from_section(&sections["default"]).ok().flatten();
        assert_eq!(
            default.map(|c| c.access_key_id).as_deref(),
            Some("AKIDDEFAULT")
        );
        let maker = from_section(&sections["profile maker"]).ok().flatten();
        assert!(maker.is_some_and(|c| c.session_token.is_some() && c.access_key_id == "AKIDMAKER"));
        assert_eq!(from_section(&sections["sso"]).err(), Some("sso_session"));
    }
}
