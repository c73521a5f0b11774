//! Token and credentials providers for the harness: what an app's sign-in would supply.
//!
//! Each hands out its values in order: the first call gets the first, and each `refresh` moves to the
//! next (the last one stays). Counters let tests see how the SDK used them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use claimlink_core::SecretString;
use claimlink_core::{AwsCredentials, CredentialsProvider, ProviderError, TokenProvider};

use crate::emulator::TemporaryCredentials;

/// Bearer tokens, handed out in order.
#[derive(Debug)]
pub struct TokenSequence {
    tokens: Vec<String>,
    position: Mutex<usize>,
    calls: AtomicUsize,
    refreshes: AtomicUsize,
}

impl TokenSequence {
    /// Tokens to hand out, first one first. An empty list makes the provider fail.
    pub fn new(tokens: Vec<String>) -> Self {
        Self {
            tokens,
            position: Mutex::new(0),
            calls: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
        }
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls that asked for a refresh.
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }
}

fn next_in<T: Clone>(items: &[T], position: &Mutex<usize>, refresh: bool) -> Option<T> {
    let mut pos = position.lock().unwrap_or_else(|p| p.into_inner());
    if refresh && *pos + 1 < items.len() {
        *pos += 1;
    }
    items.get(*pos).cloned()
}

#[async_trait]
impl TokenProvider for TokenSequence {
    async fn bearer_token(&self, refresh: bool) -> Result<SecretString, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
        }
        next_in(&self.tokens, &self.position, refresh)
            .map(SecretString::new)
            .ok_or_else(|| ProviderError::new("the installer is not signed in"))
    }
}

/// AWS credentials, handed out in order.
#[derive(Debug)]
pub struct CredentialsSequence {
    credentials: Vec<TemporaryCredentials>,
    position: Mutex<usize>,
    calls: AtomicUsize,
    refreshes: AtomicUsize,
}

impl CredentialsSequence {
    /// Credentials to hand out, first one first. An empty list makes the provider fail.
    pub fn new(credentials: Vec<TemporaryCredentials>) -> Self {
        Self {
            credentials,
            position: Mutex::new(0),
            calls: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
        }
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls that asked for a refresh.
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CredentialsProvider for CredentialsSequence {
    async fn credentials(&self, refresh: bool) -> Result<AwsCredentials, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
        }
        let c = next_in(&self.credentials, &self.position, refresh).ok_or_else(|| {
            ProviderError::new("no AWS credentials: the installer is not signed in")
        })?;
        Ok(AwsCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: SecretString::new(c.secret_access_key),
            session_token: Some(SecretString::new(c.session_token)),
        })
    }
}
