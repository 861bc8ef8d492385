//! "Create torrent…": choose a file or folder, trackers (Rivulet's own with one tick), piece
//! size, private flag and comment; the engine hashes it (progress and cancel here), saves the
//! .torrent and starts seeding it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};

use crate::create::CreateOptions;
use crate::engine::{CreateTorrent, CreationSnapshot, validate_tracker_url};
use crate::units;

use super::platform::Desktop;
use super::settings::Settings;

/// Piece sizes offered besides "Auto".
const PIECE_SIZES: [u64; 11] = [
    16 << 10,
    32 << 10,
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
    8 << 20,
    16 << 20,
];

/// What the dialog asks of the app.
#[derive(Debug)]
pub enum CreateAction {
    /// Send this to the engine; turn on Rivulet's tracker first if `start_tracker`.
    Start {
        request: CreateTorrent,
        start_tracker: bool,
    },
    /// Stop hashing this job and close.
    Cancel(u64),
    Close,
}

pub struct CreateDialog {
    source: String,
    output: String,
    /// The user typed or chose the output: stop deriving it from the source.
    output_chosen: bool,
    trackers: String,
    own_tracker: bool,
    piece_length: Option<u64>,
    private: bool,
    comment: String,
    seed: bool,
    error: Option<String>,
    /// The engine job hashing now.
    running: Option<u64>,
    source_reply: Option<Receiver<Option<PathBuf>>>,
    output_reply: Option<Receiver<Option<PathBuf>>>,
}

impl CreateDialog {
    /// A dialog for `source` (from a drop), or empty (from the toolbar).
    pub fn new(source: Option<PathBuf>, settings: &Settings) -> Self {
        let mut dialog = Self {
            source: String::new(),
            output: String::new(),
            output_chosen: false,
            trackers: String::new(),
            own_tracker: settings.tracker_enabled,
            piece_length: None,
            private: false,
            comment: String::new(),
            seed: true,
            error: None,
            running: None,
            source_reply: None,
            output_reply: None,
        };
        if let Some(source) = source {
            dialog.set_source(&source);
        }
        dialog
    }

    fn set_source(&mut self, source: &Path) {
        self.source = source.display().to_string();
        if !self.output_chosen {
            self.output = suggested_output(source).display().to_string();
        }
    }

    pub fn running(&self) -> Option<u64> {
        self.running
    }

    /// The engine could not create it: say why and let the user try again.
    pub fn failed(&mut self, message: String) {
        self.running = None;
        self.error = Some(message);
    }

    /// Whether a native dialog's answer is awaited (the app keeps repainting meanwhile).
    pub fn waiting(&self) -> bool {
        self.source_reply.is_some() || self.output_reply.is_some() || self.running.is_some()
    }

    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        desktop: &dyn Desktop,
        settings: &Settings,
        creating: &[CreationSnapshot],
        next_job: u64,
    ) -> Option<CreateAction> {
        self.poll_replies();
        let mut action = None;
        let modal = egui::Modal::new(egui::Id::unique("create-torrent")).show(ctx, |ui| {
            ui.set_width(600.0);
            ui.heading("Create torrent");
            if let Some(job) = self.running {
                action = progress_ui(ui, job, creating);
                return;
            }
            self.form_ui(ui, desktop, settings);
            if let Some(error) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
            ui.horizontal(|ui| {
                if ui.button("Create").clicked() {
                    match self.request(settings, next_job) {
                        Ok(request) => {
                            self.error = None;
                            self.running = Some(next_job);
                            action = Some(CreateAction::Start {
                                request,
                                start_tracker: self.own_tracker && !settings.tracker_enabled,
                            });
                        }
                        Err(message) => self.error = Some(message),
                    }
                }
                if ui.button("Cancel").clicked() {
                    action = Some(CreateAction::Close);
                }
            });
        });
        if modal.should_close() && action.is_none() {
            action = Some(match self.running {
                Some(job) => CreateAction::Cancel(job),
                None => CreateAction::Close,
            });
        }
        action
    }

    fn poll_replies(&mut self) {
        if let Some(reply) = &self.source_reply
            && let Ok(answer) = reply.try_recv()
        {
            self.source_reply = None;
            if let Some(source) = answer {
                self.set_source(&source);
            }
        }
        if let Some(reply) = &self.output_reply
            && let Ok(answer) = reply.try_recv()
        {
            self.output_reply = None;
            if let Some(output) = answer {
                self.output = output.display().to_string();
                self.output_chosen = true;
            }
        }
    }

    fn form_ui(&mut self, ui: &mut egui::Ui, desktop: &dyn Desktop, settings: &Settings) {
        egui::Grid::new("create-grid")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                let label = ui.label("Share");
                ui.horizontal(|ui| {
                    ui.add(egui::TextEdit::singleline(&mut self.source).desired_width(300.0))
                        .labelled_by(label.id);
                    for (text, folder) in [("File…", false), ("Folder…", true)] {
                        if ui.button(text).clicked() {
                            let (tx, rx) = channel();
                            desktop.pick_source(folder, tx);
                            self.source_reply = Some(rx);
                        }
                    }
                });
                ui.end_row();

                let label = ui.label("Save .torrent as");
                ui.horizontal(|ui| {
                    let edit = ui
                        .add(egui::TextEdit::singleline(&mut self.output).desired_width(300.0))
                        .labelled_by(label.id);
                    if edit.changed() {
                        self.output_chosen = true;
                    }
                    if ui.button("Save as…").clicked() {
                        let (tx, rx) = channel();
                        desktop.save_torrent_as(Path::new(&self.output), tx);
                        self.output_reply = Some(rx);
                    }
                });
                ui.end_row();

                ui.label("Trackers");
                ui.vertical(|ui| {
                    ui.checkbox(
                        &mut self.own_tracker,
                        format!("Rivulet's own tracker ({})", settings.own_tracker_url()),
                    )
                    .on_hover_text("Turns Rivulet's tracker on if it is off");
                    ui.add(
                        egui::TextEdit::multiline(&mut self.trackers)
                            .hint_text("More tracker URLs, one per line")
                            .desired_rows(3)
                            .desired_width(320.0),
                    );
                });
                ui.end_row();

                let label = ui.label("Piece size");
                let shown = self.piece_length.map_or("Auto".into(), units::bytes);
                egui::ComboBox::from_id_salt("piece-size")
                    .selected_text(shown)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.piece_length, None, "Auto");
                        for size in PIECE_SIZES {
                            ui.selectable_value(
                                &mut self.piece_length,
                                Some(size),
                                units::bytes(size),
                            );
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();

                let label = ui.label("Comment");
                ui.add(egui::TextEdit::singleline(&mut self.comment).desired_width(320.0))
                    .labelled_by(label.id);
                ui.end_row();
            });
        ui.checkbox(
            &mut self.private,
            "Private (trackers only: no DHT or peer exchange)",
        );
        ui.checkbox(&mut self.seed, "Start seeding when done");
    }

    /// The engine request for what the form says, or what is wrong with it.
    fn request(&self, settings: &Settings, job: u64) -> Result<CreateTorrent, String> {
        let source = self.source.trim();
        if source.is_empty() {
            return Err("Choose a file or folder to share.".into());
        }
        let mut output = PathBuf::from(self.output.trim());
        if output.as_os_str().is_empty() {
            return Err("Choose where to save the .torrent.".into());
        }
        if output.extension().is_none_or(|e| e != "torrent") {
            output.as_mut_os_string().push(".torrent");
        }
        let mut trackers = Vec::new();
        if self.own_tracker {
            trackers.push(settings.own_tracker_url());
        }
        for line in self
            .trackers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            validate_tracker_url(line).map_err(|e| format!("{line}: {e}"))?;
            if !trackers.iter().any(|t| t == line) {
                trackers.push(line.to_string());
            }
        }
        let comment = self.comment.trim();
        Ok(CreateTorrent {
            job,
            source: source.into(),
            output,
            options: CreateOptions {
                trackers,
                piece_length: self.piece_length,
                private: self.private,
                comment: (!comment.is_empty()).then(|| comment.to_string()),
            },
            seed: self.seed,
        })
    }
}

