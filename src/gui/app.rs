//! [`RivuletApp`]: the main window. It reads the engine's latest snapshot, draws the views, and
//! turns clicks, keys, dropped files and the tray's menu into engine commands. It never waits
//! on anything.
//!
//! A frame is [`RivuletApp::logic`] (snapshot, events, the tray, closing) then the drawing;
//! while the window is hidden in the tray, eframe runs only the logic, woken by the engine.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

use crate::engine::{AddMagnet, Command, CreateFailure, Event, SessionSnapshot, TorrentSnapshot};
use crate::ids::InfoHash;

use super::add_dialog::AddDialog;
use super::create_dialog::{CreateAction, CreateDialog};
use super::details::{DetailsAction, DetailsPane};
use super::filters::TorrentFilter;
use super::history::SpeedHistory;
use super::magnet_dialog::{MagnetAnswer, MagnetDialog};
use super::notices::Notices;
use super::platform::{Desktop, Engine, SystemTray};
use super::remove_dialog::RemoveDialog;
use super::settings::{Settings, Theme};
use super::settings_dialog::SettingsDialog;
use super::status_bar::StatusBar;
use super::toolbar::{Toolbar, ToolbarAction, ToolbarState};
use super::torrent_table::{RowAction, TorrentTable};
use super::tray::{TrayAction, TrayStatus};

pub struct RivuletApp {
    engine: Box<dyn Engine>,
    desktop: Box<dyn Desktop>,
    snapshot: Arc<SessionSnapshot>,
    pub settings: Settings,
    settings_path: Option<PathBuf>,
    pub table: TorrentTable,
    /// The filter box and side list's choice.
    filter: TorrentFilter,
    details: DetailsPane,
    history: SpeedHistory,
    add: AddDialog,
    remove: Option<RemoveDialog>,
    settings_dialog: Option<SettingsDialog>,
    create: Option<CreateDialog>,
    magnet: Option<MagnetDialog>,
    /// The number of the next torrent creation.
    next_job: u64,
    pub notices: Notices,
    torrent_picker: Option<Receiver<Vec<PathBuf>>>,
    /// "Set location…": the torrents to move, and the folder picker's answer.
    location_picker: Option<(Vec<InfoHash>, Receiver<Option<PathBuf>>)>,
    applied_theme: Option<Theme>,
    external_tx: Sender<Vec<String>>,
    external: Receiver<Vec<String>>,
    /// The tray icon while a tray host shows it, and the answer of its start before that.
    tray: Option<Box<dyn SystemTray>>,
    tray_pending: Option<Receiver<Box<dyn SystemTray>>>,
    /// What the tray shows now.
    tray_status: Option<TrayStatus>,
    window_visible: bool,
    /// `--minimized`: hide the window once the tray is up (eframe shows it after its first
    /// frame whatever the viewport said), or leave it shown when no tray comes.
    hide_on_start: bool,
    /// Frames drawn so far, up to 2: hiding waits for the first one.
    frames: u8,
    /// Quit was asked for: the next close is not turned into hiding.
    quitting: bool,
}

impl RivuletApp {
    pub fn new(
        engine: Box<dyn Engine>,
        desktop: Box<dyn Desktop>,
        settings: Settings,
        settings_path: Option<PathBuf>,
    ) -> Self {
        engine.send(Command::ApplySettings(settings.engine_settings()));
        let (external_tx, external) = channel();
        Self {
            external_tx,
            external,
            snapshot: engine.snapshot(),
            engine,
            desktop,
            settings,
            settings_path,
            table: TorrentTable::default(),
            filter: TorrentFilter::default(),
            details: DetailsPane::default(),
            history: SpeedHistory::default(),
            add: AddDialog::new(),
            remove: None,
            settings_dialog: None,
            create: None,
            magnet: None,
            next_job: 1,
            notices: Notices::default(),
            torrent_picker: None,
            location_picker: None,
            applied_theme: None,
            tray: None,
            tray_pending: None,
            tray_status: None,
            window_visible: true,
            hide_on_start: false,
            frames: 0,
            quitting: false,
        }
    }

    /// Where the tray icon arrives once registered (see [`super::tray::TrayIcon::start`]); a
    /// channel closed without one means there is no tray.
    pub fn attach_tray(&mut self, pending: Receiver<Box<dyn SystemTray>>) {
        self.tray_pending = Some(pending);
    }

