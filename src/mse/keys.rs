//! MSE's numbers: the 768-bit Diffie-Hellman exchange, the hashes that name the shared secret
//! and the torrent without showing them, and the two RC4 streams keyed from both.
//!
//! Everything here is pure; [`super::handshake`] does the talking.

use num_bigint::BigUint;
use rc4::{KeyInit, Rc4, StreamCipher};
use sha1::{Digest, Sha1};

use super::MseError;
use crate::ids::InfoHash;

/// The group's prime (the spec's `P`), big-endian; the generator is 2.
const PRIME: [u8; KEY_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];

/// Public keys and the shared secret are 96 bytes (768 bits), big-endian, zero-padded.
pub const KEY_LEN: usize = 96;

/// RC4's first 1,024 bytes of keystream are thrown away, in both directions.
const DISCARD: usize = 1024;

/// Our half of the exchange: a 160-bit secret exponent and its public key.
pub struct KeyPair {
    secret: BigUint,
    pub public: [u8; KEY_LEN],
}

impl KeyPair {
    /// A fresh pair from the system's random numbers.
    pub fn generate() -> Self {
        Self::from_secret(&rand::random::<[u8; 20]>())
    }

    /// The pair for this secret exponent (big-endian).
    pub fn from_secret(secret: &[u8]) -> Self {
        let secret = BigUint::from_bytes_be(secret);
        let public = BigUint::from(2u8).modpow(&secret, &prime());
        Self {
            public: to_key_bytes(&public),
            secret,
        }
    }

    /// The shared secret `S` from the other side's public key. Keys of 0, 1 and `P - 1` (and
    /// anything not below `P`) are refused: they would make `S` guessable.
    pub fn shared_secret(&self, theirs: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], MseError> {
        let p = prime();
        let theirs = BigUint::from_bytes_be(theirs);
        if theirs <= BigUint::from(1u8) || theirs >= &p - 1u8 {
            return Err(MseError::BadPublicKey);
        }
        Ok(to_key_bytes(&theirs.modpow(&self.secret, &p)))
    }
}

fn prime() -> BigUint {
    BigUint::from_bytes_be(&PRIME)
}

/// A number below `P` as 96 big-endian bytes.
fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    let start = KEY_LEN.saturating_sub(bytes.len());
    for (o, b) in out.iter_mut().skip(start).zip(bytes.iter()) {
        *o = *b;
    }
    out
}

/// SHA-1 over the parts, one after another (the spec's `HASH`).
fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut sha = Sha1::new();
    for part in parts {
        sha.update(part);
    }
    sha.finalize().into()
}

/// `HASH('req1', S)`: how the receiver finds where the initiator's padding ends.
pub fn req1(secret: &[u8; KEY_LEN]) -> [u8; 20] {
    hash(&[b"req1", secret])
}

/// `HASH('req2', SKEY)`: names the torrent without showing its info hash.
pub fn req2(info_hash: &InfoHash) -> [u8; 20] {
    hash(&[b"req2", &info_hash.0])
}

/// `HASH('req3', S)`: masks [`req2`] on the wire.
pub fn req3(secret: &[u8; KEY_LEN]) -> [u8; 20] {
    hash(&[b"req3", secret])
}

/// `a XOR b`.
pub fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b.iter())) {
        *o = x ^ y;
    }
    out
}

/// The two RC4 streams of one side of a connection.
pub struct Ciphers {
    /// What this side sends.
    pub encrypt: Rc4,
    /// What it receives.
    pub decrypt: Rc4,
}

impl Ciphers {
    /// The initiator encrypts with `HASH('keyA', S, SKEY)` and decrypts with `keyB`; the
    /// receiver the other way round. Both streams have their first 1,024 bytes discarded.
    pub fn new(
        secret: &[u8; KEY_LEN],
        info_hash: &InfoHash,
        initiator: bool,
    ) -> Result<Self, MseError> {
        let key_a = hash(&[b"keyA", secret, &info_hash.0]);
        let key_b = hash(&[b"keyB", secret, &info_hash.0]);
        let (out, inn) = if initiator {
            (key_a, key_b)
        } else {
            (key_b, key_a)
        };
        Ok(Self {
            encrypt: stream(&out)?,
            decrypt: stream(&inn)?,
        })
    }
}

fn stream(key: &[u8; 20]) -> Result<Rc4, MseError> {
    let mut rc4 = Rc4::new_from_slice(key).map_err(|_| MseError::CipherKey)?;
    let mut discard = [0u8; DISCARD];
    rc4.apply_keystream(&mut discard);
    Ok(rc4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Vectors computed apart from this code, by Python's `pow`, `hashlib` and a textbook RC4:
    /// `python3 tests/vectors/mse_vectors.py`.
    #[test]
    fn known_vectors() {
        let a = KeyPair::from_secret(&[0x11; 20]);
        let b = KeyPair::from_secret(&[0x22; 20]);
        assert_eq!(hex(&a.public[..8]), VECTOR_YA_HEAD);
        assert_eq!(hex(&b.public[..8]), VECTOR_YB_HEAD);
        let s = a.shared_secret(&b.public).unwrap();
        assert_eq!(s, b.shared_secret(&a.public).unwrap());
        assert_eq!(hex(&s[..8]), VECTOR_S_HEAD);
        let ih = InfoHash([0xab; 20]);
        assert_eq!(hex(&req1(&s)), VECTOR_REQ1);
        assert_eq!(hex(&xor(&req2(&ih), &req3(&s))), VECTOR_REQ23);
        let mut initiator = Ciphers::new(&s, &ih, true).unwrap();
        let mut zeros = [0u8; 8];
        initiator.encrypt.apply_keystream(&mut zeros);
        assert_eq!(hex(&zeros), VECTOR_KEYA_STREAM);
        let mut receiver = Ciphers::new(&s, &ih, false).unwrap();
        receiver.decrypt.apply_keystream(&mut zeros);
        assert_eq!(
            zeros, [0u8; 8],
            "the receiver decrypts what the initiator sends"
        );
    }

    #[test]
    fn weak_public_keys_are_refused() {
        let a = KeyPair::generate();
        let mut p_minus_1 = PRIME;
        p_minus_1[KEY_LEN - 1] -= 1;
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        for weak in [[0u8; KEY_LEN], one, p_minus_1, PRIME, [0xff; KEY_LEN]] {
            assert!(matches!(
                a.shared_secret(&weak),
                Err(MseError::BadPublicKey)
            ));
        }
    }

    const VECTOR_YA_HEAD: &str = "3476dc8d123697fc";
    const VECTOR_YB_HEAD: &str = "0816092aa9b6a0bf";
    const VECTOR_S_HEAD: &str = "ef037082d79ae7ba";
    const VECTOR_REQ1: &str = "32dd7e3b16e8d7a1b444ea3f4167e202514f9feb";
    const VECTOR_REQ23: &str = "e07c5f82d52540e30f0e284c3537e943423a5a9e";
    const VECTOR_KEYA_STREAM: &str = "4a0d8976cdfaa2f8";
}
