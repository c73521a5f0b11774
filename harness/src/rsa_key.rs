//! RSA private keys for the harness, without the `rsa` crate (RUSTSEC-2023-0071, no fixed release):
//! generating RSA-2048 keys the way AWS IoT hands them out (the emulator's claims and device keys,
//! `check-device`'s test claim), rebuilding a key from its primes (what the simulated firmware does
//! with a claim bundle, as `mbedtls_rsa_import_raw` + `mbedtls_rsa_complete` do on a device), and
//! encoding them as PKCS#1, PKCS#8 and SubjectPublicKeyInfo DER/PEM.
//!
//! No private-key operation happens here: TLS signs with ring (through rustls and rcgen), and ring
//! checks every key it loads. The arithmetic is `num-bigint`'s (not constant time), which is fine for
//! generating and encoding test keys, never for signing or decrypting with them.
//!
//! Key generation follows FIPS 186-5 appendix A.1.3 in its essentials: two random 1024-bit primes with
//! the top two bits set (so n has exactly 2048 bits), `e` = 65537 coprime to p − 1 and q − 1,
//! |p − q| > 2^(1024 − 100), d = e⁻¹ mod lcm(p − 1, q − 1) (the smallest d, as mbedtls and the `rsa`
//! crate's `from_p_q` compute it), and the CRT values dP, dQ, qInv. Candidates are sieved by the
//! primes below 2^14 and then pass six Miller–Rabin rounds (base 2, then five random bases), no fewer
//! than FIPS 186-5 appendix B.3 asks for 1024-bit primes.

use std::fmt;
use std::sync::OnceLock;

use num_bigint::BigUint;
use num_integer::Integer;
use rand::RngCore;
use zeroize::Zeroizing;

/// The public exponent every generated key gets (AWS's and everyone's).
pub const PUBLIC_EXPONENT: u32 = 65_537;
/// Bits of each generated prime: an RSA-2048 key.
const PRIME_BITS: u64 = 1024;
/// The largest modulus a rebuilt key may have (ring's and mbedtls's usual limit).
const MAX_MODULUS_BITS: u64 = 4096;
/// The largest public exponent a rebuilt key may have (2^33 − 1, as the `rsa` crate allowed).
const MAX_EXPONENT_BITS: u64 = 33;
/// Random Miller–Rabin bases tried after base 2.
const RANDOM_ROUNDS: usize = 5;
/// Small primes below this sieve the candidates.
const SIEVE_LIMIT: u32 = 1 << 14;
/// Odd candidates sieved from one random start (a span of 8,192: about 11 average prime gaps at 1024
/// bits, so a start without a prime in its window is rare and simply replaced).
const WINDOW: usize = 4096;

/// Why a key cannot be made or rebuilt. Names no secret number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    /// A prime is 0, 1, even, or too large.
    ImplausiblePrime,
    /// p and q are equal.
    EqualPrimes,
    /// The public exponent is even, below 3 or above 2^33 − 1.
    ImplausibleExponent,
    /// The modulus would have more than 4,096 bits.
    ModulusTooLarge,
    /// e has no inverse modulo lcm(p − 1, q − 1), or q none modulo p: the numbers are not an RSA key.
    NotInvertible,
    /// The operating system's random number generator failed.
    Randomness(String),
}

impl fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ImplausiblePrime => f.write_str("an RSA prime is 0, 1, even or too large"),
            Self::EqualPrimes => f.write_str("the two RSA primes are equal"),
            Self::ImplausibleExponent => {
                f.write_str("the RSA public exponent is even, below 3 or above 2^33 - 1")
            }
            Self::ModulusTooLarge => f.write_str("the RSA modulus would exceed 4096 bits"),
            Self::NotInvertible => {
                f.write_str("the RSA numbers do not form a key (no modular inverse)")
            }
            Self::Randomness(e) => write!(f, "no randomness for an RSA key: {e}"),
        }
    }
}

impl std::error::Error for RsaKeyError {}

/// An RSA private key with two primes. Its secret numbers are wiped when it is dropped, and `Debug`
/// shows only the modulus size.
pub struct RsaKey {
    n: BigUint,
    e: BigUint,
    d: BigUint,
    p: BigUint,
    q: BigUint,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaKey({} bits)", self.n.bits())
    }
}

