//! Length-prefixed peer messages: framing with a size cap, decoding and encoding. BEP 3's
//! messages, BEP 6's fast extension (suggest, have all, have none, reject, allowed fast) and
//! BEP 10's extended message (its payload is read by `wire::extension`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::WireError;

/// The block size every request uses (16 KiB), and the largest block Rivulet serves or accepts.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// A block of a piece: `length` bytes at `begin` within piece `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Bytes),
    Request(BlockRef),
    Piece {
        index: u32,
        begin: u32,
        data: Bytes,
    },
    Cancel(BlockRef),
    Port(u16),
    /// BEP 6: the sender suggests this piece (may be ignored).
    Suggest(u32),
    /// BEP 6: the sender has every piece (instead of a full bitfield).
    HaveAll,
    /// BEP 6: the sender has no piece (instead of an empty bitfield).
    HaveNone,
    /// BEP 6: the sender will not serve this request.
    Reject(BlockRef),
    /// BEP 6: the sender serves requests for this piece even while choking.
    AllowedFast(u32),
    /// BEP 10: an extended message, `id` 0 being the extension handshake.
    Extended {
        id: u8,
        payload: Bytes,
    },
    /// A message id this client does not speak; skipped.
    Unknown(u8),
}

/// The largest frame accepted for a torrent with `piece_count` pieces: a block with its header,
/// or the bitfield, whichever is larger.
pub fn max_frame_len(piece_count: u32) -> usize {
    let bitfield = 1 + (piece_count as usize).div_ceil(8);
    bitfield.max(9 + BLOCK_LEN as usize).max(64 * 1024)
}

/// Takes one whole frame off the front of `buf`, if it holds one.
pub fn decode_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Message>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max_len {
        return Err(WireError::FrameTooLong { len, max: max_len });
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut body = buf.split_to(len);
    if len == 0 {
        return Ok(Some(Message::KeepAlive));
    }
    let id = body.get_u8();
    let fixed = |want: usize, kind: &'static str| {
        if len == want {
            Ok(())
        } else {
            Err(WireError::Malformed { kind, len })
        }
    };
    let message = match id {
        0 => fixed(1, "choke").map(|_| Message::Choke)?,
        1 => fixed(1, "unchoke").map(|_| Message::Unchoke)?,
        2 => fixed(1, "interested").map(|_| Message::Interested)?,
        3 => fixed(1, "not interested").map(|_| Message::NotInterested)?,
        4 => {
            fixed(5, "have")?;
            Message::Have(body.get_u32())
        }
        5 => Message::Bitfield(body.freeze()),
        6 | 8 | 16 => {
            let kind = match id {
                6 => "request",
                8 => "cancel",
                _ => "reject",
            };
            fixed(13, kind)?;
            let block = BlockRef {
                index: body.get_u32(),
                begin: body.get_u32(),
                length: body.get_u32(),
            };
            match id {
                6 => Message::Request(block),
                8 => Message::Cancel(block),
                _ => Message::Reject(block),
            }
        }
        7 => {
            if len < 9 {
                return Err(WireError::Malformed { kind: "piece", len });
            }
            let index = body.get_u32();
            let begin = body.get_u32();
            Message::Piece {
                index,
                begin,
                data: body.freeze(),
            }
        }
        9 => {
            fixed(3, "port")?;
            Message::Port(body.get_u16())
        }
        13 => {
            fixed(5, "suggest piece")?;
            Message::Suggest(body.get_u32())
        }
        14 => fixed(1, "have all").map(|_| Message::HaveAll)?,
        15 => fixed(1, "have none").map(|_| Message::HaveNone)?,
        17 => {
            fixed(5, "allowed fast")?;
            Message::AllowedFast(body.get_u32())
        }
        20 => {
            if len < 2 {
                return Err(WireError::Malformed {
                    kind: "extended",
                    len,
                });
            }
            Message::Extended {
                id: body.get_u8(),
                payload: body.freeze(),
            }
        }
        other => Message::Unknown(other),
    };
    Ok(Some(message))
}

