//! The session ciphers, after a handshake: nothing (Sec0), AES-256-CTR (Sec1), AES-256-GCM (Sec2).
//!
//! Both roles use these types (the device simulator too): the cipher is symmetric, and each side keeps
//! its own copy of the state. Messages must be processed in the order they were produced; one request
//! in flight per session keeps it so.

use aes::Aes256;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::AesGcm;
use ctr::cipher::{KeyIvInit, StreamCipher};

/// Bytes GCM adds to every message (the tag).
pub const GCM_TAG_LEN: usize = 16;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Why a message could not be encrypted or decrypted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The authentication tag did not verify: the message was altered, replayed or reordered.
    #[error("message authentication failed (tampered, replayed or out of order)")]
    Tampered,
    /// The message is shorter than the tag.
    #[error("ciphertext shorter than the authentication tag")]
    Truncated,
    /// The IV counter would wrap and repeat an IV.
    #[error("IV counter exhausted: the session must be renewed")]
    Exhausted,
}

/// A Sec2 cipher: AES-256-GCM with the key `K[..32]` from SRP and the device's nonce.
pub enum Sec2Cipher {
    /// `sec_patch_ver` 0: the 16-byte device nonce is the IV of every message (ESP-IDF's original
    /// behaviour: an IV reused across messages, hence `danger_` to allow it).
    Patch0 {
        /// The AEAD.
        aead: Box<AesGcm<Aes256, U16>>,
        /// The fixed IV.
        iv: [u8; 16],
    },
    /// `sec_patch_ver` 1: the 12-byte IV is 8 random bytes ‖ a 32-bit big-endian counter, advanced
    /// after every encryption and every decryption.
    Patch1 {
        /// The AEAD.
        aead: Box<AesGcm<Aes256, U12>>,
        /// The current IV.
        iv: [u8; 12],
    },
}

impl Sec2Cipher {
    /// A patch-1 cipher. `nonce` is the device's 12-byte nonce.
    pub fn patch1(key: &[u8; 32], nonce: [u8; 12]) -> Self {
        Sec2Cipher::Patch1 {
            aead: Box::new(AesGcm::<Aes256, U12>::new(key.into())),
            iv: nonce,
        }
    }

    /// A patch-0 cipher. `nonce` is the device's 16-byte nonce.
    pub fn patch0(key: &[u8; 32], nonce: [u8; 16]) -> Self {
        Sec2Cipher::Patch0 {
            aead: Box::new(AesGcm::<Aes256, U16>::new(key.into())),
            iv: nonce,
        }
    }

    /// The IV the next message will use.
    pub fn next_iv(&self) -> Vec<u8> {
        match self {
            Sec2Cipher::Patch0 { iv, .. } => iv.to_vec(),
            Sec2Cipher::Patch1 { iv, .. } => iv.to_vec(),
        }
    }

    fn advance(iv: &mut [u8; 12]) -> Result<(), CipherError> {
        let counter = u32::from_be_bytes([iv[8], iv[9], iv[10], iv[11]]);
        let next = counter.checked_add(1).ok_or(CipherError::Exhausted)?;
        iv[8..].copy_from_slice(&next.to_be_bytes());
        Ok(())
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
        match self {
            Sec2Cipher::Patch0 { aead, iv } => aead
                .encrypt(aes_gcm::Nonce::<U16>::from_slice(iv), plaintext)
                .map_err(|_| CipherError::Exhausted),
            Sec2Cipher::Patch1 { aead, iv } => {
                let out = aead
                    .encrypt(aes_gcm::Nonce::<U12>::from_slice(iv), plaintext)
                    .map_err(|_| CipherError::Exhausted)?;
                Self::advance(iv)?;
                Ok(out)
            }
        }
    }

    fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, CipherError> {
        if ciphertext.len() < GCM_TAG_LEN {
            return Err(CipherError::Truncated);
        }
        match self {
            Sec2Cipher::Patch0 { aead, iv } => aead
                .decrypt(aes_gcm::Nonce::<U16>::from_slice(iv), ciphertext)
                .map_err(|_| CipherError::Tampered),
            Sec2Cipher::Patch1 { aead, iv } => {
                let result = aead
                    .decrypt(aes_gcm::Nonce::<U12>::from_slice(iv), ciphertext)
                    .map_err(|_| CipherError::Tampered);
                Self::advance(iv)?;
                result
            }
        }
    }
}

/// A Sec1 cipher: AES-256-CTR, one keystream for both directions (no integrity).
pub struct Sec1Cipher {
    ctr: Box<Aes256Ctr>,
}

impl Sec1Cipher {
    /// The cipher with `key` (the X25519 shared secret, XORed with SHA-256 of the PoP if any) and the
    /// device's 16 random bytes as the initial counter block.
    pub fn new(key: &[u8; 32], device_random: &[u8; 16]) -> Self {
        Self {
            ctr: Box::new(Aes256Ctr::new(key.into(), device_random.into())),
        }
    }

