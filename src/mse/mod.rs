//! Message stream encryption (MSE, also called PE: the Vuze and libtorrent spec): a
//! Diffie-Hellman exchange that hides the BitTorrent handshake, then either RC4 over the whole
//! connection or plaintext after an obfuscated start.
//!
//! [`keys`] holds the numbers (pure), [`handshake`] the exchange over any byte stream (the
//! initiator's and the receiver's side, in bounded memory); the engine wraps the result in its
//! peer stream. Which connections use it is the [`EncryptionPolicy`].

pub mod handshake;
pub mod keys;

use serde::{Deserialize, Serialize};

/// `crypto_provide` / `crypto_select` bits.
pub const PLAINTEXT: u32 = 0x01;
pub const RC4: u32 = 0x02;

/// Which connections are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncryptionPolicy {
    /// Dial with an encrypted handshake offering RC4 and plaintext, and dial again in the clear
    /// when a peer does not answer it; accept both kinds, choosing RC4 when offered.
    #[default]
    Prefer,
    /// RC4 only, both ways: plain handshakes and plaintext offers are refused.
    Require,
    /// The plain BitTorrent handshake only; encrypted ones are refused.
    Disabled,
}

impl EncryptionPolicy {
    pub const ALL: [EncryptionPolicy; 3] = [Self::Prefer, Self::Require, Self::Disabled];

    /// The methods offered when dialling (none: dial in the clear).
    pub fn offer(self) -> Option<u32> {
        match self {
            Self::Prefer => Some(RC4 | PLAINTEXT),
            Self::Require => Some(RC4),
            Self::Disabled => None,
        }
    }

    /// The methods an encrypted handshake from a peer may end in (none: refuse it).
    pub fn accept(self) -> Option<u32> {
        self.offer()
    }

    /// Whether a plain BitTorrent handshake from a peer is taken.
    pub fn accepts_plain(self) -> bool {
        self != Self::Require
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Prefer => "prefer encryption",
            Self::Require => "require encryption",
            Self::Disabled => "no encryption",
        }
    }
}

impl std::str::FromStr for EncryptionPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "disabled" | "plain" => Ok(Self::Disabled),
            other => Err(format!(
                "unknown encryption policy {other:?} (prefer, require or disabled)"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MseError {
    #[error("the peer's public key is not a usable Diffie-Hellman value")]
    BadPublicKey,
    #[error("no sync marker within the padding allowed")]
    NoSync,
    #[error("the encrypted handshake names no torrent of ours")]
    UnknownTorrent,
    #[error("wrong verification constant")]
    BadVerification,
    #[error("no encryption method in common (offered {offered:#x}, allowed {allowed:#x})")]
    NoCommonMethod { offered: u32, allowed: u32 },
    #[error("the peer selected {0:#x}, which was not offered")]
    BadSelection(u32),
    #[error("padding of {0} bytes (512 at most)")]
    PadTooLong(usize),
    #[error("RC4 refused its key")]
    CipherKey,
    #[error("initial payload of {0} bytes (1,024 at most)")]
    PayloadTooLong(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
