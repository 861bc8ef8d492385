//! Tracker clients: what an announce carries, what comes back, and the HTTP (BEP 3, BEP 48
//! scrape) and UDP (BEP 15) transports behind one [`TrackerClient`].

mod http;
mod response;
mod udp;

pub use http::HttpTracker;
pub use response::{AnnounceResponse, parse_announce_response, parse_scrape_response};
pub(crate) use udp::{
    ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR, ACTION_SCRAPE, MAX_SCRAPE, PROTOCOL_ID,
};
pub use udp::{UdpTracker, parse_udp_announce_response};

use std::time::Duration;

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

/// An announce failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrackerError {
    #[error("tracker said: {0}")]
    Failure(String),
    #[error("tracker unreachable: {0}")]
    Unreachable(String),
    #[error("tracker answered HTTP {0}")]
    HttpStatus(u16),
    #[error("tracker response is invalid: {0}")]
    BadResponse(String),
    #[error("tracker response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("tracker URL {0:?} is not supported")]
    UnsupportedUrl(String),
}

/// Timeout of one announce round trip.
pub const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(20);

/// Announces over HTTP(S) or UDP, by the URL's scheme.
#[derive(Clone)]
pub struct TrackerClient {
    http: HttpTracker,
    udp: std::sync::Arc<UdpTracker>,
}

impl TrackerClient {
    pub fn new() -> Result<Self, TrackerError> {
        Ok(Self {
            http: HttpTracker::new()?,
            udp: std::sync::Arc::new(UdpTracker::default()),
        })
    }

    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        if url.starts_with("udp://") {
            self.udp.announce(url, req).await
        } else {
            self.http.announce(url, req).await
        }
    }

    /// Scrapes the counts of `ids` from the tracker at announce URL `url`.
    pub async fn scrape(
        &self,
        url: &str,
        ids: &[InfoHash],
    ) -> Result<Vec<SwarmCounts>, TrackerError> {
        if url.starts_with("udp://") {
            self.udp.scrape(url, ids).await
        } else {
            self.http.scrape(url, ids).await
        }
    }

    /// Whether a scrape URL exists for this announce URL.
    pub fn can_scrape(url: &str) -> bool {
        url.starts_with("udp://") || http::scrape_url(url).is_some()
    }
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
    }
}
