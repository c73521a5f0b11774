//! The emulator's certificates: a root CA for its TLS endpoints, and a claim CA that issues real
//! RSA-2048 claim certificates the way AWS IoT's `CreateProvisioningClaim` does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::key_pool::KeyPool;
use super::EmulatorError;

/// A CA that can sign certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new(common_name: &str) -> Result<Self, EmulatorError> {
        let key = KeyPair::generate().map_err(pki_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(pki_error)?;
        Ok(Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "claimlink emulator");
    dn.push(DnType::CommonName, common_name);
    dn
}

pub(crate) fn pki_error(e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Pki(e.to_string())
}

/// A certificate and key for one of the emulator's TLS servers.
pub struct ServerIdentity {
    /// Certificate chain, leaf first, DER.
    pub chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// A claim certificate as the emulator issued it.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// Lowercase hex SHA-256 of the DER: AWS's certificate id.
    pub certificate_id: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The RSA private key, PKCS#1 PEM (`RSA PRIVATE KEY`), as AWS returns it.
    pub private_key_pem: Zeroizing<String>,
    /// The public key, SPKI PEM.
    pub public_key_pem: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("certificate_id", &self.certificate_id)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// All the emulator's authorities.
pub struct Pki {
    /// Signs the emulator's TLS server certificates (the trust anchor clients add).
    pub server_ca: Authority,
    /// Signs claim certificates.
    pub claim_ca: Authority,
    /// Signs device (permanent) certificates from `CreateKeysAndCertificate` and
    /// `CreateCertificateFromCsr`.
    pub device_ca: Authority,
    /// RSA keys generated ahead for claims and `CreateKeysAndCertificate`.
    pub keys: KeyPool,
}

impl Pki {
    /// Generates fresh authorities (ECDSA P-256).
    pub fn generate() -> Result<Self, EmulatorError> {
        Ok(Self {
            server_ca: Authority::new("claimlink emulator root CA")?,
            claim_ca: Authority::new("claimlink emulator claim CA")?,
            device_ca: Authority::new("claimlink emulator device CA")?,
            keys: KeyPool::per_core(),
        })
    }

    /// A TLS server certificate for `localhost` and 127.0.0.1.
    pub fn server_identity(&self) -> Result<ServerIdentity, EmulatorError> {
        self.server_identity_for(&[])
    }

