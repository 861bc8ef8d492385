//! A torrent's trackers: the tiers (shuffled once, BEP 12), the user's edits, and what each
//! tracker last said in an announce or a scrape.

use std::time::SystemTime;

use rand::seq::SliceRandom;
use tokio::sync::watch;

use super::announcer::TrackerUpdate;
use super::scraper::ScrapeUpdate;
use crate::engine::outcome::{TrackerStatus, TrackersSummary};
use crate::engine::snapshot::TrackerSnapshot;

/// Longest tracker URL accepted.
const MAX_URL: usize = 2048;

/// Why a tracker URL cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerUrlError {
    #[error("a tracker URL starts with http://, https:// or udp://")]
    Scheme,
    #[error("the tracker URL has no host")]
    NoHost,
    #[error("the tracker URL is longer than {MAX_URL} characters")]
    TooLong,
    #[error("the tracker URL contains spaces or control characters")]
    BadCharacters,
}

/// Checks that `url` can be announced to.
pub fn validate_tracker_url(url: &str) -> Result<(), TrackerUrlError> {
    if url.len() > MAX_URL {
        return Err(TrackerUrlError::TooLong);
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TrackerUrlError::BadCharacters);
    }
    let rest = ["http://", "https://", "udp://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or(TrackerUrlError::Scheme)?;
    let host = rest.split(['/', '?', ':']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(TrackerUrlError::NoHost);
    }
    Ok(())
}

pub(crate) struct TrackerList {
    tiers: Vec<Vec<String>>,
    /// Edited by the user: saved with the resume data.
    edited: bool,
    entries: Vec<TrackerSnapshot>,
    /// The URLs, for the scraper.
    urls: watch::Sender<Vec<String>>,
    /// Seeders and leechers in the swarm, by the latest report.
    pub swarm: (Option<u32>, Option<u32>),
}

impl TrackerList {
    /// The torrent's own tiers, or the user's saved ones; each tier shuffled once.
    pub fn new(own: Vec<Vec<String>>, saved: Option<Vec<Vec<String>>>) -> Self {
        let edited = saved.is_some();
        let mut tiers = saved.unwrap_or(own);
        let mut rng = rand::rng();
        for tier in &mut tiers {
            tier.shuffle(&mut rng);
        }
        tiers.retain(|t| !t.is_empty());
        let mut list = Self {
            tiers,
            edited,
            entries: Vec::new(),
            urls: watch::Sender::new(Vec::new()),
            swarm: (None, None),
        };
        list.rebuild();
        list
    }

    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// The tiers to save with the resume data, if the user changed them.
    pub fn saved(&self) -> Option<Vec<Vec<String>>> {
        self.edited.then(|| self.tiers.clone())
    }

    pub fn entries(&self) -> &[TrackerSnapshot] {
        &self.entries
    }

    pub fn watch_urls(&self) -> watch::Receiver<Vec<String>> {
        self.urls.subscribe()
    }

    /// Adds `url` as a tier of its own after the others; false if it is already listed.
    pub fn add(&mut self, url: String) -> bool {
        if self.tiers.iter().flatten().any(|u| *u == url) {
            return false;
        }
        self.tiers.push(vec![url]);
        self.edited = true;
        self.rebuild();
        true
    }

    /// Removes `url` wherever it is; false if it was not listed.
    pub fn remove(&mut self, url: &str) -> bool {
        let before = self.tiers.iter().map(Vec::len).sum::<usize>();
        for tier in &mut self.tiers {
            tier.retain(|u| u != url);
        }
        self.tiers.retain(|t| !t.is_empty());
        if self.tiers.iter().map(Vec::len).sum::<usize>() == before {
            return false;
        }
        self.edited = true;
        self.rebuild();
        true
    }

    /// Rebuilds the entries from the tiers, keeping what is known of trackers still listed.
    fn rebuild(&mut self) {
        let old = std::mem::take(&mut self.entries);
        self.entries = self
            .tiers
            .iter()
            .enumerate()
            .flat_map(|(tier, urls)| urls.iter().map(move |url| (tier, url)))
            .map(|(tier, url)| match old.iter().find(|e| e.url == *url) {
                Some(known) => TrackerSnapshot {
                    tier,
                    ..known.clone()
                },
                None => TrackerSnapshot {
                    url: url.clone(),
                    tier,
                    status: TrackerStatus::NotContacted,
                    seeders: None,
                    leechers: None,
                    completed: None,
                    last_announce: None,
                    next_announce: None,
                },
            })
            .collect();
        let urls = self.entries.iter().map(|e| e.url.clone()).collect();
        self.urls.send_replace(urls);
    }

    pub fn on_updating(&mut self, url: &str) {
        if let Some(t) = self.entries.iter_mut().find(|t| t.url == url) {
            t.status = TrackerStatus::Updating;
        }
    }

    pub fn on_announce(&mut self, update: &TrackerUpdate) {
        if update.status.is_working() {
            self.swarm = (update.seeders, update.leechers);
        }
        if let Some(t) = self.entries.iter_mut().find(|t| t.url == update.url) {
            t.status = update.status.clone();
            t.seeders = update.seeders.or(t.seeders);
            t.leechers = update.leechers.or(t.leechers);
            t.last_announce = Some(SystemTime::now());
            t.next_announce = update.next_announce;
        }
    }