impl Message {
    /// Appends the framed message to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let header = |out: &mut BytesMut, len: u32, id: u8| {
            out.put_u32(len);
            out.put_u8(id);
        };
        match self {
            Message::KeepAlive => out.put_u32(0),
            Message::Choke => header(out, 1, 0),
            Message::Unchoke => header(out, 1, 1),
            Message::Interested => header(out, 1, 2),
            Message::NotInterested => header(out, 1, 3),
            Message::Have(i) => {
                header(out, 5, 4);
                out.put_u32(*i);
            }
            Message::Bitfield(bits) => {
                header(out, 1 + bits.len() as u32, 5);
                out.put_slice(bits);
            }
            Message::Request(b) | Message::Cancel(b) | Message::Reject(b) => {
                let id = match self {
                    Message::Request(_) => 6,
                    Message::Cancel(_) => 8,
                    _ => 16,
                };
                header(out, 13, id);
                out.put_u32(b.index);
                out.put_u32(b.begin);
                out.put_u32(b.length);
            }
            Message::Piece { index, begin, data } => {
                header(out, 9 + data.len() as u32, 7);
                out.put_u32(*index);
                out.put_u32(*begin);
                out.put_slice(data);
            }
            Message::Port(p) => {
                header(out, 3, 9);
                out.put_u16(*p);
            }
            Message::Suggest(i) | Message::AllowedFast(i) => {
                header(
                    out,
                    5,
                    if matches!(self, Message::Suggest(_)) {
                        13
                    } else {
                        17
                    },
                );
                out.put_u32(*i);
            }
            Message::HaveAll => header(out, 1, 14),
            Message::HaveNone => header(out, 1, 15),
            Message::Extended { id, payload } => {
                header(out, 2 + payload.len() as u32, 20);
                out.put_u8(*id);
                out.put_slice(payload);
            }
            Message::Unknown(id) => header(out, 1, *id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: Message) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        assert_eq!(decode_frame(&mut buf, 1 << 20).unwrap(), Some(m));
        assert!(buf.is_empty());
    }

    #[test]
    fn every_message_round_trips() {
        let block = BlockRef {
            index: 1,
            begin: 16384,
            length: 16384,
        };
        for m in [
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(42),
            Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
            Message::Request(block),
            Message::Cancel(block),
            Message::Piece {
                index: 3,
                begin: 0,
                data: Bytes::from_static(b"data"),
            },
            Message::Port(6881),
            Message::Suggest(7),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(block),
            Message::AllowedFast(9),
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de"),
            },
            Message::Extended {
                id: 3,
                payload: Bytes::new(),
            },
        ] {
            round_trip(m);
        }
    }

    #[test]
    fn waits_for_whole_frame() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 4, 0][..]);
        assert_eq!(decode_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(&[0, 0, 9]);
        assert_eq!(decode_frame(&mut buf, 100).unwrap(), Some(Message::Have(9)));
    }

    /// From the `peer_messages` fuzz target: an extension message (id 179, 3 bytes of payload)
    /// is skipped whole, and the frame after it decodes.
    #[test]
    fn unknown_messages_are_skipped_with_their_payload() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 179, 0, 0, 120, 0, 0, 0, 1, 1][..]);
        assert_eq!(
            decode_frame(&mut buf, 100).unwrap(),
            Some(Message::Unknown(179))
        );
        assert_eq!(decode_frame(&mut buf, 100).unwrap(), Some(Message::Unchoke));
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_oversized_and_malformed_frames() {
        let mut huge = BytesMut::from(&[0x80u8, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut huge, 1 << 20),
            Err(WireError::FrameTooLong { .. })
        ));
        let mut short_have = BytesMut::from(&[0u8, 0, 0, 2, 4, 1][..]);
        assert!(matches!(
            decode_frame(&mut short_have, 100),
            Err(WireError::Malformed { .. })
        ));
        let mut long_have_all = BytesMut::from(&[0u8, 0, 0, 2, 14, 0][..]);
        assert!(matches!(
            decode_frame(&mut long_have_all, 100),
            Err(WireError::Malformed { .. })
        ));
        let mut short_reject = BytesMut::from(&[0u8, 0, 0, 5, 16, 0, 0, 0, 1][..]);
        assert!(matches!(
            decode_frame(&mut short_reject, 100),
            Err(WireError::Malformed { .. })
        ));
        let mut empty_extended = BytesMut::from(&[0u8, 0, 0, 1, 20][..]);
        assert!(matches!(
            decode_frame(&mut empty_extended, 100),
            Err(WireError::Malformed { .. })
        ));
        let mut short_piece = BytesMut::from(&[0u8, 0, 0, 3, 7, 1, 1][..]);
        assert!(matches!(
            decode_frame(&mut short_piece, 100),
            Err(WireError::Malformed { .. })
        ));
    }
}
