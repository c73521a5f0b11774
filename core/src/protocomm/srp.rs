//! SRP-6a as protocomm Security 2 uses it: the RFC 5054 3072-bit group, generator 5, SHA-512.
//!
//! The formulas (both roles compute the same values):
//!
//! * `k = H(PAD(N) ‖ PAD(g))`, `u = H(PAD(A) ‖ PAD(B))` — PAD left-pads with zeros to 384 bytes;
//! * `x = H(s ‖ H(I ‖ ":" ‖ P))`, `v = g^x`;
//! * client: `S = (B − k·v)^(a + u·x)`; device: `S = (A · v^u)^b`;
//! * `K = H(S)` with `S` in minimal big-endian bytes (64 bytes; the AES-256-GCM key is `K[..32]`);
//! * `M = H(H(N) ⊕ H(PAD(g)) ‖ H(I) ‖ s ‖ A ‖ B ‖ K)` — the client's proof;
//! * `H_AMK = H(A ‖ M ‖ K)` — the device's proof.
//!
//! `A` is sent as 384 bytes; `B` is hashed as the device sent it. Big-number arithmetic is `num-bigint`
//! (not constant-time: acceptable for a handshake on the phone, where an attacker cannot time it
//! precisely; noted in docs/protocol.md).

use num_bigint::BigUint;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::secret::{SecretBytes, WipedOnDrop};

/// Byte length of the group's modulus (and of padded public keys).
pub const N_LEN: usize = 384;
/// Length of SHA-512 digests (proofs, session key).
pub const HASH_LEN: usize = 64;

const N_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64",
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B",
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31",
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// The group: modulus `N`, generator `g = 5`, multiplier `k`.
#[derive(Clone, Debug)]
pub struct Group {
    /// The modulus.
    pub n: BigUint,
    /// The generator.
    pub g: BigUint,
    /// `k = H(PAD(N) ‖ PAD(g))`.
    pub k: BigUint,
}

impl Group {
    /// The RFC 5054 3072-bit group with generator 5.
    pub fn rfc5054_3072() -> Self {
        // The constant is valid hex; an empty fallback would make every later check fail loudly.
        let n = BigUint::parse_bytes(N_HEX.as_bytes(), 16).unwrap_or_default();
        let g = BigUint::from(5u32);
        let k = BigUint::from_bytes_be(&hash(&[&pad(&n), &pad(&g)]));
        Self { n, g, k }
    }
}

