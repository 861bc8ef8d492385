//! The tray icon for real, on a private D-Bus session bus (`dbus-daemon`) with a fake
//! StatusNotifierWatcher standing in for the desktop's tray host: Rivulet registers its item,
//! the tooltip follows the engine, and the menu's actions reach the engine and the window.
//!
//! One test in this file: it points `DBUS_SESSION_BUS_ADDRESS` at its own bus before anything
//! else runs. Skipped, saying so, where `dbus-daemon` is not installed (`.ci/run` installs it).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fakes::{FakeDesktop, FakeEngine};
use egui_kittest::Harness;
use rivulet::engine::{Command, TorrentSnapshot, TorrentState};
use rivulet::gui::tray::{TrayIcon, TrayStatus};
use rivulet::gui::{RivuletApp, Settings};
use rivulet::ids::InfoHash;
use zbus::zvariant::{OwnedValue, Value};

const ITEM_PATH: &str = "/StatusNotifierItem";

/// StatusNotifierItem's `a(iiay)`: width, height, ARGB32 bytes.
type Pixmaps = Vec<(i32, i32, Vec<u8>)>;
/// Its `ToolTip`: icon name, pixmaps, title, description.
type ToolTip = (String, Pixmaps, String, String);
const MENU_PATH: &str = "/MenuBar";

#[test]
fn tray_icon_on_a_private_session_bus() {
    let Some(bus) = PrivateBus::start() else {
        eprintln!("skipped: dbus-daemon is not installed (Debian package dbus-daemon)");
        return;
    };
    // SAFETY: the only test of this binary sets the variable before it starts any thread of
    // its own; the harness's threads do not read the environment.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus.address) };
    let wake: rivulet::engine::Waker = Arc::new(|| {});
    let idle = TrayStatus::of(&Default::default(), true);

    // No watcher on the bus: no tray, and the channel says so by closing.
    let pending = TrayIcon::start(idle.clone(), wake.clone());
    assert!(
        matches!(
            pending.recv_timeout(Duration::from_secs(10)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        ),
        "without a StatusNotifierWatcher there is no tray"
    );

    let watcher = FakeWatcher::default();
    let watcher_conn = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", watcher.clone())
        .unwrap()
        .build()
        .unwrap();
    let client = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .build()
        .unwrap();

    let engine = FakeEngine::default();
    let (seeding, paused) = (InfoHash([1; 20]), InfoHash([2; 20]));
    engine.set_torrents(vec![
        torrent(seeding, "seeding.iso", TorrentState::Seeding, false),
        torrent(paused, "paused.iso", TorrentState::Paused, true),
    ]);
    let settings = Settings {
        dht_enabled: false,
        lsd_enabled: false,
        ..Settings::default()
    };
    let mut app = RivuletApp::new(
        Box::new(engine.clone()),
        Box::new(FakeDesktop::default()),
        settings,
        None,
    );
    app.attach_tray(TrayIcon::start(idle, wake));
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(|ui, app: &mut RivuletApp| app.show(ui), app);

    // The item registers with the watcher under its own bus name.
    let item = until("the item registers", || {
        harness.step();
        watcher.items.lock().unwrap().first().cloned()
    });
    assert!(item.starts_with("org.kde.StatusNotifierItem-"), "{item}");
    let property = |name: &str| -> OwnedValue {
        let proxy = zbus::blocking::fdo::PropertiesProxy::builder(&client)
            .destination(item.as_str())
            .unwrap()
            .path(ITEM_PATH)
            .unwrap()
            .build()
            .unwrap();
        proxy
            .get("org.kde.StatusNotifierItem".try_into().unwrap(), name)
            .unwrap()
    };
    let tooltip = || -> (String, String) {
        let value = property("ToolTip");
        let (_icon, _pixmaps, title, description): ToolTip = value.try_into().unwrap();
        (title, description)
    };

    // The tooltip follows the engine: its state, speeds and counts.
    until("the tooltip shows the seeding torrent", || {
        harness.step();
        let (title, description) = tooltip();
        (title == "Rivulet: seeding" && description == "↓ 0 B/s · ↑ 0 B/s\n1 seeding · 1 paused")
            .then_some(())
    });
    assert_eq!(
        String::try_from(property("Category")).unwrap(),
        "ApplicationStatus"
    );
    let seeding_icon: Pixmaps = property("IconPixmap").try_into().unwrap();
    assert_eq!(seeding_icon.len(), 3, "16, 32 and 48 pixels");
    let mut faster = (*engine.snapshot.lock().unwrap()).as_ref().clone();
    faster.up_rate = 3 * 1024 * 1024 / 2;
    let mut downloading = (*faster.torrents[1]).clone();
    downloading.state = TorrentState::Downloading;
    downloading.paused = false;
    faster.torrents[1] = Arc::new(downloading);
    *engine.snapshot.lock().unwrap() = Arc::new(faster);
    until("the tooltip follows the engine", || {
        harness.step();
        let (title, description) = tooltip();
        (title == "Rivulet: downloading"
            && description == "↓ 0 B/s · ↑ 1.5 MiB/s\n1 seeding · 1 downloading")
            .then_some(())
    });
    let downloading_icon: Pixmaps = property("IconPixmap").try_into().unwrap();
    assert_ne!(
        downloading_icon, seeding_icon,
        "the icon's dot shows the state"
    );

    // The menu: its items by label, and their actions.
    let menu = menu_items(&client, &item);
    let labels: Vec<&str> = menu.iter().map(|(_, label)| label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Hide window",
            "Pause all",
            "Resume all",
            "Add torrent…",
            "Quit"
        ]
    );
    let click = |harness: &mut Harness<'_, RivuletApp>, label: &str| {
        let id = menu_items(&client, &item)
            .into_iter()
            .find(|(_, l)| l == label)
            .unwrap_or_else(|| panic!("no menu item {label}"))
            .0;
        client
            .call_method(
                Some(item.as_str()),
                MENU_PATH,
                Some("com.canonical.dbusmenu"),
                "Event",
                &(id, "clicked", Value::I32(0), 0u32),
            )
            .unwrap();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(10));
            harness.step();
        }
    };
    engine.take();
    click(&mut harness, "Pause all");
    let commands = engine.take();
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Pause(id) if *id == seeding))
            && commands
                .iter()
                .any(|c| matches!(c, Command::Pause(id) if *id == paused)),
        "Pause all pauses every running torrent: {commands:?}"
    );
    engine.set_torrents(vec![
        torrent(seeding, "seeding.iso", TorrentState::Paused, true),
        torrent(paused, "paused.iso", TorrentState::Paused, true),
    ]);
    harness.step();
    click(&mut harness, "Resume all");
    let resumed: Vec<Command> = engine.take();
    assert_eq!(
        resumed
            .iter()
            .filter(|c| matches!(c, Command::Resume(_)))
            .count(),
        2,
        "Resume all resumes every paused torrent: {resumed:?}"
    );

    click(&mut harness, "Hide window");
    assert!(!harness.state().window_visible());
    until("the menu offers to show the window", || {
        harness.step();
        menu_items(&client, &item)
            .iter()
            .any(|(_, l)| l == "Show window")
            .then_some(())
    });
    click(&mut harness, "Show window");
    assert!(harness.state().window_visible());

    // When the tray host goes away, a hidden window comes back (nothing else could show it).
    click(&mut harness, "Hide window");
    assert!(!harness.state().window_visible());
    drop(watcher_conn);
    until("the window returns when the tray host leaves", || {
        harness.step();
        harness.state().window_visible().then_some(())
    });

    click(&mut harness, "Quit");
    assert!(harness.state().quitting(), "Quit in the menu ends the app");
}

