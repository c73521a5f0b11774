//! The app's sign-in, as the SDK asks for it: a bearer token for the app's backend, or temporary AWS
//! credentials (Cognito) for calling AWS IoT directly. Implemented in Kotlin/Swift/Python.

use std::sync::Arc;

use async_trait::async_trait;

use super::ProviderFailure;
use claimlink_core::SecretString;
use claimlink_core::{self as claim, ProviderError};

/// Supplies the bearer token the app's backend expects (the signed-in installer's session).
///
/// `refresh` is `true` when the backend rejected the previous token (HTTP 401): return a fresh one
/// (refresh the sign-in) rather than a cached one, or throw [`ProviderFailure::NotSignedIn`]. The SDK
/// asks for a refresh at most once per call. Called on an SDK thread.
#[uniffi::export(foreign)]
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// The current bearer token, or a fresh one when `refresh` is set.
    async fn bearer_token(&self, refresh: bool) -> Result<String, ProviderFailure>;
}

/// Temporary AWS credentials, as Amazon Cognito or STS hand them out. The secret key and session
/// token are moved into zeroizing buffers when this is built and never shown by `toString()`.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct AwsCredentials {
    inner: claim::AwsCredentials,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl AwsCredentials {
    /// Credentials from Cognito's `GetCredentialsForIdentity` (or STS).
    #[uniffi::constructor]
    pub fn new(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    ) -> Arc<Self> {
        Arc::new(AwsCredentials {
            inner: claim::AwsCredentials {
                access_key_id,
                secret_access_key: SecretString::new(secret_access_key),
                session_token: session_token.map(SecretString::new),
            },
        })
    }
}

/// Supplies AWS credentials allowed to call `iot:CreateProvisioningClaim` (and, for the cloud's
/// confirmation, `iot:DescribeThing`, `iot:ListThingPrincipals`, `iot:DescribeCertificate`).
/// `refresh` as for [`TokenProvider`].
#[uniffi::export(foreign)]
#[async_trait]
pub trait CredentialsProvider: Send + Sync {
    /// Current credentials, or fresh ones when `refresh` is set.
    async fn credentials(&self, refresh: bool) -> Result<Arc<AwsCredentials>, ProviderFailure>;
}

pub(crate) struct Tokens(pub(crate) Arc<dyn TokenProvider>);

#[async_trait]
impl claim::TokenProvider for Tokens {
    async fn bearer_token(&self, refresh: bool) -> Result<SecretString, ProviderError> {
        Ok(SecretString::new(self.0.bearer_token(refresh).await?))
    }
}

pub(crate) struct Credentials(pub(crate) Arc<dyn CredentialsProvider>);

#[async_trait]
impl claim::CredentialsProvider for Credentials {
    async fn credentials(&self, refresh: bool) -> Result<claim::AwsCredentials, ProviderError> {
        Ok(self.0.credentials(refresh).await?.inner.clone())
    }
}
