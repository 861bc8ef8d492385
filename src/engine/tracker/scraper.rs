//! Scraping a torrent's trackers (BEP 48 over HTTP, BEP 15 over UDP) every few minutes,
//! whether the torrent runs or not, so its swarm size is known before we connect.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::engine::torrent::TorrentEvent;
use crate::ids::InfoHash;
use crate::tracker::{SwarmCounts, TrackerClient, TrackerError};

/// Time between scrapes of one tracker.
pub(crate) const SCRAPE_EVERY: Duration = Duration::from_secs(15 * 60);
/// Trackers of one torrent scraped at most.
const MAX_SCRAPED: usize = 8;

/// One tracker's scrape result.
pub(crate) struct ScrapeUpdate {
    pub url: String,
    pub result: Result<SwarmCounts, TrackerError>,
}

/// The scrape loop of one torrent; it ends when dropped.
pub(crate) struct Scraper(JoinHandle<()>);

impl Drop for Scraper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Scraper {
    /// Scrapes every scrapable URL in `urls` now and every [`SCRAPE_EVERY`], and again at once
    /// when the list changes.
    pub fn spawn(
        client: TrackerClient,
        id: InfoHash,
        mut urls: watch::Receiver<Vec<String>>,
        events: UnboundedSender<TorrentEvent>,
    ) -> Self {
        Self(tokio::spawn(async move {
            // Spread the first scrapes of many torrents loaded at once.
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..2000))).await;
            loop {
                let list: Vec<String> = urls
                    .borrow_and_update()
                    .iter()
                    .filter(|u| TrackerClient::can_scrape(u))
                    .take(MAX_SCRAPED)
                    .cloned()
                    .collect();
                let mut scrapes = JoinSet::new();
                for url in list {
                    let client = client.clone();
                    scrapes.spawn(async move {
                        let result = client
                            .scrape(&url, &[id])
                            .await
                            .and_then(|c| c.first().copied().ok_or(TrackerError::NotScraped));
                        ScrapeUpdate { url, result }
                    });
                }
                while let Some(done) = scrapes.join_next().await {
                    if let Ok(update) = done
                        && events.send(TorrentEvent::Scraped(update)).is_err()
                    {
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(SCRAPE_EVERY) => {}
                    changed = urls.changed() => if changed.is_err() { return },
                }
            }
        }))
    }
}
