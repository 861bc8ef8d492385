//! The confirmation before removing torrents: keep the files, or delete them too.

use crate::engine::Command;
use crate::ids::InfoHash;

pub struct RemoveDialog {
    ids: Vec<InfoHash>,
    names: Vec<String>,
}

impl RemoveDialog {
    pub fn new(ids: Vec<InfoHash>, names: Vec<String>) -> Self {
        Self { ids, names }
    }

    /// Shows the dialog. Returns `None` while it stays open, `Some(commands)` once answered
    /// (empty when cancelled).
    pub fn ui(&self, ctx: &egui::Context) -> Option<Vec<Command>> {
        let mut answer = None;
        let modal = egui::Modal::new(egui::Id::unique("remove-torrents")).show(ctx, |ui| {
            ui.set_width(420.0);
            ui.heading(if self.ids.len() == 1 {
                "Remove torrent?".to_string()
            } else {
                format!("Remove {} torrents?", self.ids.len())
            });
            for name in self.names.iter().take(8) {
                ui.label(format!("• {name}"));
            }
            if self.names.len() > 8 {
                ui.weak(format!("and {} more", self.names.len() - 8));
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                let remove = |delete_data| {
                    self.ids
                        .iter()
                        .map(|&id| Command::Remove { id, delete_data })
                        .collect()
                };
                if ui.button("Remove, keep files").clicked() {
                    answer = Some(remove(false));
                }
                if ui.button("Remove and delete files").clicked() {
                    answer = Some(remove(true));
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(Vec::new());
                }
            });
        });
        if modal.should_close() && answer.is_none() {
            answer = Some(Vec::new());
        }
        answer
    }
}
