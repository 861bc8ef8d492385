//! The app's settings: what they are, their defaults, and where they are kept (the
//! `directories` config folder, written atomically off the UI thread).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{EngineSettings, GoalAction, QueueSettings, SeedGoals, TrackerSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Theme {
    System,
    Light,
    Dark,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub download_dir: PathBuf,
    /// The folder chosen last in the add dialog.
    pub last_save_dir: Option<PathBuf>,
    pub listen_port: u16,
    pub max_peers_per_torrent: usize,
    pub upload_slots: usize,
    /// Files open at once across every torrent.
    pub max_open_files: usize,
    /// KiB/s, 0 for unlimited.
    pub download_limit_kib: u64,
    pub upload_limit_kib: u64,
    pub seed_when_done: bool,
    pub start_paused: bool,
    /// Show the add dialog for each new torrent and magnet link; otherwise they start at
    /// once in the save folder with the defaults above.
    pub ask_before_adding: bool,
    /// A desktop notification when a download finishes.
    pub notify_on_complete: bool,
    pub theme: Theme,
    /// Run Rivulet's own tracker inside the app.
    pub tracker_enabled: bool,
    /// Its port, for HTTP and UDP.
    pub tracker_port: u16,
    /// Serve any torrent, not only the ones in the list.
    pub tracker_open: bool,
    /// The host name or address put in torrents that use Rivulet's tracker.
    pub tracker_host: String,
    /// Run a DHT node (BEP 5), bootstrapping from `dht_routers` (`host:port`).
    pub dht_enabled: bool,
    pub dht_routers: Vec<String>,
    /// Local service discovery (BEP 14): peers on the same network.
    pub lsd_enabled: bool,
    /// Closing the window hides it in the tray (when a tray host exists) and the engine keeps
    /// running; Quit ends it.
    pub close_to_tray: bool,
    /// An XDG autostart entry starts Rivulet, hidden in the tray, at login.
    pub start_at_login: bool,
    /// Message stream encryption with peers.
    pub encryption: crate::mse::EncryptionPolicy,
    /// The network interface (`wg0`) or address every connection uses; empty: any.
    pub network_interface: String,
    /// Map the listen port at the router (UPnP IGD or NAT-PMP).
    pub port_mapping: bool,
    /// Which transports peers are dialled over.
    pub transport: crate::net::TransportMode,
    /// Run only so many downloads and seeds at once; the rest wait as Queued.
    pub queue_enabled: bool,
    pub max_active_downloads: usize,
    pub max_active_seeds: usize,
    /// Seeding goals: stop seeding at this share ratio, after this many minutes.
    pub ratio_limit_enabled: bool,
    pub ratio_limit: f32,
    pub seeding_limit_enabled: bool,
    pub seeding_limit_minutes: u64,
    /// What a torrent that reached its goal does: removed (its data kept), or paused.
    pub goal_removes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let download_dir = directories::UserDirs::new()
            .and_then(|u| u.download_dir().map(Path::to_path_buf))
            .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().join("Downloads")))
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            download_dir,
            last_save_dir: None,
            listen_port: 6881,
            max_peers_per_torrent: 50,
            upload_slots: 4,
            max_open_files: crate::storage::DEFAULT_OPEN_FILES,
            download_limit_kib: 0,
            upload_limit_kib: 0,
            seed_when_done: true,
            start_paused: false,
            ask_before_adding: true,
            notify_on_complete: true,
            theme: Theme::System,
            tracker_enabled: false,
            tracker_port: 6969,
            tracker_open: false,
            tracker_host: host_name().unwrap_or_else(|| "localhost".into()),
            dht_enabled: true,
            dht_routers: crate::engine::PUBLIC_DHT_ROUTERS
                .iter()
                .map(|r| r.to_string())
                .collect(),
            lsd_enabled: true,
            close_to_tray: true,
            start_at_login: false,
            encryption: crate::mse::EncryptionPolicy::default(),
            network_interface: String::new(),
            port_mapping: true,
            transport: crate::net::TransportMode::UtpFirst,
            queue_enabled: true,
            max_active_downloads: QueueSettings::default().max_downloads,
            max_active_seeds: QueueSettings::default().max_seeds,
            ratio_limit_enabled: false,
            ratio_limit: 2.0,
            seeding_limit_enabled: false,
            seeding_limit_minutes: 24 * 60,
            goal_removes: false,
        }
    }
}

