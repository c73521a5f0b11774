//! The claim certificate, parsed once, and the check that the private key belongs to it.

use std::time::SystemTime;

use der::{Decode, SecretDocument};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::ClaimError;
use crate::secret::SecretString;

/// A parsed X.509 claim certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimCertificate {
    id: String,
    pem: String,
    der: Vec<u8>,
    subject: String,
    issuer: String,
    serial_hex: String,
    not_before: SystemTime,
    not_after: SystemTime,
    rsa_modulus: Vec<u8>,
    rsa_exponent: Vec<u8>,
}

fn malformed(problem: impl Into<String>) -> ClaimError {
    ClaimError::Malformed {
        problem: problem.into(),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

impl ClaimCertificate {
    /// Parses a PEM document holding exactly one RSA certificate.
    pub fn from_pem(pem: &str) -> Result<Self, ClaimError> {
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|_| malformed("certificatePem is not a PEM document"))?;
        if label != "CERTIFICATE" {
            return Err(malformed(format!(
                "certificatePem holds a {label:?} block, not a CERTIFICATE"
            )));
        }
        let cert = Certificate::from_der(&der)
            .map_err(|e| malformed(format!("the claim certificate does not parse: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid != pkcs1::ALGORITHM_OID {
            return Err(malformed("the claim certificate's key is not RSA"));
        }
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| malformed("the claim certificate's public key is not whole bytes"))?;
        let rsa = pkcs1::RsaPublicKey::from_der(key_bytes)
            .map_err(|_| malformed("the claim certificate's RSA public key does not parse"))?;
        Ok(Self {
            id: hex::encode(Sha256::digest(&der)),
            pem: pem.trim().to_owned(),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial_hex: hex::encode(tbs.serial_number.as_bytes()),
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            rsa_modulus: strip_leading_zeros(rsa.modulus.as_bytes()),
            rsa_exponent: strip_leading_zeros(rsa.public_exponent.as_bytes()),
            der,
        })
    }

    /// The certificate id: lowercase hex SHA-256 of the DER.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The certificate as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject, RFC 4514 style.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer, RFC 4514 style.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The serial number in hex.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// Start of validity (server clock).
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of validity (server clock).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The RSA key size in bits.
    pub fn key_bits(&self) -> usize {
        let lead = self
            .rsa_modulus
            .first()
            .map(|b| 8 - b.leading_zeros() as usize)
            .unwrap_or(0);
        self.rsa_modulus.len().saturating_sub(1) * 8 + lead
    }
}

/// Checks that `key_pem` (PKCS#1 `RSA PRIVATE KEY`, as AWS returns it, or PKCS#8 `PRIVATE KEY`) is the
/// private half of `cert`'s public key. The decoded DER lives in a zeroizing buffer.
pub(crate) fn check_key_matches(
    key_pem: &SecretString,
    cert: &ClaimCertificate,
) -> Result<(), ClaimError> {
    let (label, doc) = SecretDocument::from_pem(key_pem.expose())
        .map_err(|_| malformed("keyPair.PrivateKey is not a PEM private key"))?;
    let (modulus, exponent) = match label {
        "RSA PRIVATE KEY" => rsa_public_half(doc.as_bytes())?,
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfo::from_der(doc.as_bytes())
                .map_err(|_| malformed("keyPair.PrivateKey is not a PKCS#8 private key"))?;
            if info.algorithm.oid != pkcs1::ALGORITHM_OID {
                return Err(malformed("keyPair.PrivateKey is not an RSA key"));
            }
            rsa_public_half(info.private_key)?
        }
        other => {
            return Err(malformed(format!(
                "keyPair.PrivateKey holds a {other:?} block, not an RSA private key"
            )))
        }
    };
    if modulus != cert.rsa_modulus || exponent != cert.rsa_exponent {
        return Err(malformed(
            "keyPair.PrivateKey does not belong to the claim certificate",
        ));
    }
    Ok(())
}

fn rsa_public_half(pkcs1_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ClaimError> {
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1_der)
        .map_err(|_| malformed("keyPair.PrivateKey is not a PKCS#1 RSA private key"))?;
    Ok((
        strip_leading_zeros(key.modulus.as_bytes()),
        strip_leading_zeros(key.public_exponent.as_bytes()),
    ))
}
