//! BEP 6's allowed-fast set: the pieces a peer may fetch from us while choked, derived from its
//! IPv4 address and the info hash so that every client computes the same set for the same peer.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

use crate::ids::InfoHash;

/// Pieces offered to a choked newcomer.
pub const ALLOWED_FAST_COUNT: u32 = 10;

/// The first `k` pieces of the allowed-fast set for a peer at `ip` (BEP 6's canonical
/// algorithm). BEP 6 defines it for IPv4 only, so an IPv6 peer gets none.
pub fn allowed_fast_set(ip: IpAddr, info_hash: &InfoHash, piece_count: u32, k: u32) -> Vec<u32> {
    let IpAddr::V4(v4) = ip.to_canonical() else {
        return Vec::new();
    };
    let k = k.min(piece_count);
    let mut set = Vec::with_capacity(k as usize);
    let masked = u32::from(v4) & 0xFFFF_FF00;
    let mut x = Vec::with_capacity(24);
    x.extend_from_slice(&masked.to_be_bytes());
    x.extend_from_slice(&info_hash.0);
    while (set.len() as u32) < k {
        x = Sha1::digest(&x).to_vec();
        for word in x.chunks_exact(4) {
            if set.len() as u32 >= k {
                break;
            }
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = y % piece_count;
            if !set.contains(&index) {
                set.push(index);
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in BEP 6: 80.4.4.200, an info hash of 0xaa bytes, 1313 pieces.
    #[test]
    fn matches_the_bep_example() {
        let ip: IpAddr = "80.4.4.200".parse().unwrap();
        let hash = InfoHash([0xaa; 20]);
        assert_eq!(
            allowed_fast_set(ip, &hash, 1313, 7),
            vec![1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &hash, 1313, 9),
            vec![1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
    }

    #[test]
    fn small_torrents_and_ipv6() {
        let hash = InfoHash([1; 20]);
        let mut all = allowed_fast_set("10.0.0.1".parse().unwrap(), &hash, 3, 10);
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2], "never more pieces than the torrent has");
        assert!(allowed_fast_set("10.0.0.1".parse().unwrap(), &hash, 0, 10).is_empty());
        assert!(allowed_fast_set("::2".parse().unwrap(), &hash, 100, 10).is_empty());
    }
}
