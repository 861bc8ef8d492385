//! The toolbar: add a torrent or a magnet link, create, pause, resume, seed, remove, open
//! folder, settings.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolbarAction {
    Add,
    AddMagnet,
    Create,
    Pause,
    Resume,
    /// Turn seeding on (true) or off for the selection.
    Seed(bool),
    Remove,
    OpenFolder,
    Settings,
}

/// What the toolbar needs to know about the selection.
pub struct ToolbarState {
    pub any_selected: bool,
    /// Every selected torrent has seeding on.
    pub seeding_on: bool,
}

pub struct Toolbar;

impl Toolbar {
    pub fn ui(ui: &mut egui::Ui, state: &ToolbarState) -> Option<ToolbarAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .button("Add torrent…")
                .on_hover_text("Add .torrent files (Ctrl+O)")
                .clicked()
            {
                action = Some(ToolbarAction::Add);
            }
            if ui
                .button("Add magnet link…")
                .on_hover_text("Add magnet links (Ctrl+U, or Ctrl+V with one copied)")
                .clicked()
            {
                action = Some(ToolbarAction::AddMagnet);
            }
            if ui
                .button("Create torrent…")
                .on_hover_text("Share a file or folder: make a .torrent and seed it (Ctrl+N)")
                .clicked()
            {
                action = Some(ToolbarAction::Create);
            }
            ui.separator();
            ui.add_enabled_ui(state.any_selected, |ui| {
                if ui
                    .button("Pause")
                    .on_hover_text("Pause the selected torrents (Space)")
                    .clicked()
                {
                    action = Some(ToolbarAction::Pause);
                }
                if ui
                    .button("Resume")
                    .on_hover_text("Resume the selected torrents (Space)")
                    .clicked()
                {
                    action = Some(ToolbarAction::Resume);
                }
                let seed = ui
                    .add(egui::Button::new("Seed").selected(state.seeding_on))
                    .on_hover_text("Seed when done: on for the selected torrents, or off");
                if seed.clicked() {
                    action = Some(ToolbarAction::Seed(!state.seeding_on));
                }
                if ui
                    .button("Remove")
                    .on_hover_text("Remove the selected torrents (Delete)")
                    .clicked()
                {
                    action = Some(ToolbarAction::Remove);
                }
                if ui
                    .button("Open folder")
                    .on_hover_text("Show the save folder")
                    .clicked()
                {
                    action = Some(ToolbarAction::OpenFolder);
                }
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Settings").clicked() {
                    action = Some(ToolbarAction::Settings);
                }
            });
        });
        action
    }
}
