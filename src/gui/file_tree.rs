//! A torrent's files as a folder tree (collapsible folders, files by name), drawn with rows
//! the caller fills in: the add dialog puts checkboxes in them, the Files tab progress and
//! priorities. Each folder knows every file below it, so one click can act on all of them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::FilePriority;

#[derive(Default)]
struct Folder {
    folders: BTreeMap<String, Folder>,
    /// Files directly in this folder: (number, name).
    files: Vec<(usize, String)>,
    /// Every file below, in any folder.
    all: Vec<usize>,
}

/// A tree of files numbered 0, 1, … in the order they were given.
pub struct FileTree {
    root: Folder,
}

impl FileTree {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut root = Folder::default();
        for (i, path) in paths.into_iter().enumerate() {
            let parts: Vec<String> = path
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let Some((name, dirs)) = parts.split_last() else {
                continue;
            };
            let mut folder = &mut root;
            folder.all.push(i);
            for dir in dirs {
                folder = folder.folders.entry(dir.clone()).or_default();
                folder.all.push(i);
            }
            folder.files.push((i, name.clone()));
        }
        Self { root }
    }

    /// Draws the tree. `folder_row` draws a folder's header (its path in the tree, and every
    /// file below it); `file_row` a file's row (its number and name).
    pub fn show(
        &self,
        ui: &mut egui::Ui,
        folder_row: &mut dyn FnMut(&mut egui::Ui, &Path, &[usize]),
        file_row: &mut dyn FnMut(&mut egui::Ui, usize, &str),
    ) {
        show_folder(ui, &self.root, Path::new(""), folder_row, file_row);
    }
}

fn show_folder(
    ui: &mut egui::Ui,
    folder: &Folder,
    path: &Path,
    folder_row: &mut dyn FnMut(&mut egui::Ui, &Path, &[usize]),
    file_row: &mut dyn FnMut(&mut egui::Ui, usize, &str),
) {
    for (name, sub) in &folder.folders {
        let path = path.join(name);
        let id = ui.make_persistent_id(("file-tree", &path));
        egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, true)
            .show_header(ui, |ui| folder_row(ui, &path, &sub.all))
            .body(|ui| show_folder(ui, sub, &path, folder_row, file_row));
    }
    for (i, name) in &folder.files {
        ui.horizontal(|ui| file_row(ui, *i, name));
    }
}

/// The four priorities as menu entries; the one chosen, if any.
pub fn priority_menu(ui: &mut egui::Ui, current: Option<FilePriority>) -> Option<FilePriority> {
    let mut chosen = None;
    for priority in FilePriority::ALL {
        let label = match priority {
            FilePriority::Skip => "Do not download",
            other => other.label(),
        };
        if ui
            .add(egui::Button::selectable(current == Some(priority), label))
            .clicked()
        {
            chosen = Some(priority);
            ui.close();
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_know_every_file_below_them() {
        let paths = [
            "show/s1/e1.mkv",
            "show/s1/e2.mkv",
            "show/notes.txt",
            "extra.nfo",
        ];
        let tree = FileTree::new(paths.iter().map(Path::new));
        assert_eq!(tree.root.all, vec![0, 1, 2, 3]);
        let show = &tree.root.folders["show"];
        assert_eq!(show.all, vec![0, 1, 2]);
        assert_eq!(show.files, vec![(2, "notes.txt".to_string())]);
        assert_eq!(show.folders["s1"].all, vec![0, 1]);
        assert_eq!(tree.root.files, vec![(3, "extra.nfo".to_string())]);
    }
}
