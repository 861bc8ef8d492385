//! Stand-ins for the GUI's ports (engine, desktop, tray) and for a file dropped on the window.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use rivulet::engine::{Command, Event, SessionSnapshot, TorrentSnapshot};
use rivulet::gui::platform::{Desktop, Engine, SystemTray};
use rivulet::gui::tray::{TrayAction, TrayStatus};

/// Stands in for the engine: records commands, serves the snapshot the test sets.
#[derive(Clone, Default)]
pub struct FakeEngine {
    pub commands: Arc<Mutex<Vec<Command>>>,
    pub snapshot: Arc<Mutex<Arc<SessionSnapshot>>>,
    pub events: Arc<Mutex<Vec<Event>>>,
}

impl Engine for FakeEngine {
    fn send(&self, command: Command) {
        self.commands.lock().unwrap().push(command);
    }
    fn snapshot(&self) -> Arc<SessionSnapshot> {
        self.snapshot.lock().unwrap().clone()
    }
    fn try_event(&mut self) -> Option<Event> {
        let mut events = self.events.lock().unwrap();
        (!events.is_empty()).then(|| events.remove(0))
    }
}

impl FakeEngine {
    pub fn set_torrents(&self, torrents: Vec<TorrentSnapshot>) {
        let snapshot = SessionSnapshot {
            torrents: torrents.into_iter().map(Arc::new).collect(),
            listen_port: 6881,
            ..Default::default()
        };
        *self.snapshot.lock().unwrap() = Arc::new(snapshot);
    }

    /// Commands sent since the last call, without the start-up ApplySettings.
    pub fn take(&self) -> Vec<Command> {
        std::mem::take(&mut *self.commands.lock().unwrap())
    }
}

#[derive(Clone, Default)]
pub struct FakeDesktop {
    pub opened: Arc<Mutex<Vec<PathBuf>>>,
    pub pick: Arc<Mutex<Vec<PathBuf>>>,
    pub notified: Arc<Mutex<Vec<String>>>,
    /// What the "share a file or folder" dialog answers.
    pub source: Arc<Mutex<Option<PathBuf>>>,
    /// Every change of the start-at-login entry.
    pub autostart: Arc<Mutex<Vec<bool>>>,
}

impl Desktop for FakeDesktop {
    fn open_folder(&self, path: &Path) {
        self.opened.lock().unwrap().push(path.to_path_buf());
    }
    fn pick_torrents(&self, reply: Sender<Vec<PathBuf>>) {
        let _ = reply.send(self.pick.lock().unwrap().clone());
    }
    fn pick_folder(&self, start: &Path, reply: Sender<Option<PathBuf>>) {
        let _ = reply.send(Some(start.join("picked")));
    }
    fn pick_source(&self, _folder: bool, reply: Sender<Option<PathBuf>>) {
        let _ = reply.send(self.source.lock().unwrap().clone());
    }
    fn save_torrent_as(&self, suggested: &Path, reply: Sender<Option<PathBuf>>) {
        let _ = reply.send(Some(suggested.to_path_buf()));
    }
    fn notify(&self, summary: &str, body: &str) {
        self.notified
            .lock()
            .unwrap()
            .push(format!("{summary}: {body}"));
    }
    fn set_autostart(&self, enabled: bool) {
        self.autostart.lock().unwrap().push(enabled);
    }
}

#[derive(Debug)]
pub struct Dropped(pub PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Stands in for the tray icon: a host shows it while `hosted` is set, the test queues menu
/// actions, and what the app shows is recorded.
#[derive(Clone)]
pub struct FakeTray {
    pub hosted: Arc<AtomicBool>,
    pub actions: Arc<Mutex<Vec<TrayAction>>>,
    pub shown: Arc<Mutex<Vec<TrayStatus>>>,
}

impl FakeTray {
    /// A tray with a host, and the channel to hand the app (see `RivuletApp::attach_tray`).
    pub fn hosted() -> (Self, Receiver<Box<dyn SystemTray>>) {
        let tray = Self {
            hosted: Arc::new(AtomicBool::new(true)),
            actions: Arc::default(),
            shown: Arc::default(),
        };
        let (tx, rx) = channel();
        tx.send(Box::new(tray.clone()) as Box<dyn SystemTray>)
            .unwrap();
        (tray, rx)
    }

    pub fn click(&self, action: TrayAction) {
        self.actions.lock().unwrap().push(action);
    }
}

impl SystemTray for FakeTray {
    fn hosted(&self) -> bool {
        self.hosted.load(Ordering::Relaxed)
    }
    fn show_status(&self, status: TrayStatus) {
        self.shown.lock().unwrap().push(status);
    }
    fn try_action(&self) -> Option<TrayAction> {
        let mut actions = self.actions.lock().unwrap();
        (!actions.is_empty()).then(|| actions.remove(0))
    }
}
