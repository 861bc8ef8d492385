//! Stand-ins for the GUI's ports (engine, desktop) and for a file dropped on the window.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use rivulet::engine::{Command, Event, SessionSnapshot, TorrentSnapshot};
use rivulet::gui::platform::{Desktop, Engine};

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
