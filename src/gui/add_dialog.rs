//! Adding torrents: files are read and parsed on a helper thread, then a dialog shows each one
//! (name, size, its files as a tree with a checkbox each, select all / none) and asks where
//! to save it, whether to start paused, and in which order to download. A magnet link
//! added to be confirmed comes here too once its metadata is in; its row is in the list
//! already, and cancelling removes it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use std::ops::RangeInclusive;

use crate::engine::{AddSource, AddTorrent, DownloadPlan, FilePriority};
use crate::ids::InfoHash;
use crate::metainfo::{Metainfo, TorrentFileError, read_torrent_file};
use crate::units;

use super::file_tree::FileTree;
use super::notices::Notices;
use super::platform::Desktop;
use super::settings::Settings;

/// A torrent ready to be added.
pub struct Loaded {
    pub bytes: Vec<u8>,
    pub meta: Metainfo,
    /// It comes from a magnet link whose row is in the list.
    pub magnet: bool,
    /// Whether each file (as users see them) is to be downloaded.
    pub wanted: Vec<bool>,
}

impl Loaded {
    fn new(
        bytes: Vec<u8>,
        meta: Metainfo,
        magnet: bool,
        select_only: Option<&[RangeInclusive<u32>]>,
    ) -> Self {
        let count = meta.visible_files().count();
        let wanted = match select_only {
            Some(ranges) => DownloadPlan::selected(&meta, ranges)
                .priorities
                .iter()
                .map(|&p| p != FilePriority::Skip)
                .collect(),
            None => vec![true; count],
        };
        Self {
            bytes,
            meta,
            magnet,
            wanted,
        }
    }

    fn plan(&self, sequential: bool, first_last_first: bool) -> DownloadPlan {
        let priorities = if self.wanted.iter().all(|&w| w) {
            Vec::new()
        } else {
            self.wanted
                .iter()
                .map(|&w| {
                    if w {
                        FilePriority::Normal
                    } else {
                        FilePriority::Skip
                    }
                })
                .collect()
        };
        DownloadPlan {
            priorities,
            sequential,
            first_last_first,
        }
    }
}

enum LoadResult {
    Ok(Box<Loaded>),
    Err {
        source: String,
        error: TorrentFileError,
    },
}

/// What the user decided in the dialog.
#[derive(Default)]
pub struct AddChoice {
    pub add: Vec<AddTorrent>,
    /// The folder chosen, when torrents are added.
    pub save_dir: Option<PathBuf>,
    /// Magnet links whose torrent the user turned down: their rows go.
    pub declined: Vec<InfoHash>,
}

pub struct AddDialog {
    results_tx: Sender<LoadResult>,
    results: Receiver<LoadResult>,
    queue: VecDeque<Loaded>,
    save_dir: String,
    start_paused: bool,
    seed_when_done: bool,
    sequential: bool,
    first_last_first: bool,
    folder_reply: Option<Receiver<Option<PathBuf>>>,
    open: bool,
    /// Files still being read on the helper thread.
    loading: usize,
}

impl AddDialog {
    pub fn new() -> Self {
        let (results_tx, results) = channel();
        Self {
            results_tx,
            results,
            queue: VecDeque::new(),
            save_dir: String::new(),
            start_paused: false,
            seed_when_done: true,
            sequential: false,
            first_last_first: false,
            folder_reply: None,
            open: false,
            loading: 0,
        }
    }

    /// Reads and parses .torrent files on a helper thread.
    pub fn load_paths(&mut self, paths: Vec<PathBuf>) {
        let tx = self.results_tx.clone();
        self.loading += paths.len();
        std::thread::spawn(move || {
            for path in paths {
                let source = path.display().to_string();
                let _ = tx.send(match read_torrent_file(&path) {
                    Ok((bytes, meta)) => {
                        LoadResult::Ok(Box::new(Loaded::new(bytes, meta, false, None)))
                    }
                    Err(error) => LoadResult::Err { source, error },
                });
            }
        });
    }

    /// A magnet link's metadata is in: parsed on a helper thread, then shown like a file,
    /// with the files its BEP 53 `so` names (if any) selected.
    pub fn confirm_magnet(
        &mut self,
        torrent: Arc<Vec<u8>>,
        select_only: Option<Vec<RangeInclusive<u32>>>,
    ) {
        let tx = self.results_tx.clone();
        self.loading += 1;
        std::thread::spawn(move || {
            let bytes = torrent.as_ref().clone();
            let _ = tx.send(match Metainfo::from_bytes(&bytes) {
                Ok(meta) => LoadResult::Ok(Box::new(Loaded::new(
                    bytes,
                    meta,
                    true,
                    select_only.as_deref(),
                ))),
                Err(e) => LoadResult::Err {
                    source: "the magnet link's metadata".into(),
                    error: TorrentFileError::Invalid(e),
                },
            });
        });
    }

