//! The two 20-byte identities of BitTorrent: a torrent's info hash and a peer's id.

use std::fmt;

use rand::Rng;

/// SHA-1 of the bencoded `info` dictionary: the identity of a torrent.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 40 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let pair = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

/// The 20-byte id a client announces itself with.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(pub [u8; 20]);

/// Azureus-style prefix: client code `RV`, version 0.1.0.0.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-RV0100-";

impl PeerId {
    /// A fresh peer id: our Azureus-style prefix and twelve random alphanumerics.
    pub fn generate() -> Self {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(PEER_ID_PREFIX);
        let mut rng = rand::rng();
        for byte in &mut id[8..] {
            *byte = rng.sample(rand::distr::Alphanumeric);
        }
        Self(id)
    }
}

impl PeerId {
    /// The client that made this peer id, from the Azureus (`-qB4500-`), Mainline (`M7-2-2--`)
    /// or aria2 (`A2-1-36-0-`) conventions.
    pub fn client(&self) -> String {
        let id = &self.0;
        if id[0] == b'-' && id[7] == b'-' && id[1..7].iter().all(u8::is_ascii_alphanumeric) {
            let code = std::str::from_utf8(&id[1..3]).unwrap_or("??");
            let name = match code {
                "AZ" => "Vuze",
                "BC" => "BitComet",
                "BI" => "BiglyBT",
                "BT" => "BitTorrent",
                "DE" => "Deluge",
                "FD" => "Free Download Manager",
                "KT" => "KTorrent",
                "LT" => "libTorrent",
                "lt" => "libtorrent",
                "qB" => "qBittorrent",
                "RV" => "Rivulet",
                "TR" => "Transmission",
                "UM" => "\u{b5}Torrent Mac",
                "UT" => "\u{b5}Torrent",
                "WW" => "WebTorrent",
                other => other,
            };
            let version: Vec<String> = id[3..7].iter().map(|&c| (c as char).to_string()).collect();
            let mut version = version.join(".");
            while version.ends_with(".0") && version.len() > 3 {
                version.truncate(version.len() - 2);
            }
            return format!("{name} {version}");
        }
        let text: String = id
            .iter()
            .take_while(|c| c.is_ascii_graphic())
            .map(|&c| c as char)
            .collect();
        if let Some(rest) = text.strip_prefix("A2-") {
            return format!("aria2 {}", dotted_numbers(rest));
        }
        if id[0] == b'M' && id[1].is_ascii_digit() {
            return format!("BitTorrent {}", dotted_numbers(&text[1..]));
        }
        let prefix: String = text.chars().take(8).collect();
        if prefix.is_empty() {
            "unknown".to_string()
        } else {
            format!("unknown ({prefix})")
        }
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeerId({})",
            String::from_utf8_lossy(&self.0).escape_debug()
        )
    }
}

/// `"1-36-0-xyz"` → `"1.36.0"`: the leading dash-separated numbers.
fn dotted_numbers(text: &str) -> String {
    let parts: Vec<&str> = text
        .split('-')
        .filter(|p| !p.is_empty())
        .take_while(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    parts.join(".")
}

/// Lower-case hexadecimal of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }

    #[test]
    fn decodes_client_names() {
        assert_eq!(PeerId(*b"-qB4500-abcdefghijkl").client(), "qBittorrent 4.5");
        assert_eq!(
            PeerId(*b"-TR3000-abcdefghijkl").client(),
            "Transmission 3.0"
        );
        assert_eq!(PeerId(*b"-RV0100-abcdefghijkl").client(), "Rivulet 0.1");
        assert_eq!(PeerId(*b"A2-1-36-0-abcdefghij").client(), "aria2 1.36.0");
        assert_eq!(
            PeerId(*b"M7-2-2--abcdefghijkl").client(),
            "BitTorrent 7.2.2"
        );
        assert_eq!(PeerId([0; 20]).client(), "unknown");
    }

    #[test]
    fn peer_id_is_azureus_style() {
        let id = PeerId::generate();
        assert_eq!(&id.0[..8], PEER_ID_PREFIX);
        assert!(id.0[8..].iter().all(u8::is_ascii_alphanumeric));
    }
}
