//! General tab: identity, location, size and tracker state of a torrent.

use std::time::SystemTime;

use crate::engine::TorrentSnapshot;
use crate::units;

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        if ui.button("Copy magnet link").clicked() {
            ui.ctx().copy_text(t.magnet_link().to_string());
        }
        egui::Grid::new("general")
            .num_columns(2)
            .striped(true)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                let mut row = |label: &str, value: String| {
                    ui.label(label);
                    ui.add(egui::Label::new(value).selectable(true));
                    ui.end_row();
                };
                row("Name", t.name.clone());
                row("Info hash", t.id.to_hex());
                row("Save path", t.save_dir.display().to_string());
                row(
                    "Size",
                    format!("{} ({} bytes)", units::bytes(t.total_size), t.total_size),
                );
                row(
                    "Pieces",
                    format!("{} × {}", t.piece_count, units::bytes(t.piece_length)),
                );
                row(
                    "Verified",
                    format!(
                        "{} ({:.1}%)",
                        units::bytes(t.verified_bytes),
                        t.progress * 100.0
                    ),
                );
                row(
                    "Downloaded / uploaded",
                    format!(
                        "{} / {} (ratio {:.2})",
                        units::bytes(t.downloaded),
                        units::bytes(t.uploaded),
                        t.ratio
                    ),
                );
                row("Comment", t.comment.clone().unwrap_or_default());
                row("Created by", t.created_by.clone().unwrap_or_default());
                row("Added", units::date(t.added_at));
                row("Tracker status", t.tracker_status.to_string());
                let next = t
                    .next_announce
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    .map(|d| format!("in {}", units::duration(d)))
                    .unwrap_or_else(|| "—".into());
                row("Next announce", next);
            });
    });
}
