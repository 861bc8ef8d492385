//! The settings window: edits a draft, applied on Save.

use std::sync::mpsc::{Receiver, channel};

use super::platform::Desktop;
use super::settings::{Settings, Theme};

pub struct SettingsDialog {
    draft: Settings,
    download_dir: String,
    /// The DHT's routers, `host:port`, separated by commas or spaces.
    dht_routers: String,
    folder_reply: Option<Receiver<Option<std::path::PathBuf>>>,
}

impl SettingsDialog {
    pub fn new(current: &Settings) -> Self {
        Self {
            download_dir: current.download_dir.display().to_string(),
            dht_routers: current.dht_routers.join(", "),
            draft: current.clone(),
            folder_reply: None,
        }
    }

    /// Returns `None` while open, `Some(Some(settings))` on Save, `Some(None)` on Cancel.
    pub fn ui(&mut self, ctx: &egui::Context, desktop: &dyn Desktop) -> Option<Option<Settings>> {
        if let Some(reply) = &self.folder_reply
            && let Ok(answer) = reply.try_recv()
        {
            if let Some(folder) = answer {
                self.download_dir = folder.display().to_string();
            }
            self.folder_reply = None;
        }
        let mut answer = None;
        let modal = egui::Modal::new(egui::Id::unique("settings")).show(ctx, |ui| {
            ui.set_width(700.0);
            ui.heading("Settings");
            egui::Grid::new("settings-grid")
                .num_columns(2)
                .spacing([12.0, 5.0])
                .show(ui, |ui| {
                    let label = ui.label("Download folder");
                    ui.horizontal(|ui| {
                        ui.add(
                            egui::TextEdit::singleline(&mut self.download_dir).desired_width(240.0),
                        )
                        .labelled_by(label.id);
                        if ui.button("Browse…").clicked() {
                            let (tx, rx) = channel();
                            desktop.pick_folder(std::path::Path::new(&self.download_dir), tx);
                            self.folder_reply = Some(rx);
                        }
                    });
                    ui.end_row();
                    let label = ui.label("Listen port");
                    ui.add(egui::DragValue::new(&mut self.draft.listen_port).range(1..=65535))
                        .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Max peers per torrent");
                    ui.add(
                        egui::DragValue::new(&mut self.draft.max_peers_per_torrent).range(1..=500),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Upload slots");
                    ui.add(egui::DragValue::new(&mut self.draft.upload_slots).range(1..=50))
                        .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Open files at most");
                    ui.add(egui::DragValue::new(&mut self.draft.max_open_files).range(16..=65536))
                        .labelled_by(label.id)
                        .on_hover_text(
                            "Files kept open across every torrent; the least recently used are \
                             closed first. Lowered to fit the system's limit.",
                        );
                    ui.end_row();
                    let label = ui.label("Download limit (KiB/s, 0 = none)");
                    ui.add(
                        egui::DragValue::new(&mut self.draft.download_limit_kib)
                            .range(0..=10_000_000),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Upload limit (KiB/s, 0 = none)");
                    ui.add(
                        egui::DragValue::new(&mut self.draft.upload_limit_kib)
                            .range(0..=10_000_000),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                    ui.label("Queue").on_hover_text(
                        "Run only so many downloads and seeds at once; the others wait as \
                         Queued, in the order of the list (move them with the row menu). A \
                         torrent below 2 KiB/s for a minute does not hold a slot.",
                    );
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut self.draft.queue_enabled, "Queue torrents");
                        ui.add_enabled_ui(self.draft.queue_enabled, |ui| {
                            let label = ui.label("downloads");
                            ui.add(
                                egui::DragValue::new(&mut self.draft.max_active_downloads)
                                    .range(1..=1000),
                            )
                            .labelled_by(label.id);
                            let label = ui.label("seeds");
                            ui.add(
                                egui::DragValue::new(&mut self.draft.max_active_seeds)
                                    .range(1..=1000),
                            )
                            .labelled_by(label.id);
                        });
                    });
                    ui.end_row();
                    ui.label("Seeding goals").on_hover_text(
                        "Stop seeding a torrent once it has shared this much (uploaded ÷ its \
                         size) or seeded this long. Each torrent can have its own goals (General \
                         tab).",
                    );
                    ui.vertical(|ui| {
                        ui.horizontal(|ui| {
                            ui.checkbox(&mut self.draft.ratio_limit_enabled, "At ratio");
                            ui.add_enabled(
                                self.draft.ratio_limit_enabled,
                                egui::DragValue::new(&mut self.draft.ratio_limit)
                                    .range(0.0..=1000.0)
                                    .speed(0.05)
                                    .max_decimals(2),
                            );
                            ui.checkbox(&mut self.draft.seeding_limit_enabled, "After minutes");
                            ui.add_enabled(
                                self.draft.seeding_limit_enabled,
                                egui::DragValue::new(&mut self.draft.seeding_limit_minutes)
                                    .range(1..=525_600),
                            );
                        });
                        ui.horizontal(|ui| {
                            ui.radio_value(&mut self.draft.goal_removes, false, "then pause");
                            ui.radio_value(
                                &mut self.draft.goal_removes,
                                true,
                                "then remove (keep files)",
                            );
                        });
                    });
                    ui.end_row();
                    ui.label("Theme");
                    ui.horizontal(|ui| {
                        ui.radio_value(&mut self.draft.theme, Theme::System, "Follow system");
                        ui.radio_value(&mut self.draft.theme, Theme::Light, "Light");
                        ui.radio_value(&mut self.draft.theme, Theme::Dark, "Dark");
                    });
                    ui.end_row();
                    ui.label("Encryption").on_hover_text(
                        "Message stream encryption (MSE/PE) hides BitTorrent traffic from \
                         throttling. Prefer: encrypted when the peer can, plain otherwise. \
                         Require: encrypted peers only (fewer peers). Off: plain only.",
                    );
                    ui.horizontal(|ui| {
                        use crate::mse::EncryptionPolicy;
                        let policy = &mut self.draft.encryption;
                        ui.radio_value(policy, EncryptionPolicy::Prefer, "Prefer");
                        ui.radio_value(policy, EncryptionPolicy::Require, "Require");
                        ui.radio_value(policy, EncryptionPolicy::Disabled, "Off");
                    });
                    ui.end_row();
                    ui.label("Peer transport").on_hover_text(
                        "How peers are dialled. uTP (over UDP) yields to your other traffic \
                         and reaches peers behind some NATs; a peer that does not answer over \
                         uTP is dialled over TCP. Peers may connect over either, except with \
                         TCP only.",
                    );
                    ui.horizontal(|ui| {
                        for mode in crate::net::TransportMode::ALL {
                            ui.radio_value(&mut self.draft.transport, mode, mode.label());
                        }
                    });
                    ui.end_row();
                    let label = ui.label("Network interface");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.draft.network_interface)
                            .hint_text("any")
                            .desired_width(160.0),
                    )
                    .labelled_by(label.id)
                    .on_hover_text(
                        "Use only this network interface (wg0, tun0…) or address for peers, \
                         trackers and the DHT. While it is down, torrents wait; nothing falls \
                         back to another interface. Empty: any.",
                    );
                    ui.end_row();
                });
            let binding = self.draft.network_interface.parse::<crate::net::Binding>();
            if let Err(e) = &binding {
                ui.colored_label(ui.visuals().error_fg_color, e.to_string());
            }
            // Switches two to a row, so that the window fits a small screen.
            egui::Grid::new("settings-switches")
                .num_columns(2)
                .spacing([16.0, 4.0])
                .show(ui, |ui| {
                    ui.checkbox(
                        &mut self.draft.seed_when_done,
                        "Seed when done (default for new torrents)",
                    );
                    ui.checkbox(&mut self.draft.start_paused, "Start new torrents paused");
                    ui.end_row();
                    ui.checkbox(
                        &mut self.draft.ask_before_adding,
                        "Show the add dialog for new torrents",
                    )
                    .on_hover_text(
                        "Off: torrents and magnet links start at once in the download folder",
                    );
                    ui.checkbox(
                        &mut self.draft.notify_on_complete,
                        "Notify when a download finishes",
                    );
                    ui.end_row();
                    ui.checkbox(
                        &mut self.draft.port_mapping,
                        "Open the listen port at the router (UPnP / NAT-PMP)",
                    )
                    .on_hover_text(
                        "Asks the home router to forward the listen port, so that peers can \
                         connect to Rivulet too. Removed again when Rivulet quits.",
                    );
                    ui.checkbox(
                        &mut self.draft.lsd_enabled,
                        "Local discovery: find peers on this network",
                    )
                    .on_hover_text("BEP 14 multicast announces. Never used for private torrents.");
                    ui.end_row();
                    ui.checkbox(
                        &mut self.draft.close_to_tray,
                        "Closing the window keeps Rivulet running in the tray",
                    )
                    .on_hover_text(
                        "Downloads and seeding go on; Quit in the tray menu (or Ctrl+Q) ends \
                         Rivulet. Without a tray on the desktop, closing the window always quits.",
                    );
                    ui.checkbox(
                        &mut self.draft.start_at_login,
                        "Start Rivulet when I log in",
                    )
                    .on_hover_text("Starts hidden in the tray (an entry in ~/.config/autostart)");
                    ui.end_row();
                });
            ui.horizontal(|ui| {
                ui.checkbox(
                    &mut self.draft.dht_enabled,
                    "DHT: find peers without trackers",
                )
                .on_hover_text(
                    "A node of the mainline DHT (BEP 5): magnet links and torrents whose \
                     trackers are gone still find peers. Never used for private torrents.",
                );
                ui.add_enabled_ui(self.draft.dht_enabled, |ui| {
                    let label = ui.label("DHT routers");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.dht_routers)
                            .hint_text("router.example:6881, …")
                            .desired_width(300.0),
                    )
                    .labelled_by(label.id)
                    .on_hover_text(
                        "Where a DHT node with no saved nodes starts: host:port, comma-separated",
                    );
                });
            });
            ui.separator();
            ui.checkbox(&mut self.draft.tracker_enabled, "Run Rivulet's tracker")
                .on_hover_text("Serves HTTP and UDP announces and scrapes on the port below");
            ui.add_enabled_ui(self.draft.tracker_enabled, |ui| {
                egui::Grid::new("tracker-grid")
                    .num_columns(2)
                    .spacing([12.0, 8.0])
                    .show(ui, |ui| {
                        let label = ui.label("Tracker port");
                        ui.add(egui::DragValue::new(&mut self.draft.tracker_port).range(1..=65535))
                            .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Tracker address in new torrents");
                        ui.add(
                            egui::TextEdit::singleline(&mut self.draft.tracker_host)
                                .desired_width(240.0),
                        )
                        .labelled_by(label.id)
                        .on_hover_text("A host name or IP address other peers can reach");
                        ui.end_row();
                    });
                ui.checkbox(
                    &mut self.draft.tracker_open,
                    "Serve any torrent (an open tracker), not only the ones in the list",
                );
            });
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(binding.is_ok(), egui::Button::new("Save"))
                    .clicked()
                {
                    let mut settings = self.draft.clone();
                    settings.download_dir = self.download_dir.trim().into();
                    settings.dht_routers = self
                        .dht_routers
                        .split([',', ' '])
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_string)
                        .collect();
                    answer = Some(Some(settings));
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(None);
                }
            });
        });
        if modal.should_close() && answer.is_none() {
            answer = Some(None);
        }
        answer
    }
}
