//! Magnet links (`magnet:?xt=urn:btih:…`, BEP 9): parsing what a link holds, and writing the
//! link of a torrent.
//!
//! Understood: `xt=urn:btih:` with the info hash in hex (40 digits) or base32 (32 letters),
//! `dn` (the name), every `tr` (a tracker each, each its own tier), `x.pe` (peer addresses),
//! `so` (BEP 53: the files to download) and `xl` (the exact length). A link with only
//! `urn:btmh:` (BitTorrent v2) is refused by name; a hybrid link with both is read by its
//! `btih`. Unknown keys are ignored. Written in-house: the crates seen drop repeated `tr` keys
//! or do not percent-decode.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use crate::ids::InfoHash;

/// Longest magnet link read: far above any real one.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;

/// What a magnet link holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagnetLink {
    pub info_hash: InfoHash,
    /// `dn`: the name to show until the metadata arrives.
    pub name: Option<String>,
    /// `tr`: tracker URLs, in the link's order.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to try at once.
    pub peers: Vec<PeerAddress>,
    /// `so` (BEP 53): the indices of the files to download, when the link chooses.
    pub select_only: Option<Vec<RangeInclusive<u32>>>,
    /// `xl`: the torrent's size in bytes.
    pub exact_length: Option<u64>,
}

/// A peer named in `x.pe`: an address, or a host name (resolved when dialled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddress {
    Ip(SocketAddr),
    Host { name: String, port: u16 },
}

/// What is wrong with a magnet link; each names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link (it does not start with \"magnet:?\")")]
    NotMagnet,
    #[error("the magnet link is too long ({0} bytes)")]
    TooLong(usize),
    #[error("the magnet link has no BitTorrent info hash (xt=urn:btih:…)")]
    NoInfoHash,
    #[error("BitTorrent v2-only magnet links are not supported yet")]
    V2Only,
    #[error("xt: {0:?} is not an info hash (40 hex digits or 32 base32 letters)")]
    BadInfoHash(String),
    #[error("xt: the link names two different info hashes")]
    TwoInfoHashes,
    #[error("{key}: {reason}")]
    BadValue { key: String, reason: String },
}

impl MagnetError {
    fn bad(key: &str, reason: impl Into<String>) -> Self {
        MagnetError::BadValue {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

impl MagnetLink {
    /// Parses a magnet link.
    pub fn parse(text: &str) -> Result<Self, MagnetError> {
        let text = text.trim();
        if text.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong(text.len()));
        }
        let query = strip_prefix_ignore_case(text, "magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut link = MagnetLink {
            info_hash: InfoHash::default(),
            name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            select_only: None,
            exact_length: None,
        };
        let (mut v1, mut v2) = (None, false);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = crate::percent::decode_strict(raw_key, false)
                .ok()
                .and_then(|k| String::from_utf8(k).ok())
                .unwrap_or_default();
            // BEP 9 allows numbered keys (`xt.1`, `tr.2`): their base names are what matter.
            let base = key.split('.').next().unwrap_or_default();
            let base = if key == "x.pe" { "x.pe" } else { base };
            let value = || -> Result<String, MagnetError> {
                let bytes = crate::percent::decode_strict(raw_value, base == "dn")
                    .map_err(|reason| MagnetError::bad(&key, reason))?;
                String::from_utf8(bytes).map_err(|_| MagnetError::bad(&key, "not UTF-8"))
            };
            match base {
                "xt" => {
                    let value = value()?;
                    if let Some(hash) = strip_prefix_ignore_case(&value, "urn:btih:") {
                        let hash = parse_info_hash(hash)?;
                        if v1.is_some_and(|h| h != hash) {
                            return Err(MagnetError::TwoInfoHashes);
                        }
                        v1 = Some(hash);
                    } else if strip_prefix_ignore_case(&value, "urn:btmh:").is_some() {
                        v2 = true;
                    }
                }
                "dn" => link.name = Some(value()?).filter(|n| !n.is_empty()),
                "tr" => {
                    let url = value()?;
                    if url.is_empty() {
                        return Err(MagnetError::bad(&key, "an empty tracker URL"));
                    }
                    if !link.trackers.contains(&url) {
                        link.trackers.push(url);
                    }
                }
                "x.pe" => link.peers.push(parse_peer(&value()?)?),
                "so" => {
                    let text = value()?;
                    let ranges = parse_file_numbers(&text).ok_or_else(|| {
                        MagnetError::bad("so", format!("{text:?} is not a list of file numbers"))
                    })?;
                    link.select_only = Some(ranges);
                }
                "xl" => {
                    let length = value()?
                        .parse()
                        .map_err(|_| MagnetError::bad(&key, "not a number of bytes"))?;
                    link.exact_length = Some(length);
                }
                _ => {}
            }
        }
        link.info_hash = match (v1, v2) {
            (Some(hash), _) => hash,
            (None, true) => return Err(MagnetError::V2Only),
            (None, false) => return Err(MagnetError::NoInfoHash),
        };
        Ok(link)
    }