    /// Applies the next bytes of the keystream (encryption and decryption are the same operation).
    pub fn apply(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        self.ctr.apply_keystream(&mut out);
        out
    }
}

/// The cipher of an established session.
pub enum SessionCipher {
    /// Sec0: plaintext.
    Plain,
    /// Sec1: AES-256-CTR.
    Sec1(Sec1Cipher),
    /// Sec2: AES-256-GCM.
    Sec2(Sec2Cipher),
}

impl std::fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionCipher::Plain => "SessionCipher::Plain",
            SessionCipher::Sec1(_) => "SessionCipher::Sec1(<key redacted>)",
            SessionCipher::Sec2(Sec2Cipher::Patch0 { .. }) => {
                "SessionCipher::Sec2Patch0(<key redacted>)"
            }
            SessionCipher::Sec2(Sec2Cipher::Patch1 { .. }) => {
                "SessionCipher::Sec2Patch1(<key redacted>)"
            }
        })
    }
}

impl SessionCipher {
    /// Encrypts one message.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
        match self {
            SessionCipher::Plain => Ok(plaintext.to_vec()),
            SessionCipher::Sec1(c) => Ok(c.apply(plaintext)),
            SessionCipher::Sec2(c) => c.encrypt(plaintext),
        }
    }

    /// Decrypts one message.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, CipherError> {
        match self {
            SessionCipher::Plain => Ok(ciphertext.to_vec()),
            SessionCipher::Sec1(c) => Ok(c.apply(ciphertext)),
            SessionCipher::Sec2(c) => c.decrypt(ciphertext),
        }
    }

    /// Bytes added to each message.
    pub fn overhead(&self) -> usize {
        match self {
            SessionCipher::Sec2(_) => GCM_TAG_LEN,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch1_ivs_never_repeat_and_both_sides_stay_in_step() {
        let key = [0x42u8; 32];
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1];
        let mut client = SessionCipher::Sec2(Sec2Cipher::patch1(&key, nonce));
        let mut device = SessionCipher::Sec2(Sec2Cipher::patch1(&key, nonce));
        let mut seen = std::collections::HashSet::new();
        for i in 0..100u32 {
            let SessionCipher::Sec2(c) = &client else {
                unreachable!()
            };
            assert!(seen.insert(c.next_iv()), "IV reused at message {i}");
            let request = client
                .encrypt(format!("request {i}").as_bytes())
                .expect("encrypt");
            assert_eq!(
                device.decrypt(&request).expect("decrypt"),
                format!("request {i}").as_bytes()
            );
            let SessionCipher::Sec2(c) = &device else {
                unreachable!()
            };
            assert!(seen.insert(c.next_iv()), "IV reused at response {i}");
            let response = device.encrypt(b"ok").expect("encrypt");
            assert_eq!(client.decrypt(&response).expect("decrypt"), b"ok");
        }
        // IV = nonce prefix ‖ counter: 1 + 200 messages later.
        let SessionCipher::Sec2(c) = &client else {
            unreachable!()
        };
        assert_eq!(c.next_iv(), [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 201]);
    }

    #[test]
    fn gcm_detects_bit_flips_replays_and_truncation() {
        let key = [7u8; 32];
        let nonce = [9u8; 12];
        let mut client = SessionCipher::Sec2(Sec2Cipher::patch1(&key, nonce));
        let mut device = SessionCipher::Sec2(Sec2Cipher::patch1(&key, nonce));
        let first = client.encrypt(b"first").expect("encrypt");
        for bit in [0usize, 13, first.len() * 8 - 1] {
            let mut flipped = first.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let mut d = SessionCipher::Sec2(Sec2Cipher::patch1(&key, nonce));
            assert_eq!(d.decrypt(&flipped), Err(CipherError::Tampered));
        }
        assert!(device.decrypt(&first).is_ok());
        let _reply = device.encrypt(b"r").expect("encrypt");
        // Replaying the first message: the device's counter has moved on.
        assert_eq!(device.decrypt(&first), Err(CipherError::Tampered));
        assert_eq!(device.decrypt(&first[..10]), Err(CipherError::Truncated));
    }

    #[test]
    fn counter_exhaustion_is_refused_not_wrapped() {
        let mut c =
            Sec2Cipher::patch1(&[0u8; 32], [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(c.encrypt(b"x"), Err(CipherError::Exhausted));
    }

    #[test]
    fn sec1_is_one_keystream_in_both_directions() {
        let key = [3u8; 32];
        let iv = [4u8; 16];
        let mut a = Sec1Cipher::new(&key, &iv);
        let mut b = Sec1Cipher::new(&key, &iv);
        let m1 = a.apply(b"hello device");
        assert_eq!(b.apply(&m1), b"hello device");
        let m2 = b.apply(b"hello phone");
        assert_eq!(a.apply(&m2), b"hello phone");
        // Same plaintext later in the stream encrypts differently.
        assert_ne!(a.apply(b"hello device"), m1);
    }
}
