//! The harness's own RSA keys (src/rsa_key.rs): ring accepts what we generate and signs with it,
//! a key rebuilt from its primes is byte-identical to the generated one and to an independently
//! made fixture, and hostile numbers are refused with an error, never a panic.

use claimlink_harness::rsa_key::{RsaKey, RsaKeyError, PUBLIC_EXPONENT};
use ring::signature;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs1KeyDer, SubjectPublicKeyInfoDer};

/// A PKCS#1 key made by another implementation (proto/vectors/fixture, the vectors' claim key).
const FIXTURE_PEM: &str = include_str!("../../proto/vectors/fixture/claim-key.pem");

/// The fixture's primes, as the vectors' claim bundle carries them (proto/vectors/claim.json).
fn fixture_primes() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/vectors/claim.json")).expect("JSON");
    let field = |name: &str| {
        hex::decode(
            vector["bundle_fields"]["rsa_key"][name]
                .as_str()
                .expect("a hex field"),
        )
        .expect("hex")
    };
    (field("p"), field("q"), field("e"))
}

#[test]
fn generated_keys_are_rsa_2048_and_ring_signs_and_verifies_with_them() {
    let key = RsaKey::generate().expect("a key");
    assert_eq!(key.modulus_bits(), 2048);
    assert_eq!(key.e_bytes(), PUBLIC_EXPONENT.to_be_bytes()[1..].to_vec());
    for prime in [key.p_bytes(), key.q_bytes()] {
        assert_eq!(prime.len(), 128, "1024-bit primes");
        assert_eq!(prime[0] & 0xc0, 0xc0, "top two bits set");
        assert_eq!(prime[127] & 1, 1, "odd");
    }
    assert_ne!(key.p_bytes(), key.q_bytes());

    // ring checks every component (p·q = n, d, dP, dQ, qInv) when it loads a key, in both encodings.
    let pkcs1 = key.to_pkcs1_der();
    let pair = signature::RsaKeyPair::from_der(&pkcs1).expect("ring loads the PKCS#1 key");
    signature::RsaKeyPair::from_pkcs8(&key.to_pkcs8_der()).expect("ring loads the PKCS#8 key");
    assert_eq!(
        pair.public().as_ref(),
        key.public_key_pkcs1_der().as_slice()
    );

    let message = b"claimlink: a message to sign";
    let mut signed = vec![0; pair.public().modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message,
        &mut signed,
    )
    .expect("ring signs");
    let public = signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key_pkcs1_der(),
    );
    public
        .verify(message, &signed)
        .expect("the signature verifies");
    assert!(public.verify(b"another message", &signed).is_err());

    // The PEM forms decode to the same DER (PKCS#1) and to an SPKI around the public key.
    let from_pem =
        PrivatePkcs1KeyDer::from_pem_slice(key.to_pkcs1_pem().as_bytes()).expect("PKCS#1 PEM");
    assert_eq!(from_pem.secret_pkcs1_der(), pkcs1.as_slice());
    let spki =
        SubjectPublicKeyInfoDer::from_pem_slice(key.public_key_pem().as_bytes()).expect("SPKI PEM");
    assert!(spki.as_ref().ends_with(&key.public_key_pkcs1_der()));
}

#[test]
fn a_key_rebuilt_from_its_primes_is_byte_identical() {
    let key = RsaKey::generate().expect("a key");
    let rebuilt =
        RsaKey::from_primes(&key.p_bytes(), &key.q_bytes(), &key.e_bytes()).expect("rebuilt");
    assert_eq!(*rebuilt.to_pkcs1_der(), *key.to_pkcs1_der());
    assert_eq!(*rebuilt.to_pkcs1_pem(), *key.to_pkcs1_pem());
    assert_eq!(rebuilt.public_key_pem(), key.public_key_pem());
}

