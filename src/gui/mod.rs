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
            let snapshots = session.watch();
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
                listener.serve(
                    move |args| {
                        let _ = tx.send(args);
                        ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                        ctx.request_repaint();
                    },
                    move |question| answer(&snapshots.borrow(), question),
                );
            }
            app.open_args(args);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

/// Answers another `rivulet` process: `doctor HEX` gets a line with the worst severity found
/// (`none` when nothing is), then the report of the torrent with that info hash; nothing when
/// the session has none.
fn answer(snapshot: &crate::engine::SessionSnapshot, question: &str) -> String {
    let Some(hex) = question.strip_prefix("doctor ") else {
        return format!("unknown question: {question}");
    };
    let Some(t) = snapshot
        .torrents
        .iter()
        .find(|t| t.id.to_hex().eq_ignore_ascii_case(hex.trim()))
    else {
        return String::new();
    };
    let worst = t.findings.first().map_or("none", |f| f.severity.label());
    format!("{worst}\n{}", crate::engine::report(t))
}

/// The app icon, also used for the window.
fn window_icon() -> Arc<egui::IconData> {
    const PNG: &[u8] =
        include_bytes!("../../assets/icons/hicolor/256x256/apps/org.rivulet.Rivulet.png");
    Arc::new(eframe::icon_data::from_png_bytes(PNG).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::engine::{
        Finding, FindingKind, SessionSnapshot, Severity, TorrentSnapshot, TorrentState,
    };
    use crate::ids::InfoHash;

    #[test]
    fn another_process_asking_the_doctor_gets_the_torrents_report() {
        let stalled = TorrentSnapshot {
            id: InfoHash([0xab; 20]),
            name: "film".into(),
            state: TorrentState::Downloading,
            findings: vec![Finding {
                kind: FindingKind::AllChoking,
                severity: Severity::Warning,
                message: "Connected to 3 peers, all choking us".into(),
                evidence: vec!["3 of 3 peers with pieces you want, none unchoking you".into()],
            }],
            ..Default::default()
        };
        let snapshot = SessionSnapshot {
            torrents: vec![Arc::new(stalled)],
            ..Default::default()
        };
        let report = super::answer(&snapshot, &format!("doctor {}", "AB".repeat(20)));
        assert_eq!(
            report,
            "warning\nfilm: Downloading 0.0%, 0 peers (0 seeds), down 0 B/s up 0 B/s\n  \
             warning: Connected to 3 peers, all choking us\n      \
             - 3 of 3 peers with pieces you want, none unchoking you\n"
        );
        assert_eq!(
            super::answer(&snapshot, &format!("doctor {}", "00".repeat(20))),
            ""
        );
        assert!(super::answer(&snapshot, "weather").starts_with("unknown question"));
    }
}
