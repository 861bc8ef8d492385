//! The desktop app: an egui window over the engine.
//!
//! The GUI talks to the engine only through [`platform::Engine`] (commands in, snapshots and
//! events out) and is woken by the engine's repaint callback; it never opens a socket or a
//! torrent's data, and never blocks its thread. One file per view.

mod add_dialog;
pub mod app;
pub mod autostart;
mod create_dialog;
mod details;
mod file_tree;
mod filters;
mod history;
mod magnet_dialog;
mod notices;
pub mod platform;
mod remove_dialog;
mod selection;
pub mod settings;
mod settings_dialog;
mod status_bar;
mod toolbar;
mod torrent_table;
pub mod tray;

use std::sync::Arc;

use anyhow::Context as _;

pub use app::RivuletApp;
pub use settings::Settings;

use crate::engine::{Session, SessionConfig};
use crate::instance::{self, Claim};

/// The app id shared by the window, the .desktop file and the AppStream metainfo.
pub const APP_ID: &str = "org.rivulet.Rivulet";

/// Opens the main window (with `args`, .torrent files or magnet links, to add) and runs until
/// it is closed, or until Quit when it closes to the tray; when Rivulet already runs, hands
/// `args` to it instead and returns at once. `minimized` starts with the window hidden in the
/// tray (shown after all when there is no tray).
pub fn run(args: Vec<String>, minimized: bool) -> anyhow::Result<()> {
    let args = instance::absolute_args(&args);
    let listener = match instance::claim(&instance::socket_path(), &args) {
        Ok(Claim::Forwarded) => {
            tracing::info!("handed over to the running Rivulet");
            return Ok(());
        }
        Ok(Claim::Primary(listener)) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check for a running Rivulet; starting anyway");
            None
        }
    };
    let settings_path = Settings::default_path();
    let settings = settings_path
        .as_deref()
        .map(Settings::load)
        .unwrap_or_default();
    // The autostart entry follows the setting, also when someone removed it by hand.
    autostart::apply_in_background(settings.start_at_login);
    let state_dir = SessionConfig::default_state_dir()
        .context("no home folder for Rivulet's state")?
        .join("session");
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Rivulet")
            .with_app_id(APP_ID)
            .with_inner_size([1100.0, 700.0])
            .with_min_inner_size([640.0, 400.0])
            .with_drag_and_drop(true)
            .with_icon(window_icon()),
        ..Default::default()
    };
    eframe::run_native(
        "Rivulet",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let wake: crate::engine::Waker = Arc::new(move || ctx.request_repaint());
            let mut config = SessionConfig::with_state_dir(state_dir);
            config.apply_settings(&settings.engine_settings());
            let session = Session::start(config, Some(wake.clone()))?;
            let mut app = RivuletApp::new(
                Box::new(session),
                Box::new(platform::NativeDesktop),
                settings,
                settings_path,
            );
            let status = tray::TrayStatus::of(app.snapshot(), true);
            app.attach_tray(tray::TrayIcon::start(status, wake));
            if minimized {
                app.start_hidden();
            }
            if let Some(listener) = listener {
                let (tx, ctx) = (app.external_sender(), cc.egui_ctx.clone());
                listener.serve(move |args| {
                    let _ = tx.send(args);
                    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                    ctx.request_repaint();
                });
            }
            app.open_args(args);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

/// The app icon, also used for the window.
fn window_icon() -> Arc<egui::IconData> {
    const PNG: &[u8] =
        include_bytes!("../../assets/icons/hicolor/256x256/apps/org.rivulet.Rivulet.png");
    Arc::new(eframe::icon_data::from_png_bytes(PNG).unwrap_or_default())
}
