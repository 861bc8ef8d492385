//! Files tab: the torrent's folder tree with each file's progress, size and priority. The
//! priority button, or a right click on a file or folder, sets the priority (a folder's applies
//! to every file below it); the right click also opens the folder in the file manager.

use std::cell::RefCell;
use std::path::PathBuf;

use super::DetailsAction;
use crate::engine::{Command, FilePriority, TorrentSnapshot};
use crate::gui::file_tree::{FileTree, priority_menu};
use crate::units;

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) -> Option<DetailsAction> {
    let tree = FileTree::new(t.files.iter().map(|f| f.path.as_path()));
    let chosen: RefCell<Option<(Vec<usize>, FilePriority)>> = RefCell::new(None);
    let open: RefCell<Option<PathBuf>> = RefCell::new(None);
    egui::ScrollArea::vertical().show(ui, |ui| {
        tree.show(
            ui,
            &mut |ui, path, files| {
                let (length, verified) = files
                    .iter()
                    .filter_map(|&i| t.files.get(i))
                    .fold((0, 0), |(l, v), f| (l + f.length, v + f.verified_bytes));
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                let label = ui.label(format!("{name}/  ({})", progress_text(length, verified)));
                label.context_menu(|ui| {
                    if let Some(p) = priority_menu(ui, common_priority(t, files)) {
                        *chosen.borrow_mut() = Some((files.to_vec(), p));
                    }
                    ui.separator();
                    if ui.button("Open folder").clicked() {
                        *open.borrow_mut() = Some(t.save_dir.join(path));
                        ui.close();
                    }
                });
            },
            &mut |ui, i, name| {
                let Some(file) = t.files.get(i) else {
                    return;
                };
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
                ui.add_sized([70.0, 18.0], egui::Label::new(units::bytes(file.length)));
                ui.menu_button(file.priority.label(), |ui| {
                    if let Some(p) = priority_menu(ui, Some(file.priority)) {
                        *chosen.borrow_mut() = Some((vec![i], p));
                    }
                })
                .response
                .on_hover_text("Priority");
                let label = if file.priority == FilePriority::Skip {
                    ui.weak(name)
                } else {
                    ui.label(name)
                };
                label.context_menu(|ui| {
                    if let Some(p) = priority_menu(ui, Some(file.priority)) {
                        *chosen.borrow_mut() = Some((vec![i], p));
                    }
                    ui.separator();
                    if ui.button("Open containing folder").clicked() {
                        let path = t.save_dir.join(&file.path);
                        *open.borrow_mut() = path.parent().map(PathBuf::from);
                        ui.close();
                    }
                });
            },
        );
    });
    if let Some(folder) = open.into_inner() {
        return Some(DetailsAction::OpenFolder(folder));
    }
    chosen.into_inner().map(|(files, priority)| {
        DetailsAction::Engine(Command::SetFilePriority {
            id: t.id,
            files,
            priority,
        })
    })
}

/// The priority every one of `files` has, if they agree.
fn common_priority(t: &TorrentSnapshot, files: &[usize]) -> Option<FilePriority> {
    let mut priorities = files
        .iter()
        .filter_map(|&i| t.files.get(i))
        .map(|f| f.priority);
    let first = priorities.next()?;
    priorities.all(|p| p == first).then_some(first)
}

fn progress_text(length: u64, verified: u64) -> String {
    let pct = if length == 0 {
        100.0
    } else {
        verified as f64 * 100.0 / length as f64
    };
    format!("{}, {pct:.0}%", units::bytes(length))
}