impl Drop for RsaKey {
    fn drop(&mut self) {
        for secret in [
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qinv,
        ] {
            wipe(secret);
        }
    }
}

impl RsaKey {
    /// A new RSA-2048 key with e = 65537, from the operating system's randomness.
    pub fn generate() -> Result<Self, RsaKeyError> {
        let e = BigUint::from(PUBLIC_EXPONENT);
        let mut rng = rand::rngs::OsRng;
        let p = random_prime(&mut rng, &e)?;
        loop {
            let mut q = random_prime(&mut rng, &e)?;
            let distance = if p > q { &p - &q } else { &q - &p };
            // FIPS 186-5 A.1.3 step 5.4: |p − q| > 2^(nlen/2 − 100). A random pair fails with
            // probability about 2^-99; then q is drawn again.
            if distance.bits() > PRIME_BITS - 100 {
                return Self::from_numbers(p, q, e);
            }
            wipe(&mut q);
        }
    }

    /// Rebuilds a key from its primes and public exponent, big-endian as a claim bundle carries them
    /// (bytes we did not make: every implausible value is an error, never a panic). The primes are not
    /// tested for primality, as `mbedtls_rsa_complete` does not; ring refuses a key whose numbers do
    /// not fit together when it loads it.
    pub fn from_primes(p: &[u8], q: &[u8], e: &[u8]) -> Result<Self, RsaKeyError> {
        let plausible_prime = |bytes: &[u8]| {
            let n = BigUint::from_bytes_be(bytes);
            (n >= BigUint::from(3u32) && n.bit(0) && n.bits() <= MAX_MODULUS_BITS)
                .then_some(n)
                .ok_or(RsaKeyError::ImplausiblePrime)
        };
        let e = BigUint::from_bytes_be(e);
        if e < BigUint::from(3u32) || !e.bit(0) || e.bits() > MAX_EXPONENT_BITS {
            return Err(RsaKeyError::ImplausibleExponent);
        }
        let p = plausible_prime(p)?;
        let q = plausible_prime(q)?;
        if p == q {
            return Err(RsaKeyError::EqualPrimes);
        }
        if p.bits() + q.bits() > MAX_MODULUS_BITS + 1 {
            return Err(RsaKeyError::ModulusTooLarge);
        }
        Self::from_numbers(p, q, e)
    }

    /// The key from two distinct odd numbers above 2 and a plausible exponent.
    fn from_numbers(p: BigUint, q: BigUint, e: BigUint) -> Result<Self, RsaKeyError> {
        let n = &p * &q;
        if n.bits() > MAX_MODULUS_BITS {
            return Err(RsaKeyError::ModulusTooLarge);
        }
        // p, q ≥ 3 (checked by the callers), so p − 1 and q − 1 do not underflow.
        let one = BigUint::from(1u32);
        let mut p1 = &p - &one;
        let mut q1 = &q - &one;
        let mut lambda = p1.lcm(&q1);
        let d = e.modinv(&lambda);
        wipe(&mut lambda);
        let qinv = q.modinv(&p);
        let (Some(d), Some(qinv)) = (d, qinv) else {
            wipe(&mut p1);
            wipe(&mut q1);
            return Err(RsaKeyError::NotInvertible);
        };
        let dp = &d % &p1;
        let dq = &d % &q1;
        wipe(&mut p1);
        wipe(&mut q1);
        Ok(Self {
            n,
            e,
            d,
            p,
            q,
            dp,
            dq,
            qinv,
        })
    }

    /// Bits of the modulus.
    pub fn modulus_bits(&self) -> u64 {
        self.n.bits()
    }

