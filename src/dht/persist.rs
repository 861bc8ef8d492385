//! The DHT node's saved state: its id and the nodes of its routing table (good ones first), in
//! a bencoded file written atomically, read at start so a restart needs no router.

use std::path::Path;

use super::id::NodeId;
use super::krpc::{NodeInfo, compact_addr, parse_compact_addr};
use crate::bencode::Value;

/// Nodes saved at most.
const MAX_SAVED: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub id: NodeId,
    pub nodes: Vec<NodeInfo>,
}

pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let nodes = saved
        .nodes
        .iter()
        .filter(|n| n.addr.is_ipv4())
        .take(MAX_SAVED)
        .flat_map(|n| {
            let mut entry = n.id.0.to_vec();
            entry.extend_from_slice(&compact_addr(&n.addr));
            entry
        })
        .collect();
    let file = Value::dict([
        ("id", Value::Bytes(saved.id.0.to_vec())),
        ("nodes", Value::Bytes(nodes)),
    ]);
    crate::engine::write_atomically(path, &file.encode())
}

/// The saved state, or `None` when there is none or it is damaged (then the node starts
/// afresh from the routers).
pub fn load(path: &Path) -> Option<Saved> {
    let bytes = std::fs::read(path).ok()?;
    let value = crate::bencode::decode(&bytes).ok()?;
    let id = NodeId(value.get("id")?.as_bytes()?.try_into().ok()?);
    let compact = value.get("nodes")?.as_bytes()?;
    let nodes = compact
        .chunks_exact(26)
        .take(MAX_SAVED)
        .filter_map(|c| {
            Some(NodeInfo {
                id: NodeId(c.get(..20)?.try_into().ok()?),
                addr: parse_compact_addr(c.get(20..)?)?,
            })
        })
        .collect();
    Some(Saved { id, nodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.dat");
        let saved = Saved {
            id: NodeId([3; 20]),
            nodes: vec![NodeInfo {
                id: NodeId([4; 20]),
                addr: "127.0.0.2:6881".parse().unwrap(),
            }],
        };
        save(&path, &saved).unwrap();
        assert_eq!(load(&path), Some(saved));
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(load(&path), None);
    }
}