impl Settings {
    /// The platform's config file, e.g. `~/.config/rivulet/settings.json`.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "rivulet", "Rivulet")
            .map(|d| d.config_dir().join("settings.json"))
    }

    /// Reads settings, falling back to the defaults (with a warning) when the file is missing or
    /// damaged.
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "settings are damaged; using defaults");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Saves on a helper thread, so the UI never waits for the disk.
    pub fn save_in_background(&self, path: PathBuf) {
        let Ok(bytes) = serde_json::to_vec_pretty(self) else {
            return;
        };
        std::thread::spawn(move || {
            if let Err(e) = crate::engine::write_atomically(&path, &bytes) {
                tracing::warn!(path = %path.display(), error = %e, "cannot save settings");
            }
        });
    }

    /// The folder the add dialog proposes.
    pub fn save_dir(&self) -> PathBuf {
        self.last_save_dir
            .clone()
            .unwrap_or_else(|| self.download_dir.clone())
    }

    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            listen_port: self.listen_port,
            max_peers_per_torrent: self.max_peers_per_torrent,
            upload_slots: self.upload_slots,
            max_open_files: self.max_open_files,
            download_limit: self.download_limit_kib * 1024,
            upload_limit: self.upload_limit_kib * 1024,
            download_dir: Some(self.download_dir.clone()),
            tracker: self.tracker_enabled.then_some(TrackerSettings {
                port: self.tracker_port,
                open: self.tracker_open,
            }),
            dht: self.dht_enabled.then(|| self.dht_routers.clone()),
            lsd: self.lsd_enabled,
            encryption: self.encryption,
            // The settings dialog saves only a binding that parses.
            bind: self.network_interface.parse().unwrap_or_default(),
            port_mapping: self.port_mapping,
            transport: self.transport,
            queue: QueueSettings {
                enabled: self.queue_enabled,
                max_downloads: self.max_active_downloads.max(1),
                max_seeds: self.max_active_seeds.max(1),
            },
            seed_goals: SeedGoals {
                ratio: self
                    .ratio_limit_enabled
                    .then_some(self.ratio_limit.max(0.0)),
                seeding_time: self
                    .seeding_limit_enabled
                    .then(|| std::time::Duration::from_secs(self.seeding_limit_minutes * 60)),
                action: if self.goal_removes {
                    GoalAction::Remove
                } else {
                    GoalAction::Pause
                },
            },
        }
    }

    /// The announce URL of Rivulet's own tracker, as put in new torrents.
    pub fn own_tracker_url(&self) -> String {
        let host = self.tracker_host.trim();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // a bare IPv6 address
        } else {
            host.to_string()
        };
        format!("http://{host}:{}/announce", self.tracker_port)
    }
}

/// This machine's host name.
#[cfg(unix)]
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(buf.get(..end)?)
        .ok()?
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let settings = Settings {
            listen_port: 7000,
            theme: Theme::Dark,
            ..Settings::default()
        };
        std::fs::write(&path, serde_json::to_vec(&settings).unwrap()).unwrap();
        assert_eq!(Settings::load(&path), settings);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Settings::load(&path), Settings::default());
        std::fs::write(&path, br#"{"listen_port": 7001}"#).unwrap();
        assert_eq!(
            Settings::load(&path).upload_slots,
            4,
            "missing keys take their defaults"
        );
    }

    #[test]
    fn own_tracker_url_brackets_ipv6() {
        let mut settings = Settings {
            tracker_host: "192.168.1.5".into(),
            tracker_port: 7000,
            ..Settings::default()
        };
        assert_eq!(
            settings.own_tracker_url(),
            "http://192.168.1.5:7000/announce"
        );
        settings.tracker_host = "fe80::1".into();
        assert_eq!(settings.own_tracker_url(), "http://[fe80::1]:7000/announce");
        assert_eq!(settings.engine_settings().tracker, None);
        settings.tracker_enabled = true;
        assert_eq!(
            settings.engine_settings().tracker,
            Some(TrackerSettings {
                port: 7000,
                open: false
            })
        );
    }
}
