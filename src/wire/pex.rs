//! BEP 11's `ut_pex` messages: the peers a peer connected to (`added`, with a flags byte
//! each) and disconnected from (`dropped`) since its last message, in compact form, IPv4 and
//! IPv6 apart.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{self, Value};

/// The name peers give the extension in their handshake's `m` dictionary.
pub const UT_PEX: &str = "ut_pex";
/// Peers sent in one message, per list, and read from one (BEP 11: at most 50 added).
pub const MAX_PEX_PEERS: usize = 50;

/// `added.f` flag: the peer prefers encryption.
pub const FLAG_ENCRYPTION: u8 = 0x01;
/// `added.f` flag: the peer is a seed (or upload only).
pub const FLAG_SEED: u8 = 0x02;
/// `added.f` flag: the peer supports uTP.
pub const FLAG_UTP: u8 = 0x04;
/// `added.f` flag: the peer supports the holepunch extension.
pub const FLAG_HOLEPUNCH: u8 = 0x08;
/// `added.f` flag: the peer is reachable (it accepted a connection from the sender).
pub const FLAG_REACHABLE: u8 = 0x10;

/// One `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers connected to since the last message, with their `added.f` flags.
    pub added: Vec<(SocketAddr, u8)>,
    pub dropped: Vec<SocketAddr>,
}

/// A `ut_pex` message that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PexError {
    #[error("ut_pex message is not bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    #[error("ut_pex message is not a dictionary")]
    NotADict,
    #[error("ut_pex `{0}` is not a whole number of compact addresses")]
    BadLength(&'static str),
}

impl PexMessage {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    /// The message, at most [`MAX_PEX_PEERS`] of each list.
    pub fn encode(&self) -> Vec<u8> {
        let added: Vec<&(SocketAddr, u8)> = self.added.iter().take(MAX_PEX_PEERS).collect();
        let dropped: Vec<&SocketAddr> = self.dropped.iter().take(MAX_PEX_PEERS).collect();
        let mut entries = Vec::new();
        for (v6, key, flags_key) in [(false, "added", "added.f"), (true, "added6", "added6.f")] {
            let peers: Vec<&&(SocketAddr, u8)> =
                added.iter().filter(|(a, _)| a.is_ipv6() == v6).collect();
            let flags = peers.iter().map(|(_, f)| *f).collect();
            entries.push((
                key,
                Value::Bytes(compact_bytes(peers.iter().map(|(a, _)| a))),
            ));
            entries.push((flags_key, Value::Bytes(flags)));
        }
        for (v6, key) in [(false, "dropped"), (true, "dropped6")] {
            let peers = dropped.iter().copied().filter(|a| a.is_ipv6() == v6);
            entries.push((key, Value::Bytes(compact_bytes(peers))));
        }
        Value::dict(entries).encode()
    }

    /// Reads a message; at most [`MAX_PEX_PEERS`] of each list are kept, and addresses no
    /// peer can have (port 0, unspecified) are left out. Missing flags count as none.
    pub fn decode(payload: &[u8]) -> Result<Self, PexError> {
        let dict = bencode::decode(payload)?;
        if dict.as_dict().is_none() {
            return Err(PexError::NotADict);
        }
        let bytes = |key| dict.get(key).and_then(Value::as_bytes).unwrap_or_default();
        let mut message = PexMessage::default();
        for (key, flags_key, len) in [("added", "added.f", 6), ("added6", "added6.f", 18)] {
            let addrs = compact(bytes(key), len, key)?;
            let flags = bytes(flags_key);
            for (i, addr) in addrs.into_iter().enumerate() {
                if message.added.len() < MAX_PEX_PEERS {
                    message
                        .added
                        .push((addr, flags.get(i).copied().unwrap_or(0)));
                }
            }
        }
        for (key, len) in [("dropped", 6), ("dropped6", 18)] {
            for addr in compact(bytes(key), len, key)? {
                if message.dropped.len() < MAX_PEX_PEERS {
                    message.dropped.push(addr);
                }
            }
        }
        Ok(message)
    }
}

/// Addresses in compact form: IP then port, big-endian.
fn compact_bytes<'a>(addrs: impl Iterator<Item = &'a SocketAddr>) -> Vec<u8> {
    let mut out = Vec::new();
    for addr in addrs {
        match addr.ip() {
            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
        }
        out.extend_from_slice(&addr.port().to_be_bytes());
    }
    out
}

/// Compact addresses of `len` bytes each (6: IPv4, 18: IPv6), without unusable ones.
fn compact(bytes: &[u8], len: usize, key: &'static str) -> Result<Vec<SocketAddr>, PexError> {
    if !bytes.len().is_multiple_of(len) {
        return Err(PexError::BadLength(key));
    }
    Ok(bytes
        .chunks_exact(len)
        .filter_map(|c| {
            let (ip, port) = c.split_at(len - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip: IpAddr = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => Ipv4Addr::from(v4).into(),
                Err(_) => Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?).into(),
            };
            (port != 0 && !ip.is_unspecified()).then(|| SocketAddr::new(ip, port))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_both_families() {
        let m = PexMessage {
            added: vec![
                ("10.0.0.1:6881".parse().unwrap(), FLAG_SEED | FLAG_REACHABLE),
                ("[2001:db8::1]:51413".parse().unwrap(), FLAG_UTP),
                ("10.0.0.2:6882".parse().unwrap(), 0),
            ],
            dropped: vec![
                "10.0.0.3:1".parse().unwrap(),
                "[2001:db8::2]:2".parse().unwrap(),
            ],
        };
        let back = PexMessage::decode(&m.encode()).unwrap();
        let mut added = m.added.clone();
        added.sort_by_key(|(a, _)| a.is_ipv6());
        assert_eq!(back.added, added, "IPv4 first, then IPv6, flags kept");
        assert_eq!(back.dropped, m.dropped);
    }

    #[test]
    fn bad_and_oversized_lists() {
        assert_eq!(
            PexMessage::decode(b"d5:added5:abcdee"),
            Err(PexError::BadLength("added"))
        );
        assert_eq!(PexMessage::decode(b"i1e"), Err(PexError::NotADict));
        // 60 peers, one with port 0: 50 kept, the unusable one left out.
        let mut many = Vec::new();
        for i in 0..60u8 {
            many.extend_from_slice(&[10, 0, 0, i, 0, if i == 0 { 0 } else { 1 }]);
        }
        let payload = Value::dict([("added", Value::Bytes(many))]).encode();
        let m = PexMessage::decode(&payload).unwrap();
        assert_eq!(m.added.len(), MAX_PEX_PEERS);
        assert!(m.added.iter().all(|(a, f)| a.port() == 1 && *f == 0));
    }
}
