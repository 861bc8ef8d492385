//! The tray icon: a freedesktop StatusNotifierItem over D-Bus (`ksni`, pure Rust), so Rivulet
//! can keep seeding with its window closed.
//!
//! The icon shows the overall state (idle, downloading, seeding, error) as a dot on the app
//! icon, the tooltip the speeds and counts, and its menu sends [`TrayAction`]s to the app. The
//! tray runs on ksni's own thread and small async-io executor; it touches neither the engine
//! nor the window: actions go through a channel and a wake-up of the UI thread, and the app
//! pushes a [`TrayStatus`] whenever what the tray shows changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::engine::{SessionSnapshot, TorrentState, Waker};
use crate::units;

use super::platform::SystemTray;

/// What the tray's menu (or a click on the icon) asks of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window if hidden, hide it if shown (a click on the icon).
    ToggleWindow,
    PauseAll,
    ResumeAll,
    /// Show the window and the file dialog for .torrent files.
    AddTorrent,
    /// Stop the engine (trackers hear `stopped`) and exit.
    Quit,
}

/// The overall state shown by the icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Idle,
    Downloading,
    Seeding,
    Error,
}

/// Everything the tray shows; the app sends a new one only when it differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayStatus {
    pub activity: Activity,
    /// "↓ 1.2 MiB/s · ↑ 300 KiB/s", then the torrents by state.
    pub tooltip: String,
    pub window_visible: bool,
}

impl TrayStatus {
    /// What the tray should show for this snapshot.
    pub fn of(snapshot: &SessionSnapshot, window_visible: bool) -> Self {
        let any = |f: fn(&TorrentState) -> bool| snapshot.torrents.iter().any(|t| f(&t.state));
        let activity = if any(|s| matches!(s, TorrentState::Error(_))) {
            Activity::Error
        } else if any(|s| {
            matches!(
                s,
                TorrentState::Downloading
                    | TorrentState::FetchingMetadata
                    | TorrentState::Checking(_)
            )
        }) {
            Activity::Downloading
        } else if any(|s| matches!(s, TorrentState::Seeding)) {
            Activity::Seeding
        } else {
            Activity::Idle
        };
        let tooltip = format!(
            "↓ {} · ↑ {}\n{}",
            units::rate(snapshot.down_rate),
            units::rate(snapshot.up_rate),
            super::status_bar::counts(snapshot)
        );
        Self {
            activity,
            tooltip,
            window_visible,
        }
    }
}

/// The running tray icon. Dropping it removes the icon.
pub struct TrayIcon {
    handle: ksni::blocking::Handle<RivuletTray>,
    actions: Receiver<TrayAction>,
    hosted: Arc<AtomicBool>,
}

