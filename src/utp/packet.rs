//! The uTP packet (BEP 29): the 20-byte header, the extension chain and its selective ACK,
//! decoded from and encoded into datagrams. Pure: no sockets, no clocks.

use thiserror::Error;

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 20;
/// The only protocol version there is.
const VERSION: u8 = 1;
/// The extension type of a selective ACK.
const EXT_SACK: u8 = 1;

/// What a packet is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Data = 0,
    Fin = 1,
    State = 2,
    Reset = 3,
    Syn = 4,
}

impl PacketType {
    fn from_nibble(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::Data,
            1 => Self::Fin,
            2 => Self::State,
            3 => Self::Reset,
            4 => Self::Syn,
            _ => return None,
        })
    }
}

/// The fixed header; every field as on the wire (sequence numbers count packets, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: PacketType,
    pub conn_id: u16,
    /// The low 32 bits of the sender's microsecond clock when it sent the packet.
    pub timestamp_us: u32,
    /// The sender's last measurement of the one-way delay towards it (0 before it has one).
    pub timestamp_diff_us: u32,
    /// Bytes the sender can still take in.
    pub wnd_size: u32,
    pub seq_nr: u16,
    pub ack_nr: u16,
}

/// A decoded datagram, borrowing its selective ACK and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    /// The selective ACK bitmask, when the packet carries one: bit `i` (least significant
    /// first) of byte `j` acknowledges `ack_nr + 2 + 8j + i`.
    pub sack: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// Why a datagram is not a uTP packet.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("a datagram of {0} bytes is shorter than the uTP header")]
    TooShort(usize),
    #[error("uTP version {0} is not 1")]
    Version(u8),
    #[error("uTP packet type {0} does not exist")]
    Type(u8),
    #[error("a uTP extension runs past the end of the datagram")]
    ExtensionOverrun,
}

