//! Node ids and the XOR metric of BEP 5: the distance between two ids is their XOR read as a
//! big-endian number, and the routing table files a node by how many leading bits its id
//! shares with ours.

use std::fmt;

/// A DHT node's 160-bit id (and, for lookups, an info hash: the same space).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// `self XOR other`, comparable as a big-endian number.
    pub fn distance(&self, other: &NodeId) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        d
    }

    /// Leading bits `self` and `other` share: 160 for the same id.
    pub fn common_prefix(&self, other: &NodeId) -> usize {
        let d = self.distance(other);
        for (i, byte) in d.iter().enumerate() {
            if *byte != 0 {
                return i * 8 + byte.leading_zeros() as usize;
            }
        }
        160
    }

    /// A random id that shares exactly `prefix` leading bits with `self` (for refreshing the
    /// bucket of that depth).
    pub fn random_at(&self, prefix: usize) -> NodeId {
        let mut id = NodeId::random();
        if prefix >= 160 {
            return *self;
        }
        for bit in 0..=prefix {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let ours = self.0[byte] & mask;
            // The first `prefix` bits as ours, the next one different.
            let want = if bit < prefix { ours } else { ours ^ mask };
            id.0[byte] = (id.0[byte] & !mask) | want;
        }
        id
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_prefix() {
        let a = NodeId([0; 20]);
        let mut b = [0u8; 20];
        b[1] = 0x10;
        let b = NodeId(b);
        assert_eq!(a.common_prefix(&b), 11);
        assert_eq!(a.common_prefix(&a), 160);
        assert!(a.distance(&b) > a.distance(&a));
    }

    #[test]
    fn random_ids_land_in_the_asked_bucket() {
        let ours = NodeId::random();
        for prefix in [0, 1, 7, 8, 9, 63, 159] {
            for _ in 0..20 {
                assert_eq!(ours.common_prefix(&ours.random_at(prefix)), prefix);
            }
        }
    }
}