/// The tray's root menu items that have a label, by id, in order.
fn menu_items(client: &zbus::blocking::Connection, item: &str) -> Vec<(i32, String)> {
    type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
    let reply = client
        .call_method(
            Some(item),
            MENU_PATH,
            Some("com.canonical.dbusmenu"),
            "GetLayout",
            &(0i32, -1i32, Vec::<String>::new()),
        )
        .unwrap();
    let (_revision, (_root, _props, children)): (u32, Layout) = reply.body().deserialize().unwrap();
    children
        .into_iter()
        .filter_map(|child| {
            let (id, props, _): Layout = child.try_into().unwrap();
            let label = props.get("label")?.try_clone().ok()?;
            Some((id, String::try_from(label).ok()?))
        })
        .collect()
}

fn torrent(id: InfoHash, name: &str, state: TorrentState, paused: bool) -> TorrentSnapshot {
    TorrentSnapshot {
        id,
        name: name.into(),
        state,
        paused,
        ..TorrentSnapshot::default()
    }
}

/// Polls `f` until it answers, for at most 10 s.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `dbus-daemon --session` of the test's own, stopped when dropped.
struct PrivateBus {
    daemon: Child,
    address: String,
}

impl PrivateBus {
    fn start() -> Option<Self> {
        let mut daemon = Process::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut address = String::new();
        BufReader::new(daemon.stdout.take()?)
            .read_line(&mut address)
            .ok()?;
        let address = address.trim().to_string();
        (!address.is_empty()).then_some(Self { daemon, address })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Stands in for the desktop's tray host: takes registrations and says a host is there.
#[derive(Clone, Default)]
struct FakeWatcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl FakeWatcher {
    fn register_status_notifier_item(&self, service: &str) {
        self.items.lock().unwrap().push(service.to_string());
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}