    /// The first prime, big-endian (what a claim bundle carries).
    pub fn p_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.p.to_bytes_be())
    }

    /// The second prime, big-endian.
    pub fn q_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.q.to_bytes_be())
    }

    /// The public exponent, big-endian.
    pub fn e_bytes(&self) -> Vec<u8> {
        self.e.to_bytes_be()
    }

    /// The private key as PKCS#1 `RSAPrivateKey` DER (RFC 8017, appendix A.1.2).
    pub fn to_pkcs1_der(&self) -> Zeroizing<Vec<u8>> {
        let numbers = [
            &self.n, &self.e, &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qinv,
        ];
        let body_len = 3 + numbers.iter().map(|n| integer_len(n)).sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(tlv_len(body_len)));
        header(&mut out, SEQUENCE, body_len);
        out.extend_from_slice(&[INTEGER, 1, 0]); // version 0: two primes
        for number in numbers {
            integer(&mut out, number);
        }
        out
    }

    /// The private key as PKCS#8 `PrivateKeyInfo` DER (RFC 5208) around the PKCS#1 key: what ring
    /// and rcgen load.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let pkcs1 = self.to_pkcs1_der();
        let body_len = 3 + RSA_ALGORITHM.len() + tlv_len(pkcs1.len());
        let mut out = Zeroizing::new(Vec::with_capacity(tlv_len(body_len)));
        header(&mut out, SEQUENCE, body_len);
        out.extend_from_slice(&[INTEGER, 1, 0]);
        out.extend_from_slice(RSA_ALGORITHM);
        header(&mut out, OCTET_STRING, pkcs1.len());
        out.extend_from_slice(&pkcs1);
        out
    }

    /// The private key as PKCS#1 PEM (`RSA PRIVATE KEY`, LF line ends): what AWS's
    /// `CreateProvisioningClaim` and `CreateKeysAndCertificate` return.
    pub fn to_pkcs1_pem(&self) -> Zeroizing<String> {
        pem("RSA PRIVATE KEY", &self.to_pkcs1_der())
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (what ring verifies with).
    pub fn public_key_pkcs1_der(&self) -> Vec<u8> {
        let body_len = integer_len(&self.n) + integer_len(&self.e);
        let mut out = Vec::with_capacity(tlv_len(body_len));
        header(&mut out, SEQUENCE, body_len);
        integer(&mut out, &self.n);
        integer(&mut out, &self.e);
        out
    }

    /// The public key as SubjectPublicKeyInfo PEM (`PUBLIC KEY`, RFC 5280), as AWS returns it.
    pub fn public_key_pem(&self) -> String {
        let key = self.public_key_pkcs1_der();
        let bits_len = 1 + key.len();
        let body_len = RSA_ALGORITHM.len() + tlv_len(bits_len);
        let mut der = Vec::with_capacity(tlv_len(body_len));
        header(&mut der, SEQUENCE, body_len);
        der.extend_from_slice(RSA_ALGORITHM);
        header(&mut der, BIT_STRING, bits_len);
        der.push(0); // no unused bits
        der.extend_from_slice(&key);
        pem("PUBLIC KEY", &der).to_string()
    }
}

// ---- primes ----

/// The odd primes below [`SIEVE_LIMIT`] (computed once).
fn small_primes() -> &'static [u32] {
    static PRIMES: OnceLock<Vec<u32>> = OnceLock::new();
    PRIMES.get_or_init(|| {
        let limit = SIEVE_LIMIT as usize;
        let mut composite = vec![false; limit];
        let mut primes = Vec::new();
        for i in 3..limit {
            if !composite[i] {
                primes.push(i as u32);
                for multiple in (i * i..limit).step_by(i) {
                    composite[multiple] = true;
                }
            }
        }
        primes
    })
}

/// A random [`PRIME_BITS`]-bit prime with its top two bits set and `p − 1` coprime to `e`.
fn random_prime(rng: &mut impl RngCore, e: &BigUint) -> Result<BigUint, RsaKeyError> {
    let mut bytes = Zeroizing::new(vec![0u8; (PRIME_BITS / 8) as usize]);
    loop {
        rng.try_fill_bytes(&mut bytes)
            .map_err(|e| RsaKeyError::Randomness(e.to_string()))?;
        bytes[0] |= 0xc0;
        if let Some(last) = bytes.last_mut() {
            *last |= 1;
        }
        let mut start = BigUint::from_bytes_be(&bytes);
        // composite[j]: start + 2j has a prime factor below SIEVE_LIMIT.
        let mut composite = vec![false; WINDOW];
        for &prime in small_primes() {
            let prime = u64::from(prime);
            let residue = (&start % prime as u32)
                .iter_u64_digits()
                .next()
                .unwrap_or(0);
            // start + 2j ≡ 0 (mod prime) ⇔ j ≡ −residue · 2⁻¹, and 2⁻¹ = (prime + 1) / 2.
            let first = (prime - residue) % prime * prime.div_ceil(2) % prime;
            for j in (first as usize..WINDOW).step_by(prime as usize) {
                composite[j] = true;
            }
        }
        for (j, _) in composite.iter().enumerate().filter(|(_, c)| !**c) {
            let mut candidate = &start + BigUint::from(2 * j as u64);
            if candidate.bits() != PRIME_BITS {
                wipe(&mut candidate);
                break;
            }
            let coprime = (&candidate - 1u32).gcd(e) == BigUint::from(1u32);
            if coprime && probably_prime(rng, &candidate)? {
                wipe(&mut start);
                return Ok(candidate);
            }
            wipe(&mut candidate);
        }
        wipe(&mut start);
    }
}