/// Whether a datagram arriving on the shared UDP socket is for uTP rather than the DHT: the
/// version nibble is 1 and the type one of the five. A bencoded DHT message starts with `d`
/// (0x64: version nibble 4), so it never passes.
pub fn is_utp(datagram: &[u8]) -> bool {
    match datagram.first() {
        Some(&b) => datagram.len() >= HEADER_LEN && b & 0x0F == VERSION && b >> 4 <= 4,
        None => false,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    let mut x = [0u8; 2];
    x.copy_from_slice(&b[at..at + 2]);
    u16::from_be_bytes(x)
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

impl<'a> Packet<'a> {
    /// Decodes one datagram. Unknown extensions are skipped by their length.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, PacketError> {
        if datagram.len() < HEADER_LEN {
            return Err(PacketError::TooShort(datagram.len()));
        }
        let first = datagram[0];
        if first & 0x0F != VERSION {
            return Err(PacketError::Version(first & 0x0F));
        }
        let kind = PacketType::from_nibble(first >> 4).ok_or(PacketError::Type(first >> 4))?;
        let header = Header {
            kind,
            conn_id: be16(datagram, 2),
            timestamp_us: be32(datagram, 4),
            timestamp_diff_us: be32(datagram, 8),
            wnd_size: be32(datagram, 12),
            seq_nr: be16(datagram, 16),
            ack_nr: be16(datagram, 18),
        };
        let mut next = datagram[1];
        let mut at = HEADER_LEN;
        let mut sack = None;
        while next != 0 {
            let (Some(&following), Some(&len)) = (datagram.get(at), datagram.get(at + 1)) else {
                return Err(PacketError::ExtensionOverrun);
            };
            let body = datagram
                .get(at + 2..at + 2 + usize::from(len))
                .ok_or(PacketError::ExtensionOverrun)?;
            if next == EXT_SACK && sack.is_none() {
                sack = Some(body);
            }
            next = following;
            at += 2 + usize::from(len);
        }
        Ok(Self {
            header,
            sack,
            payload: &datagram[at..],
        })
    }
}

/// Writes a packet into `out` (cleared first): the header, a selective ACK if given (at most
/// 255 bytes are sent), then the payload.
pub fn encode(header: &Header, sack: Option<&[u8]>, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let sack = sack
        .filter(|s| !s.is_empty())
        .map(|s| &s[..s.len().min(255)]);
    out.push(((header.kind as u8) << 4) | VERSION);
    out.push(if sack.is_some() { EXT_SACK } else { 0 });
    out.extend_from_slice(&header.conn_id.to_be_bytes());
    out.extend_from_slice(&header.timestamp_us.to_be_bytes());
    out.extend_from_slice(&header.timestamp_diff_us.to_be_bytes());
    out.extend_from_slice(&header.wnd_size.to_be_bytes());
    out.extend_from_slice(&header.seq_nr.to_be_bytes());
    out.extend_from_slice(&header.ack_nr.to_be_bytes());
    if let Some(sack) = sack {
        out.push(0);
        out.push(sack.len() as u8);
        out.extend_from_slice(sack);
    }
    out.extend_from_slice(payload);
}

/// Whether sequence number `a` comes before `b`, on the 16-bit circle (the shorter way round
/// decides).
pub fn seq_before(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: PacketType) -> Header {
        Header {
            kind,
            conn_id: 0x1234,
            timestamp_us: 0x0102_0304,
            timestamp_diff_us: 0x0506_0708,
            wnd_size: 0x0010_0000,
            seq_nr: 0xABCD,
            ack_nr: 0x0042,
        }
    }

    #[test]
    fn a_syn_has_the_bytes_bep_29_shows() {
        let mut out = Vec::new();
        encode(&header(PacketType::Syn), None, &[], &mut out);
        assert_eq!(
            out,
            [
                0x41, 0, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x10, 0, 0, 0xAB, 0xCD, 0, 0x42
            ]
        );
        assert_eq!(
            Packet::decode(&out).unwrap(),
            Packet {
                header: header(PacketType::Syn),
                sack: None,
                payload: &[]
            }
        );
    }

    #[test]
    fn data_with_a_selective_ack_round_trips() {
        let mut out = Vec::new();
        encode(
            &header(PacketType::Data),
            Some(&[0b101, 0, 0, 0x80]),
            b"hello",
            &mut out,
        );
        assert_eq!(out[0], 0x01);
        assert_eq!(&out[20..26], &[0, 4, 0b101, 0, 0, 0x80]);
        let packet = Packet::decode(&out).unwrap();
        assert_eq!(packet.sack, Some(&[0b101, 0, 0, 0x80][..]));
        assert_eq!(packet.payload, b"hello");
    }

    #[test]
    fn unknown_extensions_are_skipped() {
        let mut out = Vec::new();
        encode(&header(PacketType::State), None, &[], &mut out);
        out[1] = 3; // libtorrent's close reason, then a selective ACK of 3 bytes
        out.extend_from_slice(&[EXT_SACK, 4, 0, 0, 0, 7, 0, 3, 1, 2, 3]);
        out.extend_from_slice(b"x");
        let packet = Packet::decode(&out).unwrap();
        assert_eq!(packet.sack, Some(&[1, 2, 3][..]));
        assert_eq!(packet.payload, b"x");
    }

    #[test]
    fn bad_datagrams_are_errors() {
        let mut good = Vec::new();
        encode(&header(PacketType::Data), None, &[], &mut good);
        assert_eq!(Packet::decode(&good[..19]), Err(PacketError::TooShort(19)));
        let mut v2 = good.clone();
        v2[0] = 0x02;
        assert_eq!(Packet::decode(&v2), Err(PacketError::Version(2)));
        let mut t5 = good.clone();
        t5[0] = 0x51;
        assert_eq!(Packet::decode(&t5), Err(PacketError::Type(5)));
        let mut overrun = good.clone();
        overrun[1] = EXT_SACK;
        overrun.extend_from_slice(&[0, 8, 1, 2]);
        assert_eq!(Packet::decode(&overrun), Err(PacketError::ExtensionOverrun));
        let mut cut = good;
        cut[1] = EXT_SACK;
        cut.push(0);
        assert_eq!(Packet::decode(&cut), Err(PacketError::ExtensionOverrun));
    }

    #[test]
    fn dht_and_tracker_datagrams_are_not_utp() {
        assert!(!is_utp(
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        ));
        // A UDP tracker's connect reply: action 0, then a transaction id and a connection id.
        assert!(!is_utp(&[0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]));
        assert!(!is_utp(&[0x41; 19]));
        assert!(is_utp(&[0x41; 20]));
        assert!(!is_utp(&[]));
    }

    #[test]
    fn sequence_numbers_compare_round_the_circle() {
        assert!(seq_before(1, 2));
        assert!(seq_before(0xFFFF, 0));
        assert!(!seq_before(0, 0xFFFF));
        assert!(!seq_before(5, 5));
        assert!(seq_before(0x8000, 0xFFFF));
    }
}
