//! BEP 10's extension handshake: the dictionary two peers swap (as extended message 0) to say
//! which extended messages they speak and under which ids, who they are, and how many
//! requests they accept in flight.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::bencode::{self, Value};

/// The extended message id of the extension handshake itself.
pub const EXTENSION_HANDSHAKE_ID: u8 = 0;
/// Longest client name (`v`) kept from a peer.
const MAX_CLIENT_LEN: usize = 64;
/// Most entries of a peer's `m` dictionary kept.
const MAX_MESSAGES: usize = 64;

/// One side's extension handshake. Every field is optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// `m`: extended message names and the ids the sender wants to receive them under
    /// (0 means "disabled", and is dropped when reading).
    pub messages: BTreeMap<String, u8>,
    /// `v`: the client's name and version.
    pub client: Option<String>,
    /// `reqq`: how many outstanding requests the sender accepts.
    pub request_queue: Option<u32>,
    /// `p`: the sender's listen port.
    pub listen_port: Option<u16>,
    /// `yourip`: the address the sender sees the receiver at.
    pub your_ip: Option<IpAddr>,
    /// `metadata_size`: size of the info dictionary (BEP 9).
    pub metadata_size: Option<u64>,
}

/// An extension handshake that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error("extension handshake is not bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    #[error("extension handshake is not a dictionary")]
    NotADict,
}

impl ExtensionHandshake {
    /// The bencoded dictionary, the payload of extended message 0.
    pub fn encode(&self) -> Vec<u8> {
        let messages = Value::Dict(
            self.messages
                .iter()
                .map(|(name, &id)| (name.as_bytes().to_vec(), Value::Int(id.into())))
                .collect(),
        );
        let mut dict = BTreeMap::new();
        dict.insert(b"m".to_vec(), messages);
        if let Some(client) = &self.client {
            dict.insert(b"v".to_vec(), Value::Bytes(client.as_bytes().to_vec()));
        }
        if let Some(reqq) = self.request_queue {
            dict.insert(b"reqq".to_vec(), Value::Int(reqq.into()));
        }
        if let Some(port) = self.listen_port {
            dict.insert(b"p".to_vec(), Value::Int(port.into()));
        }
        if let Some(ip) = self.your_ip {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            dict.insert(b"yourip".to_vec(), Value::Bytes(bytes));
        }
        if let Some(size) = self.metadata_size {
            dict.insert(
                b"metadata_size".to_vec(),
                Value::Int(i64::try_from(size).unwrap_or(i64::MAX)),
            );
        }
        Value::Dict(dict).encode()
    }

    /// Reads a peer's handshake. Fields of the wrong type or out of range are left out, as
    /// BEP 10 asks of unknown or odd entries; only a payload that is not a dictionary fails.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let value = bencode::decode(payload)?;
        let Some(dict) = value.as_dict() else {
            return Err(ExtensionError::NotADict);
        };
        let int = |key: &str| dict.get(key.as_bytes()).and_then(Value::as_int);
        let messages = dict
            .get(b"m".as_slice())
            .and_then(Value::as_dict)
            .map(|m| {
                m.iter()
                    .filter_map(|(name, id)| {
                        let name = std::str::from_utf8(name).ok()?;
                        let id = u8::try_from(id.as_int()?).ok().filter(|&id| id != 0)?;
                        Some((name.to_string(), id))
                    })
                    .take(MAX_MESSAGES)
                    .collect()
            })
            .unwrap_or_default();
        let client = dict
            .get(b"v".as_slice())
            .and_then(Value::as_bytes)
            .map(|v| {
                let mut name: String = String::from_utf8_lossy(v)
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                if let Some((cut, _)) = name.char_indices().nth(MAX_CLIENT_LEN) {
                    name.truncate(cut);
                }
                name
            });
        let your_ip = dict
            .get(b"yourip".as_slice())
            .and_then(Value::as_bytes)
            .and_then(|b| match b.len() {
                4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
                _ => None,
            });
        Ok(Self {
            messages,
            client,
            request_queue: int("reqq").and_then(|q| u32::try_from(q).ok()),
            listen_port: int("p")
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0),
            your_ip,
            metadata_size: int("metadata_size").and_then(|s| u64::try_from(s).ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let ours = ExtensionHandshake {
            messages: BTreeMap::from([("ut_metadata".to_string(), 2)]),
            client: Some("Rivulet 0.1.0".into()),
            request_queue: Some(500),
            listen_port: Some(6881),
            your_ip: Some("127.0.0.2".parse().unwrap()),
            metadata_size: Some(31_235),
        };
        assert_eq!(ExtensionHandshake::decode(&ours.encode()).unwrap(), ours);
        let v6 = ExtensionHandshake {
            your_ip: Some("::1".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(ExtensionHandshake::decode(&v6.encode()).unwrap(), v6);
    }

    #[test]
    fn reads_libtorrent_style_handshake() {
        let payload = b"d1:ei0e4:ipv616:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x011:md11:lt_donthavei7e6:ut_pexi0ee1:pi6881e4:reqqi500e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e";
        let theirs = ExtensionHandshake::decode(payload).unwrap();
        assert_eq!(theirs.request_queue, Some(500));
        assert_eq!(theirs.listen_port, Some(6881));
        assert_eq!(theirs.client.as_deref(), Some("libtorrent/2.0.8.0"));
        assert_eq!(theirs.your_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            theirs.messages,
            BTreeMap::from([("lt_donthave".to_string(), 7)]),
            "an id of 0 disables a message"
        );
    }

    #[test]
    fn odd_values_are_left_out_not_fatal() {
        let theirs =
            ExtensionHandshake::decode(b"d1:mi5e1:pi99999e4:reqqi4294967296e1:vi3e6:yourip3:abce")
                .unwrap();
        assert_eq!(theirs, ExtensionHandshake::default());
        let negative = ExtensionHandshake::decode(b"d4:reqqi-1ee").unwrap();
        assert_eq!(negative.request_queue, None);
        let long_name = format!("d1:v200:{}e", "x".repeat(200));
        let theirs = ExtensionHandshake::decode(long_name.as_bytes()).unwrap();
        assert_eq!(theirs.client.map(|c| c.len()), Some(MAX_CLIENT_LEN));
    }

    #[test]
    fn refuses_what_is_not_a_dictionary() {
        assert!(matches!(
            ExtensionHandshake::decode(b"li1ee"),
            Err(ExtensionError::NotADict)
        ));
        assert!(matches!(
            ExtensionHandshake::decode(b"d1:m"),
            Err(ExtensionError::Bencode(_))
        ));
    }
}
