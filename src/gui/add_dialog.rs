//! Adding torrents: files are read and parsed on a helper thread, then a dialog shows each one
//! (name, size, files) and asks where to save it and whether to start paused. A magnet link
//! added to be confirmed comes here too once its metadata is in; its row is in the list
//! already, and cancelling removes it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::engine::{AddSource, AddTorrent};
use crate::ids::InfoHash;
use crate::metainfo::{Metainfo, TorrentFileError, read_torrent_file};
use crate::units;

use super::notices::Notices;
use super::platform::Desktop;
use super::settings::Settings;

/// Files listed in the dialog before "and N more".
const FILES_SHOWN: usize = 200;

/// A torrent ready to be added.
pub struct Loaded {
    pub bytes: Vec<u8>,
    pub meta: Metainfo,
    /// It comes from a magnet link whose row is in the list.
    pub magnet: bool,
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
                    Ok((bytes, meta)) => LoadResult::Ok(Box::new(Loaded {
                        bytes,
                        meta,
                        magnet: false,
                    })),
                    Err(error) => LoadResult::Err { source, error },
                });
            }
        });
    }

    /// A magnet link's metadata is in: parsed on a helper thread, then shown like a file.
    pub fn confirm_magnet(&mut self, torrent: Arc<Vec<u8>>) {
        let tx = self.results_tx.clone();
        self.loading += 1;
        std::thread::spawn(move || {
            let bytes = torrent.as_ref().clone();
            let _ = tx.send(match Metainfo::from_bytes(&bytes) {
                Ok(meta) => LoadResult::Ok(Box::new(Loaded {
                    bytes,
                    meta,
                    magnet: true,
                })),
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
                            source: AddSource::Bytes(loaded.bytes),
                            save_dir: settings.save_dir(),
                            paused: settings.start_paused,
                            seed: settings.seed_when_done,
                            plan: Default::default(),
                        });
                        continue;
                    }
                    if self.queue.is_empty() && !self.open {
                        self.save_dir = settings.save_dir().display().to_string();
                        self.start_paused = settings.start_paused;
                        self.seed_when_done = settings.seed_when_done;
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
            let Some(first) = self.queue.front() else {
                return;
            };
            let meta = &first.meta;
            ui.heading("Add torrent");
            if self.queue.len() > 1 {
                ui.label(format!("1 of {}", self.queue.len()));
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
            egui::ScrollArea::vertical()
                .max_height(160.0)
                .show(ui, |ui| {
                    for f in meta.visible_files().take(FILES_SHOWN) {
                        ui.horizontal(|ui| {
                            ui.label(f.path.display().to_string());
                            ui.with_layout(
                                egui::Layout::right_to_left(egui::Align::Center),
                                |ui| {
                                    ui.weak(units::bytes(f.length));
                                },
                            );
                        });
                    }
                    let count = meta.visible_files().count();
                    if count > FILES_SHOWN {
                        ui.weak(format!("and {} more", count - FILES_SHOWN));
                    }
                });
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
                source: AddSource::Bytes(loaded.bytes),
                save_dir: save_dir.to_path_buf(),
                paused: self.start_paused,
                seed: self.seed_when_done,
                plan: Default::default(),
            })
            .collect();
        Some(AddChoice {
            add,
            save_dir: Some(save_dir.to_path_buf()),
            declined: Vec::new(),
        })
    }
}

impl Default for AddDialog {
    fn default() -> Self {
        Self::new()
    }
}
