//! General tab: identity, location, size and tracker state of a torrent, and its own seeding
//! goals and rate limits.

use std::time::{Duration, SystemTime};

use crate::engine::{Command, Limit, TorrentGoals, TorrentSnapshot};
use crate::units;

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) -> Option<Command> {
    let mut command = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        if ui.button("Copy magnet link").clicked() {
            ui.ctx().copy_text(t.magnet_link().to_string());
        }
        ui.horizontal_top(|ui| {
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
                    let verified = if t.wanted_size < t.total_size {
                        format!(
                            "{} of {} wanted ({:.1}%)",
                            units::bytes(t.wanted_verified),
                            units::bytes(t.wanted_size),
                            t.progress * 100.0
                        )
                    } else {
                        format!(
                            "{} ({:.1}%)",
                            units::bytes(t.verified_bytes),
                            t.progress * 100.0
                        )
                    };
                    row("Verified", verified);
                    row(
                        "Downloaded / uploaded",
                        format!(
                            "{} / {} (ratio {:.2})",
                            units::bytes(t.downloaded),
                            units::bytes(t.uploaded),
                            t.ratio
                        ),
                    );
                    row(
                        "Seeding time",
                        units::duration(t.seeding_time(SystemTime::now())),
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
            ui.separator();
            egui::Grid::new("general-limits")
                .num_columns(2)
                .spacing([16.0, 4.0])
                .show(ui, |ui| {
                    ui.label("Stop seeding at ratio");
                    let ratio = t.goals.ratio.map(f64::from);
                    if let Some(limit) = limit_editor(ui, "ratio", ratio, 2.0, 0.05, "") {
                        let goals = TorrentGoals {
                            ratio: limit.map(|r| r as f32),
                            ..t.goals
                        };
                        command = Some(Command::SetSeedGoals(t.id, goals));
                    }
                    ui.end_row();
                    ui.label("Stop seeding after");
                    let minutes = t.goals.seeding_time.map(|d| d.as_secs() as f64 / 60.0);
                    if let Some(limit) = limit_editor(ui, "time", minutes, 1440.0, 1.0, " min") {
                        let goals = TorrentGoals {
                            seeding_time: limit.map(|m| Duration::from_secs((m * 60.0) as u64)),
                            ..t.goals
                        };
                        command = Some(Command::SetSeedGoals(t.id, goals));
                    }
                    ui.end_row();
                    for (label, current, down) in [
                        ("Download limit (KiB/s, 0 = none)", t.down_limit, true),
                        ("Upload limit (KiB/s, 0 = none)", t.up_limit, false),
                    ] {
                        let label = ui.label(label);
                        let mut kib = current / 1024;
                        let changed = ui
                            .add(egui::DragValue::new(&mut kib).range(0..=10_000_000))
                            .labelled_by(label.id)
                            .changed();
                        if changed {
                            let (d, u) = if down {
                                (kib * 1024, t.up_limit)
                            } else {
                                (t.down_limit, kib * 1024)
                            };
                            command = Some(Command::SetSpeedLimits {
                                id: t.id,
                                down: d,
                                up: u,
                            });
                        }
                        ui.end_row();
                    }
                });
        });
    });
    command
}

/// Radio buttons for a goal (the session's, none, or its own value) and the value; the new
/// limit when the user changed it.
fn limit_editor(
    ui: &mut egui::Ui,
    salt: &str,
    current: Limit<f64>,
    default: f64,
    speed: f64,
    suffix: &str,
) -> Option<Limit<f64>> {
    let mut chosen = None;
    ui.push_id(salt, |ui| {
        ui.horizontal(|ui| {
            if ui
                .radio(current == Limit::Global, "Session's")
                .on_hover_text("The seeding goals of Settings")
                .clicked()
            {
                chosen = Some(Limit::Global);
            }
            if ui.radio(current == Limit::Unlimited, "Never").clicked() {
                chosen = Some(Limit::Unlimited);
            }
            let mut value = match current {
                Limit::Value(v) => v,
                _ => default,
            };
            let own = matches!(current, Limit::Value(_));
            if ui.radio(own, "At").clicked() && !own {
                chosen = Some(Limit::Value(value));
            }
            let drag = egui::DragValue::new(&mut value)
                .range(0.0..=1_000_000.0)
                .speed(speed)
                .max_decimals(2)
                .suffix(suffix);
            if ui.add_enabled(own, drag).changed() {
                chosen = Some(Limit::Value(value));
            }
        });
    });
    chosen
}
