//! Tracker clients: the HTTP (BEP 3, BEP 48 scrape) and UDP (BEP 15) transports behind one
//! [`TrackerClient`], and the parsing of what trackers answer.

mod http;
mod response;
pub(crate) mod udp;

pub use http::HttpTracker;
pub use response::{AnnounceResponse, parse_announce_response, parse_scrape_response};
pub use udp::{UdpTracker, parse_udp_announce_response};

use std::time::Duration;

use super::{AnnounceRequest, SwarmCounts};
use crate::ids::InfoHash;
use crate::net::Reach;

/// An announce failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// A scrape answered without the torrent asked about.
    #[error("tracker's scrape does not list the torrent")]
    NotScraped,
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

    /// Every announce and scrape leaves from the address `reach` gives from now on (none
    /// while it is down: they fail with its reason).
    pub fn set_reach(&self, reach: &Reach) {
        self.http.set_reach(reach);
        self.udp.set_reach(reach.clone());
    }

    /// Whether a scrape URL exists for this announce URL.
    pub fn can_scrape(url: &str) -> bool {
        url.starts_with("udp://") || http::scrape_url(url).is_some()
    }
}
