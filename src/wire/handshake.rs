//! The 68-byte handshake that opens every peer connection, and the reserved bits in it that
//! announce protocol extensions (BEP 10 extension protocol, BEP 6 fast extension, BEP 5 DHT).

use super::WireError;
use crate::ids::{InfoHash, PeerId};

const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
pub const HANDSHAKE_LEN: usize = 68;

/// Reserved byte 5, bit 0x10: the BEP 10 extension protocol.
const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10);
/// Reserved byte 7, bit 0x04: the BEP 6 fast extension.
const FAST_EXTENSION: (usize, u8) = (7, 0x04);
/// Reserved byte 7, bit 0x01: the peer runs a DHT node (BEP 5) and sends `port`.
const DHT: (usize, u8) = (7, 0x01);

/// The extensions a handshake says its sender speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// BEP 10: extended messages (id 20) and the extension handshake.
    pub extension_protocol: bool,
    /// BEP 6: have all / have none, reject, allowed fast, suggest.
    pub fast: bool,
    /// BEP 5: a DHT node, whose port the `port` message gives.
    pub dht: bool,
}

impl Capabilities {
    /// What Rivulet speaks.
    pub const RIVULET: Capabilities = Capabilities {
        extension_protocol: true,
        fast: true,
        dht: true,
    };

    /// What both sides speak: an extension is used only when both set its bit.
    pub fn common(self, other: Capabilities) -> Capabilities {
        Capabilities {
            extension_protocol: self.extension_protocol && other.extension_protocol,
            fast: self.fast && other.fast,
            dht: self.dht && other.dht,
        }
    }

    fn reserved(self) -> [u8; 8] {
        let mut reserved = [0u8; 8];
        for (on, (byte, bit)) in [
            (self.extension_protocol, EXTENSION_PROTOCOL),
            (self.fast, FAST_EXTENSION),
            (self.dht, DHT),
        ] {
            if on {
                reserved[byte] |= bit;
            }
        }
        reserved
    }

    fn from_reserved(reserved: &[u8; 8]) -> Capabilities {
        let set = |(byte, bit): (usize, u8)| reserved[byte] & bit != 0;
        Capabilities {
            extension_protocol: set(EXTENSION_PROTOCOL),
            fast: set(FAST_EXTENSION),
            dht: set(DHT),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

impl Handshake {
    /// Rivulet's handshake, with the bits of every extension it speaks.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self::with_capabilities(info_hash, peer_id, Capabilities::RIVULET)
    }

    pub fn with_capabilities(info_hash: InfoHash, peer_id: PeerId, caps: Capabilities) -> Self {
        Self {
            reserved: caps.reserved(),
            info_hash,
            peer_id,
        }
    }

    /// The extensions the sender announced.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities::from_reserved(&self.reserved)
    }

    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    pub fn decode(bytes: &[u8; HANDSHAKE_LEN]) -> Result<Self, WireError> {
        if bytes[0] != 19 || &bytes[1..20] != PROTOCOL {
            return Err(WireError::BadProtocol);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Self {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_other_protocols() {
        let h = Handshake::new(InfoHash([7; 20]), PeerId::generate());
        assert_eq!(Handshake::decode(&h.encode()).unwrap(), h);
        let mut bad = h.encode();
        bad[5] = b'x';
        assert!(matches!(
            Handshake::decode(&bad),
            Err(WireError::BadProtocol)
        ));
    }

    #[test]
    fn reserved_bits_announce_extensions() {
        let ours = Handshake::new(InfoHash([7; 20]), PeerId::generate());
        assert_eq!(ours.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert_eq!(ours.capabilities(), Capabilities::RIVULET);
        let plain = Handshake::with_capabilities(
            InfoHash([7; 20]),
            PeerId::generate(),
            Capabilities::default(),
        );
        assert_eq!(plain.reserved, [0; 8]);
        let mut dht_only = plain.clone();
        dht_only.reserved[7] = 0x01;
        assert_eq!(
            Handshake::decode(&dht_only.encode())
                .unwrap()
                .capabilities(),
            Capabilities {
                dht: true,
                ..Capabilities::default()
            }
        );
        assert_eq!(
            Capabilities::RIVULET.common(plain.capabilities()),
            Capabilities::default()
        );
    }
}
