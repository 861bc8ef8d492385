//! BEP 9's `ut_metadata` messages: a peer asks for 16 KiB pieces of a torrent's info
//! dictionary, and gets each one, or a reject. The payload of an extended message is a
//! bencoded dictionary (`msg_type`, `piece`, and for data `total_size`), followed for data by
//! the piece's bytes.

use crate::bencode::{self, Value};

/// The name peers give the extension in their handshake's `m` dictionary.
pub const UT_METADATA: &str = "ut_metadata";
/// Size of a metadata piece; the last one may be shorter.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;
/// Largest info dictionary fetched or served: far above any real one, small enough to hold
/// in memory while it is assembled.
pub const MAX_METADATA_SIZE: u64 = 32 * 1024 * 1024;

/// One `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    Request {
        piece: u32,
    },
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    Reject {
        piece: u32,
    },
}

/// A `ut_metadata` message that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("ut_metadata message is not bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    #[error("ut_metadata message lacks a valid {0}")]
    Missing(&'static str),
    #[error("ut_metadata message type {0} is unknown")]
    UnknownType(i64),
    #[error("metadata of {0} bytes is over the {MAX_METADATA_SIZE}-byte cap")]
    TooLarge(u64),
    #[error("ut_metadata piece {piece} is {len} bytes; {expected} were due")]
    WrongLength {
        piece: u32,
        len: usize,
        expected: usize,
    },
    #[error("ut_metadata piece {piece} is past the end of {total_size} bytes")]
    OutOfRange { piece: u32, total_size: u64 },
}

impl MetadataMessage {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, piece) = match self {
            MetadataMessage::Request { piece } => (0, *piece),
            MetadataMessage::Data { piece, .. } => (1, *piece),
            MetadataMessage::Reject { piece } => (2, *piece),
        };
        let mut entries = vec![
            ("msg_type", Value::Int(kind)),
            ("piece", Value::Int(piece.into())),
        ];
        if let MetadataMessage::Data { total_size, .. } = self {
            entries.push((
                "total_size",
                Value::Int(i64::try_from(*total_size).unwrap_or(i64::MAX)),
            ));
        }
        let mut out = Value::dict(entries).encode();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }

    /// Reads a message. Data is checked against its piece and `total_size`: every piece but the
    /// last is [`METADATA_PIECE_LEN`] bytes, and `total_size` is capped.
    pub fn decode(payload: &[u8]) -> Result<Self, MetadataError> {
        let (dict, used) = bencode::decode_prefix(payload)?;
        let int = |key: &'static str| {
            dict.get(key)
                .and_then(Value::as_int)
                .filter(|n| *n >= 0)
                .ok_or(MetadataError::Missing(key))
        };
        let piece = u32::try_from(int("piece")?).map_err(|_| MetadataError::Missing("piece"))?;
        match int("msg_type")? {
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            1 => {
                let total_size = int("total_size")? as u64;
                if total_size > MAX_METADATA_SIZE {
                    return Err(MetadataError::TooLarge(total_size));
                }
                let expected = piece_len(total_size, piece)
                    .ok_or(MetadataError::OutOfRange { piece, total_size })?;
                let data = payload.get(used..).unwrap_or_default();
                if data.len() != expected {
                    return Err(MetadataError::WrongLength {
                        piece,
                        len: data.len(),
                        expected,
                    });
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: data.to_vec(),
                })
            }
            other => Err(MetadataError::UnknownType(other)),
        }
    }
}

/// Pieces of `total_size` bytes of metadata.
pub fn piece_count(total_size: u64) -> u32 {
    total_size.div_ceil(METADATA_PIECE_LEN as u64) as u32
}

/// The length of metadata piece `piece`, or `None` past the end.
pub fn piece_len(total_size: u64, piece: u32) -> Option<usize> {
    let start = u64::from(piece) * METADATA_PIECE_LEN as u64;
    (start < total_size).then(|| (total_size - start).min(METADATA_PIECE_LEN as u64) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            MetadataMessage::Request { piece: 3 },
            MetadataMessage::Reject { piece: 0 },
            MetadataMessage::Data {
                piece: 1,
                total_size: 20_000,
                data: vec![7; 20_000 - METADATA_PIECE_LEN],
            },
        ] {
            assert_eq!(MetadataMessage::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn bad_data_is_refused_with_a_reason() {
        let data = |piece, total_size, len| {
            MetadataMessage::Data {
                piece,
                total_size,
                data: vec![0; len],
            }
            .encode()
        };
        assert_eq!(
            MetadataMessage::decode(&data(0, 1 << 31, 16384)),
            Err(MetadataError::TooLarge(1 << 31))
        );
        assert_eq!(
            MetadataMessage::decode(&data(2, 20_000, 100)),
            Err(MetadataError::OutOfRange {
                piece: 2,
                total_size: 20_000
            })
        );
        assert!(matches!(
            MetadataMessage::decode(&data(0, 20_000, 100)),
            Err(MetadataError::WrongLength { .. })
        ));
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei7e5:piecei0ee"),
            Err(MetadataError::UnknownType(7))
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei0ee"),
            Err(MetadataError::Missing("piece"))
        );
        assert!(MetadataMessage::decode(b"not bencode").is_err());
    }

    #[test]
    fn pieces_are_16_kib_with_a_short_last_one() {
        assert_eq!(piece_count(32768), 2);
        assert_eq!(piece_count(32769), 3);
        assert_eq!(piece_len(32769, 2), Some(1));
        assert_eq!(piece_len(32768, 2), None);
    }
}
