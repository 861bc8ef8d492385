//! Trackers tab: each tracker's status, swarm counts and announce times.

use std::time::SystemTime;

use egui_extras::{Column, TableBuilder};

use crate::engine::TorrentSnapshot;
use crate::units;

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) {
    if t.trackers.is_empty() {
        ui.weak("This torrent has no trackers.");
        return;
    }
    let ago = |at: Option<SystemTime>| {
        at.and_then(|a| SystemTime::now().duration_since(a).ok())
            .map_or("—".into(), |d| format!("{} ago", units::duration(d)))
    };
    let until = |at: Option<SystemTime>| {
        at.and_then(|a| a.duration_since(SystemTime::now()).ok())
            .map_or("—".into(), |d| format!("in {}", units::duration(d)))
    };
    TableBuilder::new(ui)
        .id_salt("trackers")
        .striped(true)
        .resizable(true)
        .column(Column::initial(260.0).clip(true))
        .column(Column::auto())
        .column(Column::initial(220.0).clip(true))
        .columns(Column::auto().at_least(60.0), 4)
        .header(20.0, |mut h| {
            for title in [
                "URL",
                "Tier",
                "Status",
                "Seeders",
                "Leechers",
                "Last announce",
                "Next announce",
            ] {
                h.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(20.0, t.trackers.len(), |mut row| {
                let Some(tr) = t.trackers.get(row.index()) else {
                    return;
                };
                row.col(|ui| {
                    ui.label(&tr.url);
                });
                row.col(|ui| {
                    ui.label((tr.tier + 1).to_string());
                });
                row.col(|ui| {
                    ui.label(&tr.status).on_hover_text(&tr.status);
                });
                let count = |n: Option<u32>| n.map_or("—".into(), |n| n.to_string());
                row.col(|ui| {
                    ui.label(count(tr.seeders));
                });
                row.col(|ui| {
                    ui.label(count(tr.leechers));
                });
                row.col(|ui| {
                    ui.label(ago(tr.last_announce));
                });
                row.col(|ui| {
                    ui.label(until(tr.next_announce));
                });
            });
        });
}
