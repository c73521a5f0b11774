//! A link that records which endpoint each request went to before passing it on: what an impostor on
//! the other end would have received. Used by the hostile-device tests and the chaos campaign.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claimlink_core::{DeviceLink, LinkError};

/// Wraps a link and records the endpoint of every request, in order.
#[derive(Debug)]
pub struct RecordingLink {
    inner: Arc<dyn DeviceLink>,
    sent: Mutex<Vec<String>>,
}

impl RecordingLink {
    /// Records what goes through `inner`.
    pub fn new(inner: Arc<dyn DeviceLink>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            sent: Mutex::new(Vec::new()),
        })
    }

    /// The endpoints requests went to, in order.
    pub fn sent_to(&self) -> Vec<String> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl DeviceLink for RecordingLink {
    async fn connect(&self) -> Result<(), LinkError> {
        self.inner.connect().await
    }
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(endpoint.to_owned());
        self.inner.exchange(endpoint, request).await
    }
    fn endpoints(&self) -> Option<Vec<String>> {
        self.inner.endpoints()
    }
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
    async fn disconnect(&self) {
        self.inner.disconnect().await
    }
    async fn disconnected(&self) {
        self.inner.disconnected().await
    }
    fn describe(&self) -> String {
        format!("recording {}", self.inner.describe())
    }
}