    /// The name to show: `dn`, or the info hash.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.info_hash.to_hex())
    }
}

impl fmt::Display for MagnetLink {
    /// The link as a URI: `xt` in hex, then `dn`, `xl`, every `tr`, every `x.pe`, `so`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.name {
            write!(f, "&dn={}", crate::percent::encode(name.as_bytes()))?;
        }
        if let Some(length) = self.exact_length {
            write!(f, "&xl={length}")?;
        }
        for tracker in &self.trackers {
            write!(f, "&tr={}", crate::percent::encode(tracker.as_bytes()))?;
        }
        for peer in &self.peers {
            let text = match peer {
                PeerAddress::Ip(addr) => addr.to_string(),
                PeerAddress::Host { name, port } => format!("{name}:{port}"),
            };
            write!(f, "&x.pe={}", crate::percent::encode(text.as_bytes()))?;
        }
        if let Some(ranges) = &self.select_only {
            write!(f, "&so={}", selection_text(ranges))?;
        }
        Ok(())
    }
}

/// A BEP 53 selection as written in a link: `0,2,4-7`.
pub fn selection_text(ranges: &[RangeInclusive<u32>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| match (r.start(), r.end()) {
            (a, b) if a == b => a.to_string(),
            (a, b) => format!("{a}-{b}"),
        })
        .collect();
    parts.join(",")
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// 40 hex digits or 32 base32 letters (RFC 4648, either case).
fn parse_info_hash(text: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash(text.chars().take(80).collect());
    match text.len() {
        40 => InfoHash::from_hex(text).ok_or_else(bad),
        32 => {
            let mut out = [0u8; 20];
            let (mut buffer, mut bits, mut at) = (0u64, 0u32, 0usize);
            for c in text.bytes() {
                let value = match c.to_ascii_uppercase() {
                    c @ b'A'..=b'Z' => c - b'A',
                    c @ b'2'..=b'7' => c - b'2' + 26,
                    _ => return Err(bad()),
                };
                buffer = (buffer << 5) | u64::from(value);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    *out.get_mut(at).ok_or_else(bad)? = (buffer >> bits) as u8;
                    at += 1;
                }
            }
            Ok(InfoHash(out))
        }
        _ => Err(bad()),
    }
}

/// `host:port`, `a.b.c.d:port` or `[v6]:port`.
fn parse_peer(text: &str) -> Result<PeerAddress, MagnetError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(PeerAddress::Ip(addr));
    }
    let bad = || MagnetError::bad("x.pe", format!("{text:?} is not an address and port"));
    let (name, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let valid_name = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid_name || port == 0 {
        return Err(bad());
    }
    Ok(PeerAddress::Host {
        name: name.to_string(),
        port,
    })
}