    /// Started with `--minimized`: the window goes to the tray as soon as there is one.
    pub fn start_hidden(&mut self) {
        self.hide_on_start = true;
    }

    pub fn window_visible(&self) -> bool {
        self.window_visible
    }

    /// Quit was asked for (tray menu or Ctrl+Q): the window is closing for good.
    pub fn quitting(&self) -> bool {
        self.quitting
    }

    /// Opens what the command line or another instance passed: .torrent files, magnet links.
    pub fn open_args(&mut self, args: Vec<String>) {
        let (magnets, files): (Vec<String>, Vec<String>) =
            args.into_iter().partition(|a| a.starts_with("magnet:"));
        self.add_magnets(magnets);
        self.add_paths(files.into_iter().map(PathBuf::from).collect());
    }

    /// Adds magnet links: each row fetches its metadata, then the add dialog asks where to
    /// save it (or, when the settings say not to ask, it starts at once). A bad link is
    /// reported by the engine.
    fn add_magnets(&mut self, links: Vec<String>) {
        for uri in links {
            self.engine.send(Command::AddMagnet(AddMagnet {
                uri,
                save_dir: self.settings.save_dir(),
                paused: self.settings.start_paused,
                seed: self.settings.seed_when_done,
                confirm: self.settings.ask_before_adding,
            }));
        }
    }

    /// Where other instances' arguments arrive (see [`crate::instance`]).
    pub fn external_sender(&self) -> Sender<Vec<String>> {
        self.external_tx.clone()
    }

    /// Starts adding .torrent files (from the command line, a drop or the file dialog); any
    /// other file or a folder opens the create dialog, to share it.
    fn add_paths(&mut self, paths: Vec<PathBuf>) {
        let (torrents, others): (Vec<PathBuf>, Vec<PathBuf>) =
            paths.into_iter().partition(|p| is_torrent_file(p));
        if !torrents.is_empty() {
            self.add.load_paths(torrents);
        }
        if let Some(source) = others.into_iter().next()
            && self.create.is_none()
        {
            self.create = Some(CreateDialog::new(Some(source), &self.settings));
        }
    }

    pub fn snapshot(&self) -> &SessionSnapshot {
        &self.snapshot
    }

