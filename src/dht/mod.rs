//! The mainline DHT (BEP 5), written in-house on the strict bencode decoder: KRPC messages
//! ([`krpc`]), node ids and the XOR metric ([`id`]), the k-bucket routing table, iterative
//! lookups, the peers and tokens kept for others, the saved state, and the node itself
//! ([`Dht`], a task on the engine's runtime). No part of it knows about torrents beyond their
//! info hashes; the engine asks it for peers.

pub mod id;
pub mod krpc;
mod lookup;
mod node;
mod persist;
mod routing;
mod store;

pub use id::NodeId;
pub use node::{Dht, DhtConfig, DhtStats};
