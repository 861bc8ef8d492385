//! The status bar: global speeds, listen port, DHT nodes, torrents by state, free space, the
//! tracker.

use crate::engine::{SessionSnapshot, TorrentState, TrackerHostState};
use crate::portmap::MappingStatus;
use crate::units;

pub struct StatusBar;

impl StatusBar {
    pub fn ui(ui: &mut egui::Ui, snapshot: &SessionSnapshot) {
        ui.horizontal(|ui| {
            ui.label(format!("Down {}", units::rate(snapshot.down_rate)));
            ui.label(format!("Up {}", units::rate(snapshot.up_rate)));
            ui.separator();
            match &snapshot.network_down {
                Some(reason) => ui
                    .colored_label(ui.visuals().error_fg_color, "Network down")
                    .on_hover_text(reason),
                None => ui.label(format!("Port {}", snapshot.listen_port)),
            };
            match &snapshot.port_mapping {
                Some(status @ MappingStatus::Mapped { external_ip, .. }) => {
                    let label = ui.label(status.to_string());
                    if let Some(ip) = external_ip {
                        label.on_hover_text(format!("The router's address: {ip}"));
                    }
                }
                Some(status) => {
                    ui.weak(status.to_string()).on_hover_text(
                        "Rivulet still connects out to peers; only peers behind routers of \
                         their own cannot connect in.",
                    );
                }
                None => {}
            }
            ui.separator();
            match &snapshot.dht {
                Some(dht) => ui
                    .label(format!("DHT: {}", units::count(dht.nodes, "node")))
                    .on_hover_text(format!(
                        "{} answered lately; peers kept for others: {}",
                        dht.good_nodes, dht.peers
                    )),
                None => ui.weak("DHT off"),
            };
            ui.separator();
            ui.label(counts(snapshot));
            if let Some(free) = snapshot.free_space {
                ui.separator();
                ui.label(format!("Free: {}", units::bytes(free)));
            }
            match &snapshot.tracker {
                TrackerHostState::Off => {}
                TrackerHostState::Running {
                    port,
                    torrents,
                    peers,
                } => {
                    ui.separator();
                    ui.label(format!(
                        "Tracker on port {port}: {}, {}",
                        units::count(*torrents, "torrent"),
                        units::count(*peers, "peer")
                    ));
                }
                TrackerHostState::Failed(error) => {
                    ui.separator();
                    ui.colored_label(ui.visuals().error_fg_color, "Tracker stopped")
                        .on_hover_text(error);
                }
            }
        });
    }
}

/// "2 downloading · 1 seeding · 3 paused".
pub fn counts(snapshot: &SessionSnapshot) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for t in &snapshot.torrents {
        let label = match t.state {
            TorrentState::FetchingMetadata | TorrentState::MetadataReceived => "fetching metadata",
            TorrentState::Checking(_) => "checking",
            TorrentState::Downloading => "downloading",
            TorrentState::Seeding => "seeding",
            TorrentState::Finished => "finished",
            TorrentState::Paused => "paused",
            TorrentState::Queued => "queued",
            TorrentState::Moving(_) => "moving",
            TorrentState::Offline(_) => "offline",
            TorrentState::Error(_) => "errored",
        };
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    if counts.is_empty() {
        return "No torrents".into();
    }
    counts
        .iter()
        .map(|(l, n)| format!("{n} {l}"))
        .collect::<Vec<_>>()
        .join(" · ")
}