    /// One whole frame: the logic, then the drawing.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.logic(&ctx);
        self.draw(ui);
    }

    /// What runs even while the window is hidden: the engine's news, the tray, closing.
    pub fn logic(&mut self, ctx: &egui::Context) {
        self.poll(ctx);
        self.tray_step(ctx);
        self.on_close_request(ctx);
    }

    /// Draws the window.
    fn draw(&mut self, ui: &mut egui::Ui) {
        self.frames = self.frames.saturating_add(1).min(2);
        let ctx = ui.ctx().clone();
        self.apply_theme(&ctx);
        self.handle_drops(&ctx);
        self.handle_keys(&ctx);

        let toolbar_state = self.toolbar_state();
        let mut toolbar_action = None;
        egui::Panel::top("toolbar").show(ui, |ui| {
            ui.add_space(4.0);
            toolbar_action = Toolbar::ui(ui, &toolbar_state);
            self.notices.ui(ui);
            ui.add_space(2.0);
        });
        egui::Panel::bottom("status").show(ui, |ui| StatusBar::ui(ui, &self.snapshot));
        let selected = self.selected_snapshot();
        let mut details_command = None;
        egui::Panel::bottom("details")
            .resizable(true)
            .default_size(280.0)
            .min_size(200.0)
            .show(ui, |ui| {
                details_command = self.details.ui(ui, selected.as_deref(), &self.history);
            });
        if !self.snapshot.torrents.is_empty() {
            egui::Panel::left("filters")
                .resizable(true)
                .default_size(170.0)
                .show(ui, |ui| self.filter.ui(ui, &self.snapshot.torrents));
        }
        match details_command {
            Some(DetailsAction::Engine(command)) => self.engine.send(command),
            Some(DetailsAction::OpenFolder(folder)) => self.desktop.open_folder(&folder),
            None => {}
        }
        let mut row_action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            if self.snapshot.torrents.is_empty() {
                ui.centered_and_justified(|ui| {
                    ui.weak(
                        "Drop .torrent files here, or click \"Add torrent…\" (Ctrl+O).\n\
                         Paste a magnet link (Ctrl+V), or click \"Add magnet link…\" (Ctrl+U).\n\
                         Drop a file or folder to share it (Ctrl+N).",
                    );
                });
            } else {
                row_action = self.table.ui(ui, &self.snapshot.torrents, &self.filter);
                if !self
                    .snapshot
                    .torrents
                    .iter()
                    .any(|t| self.filter.matches(t))
                {
                    ui.centered_and_justified(|ui| {
                        ui.weak("No torrent matches the filter.");
                    });
                }
            }
        });
        if let Some(action) = toolbar_action {
            self.on_toolbar(action);
        }
        if let Some(action) = row_action {
            self.on_row_action(action, &ctx);
        }
        self.dialogs_ui(&ctx);
        self.drop_overlay(&ctx);
    }

    fn poll(&mut self, ctx: &egui::Context) {
        self.snapshot = self.engine.snapshot();
        self.history.record(&self.snapshot);
        if self
            .snapshot
            .torrents
            .iter()
            .any(|t| t.down_rate > 0 || t.up_rate > 0)
        {
            ctx.request_repaint_after(std::time::Duration::from_secs(1));
        }
        let snapshot = self.snapshot.clone();
        self.table
            .selection
            .retain(|id| snapshot.torrents.iter().any(|t| t.id == *id));
        while let Some(event) = self.engine.try_event() {
            match event {
                Event::Completed { name, .. } => {
                    self.notices
                        .info(format!("\"{name}\" finished downloading"));
                    if self.settings.notify_on_complete {
                        self.desktop.notify("Download finished", &name);
                    }
                }
                Event::AddFailed { source, error } => {
                    self.notices.error(format!("Cannot add {source}: {error}"))
                }
                Event::Duplicate { name, .. } => self
                    .notices
                    .info(format!("\"{name}\" is already in the list")),
                Event::Error { error, .. } => self.notices.error(error.to_string()),
                Event::Created { job, path } => {
                    if self.create.as_ref().and_then(CreateDialog::running) == Some(job) {
                        self.create = None;
                    }
                    self.notices.info(format!("Created {}", path.display()));
                }
                Event::CreateFailed { job, error } => match self.create.as_mut() {
                    Some(dialog) if dialog.running() == Some(job) => {
                        dialog.failed(error.to_string())
                    }
                    _ if error == CreateFailure::Cancelled => {}
                    _ => self
                        .notices
                        .error(format!("Cannot create the torrent: {error}")),
                },
                Event::ConfirmAdd {
                    torrent,
                    select_only,
                    ..
                } => self.add.confirm_magnet(torrent, select_only),
                Event::Added { .. } | Event::Removed { .. } | Event::MetadataFetched { .. } => {}
            }
        }
        while let Ok(args) = self.external.try_recv() {
            self.open_args(args);
        }
        if let Some(picker) = &self.torrent_picker
            && let Ok(paths) = picker.try_recv()
        {
            self.torrent_picker = None;
            self.add_paths(paths);
        }
        if let Some((ids, picker)) = &self.location_picker
            && let Ok(answer) = picker.try_recv()
        {
            if let Some(to) = answer {
                for &id in ids {
                    self.engine.send(Command::MoveData { id, to: to.clone() });
                }
            }
            self.location_picker = None;
        }
        let known = |id: InfoHash| snapshot.torrents.iter().any(|t| t.id == id);
        for add in self.add.poll(known, &mut self.notices, &self.settings) {
            self.engine.send(Command::Add(add));
        }
        if self.add.waiting()
            || self.torrent_picker.is_some()
            || self.location_picker.is_some()
            || self.settings_dialog.is_some()
            || self.create.as_ref().is_some_and(CreateDialog::waiting)
        {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn apply_theme(&mut self, ctx: &egui::Context) {
        if self.applied_theme != Some(self.settings.theme) {
            ctx.set_theme(match self.settings.theme {
                Theme::System => egui::ThemePreference::System,
                Theme::Light => egui::ThemePreference::Light,
                Theme::Dark => egui::ThemePreference::Dark,
            });
            self.applied_theme = Some(self.settings.theme);
        }
    }

    fn handle_drops(&mut self, ctx: &egui::Context) {
        let paths: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if !paths.is_empty() {
            self.add_paths(paths);
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let pressed = |shortcut: KeyboardShortcut| ctx.input_mut(|i| i.consume_shortcut(&shortcut));
        if pressed(KeyboardShortcut::new(Modifiers::COMMAND, Key::Q)) {
            self.quit(ctx);
        }
        if self.modal_open() || ctx.egui_wants_keyboard_input() {
            return;
        }
        if pressed(KeyboardShortcut::new(Modifiers::COMMAND, Key::O)) {
            self.on_toolbar(ToolbarAction::Add);
        }
        if pressed(KeyboardShortcut::new(Modifiers::COMMAND, Key::N)) {
            self.on_toolbar(ToolbarAction::Create);
        }
        if pressed(KeyboardShortcut::new(Modifiers::COMMAND, Key::U)) {
            self.on_toolbar(ToolbarAction::AddMagnet);
        }
        // Ctrl+V anywhere: a magnet link on the clipboard is added.
        let pasted: Vec<String> = ctx.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::Paste(text) => Some(text.clone()),
                    _ => None,
                })
                .flat_map(|text| {
                    text.lines()
                        .map(str::trim)
                        .filter(|l| l.starts_with("magnet:"))
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect()
        });
        self.add_magnets(pasted);
        if pressed(KeyboardShortcut::new(Modifiers::COMMAND, Key::A)) {
            let order: Vec<InfoHash> = self
                .table
                .shown(&self.snapshot.torrents, &self.filter)
                .iter()
                .map(|t| t.id)
                .collect();
            self.table.selection.select_all(&order);
        }
        if pressed(KeyboardShortcut::new(Modifiers::NONE, Key::Space))
            && !self.table.selection.is_empty()
        {
            let all_paused = self.selected().iter().all(|t| t.paused);
            self.on_toolbar(if all_paused {
                ToolbarAction::Resume
            } else {
                ToolbarAction::Pause
            });
        }
        if pressed(KeyboardShortcut::new(Modifiers::NONE, Key::Delete))
            && !self.table.selection.is_empty()
        {
            self.on_toolbar(ToolbarAction::Remove);
        }
    }

    fn modal_open(&self) -> bool {
        self.add.is_open()
            || self.magnet.is_some()
            || self.remove.is_some()
            || self.settings_dialog.is_some()
            || self.create.is_some()
    }

    fn selected(&self) -> Vec<Arc<TorrentSnapshot>> {
        self.snapshot
            .torrents
            .iter()
            .filter(|t| self.table.selection.contains(&t.id))
            .cloned()
            .collect()
    }

    fn selected_snapshot(&self) -> Option<Arc<TorrentSnapshot>> {
        let mut selected = self.selected();
        (selected.len() == 1).then(|| selected.remove(0))
    }

    fn toolbar_state(&self) -> ToolbarState {
        let selected = self.selected();
        ToolbarState {
            any_selected: !selected.is_empty(),
            seeding_on: !selected.is_empty() && selected.iter().all(|t| t.seeding_enabled),
        }
    }

    fn on_toolbar(&mut self, action: ToolbarAction) {
        let ids: Vec<InfoHash> = self.table.selection.ids().collect();
        match action {
            ToolbarAction::Add => {
                let (tx, rx) = channel();
                self.desktop.pick_torrents(tx);
                self.torrent_picker = Some(rx);
            }
            ToolbarAction::AddMagnet => {
                if self.magnet.is_none() {
                    self.magnet = Some(MagnetDialog::default());
                }
            }
            ToolbarAction::Create => {
                if self.create.is_none() {
                    self.create = Some(CreateDialog::new(None, &self.settings));
                }
            }
            ToolbarAction::Pause => ids
                .into_iter()
                .for_each(|id| self.engine.send(Command::Pause(id))),
            ToolbarAction::Resume => ids
                .into_iter()
                .for_each(|id| self.engine.send(Command::Resume(id))),
            ToolbarAction::Seed(on) => ids
                .into_iter()
                .for_each(|id| self.engine.send(Command::SetSeeding(id, on))),
            ToolbarAction::Remove if !ids.is_empty() => {
                let names = self.selected().iter().map(|t| t.name.clone()).collect();
                self.remove = Some(RemoveDialog::new(ids, names));
            }
            ToolbarAction::Remove => {}
            ToolbarAction::OpenFolder => {
                if let Some(t) = self.selected().first() {
                    self.desktop.open_folder(&t.save_dir);
                }
            }
            ToolbarAction::Settings => {
                self.settings_dialog = Some(SettingsDialog::new(&self.settings))
            }
        }
    }

    fn on_row_action(&mut self, action: RowAction, ctx: &egui::Context) {
        let toolbar = match action {
            RowAction::Pause => ToolbarAction::Pause,
            RowAction::Resume => ToolbarAction::Resume,
            RowAction::ToggleSeed => ToolbarAction::Seed(!self.toolbar_state().seeding_on),
            RowAction::Remove => ToolbarAction::Remove,
            RowAction::OpenFolder => ToolbarAction::OpenFolder,
            RowAction::SetLocation => {
                let ids: Vec<InfoHash> = self.table.selection.ids().collect();
                if let Some(first) = self.selected().first() {
                    let (tx, rx) = std::sync::mpsc::channel();
                    self.desktop.pick_folder(&first.save_dir, tx);
                    self.location_picker = Some((ids, rx));
                }
                return;
            }
            RowAction::Queue(to) => {
                let ids = self.table.selection.ids().collect();
                self.engine.send(Command::MoveInQueue(ids, to));
                return;
            }
            RowAction::ForceStart(on) => {
                for id in self.table.selection.ids().collect::<Vec<_>>() {
                    self.engine.send(Command::ForceStart(id, on));
                }
                return;
            }
            RowAction::Sequential(on) => {
                for id in self.table.selection.ids().collect::<Vec<_>>() {
                    self.engine.send(Command::SetSequential(id, on));
                }
                return;
            }
            RowAction::FirstLastFirst(on) => {
                for id in self.table.selection.ids().collect::<Vec<_>>() {
                    self.engine.send(Command::SetFirstLastFirst(id, on));
                }
                return;
            }
            RowAction::CopyMagnet => {
                if let Some(t) = self.selected().first() {
                    ctx.copy_text(t.magnet_link().to_string());
                }
                return;
            }
        };
        self.on_toolbar(toolbar);
    }

    fn dialogs_ui(&mut self, ctx: &egui::Context) {
        if let Some(choice) = self.add.ui(ctx, self.desktop.as_ref()) {
            for add in choice.add {
                self.engine.send(Command::Add(add));
            }
            for id in choice.declined {
                self.engine.send(Command::Remove {
                    id,
                    delete_data: false,
                });
            }
            if let Some(save_dir) = choice.save_dir
                && self.settings.last_save_dir.as_ref() != Some(&save_dir)
            {
                self.settings.last_save_dir = Some(save_dir);
                self.save_settings();
            }
        }
        if let Some(dialog) = &mut self.magnet
            && let Some(answer) = dialog.ui(ctx)
        {
            self.magnet = None;
            if let MagnetAnswer::Add(links) = answer {
                self.add_magnets(links);
            }
        }
        self.create_dialog_ui(ctx);
        if let Some(dialog) = &self.remove
            && let Some(commands) = dialog.ui(ctx)
        {
            commands.into_iter().for_each(|c| self.engine.send(c));
            self.remove = None;
        }
        if let Some(dialog) = &mut self.settings_dialog
            && let Some(answer) = dialog.ui(ctx, self.desktop.as_ref())
        {
            self.settings_dialog = None;
            if let Some(settings) = answer {
                if settings.start_at_login != self.settings.start_at_login {
                    self.desktop.set_autostart(settings.start_at_login);
                }
                self.settings = settings;
                self.engine
                    .send(Command::ApplySettings(self.settings.engine_settings()));
                self.save_settings();
            }
        }
    }

    fn create_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.create else {
            return;
        };
        let action = dialog.ui(
            ctx,
            self.desktop.as_ref(),
            &self.settings,
            &self.snapshot.creating,
            self.next_job,
        );
        match action {
            None => {}
            Some(CreateAction::Start {
                request,
                start_tracker,
            }) => {
                self.next_job += 1;
                if start_tracker {
                    self.settings.tracker_enabled = true;
                    self.engine
                        .send(Command::ApplySettings(self.settings.engine_settings()));
                    self.save_settings();
                }
                self.engine.send(Command::CreateTorrent(request));
            }
            Some(CreateAction::Cancel(job)) => {
                self.engine.send(Command::CancelCreate(job));
                self.create = None;
            }
            Some(CreateAction::Close) => self.create = None,
        }
    }

    /// Takes the tray once it is up, carries out its menu's actions, and keeps what it shows
    /// in step with the engine.
    fn tray_step(&mut self, ctx: &egui::Context) {
        if let Some(pending) = &self.tray_pending {
            match pending.try_recv() {
                Ok(tray) => {
                    self.tray = Some(tray);
                    self.tray_pending = None;
                }
                Err(TryRecvError::Disconnected) => self.tray_pending = None,
                Err(TryRecvError::Empty) => {}
            }
        }
        let actions: Vec<TrayAction> = self
            .tray
            .as_ref()
            .map(|tray| std::iter::from_fn(|| tray.try_action()).collect())
            .unwrap_or_default();
        for action in actions {
            self.on_tray(action, ctx);
        }
        if self.hide_on_start {
            if self.tray_hosted() && self.frames >= 1 {
                self.hide_on_start = false;
                self.set_window_visible(ctx, false);
            } else if self.tray_pending.is_none() && !self.tray_hosted() {
                self.hide_on_start = false;
            } else {
                ctx.request_repaint_after(std::time::Duration::from_millis(50));
            }
        }
        // Hidden with no tray to bring it back (none came up, or its host went away): show.
        if !self.window_visible && self.tray_pending.is_none() && !self.tray_hosted() {
            self.set_window_visible(ctx, true);
        }
        if let Some(tray) = &self.tray {
            let status = TrayStatus::of(&self.snapshot, self.window_visible);
            if self.tray_status.as_ref() != Some(&status) {
                tray.show_status(status.clone());
                self.tray_status = Some(status);
            }
        }
    }

    fn tray_hosted(&self) -> bool {
        self.tray.as_ref().is_some_and(|t| t.hosted())
    }

    fn on_tray(&mut self, action: TrayAction, ctx: &egui::Context) {
        match action {
            TrayAction::ToggleWindow => self.set_window_visible(ctx, !self.window_visible),
            TrayAction::PauseAll => {
                for t in self.snapshot.torrents.iter().filter(|t| !t.paused) {
                    self.engine.send(Command::Pause(t.id));
                }
            }
            TrayAction::ResumeAll => {
                for t in self.snapshot.torrents.iter().filter(|t| t.paused) {
                    self.engine.send(Command::Resume(t.id));
                }
            }
            TrayAction::AddTorrent => {
                self.set_window_visible(ctx, true);
                self.on_toolbar(ToolbarAction::Add);
            }
            TrayAction::Quit => self.quit(ctx),
        }
    }

    fn set_window_visible(&mut self, ctx: &egui::Context, visible: bool) {
        ctx.send_viewport_cmd(egui::ViewportCommand::Visible(visible));
        if visible {
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
        self.window_visible = visible;
        ctx.request_repaint();
    }

    /// Closing the window hides it in the tray when the setting says so and a tray host
    /// shows the icon; otherwise (or after Quit) the window closes and the engine stops.
    fn on_close_request(&mut self, ctx: &egui::Context) {
        if !ctx.input(|i| i.viewport().close_requested()) || self.quitting {
            return;
        }
        if self.settings.close_to_tray && self.tray_hosted() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.set_window_visible(ctx, false);
        }
    }

    /// Ends Rivulet: the window closes, and dropping the app stops the engine, which tells
    /// the trackers `stopped`.
    fn quit(&mut self, ctx: &egui::Context) {
        self.quitting = true;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        ctx.request_repaint();
    }

    fn save_settings(&self) {
        if let Some(path) = &self.settings_path {
            self.settings.save_in_background(path.clone());
        }
    }

    /// While files hover over the window, say what dropping them will do.
    fn drop_overlay(&self, ctx: &egui::Context) {
        let hovered = ctx.input(|i| i.raw.hovered_files.len());
        if hovered == 0 {
            return;
        }
        let rect = ctx.content_rect();
        let painter = ctx.layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop-shade"),
        ));
        painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(170));
        let all_torrents = ctx.input(|i| {
            i.raw
                .hovered_files
                .iter()
                .all(|f| f.path.as_deref().is_some_and(is_torrent_file))
        });
        let text = match (all_torrents, hovered) {
            (true, 1) => "Drop to add this torrent".to_string(),
            (true, n) => format!("Drop to add {n} torrents"),
            (false, _) => "Drop to share it: create a torrent".to_string(),
        };
        egui::Area::new(egui::Id::unique("drop-overlay"))
            .order(egui::Order::Tooltip)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .interactable(false)
            .show(ctx, |ui| {
                ui.label(
                    egui::RichText::new(text)
                        .size(26.0)
                        .color(egui::Color32::WHITE),
                );
            });
    }
}

/// A .torrent file, by its name (the UI thread never reads what is dropped).
fn is_torrent_file(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("torrent"))
}

impl eframe::App for RivuletApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        RivuletApp::logic(self, ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }
}