impl TrayIcon {
    /// Registers the icon with the session bus's StatusNotifierWatcher, on a helper thread so
    /// the UI never waits for D-Bus. The answer arrives on the returned channel: the icon, or
    /// nothing when no tray host exists (said once in the log), after which the channel
    /// closes. `wake` is called when an action is waiting or the host comes or goes.
    pub fn start(status: TrayStatus, wake: Waker) -> Receiver<Box<dyn SystemTray>> {
        let (reply, answer) = channel();
        std::thread::Builder::new()
            .name("tray-start".into())
            .spawn(move || match Self::spawn(status, wake.clone()) {
                Ok(icon) => {
                    tracing::info!("tray icon registered");
                    let _ = reply.send(Box::new(icon) as Box<dyn SystemTray>);
                    wake();
                }
                Err(e) => {
                    tracing::info!(
                        reason = %e,
                        "no system tray: closing the window quits Rivulet"
                    );
                    drop(reply);
                    wake();
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::warn!(error = %e, "cannot start the tray"));
        answer
    }

    fn spawn(status: TrayStatus, wake: Waker) -> Result<Self, ksni::Error> {
        use ksni::blocking::TrayMethods as _;
        let (actions_tx, actions) = channel();
        let hosted = Arc::new(AtomicBool::new(true));
        let tray = RivuletTray {
            status,
            actions: actions_tx,
            wake,
            hosted: hosted.clone(),
            icons: Arc::new(StateIcons::new()),
        };
        let handle = tray.spawn()?;
        Ok(Self {
            handle,
            actions,
            hosted,
        })
    }
}

impl SystemTray for TrayIcon {
    fn hosted(&self) -> bool {
        self.hosted.load(Ordering::Relaxed)
    }

    fn show_status(&self, status: TrayStatus) {
        // `update` only queues the change for the tray's thread; it does not wait.
        self.handle.update(move |tray| tray.status = status);
    }

    fn try_action(&self) -> Option<TrayAction> {
        self.actions.try_recv().ok()
    }
}

impl Drop for TrayIcon {
    fn drop(&mut self) {
        self.handle.shutdown().wait();
    }
}

/// The ksni side: what the D-Bus service shows and what its callbacks do.
struct RivuletTray {
    status: TrayStatus,
    actions: Sender<TrayAction>,
    wake: Waker,
    hosted: Arc<AtomicBool>,
    icons: Arc<StateIcons>,
}

impl RivuletTray {
    fn send(&self, action: TrayAction) {
        let _ = self.actions.send(action);
        (self.wake)();
    }

    fn item(label: &str, action: TrayAction) -> ksni::MenuItem<Self> {
        ksni::menu::StandardItem {
            label: label.into(),
            activate: Box::new(move |tray: &mut Self| tray.send(action)),
            ..Default::default()
        }
        .into()
    }
}

impl ksni::Tray for RivuletTray {
    fn id(&self) -> String {
        "rivulet".into()
    }

    fn title(&self) -> String {
        "Rivulet".into()
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::ApplicationStatus
    }

    fn status(&self) -> ksni::Status {
        match self.status.activity {
            Activity::Error => ksni::Status::NeedsAttention,
            _ => ksni::Status::Active,
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icons.for_activity(self.status.activity)
    }

    fn attention_icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icons.for_activity(Activity::Error)
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: format!("Rivulet: {}", activity_label(self.status.activity)),
            description: self.status.tooltip.clone(),
            icon_name: String::new(),
            icon_pixmap: Vec::new(),
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.send(TrayAction::ToggleWindow);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        let window = if self.status.window_visible {
            "Hide window"
        } else {
            "Show window"
        };
        vec![
            Self::item(window, TrayAction::ToggleWindow),
            ksni::MenuItem::Separator,
            Self::item("Pause all", TrayAction::PauseAll),
            Self::item("Resume all", TrayAction::ResumeAll),
            Self::item("Add torrent…", TrayAction::AddTorrent),
            ksni::MenuItem::Separator,
            Self::item("Quit", TrayAction::Quit),
        ]
    }

    fn watcher_online(&self) {
        tracing::info!("the tray host is back");
        self.hosted.store(true, Ordering::Relaxed);
        (self.wake)();
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::info!(?reason, "the tray host went away; closing the window quits");
        self.hosted.store(false, Ordering::Relaxed);
        (self.wake)();
        true
    }
}

fn activity_label(activity: Activity) -> &'static str {
    match activity {
        Activity::Idle => "idle",
        Activity::Downloading => "downloading",
        Activity::Seeding => "seeding",
        Activity::Error => "a torrent has an error",
    }
}

/// The app icon at tray sizes, plain (idle) and with a coloured dot for each other state.
struct StateIcons {
    idle: Vec<ksni::Icon>,
    downloading: Vec<ksni::Icon>,
    seeding: Vec<ksni::Icon>,
    error: Vec<ksni::Icon>,
}

impl StateIcons {
    fn new() -> Self {
        const SIZES: [&[u8]; 3] = [
            include_bytes!("../../assets/icons/hicolor/16x16/apps/org.rivulet.Rivulet.png"),
            include_bytes!("../../assets/icons/hicolor/32x32/apps/org.rivulet.Rivulet.png"),
            include_bytes!("../../assets/icons/hicolor/48x48/apps/org.rivulet.Rivulet.png"),
        ];
        let decoded: Vec<egui::IconData> = SIZES
            .iter()
            .filter_map(|png| eframe::icon_data::from_png_bytes(png).ok())
            .collect();
        let with_dot = |colour: Option<[u8; 3]>| -> Vec<ksni::Icon> {
            decoded.iter().map(|icon| to_argb(icon, colour)).collect()
        };
        Self {
            idle: with_dot(None),
            downloading: with_dot(Some([0x1e, 0x88, 0xe5])),
            seeding: with_dot(Some([0x43, 0xa0, 0x47])),
            error: with_dot(Some([0xe5, 0x39, 0x35])),
        }
    }