#[test]
fn a_key_made_elsewhere_is_rebuilt_from_its_primes_to_the_same_pem() {
    let (p, q, e) = fixture_primes();
    let rebuilt = RsaKey::from_primes(&p, &q, &e).expect("the fixture's primes");
    assert_eq!(rebuilt.to_pkcs1_pem().as_str(), FIXTURE_PEM);
}

#[test]
fn hostile_numbers_are_refused_with_an_error() {
    let (p, q, e) = fixture_primes();
    let mut even = p.clone();
    if let Some(last) = even.last_mut() {
        *last &= 0xfe;
    }
    let huge = {
        let mut n = vec![0xff; 513]; // 4,104 bits
        n[0] = 0x01;
        n
    };
    let big_half = vec![0xff; 260]; // 2,080 bits: with a 2,048-bit q, n exceeds 4,096 bits
    let big_q = {
        let mut n = vec![0xff; 256];
        n[0] = 0xc1;
        n
    };
    /// A name, p, q, e and the expected error.
    type Case<'a> = (&'a str, &'a [u8], &'a [u8], &'a [u8], RsaKeyError);
    let cases: Vec<Case> = vec![
        ("p empty", &[], &q, &e, RsaKeyError::ImplausiblePrime),
        ("p = 0", &[0], &q, &e, RsaKeyError::ImplausiblePrime),
        (
            "p = 0, padded",
            &[0, 0, 0],
            &q,
            &e,
            RsaKeyError::ImplausiblePrime,
        ),
        ("p = 1", &[1], &q, &e, RsaKeyError::ImplausiblePrime),
        ("q = 1", &p, &[1], &e, RsaKeyError::ImplausiblePrime),
        ("p = 2", &[2], &q, &e, RsaKeyError::ImplausiblePrime),
        ("p even", &even, &q, &e, RsaKeyError::ImplausiblePrime),
        ("q even", &p, &even, &e, RsaKeyError::ImplausiblePrime),
        (
            "p > 4096 bits",
            &huge,
            &q,
            &e,
            RsaKeyError::ImplausiblePrime,
        ),
        (
            "n > 4096 bits",
            &big_half,
            &big_q,
            &e,
            RsaKeyError::ModulusTooLarge,
        ),
        ("p = q", &p, &p, &e, RsaKeyError::EqualPrimes),
        ("e empty", &p, &q, &[], RsaKeyError::ImplausibleExponent),
        ("e = 0", &p, &q, &[0], RsaKeyError::ImplausibleExponent),
        ("e = 1", &p, &q, &[1], RsaKeyError::ImplausibleExponent),
        (
            "e even",
            &p,
            &q,
            &[1, 0, 0],
            RsaKeyError::ImplausibleExponent,
        ),
        (
            "e ≥ 2^33",
            &p,
            &q,
            &[3, 0, 0, 0, 1],
            RsaKeyError::ImplausibleExponent,
        ),
        // 9 and 15 share the factor 3: q has no inverse modulo p.
        (
            "p, q not coprime",
            &[9],
            &[15],
            &e,
            RsaKeyError::NotInvertible,
        ),
        // e = 3 divides p − 1 = 6 for p = 7.
        (
            "e divides p - 1",
            &[7],
            &[11],
            &[3],
            RsaKeyError::NotInvertible,
        ),
    ];
    for (name, p, q, e, expected) in cases {
        assert_eq!(
            RsaKey::from_primes(p, q, e).map(|_| ()),
            Err(expected),
            "{name}"
        );
    }
    // Small numbers that do fit together make a key (ring refuses it later: below 2048 bits).
    let small = RsaKey::from_primes(&[61], &[53], &[17]).expect("the textbook key");
    assert_eq!(small.modulus_bits(), 12);
    assert!(signature::RsaKeyPair::from_der(&small.to_pkcs1_der()).is_err());
    // Errors name no number.
    assert!(!format!("{:?}", RsaKeyError::NotInvertible).contains(&hex::encode(&p)[..8]));
    assert!(!format!("{small:?}").contains("61"));
}
