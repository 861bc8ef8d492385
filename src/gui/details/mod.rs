//! The details pane of the selected torrent, one tab per view.

mod files;
mod general;
mod health;
mod peers;
mod pieces;
mod speed;
mod trackers;

use crate::engine::{Command, TorrentSnapshot};

use super::history::SpeedHistory;

/// What the user asked for in the pane.
#[derive(Debug)]
pub enum DetailsAction {
    /// Of the engine: tracker edits, file priorities, goals and limits.
    Engine(Command),
    /// Show this folder in the file manager.
    OpenFolder(std::path::PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    General,
    Files,
    Peers,
    Trackers,
    Pieces,
    Speed,
    Health,
}

const TABS: [(Tab, &str); 7] = [
    (Tab::General, "General"),
    (Tab::Files, "Files"),
    (Tab::Peers, "Peers"),
    (Tab::Trackers, "Trackers"),
    (Tab::Pieces, "Pieces"),
    (Tab::Speed, "Speed"),
    (Tab::Health, "Health"),
];

pub struct DetailsPane {
    pub tab: Tab,
    trackers: trackers::TrackerEditor,
}

impl Default for DetailsPane {
    fn default() -> Self {
        Self {
            tab: Tab::General,
            trackers: trackers::TrackerEditor::default(),
        }
    }
}

impl DetailsPane {
    /// Draws the pane; returns what the user asked for.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        torrent: Option<&TorrentSnapshot>,
        history: &SpeedHistory,
    ) -> Option<DetailsAction> {
        ui.horizontal(|ui| {
            for (tab, title) in TABS {
                if ui.selectable_label(self.tab == tab, title).clicked() {
                    self.tab = tab;
                }
            }
        });
        ui.separator();
        let Some(t) = torrent else {
            if self.tab == Tab::Speed {
                speed::ui(ui, history.session(), "All torrents");
            } else {
                ui.weak("Select a torrent to see its details.");
            }
            return None;
        };
        match self.tab {
            Tab::General => return general::ui(ui, t).map(DetailsAction::Engine),
            Tab::Files => return files::ui(ui, t),
            Tab::Peers => peers::ui(ui, t),
            Tab::Trackers => return self.trackers.ui(ui, t).map(DetailsAction::Engine),
            Tab::Pieces => pieces::ui(ui, t),
            Tab::Health => health::ui(ui, t),
            Tab::Speed => match history.torrent(&t.id) {
                Some(samples) => speed::ui(ui, samples, &t.name),
                None => {
                    ui.weak("No transfers yet.");
                }
            },
        }
        None
    }
}