    fn for_activity(&self, activity: Activity) -> Vec<ksni::Icon> {
        match activity {
            Activity::Idle => self.idle.clone(),
            Activity::Downloading => self.downloading.clone(),
            Activity::Seeding => self.seeding.clone(),
            Activity::Error => self.error.clone(),
        }
    }
}

/// The icon as StatusNotifierItem wants it (ARGB32, network byte order), with a dot in the
/// lower right corner when `dot` has a colour.
fn to_argb(icon: &egui::IconData, dot: Option<[u8; 3]>) -> ksni::Icon {
    let (w, h) = (icon.width as usize, icon.height as usize);
    let radius = w.min(h) as f32 * 0.22;
    let centre = (w as f32 - radius - 0.5, h as f32 - radius - 0.5);
    let mut data = Vec::with_capacity(w * h * 4);
    for (i, rgba) in icon.rgba.chunks_exact(4).enumerate() {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        let distance = ((x - centre.0).powi(2) + (y - centre.1).powi(2)).sqrt();
        let pixel = match dot {
            // A white ring around the dot keeps it visible on any panel colour.
            Some(_) if distance <= radius && distance > radius - 1.2 => [255, 255, 255, 255],
            Some([r, g, b]) if distance <= radius => [255, r, g, b],
            _ => [rgba[3], rgba[0], rgba[1], rgba[2]],
        };
        data.extend_from_slice(&pixel);
    }
    ksni::Icon {
        width: w as i32,
        height: h as i32,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_torrents() {
        use crate::engine::{TorrentError, TorrentSnapshot};
        let torrent = |state| {
            Arc::new(TorrentSnapshot {
                state,
                ..TorrentSnapshot::default()
            })
        };
        let mut snapshot = SessionSnapshot::default();
        assert_eq!(TrayStatus::of(&snapshot, true).activity, Activity::Idle);
        snapshot.torrents.push(torrent(TorrentState::Seeding));
        snapshot.up_rate = 300 * 1024;
        let status = TrayStatus::of(&snapshot, false);
        assert_eq!(status.activity, Activity::Seeding);
        assert_eq!(status.tooltip, "↓ 0 B/s · ↑ 300.0 KiB/s\n1 seeding");
        assert!(!status.window_visible);
        snapshot.torrents.push(torrent(TorrentState::Downloading));
        assert_eq!(
            TrayStatus::of(&snapshot, true).activity,
            Activity::Downloading
        );
        snapshot
            .torrents
            .push(torrent(TorrentState::Error(TorrentError::ResumeDamaged)));
        assert_eq!(TrayStatus::of(&snapshot, true).activity, Activity::Error);
    }

    #[test]
    fn state_icons_differ_by_their_dot() {
        let icons = StateIcons::new();
        assert_eq!(icons.idle.len(), 3, "16, 32 and 48 pixels");
        for (icon, size) in icons.idle.iter().zip([16, 32, 48]) {
            assert_eq!((icon.width, icon.height), (size, size));
            assert_eq!(icon.data.len(), (size * size * 4) as usize);
        }
        let corner = |icons: &[ksni::Icon]| {
            let icon = &icons[1];
            let (x, y) = (26usize, 26usize);
            let at = (y * icon.width as usize + x) * 4;
            icon.data[at..at + 4].to_vec()
        };
        assert_eq!(corner(&icons.downloading), vec![255, 0x1e, 0x88, 0xe5]);
        assert_eq!(corner(&icons.seeding), vec![255, 0x43, 0xa0, 0x47]);
        assert_eq!(corner(&icons.error), vec![255, 0xe5, 0x39, 0x35]);
        assert_ne!(corner(&icons.idle), corner(&icons.seeding));
    }
}