    /// Takes parsed torrents off the helper threads; reports invalid files and duplicates.
    /// They wait in the dialog, or when the settings say not to ask, are returned to be added
    /// at once with the defaults.
    pub fn poll(
        &mut self,
        known: impl Fn(InfoHash) -> bool,
        notices: &mut Notices,
        settings: &Settings,
    ) -> Vec<AddTorrent> {
        let mut at_once = Vec::new();
        while let Ok(result) = self.results.try_recv() {
            self.loading = self.loading.saturating_sub(1);
            match result {
                LoadResult::Err { source, error } => {
                    notices.error(format!("Cannot add {source}: {error}"))
                }
                LoadResult::Ok(loaded) => {
                    let id = loaded.meta.info_hash;
                    let listed = !loaded.magnet && known(id);
                    if listed || self.queue.iter().any(|q| q.meta.info_hash == id) {
                        notices.info(format!("\"{}\" is already in the list", loaded.meta.name));
                        continue;
                    }
                    if !settings.ask_before_adding {
                        at_once.push(AddTorrent {
                            plan: loaded.plan(false, false),
                            source: AddSource::Bytes(loaded.bytes),
                            save_dir: settings.save_dir(),
                            paused: settings.start_paused,
                            seed: settings.seed_when_done,
                        });
                        continue;
                    }
                    if self.queue.is_empty() && !self.open {
                        self.save_dir = settings.save_dir().display().to_string();
                        self.start_paused = settings.start_paused;
                        self.seed_when_done = settings.seed_when_done;
                        self.sequential = false;
                        self.first_last_first = false;
                    }
                    self.queue.push_back(*loaded);
                    self.open = true;
                }
            }
        }
        at_once
    }

    /// Whether an answer from a helper thread is awaited (the UI should look again soon).
    pub fn waiting(&self) -> bool {
        self.loading > 0 || self.folder_reply.is_some()
    }

    pub fn is_open(&self) -> bool {
        self.open && !self.queue.is_empty()
    }

    /// Shows the dialog for the first waiting torrent.
    pub fn ui(&mut self, ctx: &egui::Context, desktop: &dyn Desktop) -> Option<AddChoice> {
        if let Some(reply) = &self.folder_reply
            && let Ok(answer) = reply.try_recv()
        {
            if let Some(folder) = answer {
                self.save_dir = folder.display().to_string();
            }
            self.folder_reply = None;
        }
        if !self.is_open() {
            self.open = false;
            return None;
        }
        let mut choice = None;
        let modal = egui::Modal::new(egui::Id::unique("add-torrent")).show(ctx, |ui| {
            ui.set_width(520.0);
            let queued = self.queue.len();
            let Some(first) = self.queue.front_mut() else {
                return;
            };
            let meta = &first.meta;
            ui.heading("Add torrent");
            if queued > 1 {
                ui.label(format!("1 of {queued}"));
            }
            egui::Grid::new("add-summary")
                .num_columns(2)
                .show(ui, |ui| {
                    ui.label("Name");
                    ui.strong(&meta.name);
                    ui.end_row();
                    ui.label("Size");
                    ui.label(format!(
                        "{} in {} file(s)",
                        units::bytes(meta.content_length()),
                        meta.visible_files().count()
                    ));
                    ui.end_row();
                    ui.label("Info hash");
                    ui.monospace(meta.info_hash.to_hex());
                    ui.end_row();
                });
            files_ui(ui, meta, &mut first.wanted);
            ui.separator();
            ui.horizontal(|ui| {
                let label = ui.label("Save to");
                ui.add(egui::TextEdit::singleline(&mut self.save_dir).desired_width(330.0))
                    .labelled_by(label.id);
                if ui.button("Browse…").clicked() {
                    let (tx, rx) = channel();
                    desktop.pick_folder(std::path::Path::new(&self.save_dir), tx);
                    self.folder_reply = Some(rx);
                }
            });
            ui.checkbox(&mut self.start_paused, "Start paused");
            ui.checkbox(&mut self.seed_when_done, "Seed when done");
            ui.checkbox(&mut self.sequential, "Download in sequential order")
                .on_hover_text("Pieces in order, to play a file while it downloads");
            ui.checkbox(&mut self.first_last_first, "First and last pieces first")
                .on_hover_text("The start and end of each file first, for previews");
            ui.horizontal(|ui| {
                let save_dir = PathBuf::from(self.save_dir.trim());
                let valid = !self.save_dir.trim().is_empty();
                let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
                let add = ui
                    .add_enabled(valid, egui::Button::new("Add"))
                    .on_hover_text("Enter");
                if add.clicked() || (valid && enter && self.queue.len() == 1) {
                    choice = self.take(1, &save_dir);
                }
                if self.queue.len() > 1 {
                    let all = ui
                        .add_enabled(valid, egui::Button::new("Add all"))
                        .on_hover_text("Enter");
                    if all.clicked() || (valid && enter) {
                        choice = self.take(self.queue.len(), &save_dir);
                    }
                }
                if ui.button("Cancel").clicked() {
                    choice = self.decline(1);
                }
            });
        });
        if modal.should_close() {
            choice = self.decline(self.queue.len());
        }
        choice
    }