    pub fn on_scrape(&mut self, update: &ScrapeUpdate) {
        let Ok(counts) = &update.result else {
            tracing::debug!(url = %update.url, "scrape failed");
            return;
        };
        if let Some(t) = self.entries.iter_mut().find(|t| t.url == update.url) {
            t.seeders = Some(counts.complete);
            t.leechers = Some(counts.incomplete);
            t.completed = Some(counts.downloaded);
        }
        // The largest swarm any tracker reports.
        let best = self
            .entries
            .iter()
            .filter_map(|t| Some((t.seeders?, t.leechers?)));
        if let Some((seeders, leechers)) = best.max_by_key(|(s, l)| u64::from(*s) + u64::from(*l)) {
            self.swarm = (Some(seeders), Some(leechers));
        }
    }

    /// One line about the trackers: the first working one, or why none works.
    pub fn summary(&self) -> TrackersSummary {
        if self.entries.is_empty() {
            return TrackersSummary::NoTrackers;
        }
        if let Some(t) = self.entries.iter().find(|t| t.status.is_working()) {
            return TrackersSummary::Tracker(t.status.clone());
        }
        let contacted: Vec<_> = self
            .entries
            .iter()
            .filter(|t| t.last_announce.is_some())
            .collect();
        match contacted.iter().max_by_key(|t| t.last_announce) {
            None => TrackersSummary::Tracker(TrackerStatus::NotContacted),
            Some(t) if contacted.len() == self.entries.len() => {
                TrackersSummary::NoneWorks(t.status.clone())
            }
            Some(t) => TrackersSummary::Tracker(t.status.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::TrackerError;

    fn tiers() -> Vec<Vec<String>> {
        vec![
            vec!["http://a/announce".into(), "http://b/announce".into()],
            vec!["udp://c:1/announce".into()],
        ]
    }

    #[test]
    fn tiers_are_shuffled_within_not_across() {
        let list = TrackerList::new(tiers(), None);
        let mut first = list.tiers()[0].clone();
        first.sort();
        assert_eq!(first, tiers()[0]);
        assert_eq!(list.tiers()[1], tiers()[1]);
        assert_eq!(list.saved(), None);
        assert_eq!(list.entries().len(), 3);
        assert_eq!(
            list.summary(),
            TrackersSummary::Tracker(TrackerStatus::NotContacted)
        );
    }

    #[test]
    fn edits_are_kept_and_saved() {
        let mut list = TrackerList::new(tiers(), None);
        let urls = list.watch_urls();
        assert!(list.add("udp://d:2/announce".into()));
        assert!(!list.add("udp://d:2/announce".into()));
        assert!(list.remove("udp://c:1/announce"));
        assert!(!list.remove("udp://nope/announce"));
        let saved = list.saved().unwrap();
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[1], vec!["udp://d:2/announce".to_string()]);
        assert_eq!(list.entries()[2].tier, 1);
        assert_eq!(urls.borrow().len(), 3);
        let again = TrackerList::new(tiers(), Some(saved.clone()));
        assert_eq!(again.saved().map(|t| t.len()), Some(2));
    }

    #[test]
    fn status_says_when_no_tracker_works() {
        let mut list = TrackerList::new(vec![vec!["http://a/announce".into()]], None);
        list.on_updating("http://a/announce");
        assert_eq!(list.entries()[0].status, TrackerStatus::Updating);
        let refused = TrackerStatus::Failed(TrackerError::Unreachable("refused".into()));
        list.on_announce(&TrackerUpdate {
            url: "http://a/announce".into(),
            status: refused.clone(),
            peers: Vec::new(),
            seeders: None,
            leechers: None,
            next_announce: None,
        });
        assert_eq!(list.summary(), TrackersSummary::NoneWorks(refused));
        list.on_scrape(&ScrapeUpdate {
            url: "http://a/announce".into(),
            result: Ok(crate::tracker::SwarmCounts {
                complete: 3,
                downloaded: 7,
                incomplete: 2,
            }),
        });
        assert_eq!(list.swarm, (Some(3), Some(2)));
        assert_eq!(list.entries()[0].completed, Some(7));
    }

    /// Counts come from the network: the largest of them must not overflow a sum.
    #[test]
    fn huge_scrape_counts_do_not_overflow() {
        let mut list = TrackerList::new(vec![vec!["udp://a:1/announce".into()]], None);
        list.on_scrape(&ScrapeUpdate {
            url: "udp://a:1/announce".into(),
            result: Ok(crate::tracker::SwarmCounts {
                complete: u32::MAX,
                downloaded: u32::MAX,
                incomplete: u32::MAX,
            }),
        });
        assert_eq!(list.swarm, (Some(u32::MAX), Some(u32::MAX)));
    }

    #[test]
    fn urls_are_validated() {
        assert!(validate_tracker_url("udp://tracker.example:1337/announce").is_ok());
        assert!(validate_tracker_url("https://t.example/announce?k=1").is_ok());
        assert_eq!(
            validate_tracker_url("ftp://x/announce"),
            Err(TrackerUrlError::Scheme)
        );
        assert_eq!(
            validate_tracker_url("http:///announce"),
            Err(TrackerUrlError::NoHost)
        );
        assert_eq!(
            validate_tracker_url("http://a b/"),
            Err(TrackerUrlError::BadCharacters)
        );
    }
}