/// Miller–Rabin with base 2, then [`RANDOM_ROUNDS`] random bases in [2, n − 2]. `n` is odd and
/// far above the bases.
fn probably_prime(rng: &mut impl RngCore, n: &BigUint) -> Result<bool, RsaKeyError> {
    let one = BigUint::from(1u32);
    let n_minus_1 = n - &one;
    // n − 1 = d · 2^s with d odd (n is odd and above 3, so n − 1 is even and non-zero).
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let witness = |a: &BigUint| {
        let mut x = a.modpow(&d, n);
        if x == one || x == n_minus_1 {
            return false;
        }
        for _ in 1..s {
            x = &x * &x % n;
            if x == n_minus_1 {
                return false;
            }
        }
        true
    };
    if witness(&BigUint::from(2u32)) {
        return Ok(false);
    }
    let mut bytes = vec![0u8; n.to_bytes_be().len() + 8];
    let span = n - 3u32;
    for _ in 0..RANDOM_ROUNDS {
        rng.try_fill_bytes(&mut bytes)
            .map_err(|e| RsaKeyError::Randomness(e.to_string()))?;
        let base = BigUint::from_bytes_be(&bytes) % &span + 2u32;
        if witness(&base) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Overwrites a number's digits with zeros in place before its memory is freed. `num-bigint` has no
/// `Zeroize`: clearing the bits from the lowest up zeroes each digit where it is, and the vector is
/// only shortened (then freed) once every digit is zero.
fn wipe(number: &mut BigUint) {
    for bit in 0..number.bits() {
        number.set_bit(bit, false);
    }
    std::hint::black_box(number);
}

// ---- DER and PEM ----

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const SEQUENCE: u8 = 0x30;
/// AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL } (RFC 8017, appendix C).
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Bytes of a DER length field for `len`.
fn length_len(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        _ => 1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize,
    }
}

/// Bytes of a whole TLV whose value has `len` bytes.
fn tlv_len(len: usize) -> usize {
    1 + length_len(len) + len
}

fn header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len <= 0x7f {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Bytes of a non-negative DER INTEGER's content: big-endian, with a leading zero when the top bit
/// is set (a whole number of bytes), and one zero byte for 0.
fn integer_content_len(number: &BigUint) -> usize {
    (number.bits() / 8 + 1) as usize
}

fn integer_len(number: &BigUint) -> usize {
    tlv_len(integer_content_len(number))
}

fn integer(out: &mut Vec<u8>, number: &BigUint) {
    let bytes = Zeroizing::new(number.to_bytes_be());
    let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
    header(out, INTEGER, bytes.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(&bytes);
}

/// PEM (RFC 7468): base64 in lines of 64 characters, LF line ends.
fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let encoded_len = der.len().div_ceil(3) * 4;
    let mut out = Zeroizing::new(String::with_capacity(
        2 * label.len() + 40 + encoded_len + encoded_len / 64 + 1,
    ));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut column = 0;
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let sextets = [
            b[0] >> 2,
            (b[0] & 3) << 4 | b[1] >> 4,
            (b[1] & 15) << 2 | b[2] >> 6,
            b[2] & 63,
        ];
        for (i, sextet) in sextets.iter().enumerate() {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[usize::from(*sextet)])
            } else {
                '='
            });
        }
        column += 4;
        if column == 64 {
            out.push('\n');
            column = 0;
        }
    }
    if column != 0 {
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