    /// Drops the first `count` torrents; those from magnet links are declined.
    fn decline(&mut self, count: usize) -> Option<AddChoice> {
        let declined = self
            .queue
            .drain(..count.min(self.queue.len()))
            .filter(|loaded| loaded.magnet)
            .map(|loaded| loaded.meta.info_hash)
            .collect();
        Some(AddChoice {
            declined,
            ..AddChoice::default()
        })
    }

    fn take(&mut self, count: usize, save_dir: &std::path::Path) -> Option<AddChoice> {
        let add = self
            .queue
            .drain(..count.min(self.queue.len()))
            .map(|loaded| AddTorrent {
                plan: loaded.plan(self.sequential, self.first_last_first),
                source: AddSource::Bytes(loaded.bytes),
                save_dir: save_dir.to_path_buf(),
                paused: self.start_paused,
                seed: self.seed_when_done,
            })
            .collect();
        Some(AddChoice {
            add,
            save_dir: Some(save_dir.to_path_buf()),
            declined: Vec::new(),
        })
    }
}

/// The torrent's files as a tree with a checkbox each (a folder's checks every file below
/// it), select all / none, and the size chosen.
fn files_ui(ui: &mut egui::Ui, meta: &Metainfo, wanted: &mut [bool]) {
    let files: Vec<&crate::metainfo::FileEntry> = meta.visible_files().collect();
    let chosen: u64 = files
        .iter()
        .zip(wanted.iter())
        .filter(|(_, w)| **w)
        .map(|(f, _)| f.length)
        .sum();
    ui.horizontal(|ui| {
        if ui.button("Select all").clicked() {
            wanted.fill(true);
        }
        if ui.button("Select none").clicked() {
            wanted.fill(false);
        }
        ui.weak(format!(
            "{} of {} chosen",
            units::bytes(chosen),
            units::bytes(meta.content_length())
        ));
    });
    let tree = FileTree::new(files.iter().map(|f| f.path.as_path()));
    egui::ScrollArea::vertical()
        .max_height(200.0)
        .show(ui, |ui| {
            let cell = std::cell::RefCell::new(wanted);
            tree.show(
                ui,
                &mut |ui, path, inside| {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    let mut wanted = cell.borrow_mut();
                    let all = inside
                        .iter()
                        .all(|&i| wanted.get(i).copied().unwrap_or(false));
                    let any = inside
                        .iter()
                        .any(|&i| wanted.get(i).copied().unwrap_or(false));
                    let mut on = all;
                    let checkbox =
                        egui::Checkbox::new(&mut on, format!("{name}/")).indeterminate(any && !all);
                    if ui.add(checkbox).changed() {
                        for &i in inside {
                            if let Some(w) = wanted.get_mut(i) {
                                *w = on;
                            }
                        }
                    }
                },
                &mut |ui, i, name| {
                    let mut wanted = cell.borrow_mut();
                    if let Some(w) = wanted.get_mut(i) {
                        ui.checkbox(w, name);
                    }
                    if let Some(f) = files.get(i) {
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            ui.weak(units::bytes(f.length));
                        });
                    }
                },
            );
        });
}

impl Default for AddDialog {
    fn default() -> Self {
        Self::new()
    }
}
