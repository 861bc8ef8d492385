//! Health tab: what the swarm doctor found about the torrent, most important first, each
//! finding with the facts it rests on.

use crate::engine::{Severity, TorrentSnapshot};

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) {
    if t.findings.is_empty() {
        ui.label("Nothing holds this torrent back.");
        ui.weak(
            "Rivulet looks at its trackers, peers, pieces, limits, disk and incoming \
             connections, and says here what stands in the way.",
        );
        return;
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for finding in &t.findings {
                let (badge, color) = match finding.severity {
                    Severity::Error => ("Error", ui.visuals().error_fg_color),
                    Severity::Warning => ("Warning", ui.visuals().warn_fg_color),
                    Severity::Info => ("Info", ui.visuals().weak_text_color()),
                };
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(color, egui::RichText::new(badge).strong());
                    ui.label(egui::RichText::new(&finding.message).strong());
                });
                ui.indent(finding.message.as_str(), |ui| {
                    for fact in &finding.evidence {
                        ui.label(format!("• {fact}"));
                    }
                });
                ui.add_space(6.0);
            }
        });
}