/// BEP 53's `so` (and `download --only`): `0,2,4-7`, file numbers and inclusive ranges;
/// `None` if it is not such a list.
pub fn parse_file_numbers(text: &str) -> Option<Vec<RangeInclusive<u32>>> {
    text.split(',')
        .map(|part| {
            let (start, end) = part.split_once('-').unwrap_or((part, part));
            let start: u32 = start.trim().parse().ok()?;
            let end: u32 = end.trim().parse().ok()?;
            (start <= end).then_some(start..=end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c9e15763f722f23e98a29decdfae341b98d53056";

    #[test]
    fn reads_every_key_it_knows() {
        let link = MagnetLink::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny&tr=udp%3A%2F%2Ftracker.example%3A80\
             &tr=http://t2.example/announce?a=1%26b=2&x.pe=10.0.0.1:6881&x.pe=[::1]:51413\
             &x.pe=peer.example:7000&so=0,2,4-6&xl=1024&ws=http://x&kt=ignored"
        ))
        .unwrap();
        assert_eq!(link.info_hash.to_hex(), HEX);
        assert_eq!(link.name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(
            link.trackers,
            [
                "udp://tracker.example:80",
                "http://t2.example/announce?a=1&b=2"
            ]
        );
        assert_eq!(
            link.peers,
            [
                PeerAddress::Ip("10.0.0.1:6881".parse().unwrap()),
                PeerAddress::Ip("[::1]:51413".parse().unwrap()),
                PeerAddress::Host {
                    name: "peer.example".into(),
                    port: 7000
                },
            ]
        );
        assert_eq!(link.select_only, Some(vec![0..=0, 2..=2, 4..=6]));
        assert_eq!(link.exact_length, Some(1024));
    }

    #[test]
    fn base32_and_hex_name_the_same_hash() {
        // The base32 form of HEX.
        let b32 = "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW";
        let upper = MagnetLink::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        let lower =
            MagnetLink::parse(&format!("MAGNET:?xt=URN:BTIH:{}", b32.to_lowercase())).unwrap();
        assert_eq!(upper.info_hash.to_hex(), HEX);
        assert_eq!(lower.info_hash, upper.info_hash);
        assert!(matches!(
            MagnetLink::parse("magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMC1"),
            Err(MagnetError::BadInfoHash(_))
        ));
    }

    #[test]
    fn bad_links_say_which_part_is_wrong() {
        let err = |s: &str| MagnetLink::parse(s).unwrap_err();
        assert_eq!(err("http://example.com"), MagnetError::NotMagnet);
        assert_eq!(err("magnet:?dn=x&tr=http://t/a"), MagnetError::NoInfoHash);
        assert_eq!(
            err("magnet:?xt=urn:btmh:1220abcd").to_string(),
            "BitTorrent v2-only magnet links are not supported yet"
        );
        assert!(matches!(
            err("magnet:?xt=urn:btih:1234"),
            MagnetError::BadInfoHash(_)
        ));
        assert_eq!(
            err(&format!(
                "magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}",
                "0".repeat(40)
            )),
            MagnetError::TwoInfoHashes
        );
        let bad_escape = err(&format!("magnet:?xt=urn:btih:{HEX}&tr=http%3"));
        assert!(
            bad_escape.to_string().starts_with("tr: a broken %-escape"),
            "{bad_escape}"
        );
        let bad_peer = err(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=nowhere"));
        assert!(bad_peer.to_string().starts_with("x.pe:"), "{bad_peer}");
        let bad_so = err(&format!("magnet:?xt=urn:btih:{HEX}&so=3-1"));
        assert!(bad_so.to_string().starts_with("so:"), "{bad_so}");
        assert!(matches!(
            err(&format!("magnet:?xt=urn:btih:{HEX}&dn=%FF")),
            MagnetError::BadValue { key, .. } if key == "dn"
        ));
    }

    #[test]
    fn a_hybrid_link_is_read_by_its_v1_hash_and_repeats_are_kept_once() {
        let link = MagnetLink::parse(&format!(
            "magnet:?xt=urn:btmh:1220{}&xt=urn:btih:{HEX}&tr=http://a/x&tr.1=http://b/x&tr=http://a/x",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(link.info_hash.to_hex(), HEX);
        assert_eq!(link.trackers, ["http://a/x", "http://b/x"]);
    }

    #[test]
    fn a_written_link_reads_back_the_same() {
        let link = MagnetLink {
            info_hash: InfoHash::from_hex(HEX).unwrap(),
            name: Some("a & b / c?.mkv".into()),
            trackers: vec![
                "udp://t.example:80/announce".into(),
                "http://x/a?b=c&d".into(),
            ],
            peers: vec![PeerAddress::Ip("[::1]:6881".parse().unwrap())],
            select_only: Some(vec![1..=1, 3..=5]),
            exact_length: Some(12345),
        };
        let text = link.to_string();
        assert!(text.starts_with(&format!("magnet:?xt=urn:btih:{HEX}&dn=a%20%26%20b")));
        assert_eq!(MagnetLink::parse(&text).unwrap(), link);
    }
}