    /// A TLS server certificate for `localhost`, 127.0.0.1 and `more_names` (host names or IPs: the
    /// name a device on the LAN reaches the emulator by).
    pub fn server_identity_for(
        &self,
        more_names: &[String],
    ) -> Result<ServerIdentity, EmulatorError> {
        let key = KeyPair::generate().map_err(pki_error)?;
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(more_names.iter().cloned());
        let mut params = CertificateParams::new(names).map_err(pki_error)?;
        params.distinguished_name = name("localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let cert = params
            .signed_by(&key, &self.server_ca.issuer)
            .map_err(pki_error)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// Signs a device certificate for a CSR (PEM): AWS's `CreateCertificateFromCsr`. The subject and key
    /// come from the CSR; validity is long, as AWS's (here: ten years).
    pub fn sign_csr(&self, csr_pem: &str) -> Result<(String, String, Vec<u8>), EmulatorError> {
        let mut csr =
            rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(pki_error)?;
        device_certificate(&mut csr.params);
        let cert = csr.signed_by(&self.device_ca.issuer).map_err(pki_error)?;
        let der = cert.der().to_vec();
        Ok((hex::encode(Sha256::digest(&der)), cert.pem(), der))
    }

    /// A new RSA-2048 key and a device certificate for it: AWS's `CreateKeysAndCertificate`.
    /// Returns (certificate id, certificate PEM, DER, private key PKCS#1 PEM).
    pub fn create_keys_and_certificate(
        &self,
    ) -> Result<(String, String, Vec<u8>, Zeroizing<String>), EmulatorError> {
        let rsa_key = self.keys.take().map_err(pki_error)?;
        let pkcs8 = rsa_key.to_pkcs8_der();
        let key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(pki_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "AWS IoT Certificate");
        params.distinguished_name = dn;
        device_certificate(&mut params);
        let cert = params
            .signed_by(&key, &self.device_ca.issuer)
            .map_err(pki_error)?;
        let der = cert.der().to_vec();
        Ok((
            hex::encode(Sha256::digest(&der)),
            cert.pem(),
            der,
            rsa_key.to_pkcs1_pem(),
        ))
    }

    /// Issues a claim certificate with a fresh RSA-2048 key, valid from `not_before` for `validity`.
    /// Times are truncated to whole seconds, as X.509 stores them.
    pub fn issue_claim(
        &self,
        not_before: SystemTime,
        validity: Duration,
    ) -> Result<IssuedCertificate, EmulatorError> {
        let rsa_key = self.keys.take().map_err(pki_error)?;
        let pkcs8 = rsa_key.to_pkcs8_der();
        let key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(pki_error)?;
        let start = whole_seconds(not_before);
        // Saturates at the end of year 9999, the last time X.509 can state (a validity of
        // `u64::MAX` seconds used to overflow here and panic).
        let latest = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        let end = start
            .checked_add(validity)
            .map_or(latest, |end| end.min(latest));
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "AWS IoT Certificate");
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(random_serial()));
        params.not_before = to_offset(start);
        params.not_after = to_offset(end);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.claim_ca.issuer)
            .map_err(pki_error)?;
        let der = cert.der().to_vec();
        Ok(IssuedCertificate {
            certificate_id: hex::encode(Sha256::digest(&der)),
            certificate_pem: cert.pem(),
            certificate_der: der,
            private_key_pem: rsa_key.to_pkcs1_pem(),
            public_key_pem: rsa_key.public_key_pem(),
            not_before: start,
            not_after: end,
        })
    }
}

/// What every device certificate gets: a random serial, ten years of validity (AWS's are long-lived),
/// client authentication only.
fn device_certificate(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(3650);
    params.serial_number = Some(SerialNumber::from(random_serial()));
    params.is_ca = IsCa::NoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
}

fn random_serial() -> Vec<u8> {
    let mut serial: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // no leading zero byte
    serial
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH
        + Duration::from_secs(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
}

fn to_offset(t: SystemTime) -> time::OffsetDateTime {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    time::OffsetDateTime::UNIX_EPOCH
        .checked_add(time::Duration::seconds(
            i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        ))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_validity_saturates_at_the_end_of_year_9999() -> Result<(), EmulatorError> {
        let pki = Pki::generate()?;
        let claim = pki.issue_claim(SystemTime::now(), Duration::MAX)?;
        assert_eq!(
            claim.not_after,
            UNIX_EPOCH + Duration::from_secs(253_402_300_799)
        );
        Ok(())
    }

    #[test]
    fn claims_are_rsa_2048_and_named_by_their_hash() -> Result<(), EmulatorError> {
        let pki = Pki::generate()?;
        let now = SystemTime::now();
        let claim = pki.issue_claim(now, Duration::from_secs(300))?;
        assert_eq!(
            claim.certificate_id,
            hex::encode(Sha256::digest(&claim.certificate_der))
        );
        assert!(claim
            .private_key_pem
            .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let parsed = claimlink_core::ClaimCertificate::from_pem(&claim.certificate_pem)
            .map_err(|e| EmulatorError::Pki(e.to_string()))?;
        assert_eq!(parsed.key_bits(), 2048);
        assert_eq!(parsed.not_after(), claim.not_after);
        assert_eq!(
            parsed.not_after().duration_since(parsed.not_before()).ok(),
            Some(Duration::from_secs(300))
        );
        assert!(parsed.issuer().contains("claim CA"));
        Ok(())
    }
}
