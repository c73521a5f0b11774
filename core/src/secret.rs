//! Secrets: values that must never reach a log line, an error message, a panic or `Debug` output, and
//! that are wiped from memory when dropped.
//!
//! [`SecretString`] is the one container. It deliberately implements neither `Display` nor
//! `Serialize`; the only way to read it is [`SecretString::expose`], which is easy to find in review.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A string that is zeroized on drop and redacted in `Debug`.
///
/// Used for claim private keys, bearer tokens, AWS secret keys and session tokens, Wi-Fi passphrases
/// and proofs of possession.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret. The caller's `String` is moved, so no unzeroized copy is left behind by this call.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Reads the secret. Every call site is a place where the secret leaves this wrapper: keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The length in bytes (safe to log: it reveals the size only).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString(<redacted, {} bytes>)", self.0.len())
    }
}

/// Bytes that are zeroized on drop and redacted in `Debug` (DER keys, session keys).
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes, taking ownership.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// Reads the secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

/// A value whose secret parts the function wipes when it is dropped, on every path (an early return,
/// a cancelled exchange): for types that cannot implement `Zeroize` themselves, such as generated
/// protobuf messages, parsed JSON or big numbers.
pub(crate) struct WipedOnDrop<T>(pub T, pub fn(&mut T));

impl<T> Drop for WipedOnDrop<T> {
    fn drop(&mut self) {
        (self.1)(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretString::from("hunter2-passphrase");
        let shown = format!("{s:?} {:#?}", s);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("18 bytes"));
        let b = SecretBytes::new(b"key-material".to_vec());
        assert!(!format!("{b:?}").contains("key-material"));
    }

    #[test]
    fn zeroize_clears_the_value() {
        let mut s = SecretString::from("abc");
        s.zeroize();
        assert!(s.is_empty());
    }
}