/// SHA-512 of the concatenation of `parts`.
pub fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `n` as big-endian bytes left-padded to [`N_LEN`].
pub fn pad(n: &BigUint) -> Vec<u8> {
    let bytes = n.to_bytes_be();
    let mut out = vec![0u8; N_LEN.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    out
}

/// Left-pads raw big-endian bytes to [`N_LEN`] (longer inputs are returned as they are).
pub fn pad_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; N_LEN.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// `x = H(s ‖ H(I ‖ ":" ‖ P))`.
pub fn private_key_x(salt: &[u8], username: &[u8], password: &[u8]) -> BigUint {
    let mut inner = hash(&[username, b":", password]);
    let mut outer = hash(&[salt, &inner]);
    let x = BigUint::from_bytes_be(&outer);
    inner.zeroize();
    outer.zeroize();
    x
}

/// A big number derived from the password or the private exponent, its digits overwritten when it is
/// dropped. num-bigint's arithmetic makes temporaries of its own that this cannot reach; they live
/// only for the handshake.
type Wiped = WipedOnDrop<BigUint>;

fn wiped(n: BigUint) -> Wiped {
    WipedOnDrop(n, |n| {
        // Overwrites the used digits in place (the allocation is reused), then empties the number.
        let words = usize::try_from(n.bits().div_ceil(32)).unwrap_or(0);
        n.assign_from_slice(&vec![0u32; words]);
    })
}

/// `u = H(PAD(A) ‖ PAD(B))`.
pub fn scrambler_u(a_pub: &[u8], b_pub: &[u8]) -> BigUint {
    BigUint::from_bytes_be(&hash(&[&pad_bytes(a_pub), &pad_bytes(b_pub)]))
}

/// `K = H(S)`, `S` in minimal big-endian bytes.
pub fn session_key(s: &BigUint) -> SecretBytes {
    let s = Zeroizing::new(s.to_bytes_be());
    let mut key = hash(&[&s]);
    let secret = SecretBytes::new(key.to_vec());
    key.zeroize();
    secret
}

/// The client's proof `M = H(H(N) ⊕ H(PAD(g)) ‖ H(I) ‖ s ‖ A ‖ B ‖ K)`.
pub fn client_proof(
    group: &Group,
    username: &[u8],
    salt: &[u8],
    a_pub: &[u8],
    b_pub: &[u8],
    key: &[u8],
) -> [u8; HASH_LEN] {
    let hn = hash(&[&group.n.to_bytes_be()]);
    let hg = hash(&[&pad(&group.g)]);
    let mut x = [0u8; HASH_LEN];
    for (i, b) in x.iter_mut().enumerate() {
        *b = hn[i] ^ hg[i];
    }
    let hi = hash(&[username]);
    hash(&[&x, &hi, salt, a_pub, b_pub, key])
}

/// The device's proof `H_AMK = H(A ‖ M ‖ K)`.
pub fn device_proof(a_pub: &[u8], m: &[u8], key: &[u8]) -> [u8; HASH_LEN] {
    hash(&[a_pub, m, key])
}

/// What the client knows after the first round.
pub(crate) struct ClientRound1 {
    pub proof: [u8; HASH_LEN],
    pub expected_device_proof: [u8; HASH_LEN],
    pub key: SecretBytes,
}

/// The client side: private `a` (256 bits) and public `A = g^a`, padded to 384 bytes.
pub(crate) struct Client {
    group: Group,
    a: Wiped,
    a_pub: Vec<u8>,
}

impl Client {
    /// A client with private exponent from `a_bytes` (32 random bytes).
    pub fn new(a_bytes: &[u8; 32]) -> Self {
        let group = Group::rfc5054_3072();
        let a = wiped(BigUint::from_bytes_be(a_bytes));
        let a_pub = pad(&group.g.modpow(&a.0, &group.n));
        Self { group, a, a_pub }
    }

    /// `A`, 384 bytes.
    pub fn public_key(&self) -> &[u8] {
        &self.a_pub
    }

    /// Processes the device's salt and `B`; `None` when `B` is unacceptable (`B mod N = 0`, `u = 0`,
    /// or longer than the modulus).
    pub fn respond(
        &self,
        username: &[u8],
        password: &[u8],
        salt: &[u8],
        b_pub: &[u8],
    ) -> Option<ClientRound1> {
        let g = &self.group;
        if b_pub.is_empty() || b_pub.len() > N_LEN {
            return None;
        }
        let b = BigUint::from_bytes_be(b_pub);
        if (&b % &g.n) == BigUint::ZERO {
            return None;
        }
        let u = scrambler_u(&self.a_pub, b_pub);
        if u == BigUint::ZERO {
            return None;
        }
        let x = wiped(private_key_x(salt, username, password));
        let v = wiped(g.g.modpow(&x.0, &g.n));
        let kv = wiped((&g.k * &v.0) % &g.n);
        let base = wiped(((&b % &g.n) + &g.n - &kv.0) % &g.n);
        let ux = wiped(&u * &x.0);
        let exp = wiped(&self.a.0 + &ux.0);
        let s = wiped(base.0.modpow(&exp.0, &g.n));
        let key = session_key(&s.0);
        let proof = client_proof(g, username, salt, &self.a_pub, b_pub, key.expose());
        let expected_device_proof = device_proof(&self.a_pub, &proof, key.expose());
        Some(ClientRound1 {
            proof,
            expected_device_proof,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_the_rfc_5054_3072_bit_prime() {
        let g = Group::rfc5054_3072();
        assert_eq!(g.n.bits(), 3072);
        assert_eq!(g.n.to_bytes_be().len(), N_LEN);
        // Both ends are 64 one-bits, as for every RFC 3526/5054 MODP prime.
        let bytes = g.n.to_bytes_be();
        assert!(bytes[..8]
            .iter()
            .chain(&bytes[N_LEN - 8..])
            .all(|b| *b == 0xff));
        // g generates the subgroup of quadratic residues? No: for a safe prime, 5 is a non-residue,
        // so g^((N-1)/2) = N-1.
        let half = (&g.n - 1u32) >> 1;
        assert_eq!(g.g.modpow(&half, &g.n), &g.n - 1u32);
    }

    #[test]
    fn client_and_a_textbook_server_agree() {
        let group = Group::rfc5054_3072();
        let client = Client::new(&[7u8; 32]);
        let (user, pass, salt) = (b"wifiprov".as_slice(), b"abcd1234".as_slice(), [9u8; 16]);
        // Server side, straight from the formulas.
        let x = private_key_x(&salt, user, pass);
        let v = group.g.modpow(&x, &group.n);
        let b = BigUint::from_bytes_be(&[3u8; 32]);
        let b_pub = ((&group.k * &v) + group.g.modpow(&b, &group.n)) % &group.n;
        let b_bytes = b_pub.to_bytes_be();
        let round = client
            .respond(user, pass, &salt, &b_bytes)
            .expect("acceptable B");
        let a = BigUint::from_bytes_be(client.public_key());
        let u = scrambler_u(client.public_key(), &b_bytes);
        let s_server = ((a * v.modpow(&u, &group.n)) % &group.n).modpow(&b, &group.n);
        let key = session_key(&s_server);
        assert_eq!(key.expose(), round.key.expose());
        assert_eq!(
            round.proof,
            client_proof(
                &group,
                user,
                &salt,
                client.public_key(),
                &b_bytes,
                key.expose()
            )
        );
        // A wrong password gives another proof.
        let wrong = client
            .respond(user, b"abcd1235", &salt, &b_bytes)
            .expect("acceptable B");
        assert_ne!(wrong.proof, round.proof);
    }

    /// Known answer from upstream: ESP-IDF's example salt/verifier for `wifiprov` / `abcd1234`
    /// (network_provisioning's wifi_prov example and protocomm's test_srp.c).
    #[test]
    fn the_upstream_example_verifier_is_reproduced() {
        let group = Group::rfc5054_3072();
        let salt = [
            0x03, 0x6e, 0xe0, 0xc7, 0xbc, 0xb9, 0xed, 0xa8, 0x4c, 0x9e, 0xac, 0x97, 0xd9, 0x3d,
            0xec, 0xf4,
        ];
        let x = private_key_x(&salt, b"wifiprov", b"abcd1234");
        let v = pad(&group.g.modpow(&x, &group.n));
        assert_eq!(hex::encode(&v[..16]), "7c7c85476508946dd636af37d7e89143");
        assert_eq!(hex::encode(&v[N_LEN - 8..]), "5040f762de36b2ba");
    }

    #[test]
    fn degenerate_b_is_refused() {
        let client = Client::new(&[1u8; 32]);
        let group = Group::rfc5054_3072();
        assert!(client.respond(b"u", b"p", b"s", &[]).is_none());
        assert!(client.respond(b"u", b"p", b"s", &[0u8; 10]).is_none());
        assert!(client
            .respond(b"u", b"p", b"s", &group.n.to_bytes_be())
            .is_none());
        assert!(client
            .respond(b"u", b"p", b"s", &[1u8; N_LEN + 1])
            .is_none());
    }
}