/// The hashing progress of `job`, with a Cancel button.
fn progress_ui(ui: &mut egui::Ui, job: u64, creating: &[CreationSnapshot]) -> Option<CreateAction> {
    let (hashed, total) = creating
        .iter()
        .find(|c| c.job == job)
        .map_or((0, 0), |c| (c.hashed, c.total));
    let fraction = if total > 0 {
        hashed as f32 / total as f32
    } else {
        0.0
    };
    ui.label(if total > 0 {
        format!(
            "Hashing: {} of {}",
            units::bytes(hashed),
            units::bytes(total)
        )
    } else {
        "Listing files…".into()
    });
    ui.add(egui::ProgressBar::new(fraction).show_percentage());
    ui.button("Cancel")
        .clicked()
        .then_some(CreateAction::Cancel(job))
}

/// `…/name` → `…/name.torrent`, beside what is shared.
fn suggested_output(source: &Path) -> PathBuf {
    let name = source
        .file_name()
        .map_or_else(|| "new".into(), |n| n.to_string_lossy().into_owned());
    source.with_file_name(format!("{name}.torrent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_beside_the_source() {
        assert_eq!(
            suggested_output(Path::new("/data/photos")),
            PathBuf::from("/data/photos.torrent")
        );
        assert_eq!(
            suggested_output(Path::new("/data/a.iso")),
            PathBuf::from("/data/a.iso.torrent")
        );
    }

    #[test]
    fn requests_check_the_form() {
        let settings = Settings {
            tracker_host: "10.0.0.2".into(),
            ..Settings::default()
        };
        let mut dialog = CreateDialog::new(None, &settings);
        assert!(
            dialog
                .request(&settings, 1)
                .unwrap_err()
                .contains("Choose a file")
        );
        dialog.set_source(Path::new("/data/photos"));
        dialog.own_tracker = true;
        dialog.trackers = "udp://t.example:80/announce\n\nnot a url".into();
        assert!(
            dialog
                .request(&settings, 1)
                .unwrap_err()
                .starts_with("not a url")
        );
        dialog.trackers = "udp://t.example:80/announce".into();
        let request = dialog.request(&settings, 7).unwrap();
        assert_eq!(request.job, 7);
        assert_eq!(request.output, PathBuf::from("/data/photos.torrent"));
        assert_eq!(
            request.options.trackers,
            vec![
                "http://10.0.0.2:6969/announce".to_string(),
                "udp://t.example:80/announce".into()
            ]
        );
        assert!(request.seed);
    }
}
