//! Files tab: the torrent's folder tree with each file's size and progress.

use std::collections::BTreeMap;

use crate::engine::{FileProgress, TorrentSnapshot};
use crate::units;

/// A folder of the tree: sub-folders and the indices of its files.
#[derive(Default)]
struct Folder<'a> {
    folders: BTreeMap<String, Folder<'a>>,
    files: Vec<&'a FileProgress>,
}

impl<'a> Folder<'a> {
    fn totals(&self) -> (u64, u64) {
        let mut total = self
            .files
            .iter()
            .fold((0, 0), |(l, v), f| (l + f.length, v + f.verified_bytes));
        for sub in self.folders.values() {
            let (l, v) = sub.totals();
            total.0 += l;
            total.1 += v;
        }
        total
    }
}

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) {
    let mut root = Folder::default();
    for file in &t.files {
        let parts: Vec<String> = file
            .path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut folder = &mut root;
        for dir in parts.iter().take(parts.len().saturating_sub(1)) {
            folder = folder.folders.entry(dir.clone()).or_default();
        }
        folder.files.push(file);
    }
    egui::ScrollArea::vertical().show(ui, |ui| folder_ui(ui, &root, ""));
}

fn folder_ui(ui: &mut egui::Ui, folder: &Folder<'_>, path: &str) {
    for (name, sub) in &folder.folders {
        let (length, verified) = sub.totals();
        let id = format!("{path}/{name}");
        egui::CollapsingHeader::new(format!("📁 {name}  ({})", progress_text(length, verified)))
            .id_salt(&id)
            .default_open(true)
            .show(ui, |ui| folder_ui(ui, sub, &id));
    }
    for file in &folder.files {
        ui.horizontal(|ui| {
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let fraction = if file.length == 0 {
                1.0
            } else {
                file.verified_bytes as f32 / file.length as f32
            };
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(90.0)
                    .text(format!("{:.0}%", fraction * 100.0)),
            );
            ui.label(units::bytes(file.length));
            ui.label(name);
        });
    }
}

fn progress_text(length: u64, verified: u64) -> String {
    let pct = if length == 0 {
        100.0
    } else {
        verified as f64 * 100.0 / length as f64
    };
    format!("{}, {pct:.0}%", units::bytes(length))
}
