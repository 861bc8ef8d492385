//! Finding torrents in a long list: a filter box (by name), and a side list of states and of
//! trackers (by host), each with its count, as Transmission and qBittorrent have. The table
//! shows the torrents that pass all three and keeps its sort and selection.

use std::collections::BTreeMap;

use crate::engine::{TorrentSnapshot, TorrentState};

/// A state in the side list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    All,
    Downloading,
    Seeding,
    /// Every wanted piece is in, whatever it does now.
    Completed,
    Paused,
    Queued,
    Error,
}

impl StateFilter {
    const ALL: [StateFilter; 7] = [
        StateFilter::All,
        StateFilter::Downloading,
        StateFilter::Seeding,
        StateFilter::Completed,
        StateFilter::Paused,
        StateFilter::Queued,
        StateFilter::Error,
    ];

    fn label(self) -> &'static str {
        match self {
            StateFilter::All => "All",
            StateFilter::Downloading => "Downloading",
            StateFilter::Seeding => "Seeding",
            StateFilter::Completed => "Completed",
            StateFilter::Paused => "Paused",
            StateFilter::Queued => "Queued",
            StateFilter::Error => "Error",
        }
    }

    fn matches(self, t: &TorrentSnapshot) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Downloading => matches!(
                t.state,
                TorrentState::Downloading
                    | TorrentState::FetchingMetadata
                    | TorrentState::MetadataReceived
            ),
            StateFilter::Seeding => t.state == TorrentState::Seeding,
            StateFilter::Completed => {
                !matches!(
                    t.state,
                    TorrentState::FetchingMetadata | TorrentState::MetadataReceived
                ) && t.wanted_verified >= t.wanted_size
            }
            StateFilter::Paused => t.state == TorrentState::Paused,
            StateFilter::Queued => t.state == TorrentState::Queued,
            StateFilter::Error => matches!(t.state, TorrentState::Error(_)),
        }
    }
}

/// A tracker in the side list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrackerFilter {
    #[default]
    All,
    /// Torrents with a tracker on this host.
    Host(String),
    /// Torrents without trackers.
    None,
}

impl TrackerFilter {
    fn matches(&self, t: &TorrentSnapshot) -> bool {
        match self {
            TrackerFilter::All => true,
            TrackerFilter::Host(host) => hosts(t).any(|h| h == host),
            TrackerFilter::None => t.trackers.is_empty(),
        }
    }
}

/// The host of each of a torrent's trackers (`tracker.example.org`), once each.
fn hosts(t: &TorrentSnapshot) -> impl Iterator<Item = &str> {
    let mut seen: Vec<&str> = Vec::new();
    for tracker in &t.trackers {
        let host = host_of(&tracker.url);
        if !seen.contains(&host) {
            seen.push(host);
        }
    }
    seen.into_iter()
}

/// `udp://tracker.example:1337/announce` → `tracker.example`; `[::1]` stays bracketed.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[derive(Default)]
pub struct TorrentFilter {
    pub text: String,
    pub state: StateFilter,
    pub tracker: TrackerFilter,
}

impl TorrentFilter {
    pub fn matches(&self, t: &TorrentSnapshot) -> bool {
        let text = self.text.trim();
        (text.is_empty() || t.name.to_lowercase().contains(&text.to_lowercase()))
            && self.state.matches(t)
            && self.tracker.matches(t)
    }

    /// The filter box and the side list.
    pub fn ui(&mut self, ui: &mut egui::Ui, torrents: &[std::sync::Arc<TorrentSnapshot>]) {
        ui.add_space(4.0);
        let label = ui.strong("Filter by name");
        ui.add(
            egui::TextEdit::singleline(&mut self.text)
                .hint_text("part of a name")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
        ui.add_space(6.0);
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.strong("Status");
            for state in StateFilter::ALL {
                let count = torrents.iter().filter(|t| state.matches(t)).count();
                let label = format!("{} ({count})", state.label());
                if ui.selectable_label(self.state == state, label).clicked() {
                    self.state = state;
                }
            }
            ui.add_space(8.0);
            ui.strong("Trackers");
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for t in torrents {
                for host in hosts(t) {
                    *counts.entry(host).or_default() += 1;
                }
            }
            let trackerless = torrents.iter().filter(|t| t.trackers.is_empty()).count();
            let all = format!("All ({})", torrents.len());
            let mut entries = vec![(TrackerFilter::All, all)];
            entries.extend(counts.into_iter().map(|(host, n)| {
                (
                    TrackerFilter::Host(host.to_string()),
                    format!("{host} ({n})"),
                )
            }));
            if trackerless > 0 {
                entries.push((TrackerFilter::None, format!("No tracker ({trackerless})")));
            }
            for (filter, label) in entries {
                if ui
                    .push_id(("tracker-filter", &label), |ui| {
                        ui.selectable_label(self.tracker == filter, label.as_str())
                    })
                    .inner
                    .clicked()
                {
                    self.tracker = filter;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_tracker_urls() {
        assert_eq!(
            host_of("udp://tracker.example:1337/announce"),
            "tracker.example"
        );
        assert_eq!(host_of("http://user@t.example/announce?x=1"), "t.example");
        assert_eq!(host_of("http://[::1]:6969/announce"), "[::1]");
        assert_eq!(host_of("https://t.example"), "t.example");
    }
}
