//! Peers tab: every connection with its client, transport, flags, rates and progress.

use egui_extras::{Column, TableBuilder};

use crate::engine::TorrentSnapshot;
use crate::units;

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) {
    if t.peers.is_empty() {
        ui.weak("No peers connected.");
        return;
    }
    TableBuilder::new(ui)
        .id_salt("peers")
        .striped(true)
        .resizable(true)
        .column(Column::initial(230.0))
        .column(Column::initial(150.0))
        .columns(Column::auto().at_least(60.0), 5)
        .header(20.0, |mut h| {
            for title in [
                "Address",
                "Client",
                "Transport",
                "Flags",
                "Down",
                "Up",
                "Progress",
            ] {
                h.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(20.0, t.peers.len(), |mut row| {
                let Some(p) = t.peers.get(row.index()) else {
                    return;
                };
                row.col(|ui| {
                    ui.label(p.addr.to_string());
                });
                row.col(|ui| {
                    ui.label(&p.client);
                });
                row.col(|ui| {
                    ui.label(if p.utp { "uTP" } else { "TCP" });
                });
                row.col(|ui| {
                    ui.monospace(&p.flags).on_hover_text(
                        "D downloading, d we want to, U uploading, u they want to, I incoming, \
                         E encrypted, P uTP",
                    );
                });
                row.col(|ui| {
                    ui.label(units::rate(p.down_rate));
                });
                row.col(|ui| {
                    ui.label(units::rate(p.up_rate));
                });
                row.col(|ui| {
                    ui.label(format!("{:.0}%", p.progress * 100.0));
                });
            });
        });
}
