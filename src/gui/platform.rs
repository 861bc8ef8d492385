//! The GUI's ports to the outside world, as traits so tests can stand in for them:
//! [`Engine`] (the session), [`Desktop`] (file dialogs, the file manager) and [`SystemTray`].
//! The real implementations never block the UI thread: dialogs run on their own threads and
//! answer through channels.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;

use crate::engine::{Command, Event, SessionHandle, SessionSnapshot};

use super::tray::{TrayAction, TrayStatus};

/// What the GUI needs of the engine.
pub trait Engine {
    fn send(&self, command: Command);
    fn snapshot(&self) -> Arc<SessionSnapshot>;
    fn try_event(&mut self) -> Option<Event>;
}

impl Engine for SessionHandle {
    fn send(&self, command: Command) {
        SessionHandle::send(self, command);
    }

    fn snapshot(&self) -> Arc<SessionSnapshot> {
        SessionHandle::snapshot(self)
    }

    fn try_event(&mut self) -> Option<Event> {
        SessionHandle::try_event(self)
    }
}

/// What the GUI needs of the system tray (the real one is [`super::tray::TrayIcon`]).
pub trait SystemTray: Send {
    /// A tray host shows the icon now; only then does closing the window hide it.
    fn hosted(&self) -> bool;
    /// Shows the app's state in the icon, its tooltip and its menu; never waits.
    fn show_status(&self, status: TrayStatus);
    /// The next action from the tray's menu, if one is waiting.
    fn try_action(&self) -> Option<TrayAction>;
}

/// What the GUI needs of the desktop.
pub trait Desktop {
    /// Opens `path` in the system file manager.
    fn open_folder(&self, path: &Path);
    /// Asks the user for .torrent files; the answer (possibly empty) arrives on `reply`.
    fn pick_torrents(&self, reply: Sender<Vec<PathBuf>>);
    /// Asks the user for a folder; the answer arrives on `reply`.
    fn pick_folder(&self, start: &Path, reply: Sender<Option<PathBuf>>);
    /// Asks the user for a file (or, with `folder`, a folder) to make a torrent of.
    fn pick_source(&self, folder: bool, reply: Sender<Option<PathBuf>>);
    /// Asks where to save a new .torrent, proposing `suggested`.
    fn save_torrent_as(&self, suggested: &Path, reply: Sender<Option<PathBuf>>);
    /// Shows a desktop notification.
    fn notify(&self, summary: &str, body: &str);
    /// Starts Rivulet at login (hidden in the tray), or no longer.
    fn set_autostart(&self, enabled: bool);
}

/// The real desktop: rfd's native dialogs on a helper thread, the platform's opener.
pub struct NativeDesktop;

impl Desktop for NativeDesktop {
    fn open_folder(&self, path: &Path) {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        };
        if let Err(e) = std::process::Command::new(opener).arg(path).spawn() {
            tracing::warn!(error = %e, "cannot open the file manager");
        }
    }

    fn pick_torrents(&self, reply: Sender<Vec<PathBuf>>) {
        std::thread::spawn(move || {
            let files = rfd::FileDialog::new()
                .set_title("Add torrents")
                .add_filter("Torrent files", &["torrent"])
                .pick_files()
                .unwrap_or_default();
            let _ = reply.send(files);
        });
    }

    fn pick_folder(&self, start: &Path, reply: Sender<Option<PathBuf>>) {
        let start = start.to_path_buf();
        std::thread::spawn(move || {
            let folder = rfd::FileDialog::new()
                .set_title("Save to")
                .set_directory(start)
                .pick_folder();
            let _ = reply.send(folder);
        });
    }

    fn pick_source(&self, folder: bool, reply: Sender<Option<PathBuf>>) {
        std::thread::spawn(move || {
            let dialog = rfd::FileDialog::new().set_title("Share a file or folder");
            let picked = if folder {
                dialog.pick_folder()
            } else {
                dialog.pick_file()
            };
            let _ = reply.send(picked);
        });
    }

    fn save_torrent_as(&self, suggested: &Path, reply: Sender<Option<PathBuf>>) {
        let suggested = suggested.to_path_buf();
        std::thread::spawn(move || {
            let mut dialog = rfd::FileDialog::new()
                .set_title("Save the torrent as")
                .add_filter("Torrent files", &["torrent"]);
            if let Some(dir) = suggested.parent() {
                dialog = dialog.set_directory(dir);
            }
            if let Some(name) = suggested.file_name() {
                dialog = dialog.set_file_name(name.to_string_lossy());
            }
            let _ = reply.send(dialog.save_file());
        });
    }

    fn notify(&self, summary: &str, body: &str) {
        let (summary, body) = (summary.to_string(), body.to_string());
        std::thread::spawn(move || {
            let shown = notify_rust::Notification::new()
                .appname("Rivulet")
                .summary(&summary)
                .body(&body)
                .icon(super::APP_ID)
                .show();
            if let Err(e) = shown {
                tracing::debug!(error = %e, "no desktop notification");
            }
        });
    }

    fn set_autostart(&self, enabled: bool) {
        super::autostart::apply_in_background(enabled);
    }
}
