//! Trackers tab: the other sources of peers (DHT, PEX, LSD: their state and the peers they
//! gave, as qBittorrent lists them), then each tracker's status, swarm counts and announce
//! times; adding and removing trackers.

use std::time::SystemTime;

use egui_extras::{Column, TableBuilder};

use crate::engine::{Command, TorrentSnapshot, validate_tracker_url};
use crate::units;

/// The "add a tracker" field and its last error.
#[derive(Default)]
pub struct TrackerEditor {
    new_url: String,
    error: Option<String>,
}

impl TrackerEditor {
    pub fn ui(&mut self, ui: &mut egui::Ui, t: &TorrentSnapshot) -> Option<Command> {
        let mut command = None;
        ui.horizontal(|ui| {
            let label = ui.label("New tracker");
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut self.new_url)
                        .hint_text("udp://tracker.example:1337/announce")
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Add tracker").clicked() || entered {
                let url = self.new_url.trim().to_string();
                match validate_tracker_url(&url) {
                    Ok(()) => {
                        command = Some(Command::AddTracker(t.id, url));
                        self.new_url.clear();
                        self.error = None;
                    }
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            if let Some(error) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
        });
        if t.trackers.is_empty() {
            ui.weak("This torrent has no trackers.");
        }
        if t.trackers.is_empty() && t.sources.is_empty() {
            return command;
        }
        table(ui, t).or(command)
    }
}

/// The tracker table; returns a removal when a Remove button is clicked.
fn table(ui: &mut egui::Ui, t: &TorrentSnapshot) -> Option<Command> {
    let ago = |at: Option<SystemTime>| {
        at.and_then(|a| SystemTime::now().duration_since(a).ok())
            .map_or("—".into(), |d| format!("{} ago", units::duration(d)))
    };
    let until = |at: Option<SystemTime>| {
        at.and_then(|a| a.duration_since(SystemTime::now()).ok())
            .map_or("—".into(), |d| format!("in {}", units::duration(d)))
    };
    let mut command = None;
    TableBuilder::new(ui)
        .id_salt("trackers")
        .striped(true)
        .resizable(true)
        .column(Column::initial(260.0).clip(true))
        .column(Column::auto())
        .column(Column::initial(220.0).clip(true))
        .columns(Column::auto().at_least(60.0), 6)
        .header(20.0, |mut h| {
            for title in [
                "URL",
                "Tier",
                "Status",
                "Seeders",
                "Leechers",
                "Downloaded",
                "Last announce",
                "Next announce",
                "",
            ] {
                h.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            let sources = t.sources.len();
            body.rows(20.0, sources + t.trackers.len(), |mut row| {
                if let Some(source) = t.sources.get(row.index()) {
                    row.col(|ui| {
                        ui.strong(source.source.label());
                    });
                    row.col(|_| {});
                    row.col(|ui| {
                        ui.label(format!(
                            "{} · {}",
                            source.state,
                            units::count(source.peers as usize, "peer")
                        ));
                    });
                    return;
                }
                let Some(tr) = t.trackers.get(row.index() - sources) else {
                    return;
                };
                row.col(|ui| {
                    ui.label(&tr.url);
                });
                row.col(|ui| {
                    ui.label((tr.tier + 1).to_string());
                });
                row.col(|ui| {
                    let status = tr.status.to_string();
                    ui.label(&status).on_hover_text(status);
                });
                let count = |n: Option<u32>| n.map_or("—".into(), |n| n.to_string());
                row.col(|ui| {
                    ui.label(count(tr.seeders));
                });
                row.col(|ui| {
                    ui.label(count(tr.leechers));
                });
                row.col(|ui| {
                    ui.label(count(tr.completed));
                });
                row.col(|ui| {
                    ui.label(ago(tr.last_announce));
                });
                row.col(|ui| {
                    ui.label(until(tr.next_announce));
                });
                row.col(|ui| {
                    if ui
                        .small_button("Remove")
                        .on_hover_text("Stop using this tracker for this torrent")
                        .clicked()
                    {
                        command = Some(Command::RemoveTracker(t.id, tr.url.clone()));
                    }
                });
            });
        });
    command
}
