//! Trackers, both sides of BEP 3 (HTTP, with BEP 23 compact peers and BEP 48 scrape) and
//! BEP 15 (UDP):
//! - [`client`]: what Rivulet sends to trackers, [`TrackerClient`] over both transports;
//! - [`server`]: Rivulet's own tracker (`rivulet tracker`, or inside the app's engine).
//!
//! This module holds what both sides share: the announce's fields and a swarm's counts.
//! The engine's use of trackers (announcing, scraping, a torrent's tracker list, hosting the
//! server) is in `engine::tracker`.

pub mod client;
pub mod server;

pub use client::{
    AnnounceResponse, HttpTracker, TrackerClient, TrackerError, UdpTracker,
    parse_announce_response, parse_scrape_response, parse_udp_announce_response,
};

use crate::ids::{InfoHash, PeerId};

/// Why an announce is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
    /// A regular re-announce.
    None,
}

impl AnnounceEvent {
    fn as_param(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Stopped => Some("stopped"),
            AnnounceEvent::None => None,
        }
    }
}

/// Everything one announce tells the tracker.
#[derive(Debug, Clone)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: AnnounceEvent,
    pub numwant: u32,
    pub key: u32,
    pub tracker_id: Option<String>,
    /// Our global IPv6 address, for a tracker reached over IPv4 (BEP 7).
    pub ipv6: Option<std::net::Ipv6Addr>,
}

/// A torrent's swarm as a scrape reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    /// Seeders.
    pub complete: u32,
    /// Times the torrent was downloaded completely.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// An announce with every field set, for the transports' tests.
#[cfg(test)]
pub(crate) fn sample_request() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([1; 20]),
        peer_id: PeerId(*b"-RV0100-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: AnnounceEvent::Started,
        numwant: 50,
        key: 0xbeef,
        tracker_id: None,
        ipv6: None,
    }
}
