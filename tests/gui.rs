//! The desktop app driven headless through its accessibility tree (egui_kittest): every user
//! action, checked against the commands the engine receives.

mod common;

use common::fakes::{Dropped, FakeDesktop, FakeEngine};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use rivulet::bitfield::Bitfield;
use rivulet::engine::{
    Command, CreateFailure, Event, TorrentSnapshot, TorrentState, TrackerStatus, TrackersSummary,
};
use rivulet::gui::RivuletApp;
use rivulet::gui::settings::{Settings, Theme};
use rivulet::ids::InfoHash;

struct Rig {
    engine: FakeEngine,
    desktop: FakeDesktop,
    settings_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn rig() -> (Harness<'static, RivuletApp>, Rig) {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::default();
    let desktop = FakeDesktop::default();
    let settings_path = dir.path().join("config/settings.json");
    let settings = Settings {
        download_dir: dir.path().join("downloads"),
        ..Settings::default()
    };
    let app = RivuletApp::new(
        Box::new(engine.clone()),
        Box::new(desktop.clone()),
        settings,
        Some(settings_path.clone()),
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, app: &mut RivuletApp| app.show(ui), app);
    harness.run_steps(2);
    engine.take();
    (
        harness,
        Rig {
            engine,
            desktop,
            settings_path,
            _dir: dir,
        },
    )
}

/// Steps frames until `label` is on screen (helper threads answer in real time).
fn wait_for_label(harness: &mut Harness<'_, RivuletApp>, label: &str) {
    let start = Instant::now();
    while harness.query_by_label_contains(label).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "\"{label}\" never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
}

/// Fails unless some widget's label contains `text`.
fn assert_shown(harness: &Harness<'_, RivuletApp>, text: &str) {
    assert!(
        harness.query_by_label_contains(text).is_some(),
        "\"{text}\" is not shown"
    );
}

/// Clicks the lowest widget with this label (the details tab rather than the column header, the
/// context menu entry rather than the toolbar button).
fn click_lowest(harness: &mut Harness<'_, RivuletApp>, label: &str) {
    lowest(harness, label).click();
}

/// The widget with this label drawn lowest on screen.
fn lowest<'h>(harness: &'h Harness<'_, RivuletApp>, label: &'h str) -> egui_kittest::Node<'h> {
    harness
        .get_all_by_label(label)
        .max_by(|a, b| a.rect().center().y.total_cmp(&b.rect().center().y))
        .unwrap()
}

/// The widget with this label drawn highest (a table row rather than the details pane's name,
/// the state list's "All" rather than the trackers').
fn topmost<'h>(harness: &'h Harness<'_, RivuletApp>, label: &'h str) -> egui_kittest::Node<'h> {
    harness
        .get_all_by_label(label)
        .min_by(|a, b| a.rect().center().y.total_cmp(&b.rect().center().y))
        .unwrap()
}

fn torrent(n: u8, name: &str) -> TorrentSnapshot {
    TorrentSnapshot {
        id: InfoHash([n; 20]),
        name: name.into(),
        save_dir: PathBuf::from(format!("/data/{name}")),
        total_size: 10 << 20,
        piece_length: 1 << 18,
        piece_count: 40,
        verified_bytes: 5 << 20,
        wanted_size: 10 << 20,
        wanted_verified: 5 << 20,
        progress: 0.5,
        state: TorrentState::Downloading,
        paused: false,
        seeding_enabled: true,
        queued: false,
        forced: false,
        goals: Default::default(),
        down_limit: 0,
        up_limit: 0,
        seeding_banked: Duration::ZERO,
        seeding_since: None,
        sequential: false,
        first_last_first: false,
        down_rate: 1 << 20,
        up_rate: 1 << 10,
        downloaded: 5 << 20,
        uploaded: 1 << 20,
        ratio: 0.2,
        eta: Some(Duration::from_secs(5)),
        connected_seeds: 1,
        connected_peers: 2,
        swarm_seeders: Some(4),
        swarm_leechers: Some(7),
        tracker_status: TrackersSummary::Tracker(TrackerStatus::Working { warning: None }),
        next_announce: None,
        sources: vec![rivulet::engine::SourceSnapshot {
            source: rivulet::engine::PeerSource::Dht,
            state: rivulet::engine::SourceState::Working,
            peers: 5,
        }],
        trackers: vec![rivulet::engine::TrackerSnapshot {
            url: format!("http://127.0.0.1:1/{name}/announce"),
            tier: 0,
            status: TrackerStatus::Working { warning: None },
            seeders: Some(4),
            leechers: Some(7),
            completed: Some(12),
            last_announce: None,
            next_announce: None,
        }],
        peers: vec![
            rivulet::engine::PeerSnapshot {
                addr: "127.0.0.1:51413".parse().unwrap(),
                client: "Transmission 3.0".into(),
                flags: "DU".into(),
                utp: false,
                down_rate: 1 << 20,
                up_rate: 0,
                progress: 1.0,
            },
            rivulet::engine::PeerSnapshot {
                addr: "[2001:db8::7]:6881".parse().unwrap(),
                client: "libtorrent 2.0.11".into(),
                flags: "dUIEP".into(),
                utp: true,
                down_rate: 0,
                up_rate: 1 << 20,
                progress: 0.5,
            },
        ],
        files: vec![rivulet::engine::FileProgress {
            path: PathBuf::from(format!("{name}/inner-file.bin")),
            length: 10 << 20,
            verified_bytes: 5 << 20,
            priority: rivulet::engine::FilePriority::Normal,
        }],
        pieces: {
            let mut have = Bitfield::new(40);
            (0..16).for_each(|i| {
                have.set(i);
            });
            have
        },
        pieces_in_progress: vec![20],
        availability: vec![2; 40],
        findings: Vec::new(),
        added_at: 1_795_614_000 + n as u64,
        comment: Some("a comment".into()),
        created_by: None,
    }
}

fn make_torrent_file(dir: &Path, name: &str, size: usize) -> PathBuf {
    std::fs::write(dir.join(name), common::data(size, size as u64)).unwrap();
    let bytes = common::torrent_for(&dir.join(name), 16384, "http://127.0.0.1:1/announce");
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn dropping_files_adds_the_valid_ones_and_explains_the_invalid_one() {
    let (mut harness, rig) = rig();
    let src = tempfile::tempdir().unwrap();
    let a = make_torrent_file(src.path(), "first.bin", 40_000);
    let b = make_torrent_file(src.path(), "second.bin", 50_000);
    let bad = src.path().join("broken.torrent");
    std::fs::write(&bad, b"d4:infoi1ee").unwrap();
    for path in [&a, &bad, &b] {
        harness
            .input_mut()
            .dropped_files
            .push(Arc::new(Dropped(path.clone())));
    }
    harness.step();
    wait_for_label(&mut harness, "1 of 2");
    wait_for_label(&mut harness, "Cannot add");
    assert!(
        harness.query_by_label_contains("broken.torrent").is_some(),
        "the invalid file is named"
    );
    harness.get_by_label("Start paused").click();
    harness.run_steps(2);
    harness.get_by_label("Add all").click();
    harness.run_steps(3);
    let adds: Vec<_> = rig
        .engine
        .take()
        .into_iter()
        .filter_map(|c| {
            if let Command::Add(a) = c {
                Some(a)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(adds.len(), 2);
    assert!(adds.iter().all(|a| a.paused && a.seed));
    assert!(
        adds.iter()
            .all(|a| a.save_dir == rig._dir.path().join("downloads"))
    );
    assert!(
        harness.query_by_label("Add all").is_none(),
        "the dialog closed"
    );
}

#[test]
fn add_button_uses_the_file_dialog_and_browse_changes_the_folder() {
    let (mut harness, rig) = rig();
    let src = tempfile::tempdir().unwrap();
    let a = make_torrent_file(src.path(), "picked.bin", 30_000);
    *rig.desktop.pick.lock().unwrap() = vec![a];
    harness.get_by_label("Add torrent…").click();
    harness.step();
    wait_for_label(&mut harness, "Save to");
    harness.get_by_label("Browse…").click();
    harness.run_steps(3);
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    let Some(Command::Add(add)) = commands.first() else {
        panic!("no add: {commands:?}")
    };
    assert_eq!(add.save_dir, rig._dir.path().join("downloads/picked"));
    assert!(!add.paused);
}

#[test]
fn a_duplicate_says_so_instead_of_adding_twice() {
    let (mut harness, rig) = rig();
    let src = tempfile::tempdir().unwrap();
    let a = make_torrent_file(src.path(), "dup.bin", 20_000);
    let meta = rivulet::metainfo::Metainfo::from_bytes(&std::fs::read(&a).unwrap()).unwrap();
    let mut existing = torrent(1, "dup.bin");
    existing.id = meta.info_hash;
    rig.engine.set_torrents(vec![existing]);
    harness.input_mut().dropped_files.push(Arc::new(Dropped(a)));
    harness.step();
    wait_for_label(&mut harness, "already in the list");
    assert!(harness.query_by_label("Add").is_none());
    assert!(rig.engine.take().is_empty());
}

#[test]
fn pause_resume_seed_remove_and_open_folder() {
    let (mut harness, rig) = rig();
    rig.engine
        .set_torrents(vec![torrent(1, "alpha"), torrent(2, "beta")]);
    harness.run_steps(2);
    harness.get_by_label("alpha").click();
    harness.run_steps(2);
    let alpha = InfoHash([1; 20]);
    harness.get_by_label("Pause").click();
    harness.run_steps(1);
    harness.get_by_label("Resume").click();
    harness.run_steps(1);
    harness.get_by_label("Seed").click();
    harness.run_steps(1);
    harness.get_by_label("Open folder").click();
    harness.run_steps(1);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::Pause(a), Command::Resume(b), Command::SetSeeding(c, false)] if *a == alpha && *b == alpha && *c == alpha),
        "{commands:?}"
    );
    assert_eq!(
        rig.desktop.opened.lock().unwrap().as_slice(),
        [PathBuf::from("/data/alpha")]
    );

    for (button, delete) in [
        ("Remove, keep files", false),
        ("Remove and delete files", true),
    ] {
        harness.get_by_label("Remove").click();
        harness.run_steps(2);
        harness.get_by_label(button).click();
        harness.run_steps(2);
        let commands = rig.engine.take();
        assert!(
            matches!(commands.as_slice(), [Command::Remove { id, delete_data }] if *id == alpha && *delete_data == delete),
            "{commands:?}"
        );
    }
    harness.get_by_label("Remove").click();
    harness.run_steps(2);
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(rig.engine.take().is_empty(), "cancel removes nothing");
}

#[test]
fn context_menu_acts_on_the_row() {
    let (mut harness, rig) = rig();
    rig.engine
        .set_torrents(vec![torrent(1, "alpha"), torrent(2, "beta")]);
    harness.run_steps(2);
    harness.get_by_label("beta").click_secondary();
    harness.run_steps(3);
    // The menu's "Pause", not the toolbar's: the one drawn lower on screen.
    click_lowest(&mut harness, "Pause");
    harness.run_steps(2);
    assert!(
        matches!(rig.engine.take().as_slice(), [Command::Pause(id)] if *id == InfoHash([2; 20]))
    );
}

#[test]
fn keyboard_shortcuts() {
    let (mut harness, rig) = rig();
    let mut paused = torrent(2, "beta");
    paused.paused = true;
    paused.state = TorrentState::Paused;
    rig.engine.set_torrents(vec![torrent(1, "alpha"), paused]);
    harness.run_steps(2);
    harness.get_by_label("beta").click();
    harness.run_steps(1);
    harness.key_press(egui::Key::Space);
    harness.run_steps(1);
    assert!(
        matches!(rig.engine.take().as_slice(), [Command::Resume(id)] if *id == InfoHash([2; 20])),
        "Space resumes a paused torrent"
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run_steps(1);
    harness.key_press(egui::Key::Space);
    harness.run_steps(1);
    assert_eq!(
        rig.engine
            .take()
            .iter()
            .filter(|c| matches!(c, Command::Pause(_)))
            .count(),
        2,
        "Ctrl+A then Space pauses both"
    );
    harness.key_press(egui::Key::Delete);
    harness.run_steps(2);
    assert!(harness.query_by_label("Remove 2 torrents?").is_some());
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    harness.run_steps(2);
    assert!(
        harness.query_by_label("Add torrent").is_none(),
        "Ctrl+O opened the (empty) file dialog, nothing to add"
    );
}

#[test]
fn settings_are_applied_and_saved() {
    let (mut harness, rig) = rig();
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness.get_by_label("Dark").click();
    harness.run_steps(1);
    harness.get_by_label("Start new torrents paused").click();
    harness.run_steps(1);
    // A click on a number opens it for typing.
    harness.get_by_label("Open files at most").click();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.get_by_label("Open files at most").type_text("1024");
    harness.key_press(egui::Key::Enter);
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)] if s.max_open_files == 1024),
        "the setting reaches the engine: {commands:?}"
    );
    assert_eq!(harness.state().settings.theme, Theme::Dark);
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(&rig.settings_path) {
            let saved: Settings = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(saved.theme, Theme::Dark);
            assert!(saved.start_paused);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "settings were not saved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn selection_and_detail_tabs() {
    let (mut harness, rig) = rig();
    rig.engine
        .set_torrents(vec![torrent(1, "alpha"), torrent(2, "beta")]);
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label_contains("Select a torrent")
            .is_some()
    );
    harness.get_by_label("alpha").click();
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label(&InfoHash([1; 20]).to_hex())
            .is_some(),
        "General shows the info hash"
    );
    click_lowest(&mut harness, "Files");
    harness.run_steps(2);
    assert!(harness.query_by_label("inner-file.bin").is_some());
    click_lowest(&mut harness, "Peers");
    harness.run_steps(2);
    assert!(harness.query_by_label("Transmission 3.0").is_some());
    assert!(harness.query_by_label("127.0.0.1:51413").is_some());
    assert!(
        harness.query_by_label("[2001:db8::7]:6881").is_some(),
        "an IPv6 peer, bracketed"
    );
    assert!(
        harness.query_by_label("uTP").is_some(),
        "the transport of each peer"
    );
    assert!(harness.query_by_label("TCP").is_some());
    click_lowest(&mut harness, "Trackers");
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("http://127.0.0.1:1/alpha/announce")
            .is_some()
    );
    click_lowest(&mut harness, "Pieces");
    harness.run_steps(2);
    assert!(harness.query_by_label("40 pieces").is_some());
    click_lowest(&mut harness, "Speed");
    harness.run_steps(2);
    assert!(harness.query_by_label("alpha").is_some());
    let y = |h: &Harness<'_, RivuletApp>, name: &str| h.get_by_label(name).rect().center().y;
    assert!(
        y(&harness, "alpha") < y(&harness, "beta"),
        "sorted by date added"
    );
    harness.get_by_label("Name").click();
    harness.run_steps(2);
    harness.get_by_label("Name").click();
    harness.run_steps(2);
    assert!(
        y(&harness, "alpha") > y(&harness, "beta"),
        "a second click on a header sorts descending"
    );
}

#[test]
fn the_health_tab_shows_the_findings_and_the_table_flags_a_warning() {
    use rivulet::engine::{Finding, FindingKind, Severity};
    let (mut harness, rig) = rig();
    let mut stalled = torrent(1, "stalled");
    stalled.findings = vec![
        Finding {
            kind: FindingKind::PiecesUnavailable,
            severity: Severity::Error,
            message:
                "No one has pieces 30–39 (25% of the torrent): no seed has been seen for 2h 0m; \
                      the download cannot finish until one returns"
                    .into(),
            evidence: vec!["10 pieces missing (2.5 MiB) that no connected peer has".into()],
        },
        Finding {
            kind: FindingKind::DownloadLimit,
            severity: Severity::Info,
            message: "Limited by your own download limit (500.0 KiB/s)".into(),
            evidence: vec!["The session's limit (Settings: Download limit)".into()],
        },
    ];
    stalled.availability = [vec![1; 30], vec![0; 10]].concat();
    let mut limited = torrent(2, "limited");
    limited.findings = vec![stalled.findings[1].clone()];
    rig.engine.set_torrents(vec![stalled, limited]);
    harness.run_steps(2);
    assert_eq!(
        harness.query_all_by_label_contains("⚠").count(),
        1,
        "only the torrent with an error is flagged: an info is no warning"
    );
    assert_shown(&harness, "⚠ Downloading");

    topmost(&harness, "stalled").click();
    harness.run_steps(2);
    click_lowest(&mut harness, "Health");
    harness.run_steps(2);
    assert_shown(&harness, "No one has pieces 30–39");
    assert_shown(
        &harness,
        "• 10 pieces missing (2.5 MiB) that no connected peer has",
    );
    let y =
        |h: &Harness<'_, RivuletApp>, text: &str| h.get_by_label_contains(text).rect().center().y;
    assert!(
        (lowest(&harness, "Error").rect().center().y - y(&harness, "No one has pieces")).abs()
            < 4.0,
        "the finding's severity is beside it"
    );
    assert!(
        y(&harness, "No one has pieces") < y(&harness, "Limited by your own"),
        "most important first"
    );
    click_lowest(&mut harness, "Pieces");
    harness.run_steps(2);
    assert_shown(&harness, "10 missing pieces nobody connected has");

    topmost(&harness, "limited").click();
    harness.run_steps(2);
    assert_shown(&harness, "every piece is somewhere");
    click_lowest(&mut harness, "Health");
    harness.run_steps(2);
    assert_shown(&harness, "Limited by your own download limit (500.0 KiB/s)");
    assert!(
        harness
            .query_by_label_contains("No one has pieces")
            .is_none()
    );

    let mut fine = torrent(3, "fine");
    fine.state = TorrentState::Seeding;
    rig.engine.set_torrents(vec![fine]);
    harness.run_steps(2);
    topmost(&harness, "fine").click();
    harness.run_steps(2);
    assert_shown(&harness, "Nothing holds this torrent back.");
}

#[test]
fn a_finished_download_notifies_unless_turned_off() {
    let (mut harness, rig) = rig();
    let done = |name: &str| Event::Completed {
        id: InfoHash([9; 20]),
        name: name.into(),
    };
    rig.engine.events.lock().unwrap().push(done("film.mkv"));
    harness.run_steps(2);
    assert_eq!(
        rig.desktop.notified.lock().unwrap().as_slice(),
        ["Download finished: film.mkv"]
    );
    assert!(
        harness
            .query_by_label_contains("finished downloading")
            .is_some()
    );

    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness
        .get_by_label("Notify when a download finishes")
        .click();
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    rig.engine.events.lock().unwrap().push(done("other.iso"));
    harness.run_steps(2);
    assert_eq!(
        rig.desktop.notified.lock().unwrap().len(),
        1,
        "no notification once turned off"
    );
}

fn magnets_sent(rig: &Rig) -> Vec<rivulet::engine::AddMagnet> {
    rig.engine
        .take()
        .into_iter()
        .filter_map(|c| match c {
            Command::AddMagnet(m) => Some(m),
            _ => None,
        })
        .collect()
}

const LINK: &str = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=from%20args";

#[test]
fn magnet_links_from_the_command_line_and_ctrl_v_are_added() {
    let (mut harness, rig) = rig();
    harness.state_mut().open_args(vec![LINK.into()]);
    harness.run_steps(2);
    let sent = magnets_sent(&rig);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].uri, LINK);
    assert!(
        sent[0].confirm,
        "the add dialog asks once the metadata is in"
    );
    assert_eq!(sent[0].save_dir, rig._dir.path().join("downloads"));

    let pasted = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    harness
        .input_mut()
        .events
        .push(egui::Event::Paste(format!("  {pasted}\n")));
    harness.run_steps(2);
    let sent = magnets_sent(&rig);
    assert_eq!(
        sent.iter().map(|m| m.uri.as_str()).collect::<Vec<_>>(),
        [pasted]
    );
    harness
        .input_mut()
        .events
        .push(egui::Event::Paste("just some text".into()));
    harness.run_steps(2);
    assert!(magnets_sent(&rig).is_empty(), "other text is not a link");
}

#[test]
fn the_add_magnet_dialog_checks_each_line() {
    let (mut harness, rig) = rig();
    harness.get_by_label("Add magnet link…").click();
    harness.run_steps(2);
    let field = harness.get_by_label("Magnet links, one a line");
    field.focus();
    field.type_text("magnet:?dn=no-hash");
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label_contains("Line 1: the magnet link has no BitTorrent info hash")
            .is_some(),
        "the error names the line and the part"
    );
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    assert!(
        magnets_sent(&rig).is_empty(),
        "Add is off while a line is bad"
    );
    harness.get_by_label("Magnet links, one a line").focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_label("Magnet links, one a line")
        .type_text(LINK);
    harness.run_steps(2);
    wait_for_label(&mut harness, "1 link");
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    let sent = magnets_sent(&rig);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].uri, LINK);
    assert!(
        harness.query_by_label("Magnet links, one a line").is_none(),
        "closed"
    );

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::U);
    harness.run_steps(2);
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("Magnet links, one a line").is_none());
    assert!(magnets_sent(&rig).is_empty());
}

#[test]
fn a_fetching_row_then_the_add_dialog_once_the_metadata_is_in() {
    let (mut harness, rig) = rig();
    let src = tempfile::tempdir().unwrap();
    let path = make_torrent_file(src.path(), "fetched.bin", 40_000);
    let bytes = std::fs::read(&path).unwrap();
    let meta = rivulet::metainfo::Metainfo::from_bytes(&bytes).unwrap();
    let row = TorrentSnapshot {
        id: meta.info_hash,
        name: "from args".into(),
        total_size: 0,
        progress: 0.0,
        state: TorrentState::FetchingMetadata,
        connected_peers: 3,
        ..torrent(9, "from args")
    };
    rig.engine.set_torrents(vec![row.clone()]);
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Fetching metadata · 3 peers")
            .is_some()
    );

    // The metadata arrives: the add dialog shows the torrent (not "already in the list").
    let confirm = |rig: &Rig| {
        rig.engine.events.lock().unwrap().push(Event::ConfirmAdd {
            id: meta.info_hash,
            torrent: Arc::new(bytes.clone()),
            save_dir: rig._dir.path().join("downloads"),
            paused: false,
            seed: true,
            select_only: None,
        });
    };
    confirm(&rig);
    harness.step();
    wait_for_label(&mut harness, "Save to");
    assert!(
        harness.query_all_by_label("fetched.bin").next().is_some(),
        "its name"
    );
    assert!(
        harness
            .query_by_label_contains("already in the list")
            .is_none()
    );
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    let [Command::Add(add)] = commands.as_slice() else {
        panic!("one add: {commands:?}")
    };
    assert_eq!(
        rivulet::metainfo::Metainfo::from_bytes(match &add.source {
            rivulet::engine::AddSource::Bytes(b) => b,
            other => panic!("{other:?}"),
        })
        .unwrap()
        .info_hash,
        meta.info_hash
    );

    // Turned down: the link's row goes.
    confirm(&rig);
    harness.step();
    wait_for_label(&mut harness, "Save to");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(
            commands.as_slice(),
            [Command::Remove { id, delete_data: false }] if *id == meta.info_hash
        ),
        "{commands:?}"
    );
}

#[test]
fn hovering_files_says_what_a_drop_will_do() {
    let (mut harness, _rig) = rig();
    for name in ["a.torrent", "b.torrent"] {
        harness.input_mut().hovered_files.push(egui::HoveredFile {
            path: Some(name.into()),
            ..Default::default()
        });
    }
    harness.run_steps(2);
    assert!(harness.query_by_label("Drop to add 2 torrents").is_some());
    harness.input_mut().hovered_files.clear();
    harness.run_steps(2);
    assert!(harness.query_by_label("Drop to add 2 torrents").is_none());
}

/// Selects `alpha` and opens its Trackers tab.
fn open_trackers_tab(harness: &mut Harness<'_, RivuletApp>, rig: &Rig) {
    rig.engine.set_torrents(vec![torrent(1, "alpha")]);
    harness.run_steps(2);
    harness.get_by_label("alpha").click();
    harness.run_steps(2);
    click_lowest(harness, "Trackers");
    harness.run_steps(2);
}

#[test]
fn trackers_tab_adds_and_removes_trackers() {
    use egui::accesskit::Role;
    let (mut harness, rig) = rig();
    open_trackers_tab(&mut harness, &rig);
    assert!(
        harness.query_by_label("12").is_some(),
        "completed count from the scrape"
    );

    let field = harness.get_by_role_and_label(Role::TextInput, "New tracker");
    field.focus();
    harness.run_steps(1);
    harness
        .get_by_role_and_label(Role::TextInput, "New tracker")
        .type_text("ftp://nope");
    harness.run_steps(1);
    harness.get_by_label("Add tracker").click();
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label_contains("starts with http://")
            .is_some(),
        "a bad URL is explained"
    );
    assert!(rig.engine.take().is_empty(), "and not sent");

    let field = harness.get_by_role_and_label(Role::TextInput, "New tracker");
    field.focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_role_and_label(Role::TextInput, "New tracker")
        .type_text("udp://tracker.example:1337/announce");
    harness.run_steps(1);
    harness.get_by_label("Add tracker").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(),
            [Command::AddTracker(id, url)] if *id == InfoHash([1; 20]) && url == "udp://tracker.example:1337/announce"),
        "{commands:?}"
    );

    click_lowest(&mut harness, "Remove");
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(),
            [Command::RemoveTracker(id, url)] if *id == InfoHash([1; 20]) && url == "http://127.0.0.1:1/alpha/announce"),
        "{commands:?}"
    );
}

/// Sets the engine's list of torrents being created.
fn set_creating(rig: &Rig, creating: Vec<rivulet::engine::CreationSnapshot>) {
    let mut slot = rig.engine.snapshot.lock().unwrap();
    let mut snapshot = (**slot).clone();
    snapshot.creating = creating;
    *slot = Arc::new(snapshot);
}

#[test]
fn dropping_a_folder_creates_a_torrent_on_rivulets_tracker_and_seeds_it() {
    let (mut harness, rig) = rig();
    let folder = rig._dir.path().join("holiday photos");
    std::fs::create_dir_all(&folder).unwrap();
    harness.input_mut().hovered_files.push(egui::HoveredFile {
        path: Some(folder.clone()),
        ..Default::default()
    });
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Drop to share it: create a torrent")
            .is_some()
    );
    harness.input_mut().hovered_files.clear();
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(folder.clone())));
    harness.run_steps(3);
    assert!(
        harness.query_by_label("Create torrent").is_some(),
        "the create dialog opens"
    );

    let own = harness.get_by_label_contains("Rivulet's own tracker");
    own.click();
    harness.run_steps(1);
    harness.get_by_label("Create").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    let [
        Command::ApplySettings(settings),
        Command::CreateTorrent(request),
    ] = commands.as_slice()
    else {
        panic!("{commands:?}");
    };
    assert!(
        settings.tracker.is_some(),
        "ticking Rivulet's tracker turns it on"
    );
    assert_eq!(request.source, folder);
    assert_eq!(
        request.output,
        rig._dir.path().join("holiday photos.torrent")
    );
    assert_eq!(
        request.options.trackers,
        vec![harness.state().settings.own_tracker_url()]
    );
    assert!(request.seed, "seeding starts at once by default");
    assert!(harness.state().settings.tracker_enabled);

    set_creating(
        &rig,
        vec![rivulet::engine::CreationSnapshot {
            job: request.job,
            source: folder.clone(),
            hashed: 512 << 10,
            total: 1 << 20,
        }],
    );
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Hashing: 512.0 KiB of 1.0 MiB")
            .is_some()
    );
    rig.engine.events.lock().unwrap().push(Event::Created {
        job: request.job,
        path: request.output.clone(),
    });
    set_creating(&rig, Vec::new());
    harness.run_steps(3);
    assert!(
        harness.query_by_label("Create torrent").is_none(),
        "the dialog closes when done"
    );
    assert!(
        harness
            .query_by_label_contains("holiday photos.torrent")
            .is_some()
    );
}

#[test]
fn create_dialog_picks_a_source_reports_failure_and_cancels() {
    let (mut harness, rig) = rig();
    let file = rig._dir.path().join("talk.mp4");
    *rig.desktop.source.lock().unwrap() = Some(file.clone());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::N);
    harness.run_steps(2);
    harness.get_by_label("Create").click();
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Choose a file or folder to share.")
            .is_some()
    );
    assert!(rig.engine.take().is_empty());

    harness.get_by_label("File…").click();
    harness.run_steps(3);
    harness.get_by_label("Create").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    let [Command::CreateTorrent(first)] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert_eq!(first.source, file);
    assert!(first.options.trackers.is_empty());
    rig.engine.events.lock().unwrap().push(Event::CreateFailed {
        job: first.job,
        error: CreateFailure::Failed("talk.mp4: permission denied".into()),
    });
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label("talk.mp4: permission denied")
            .is_some()
    );

    harness.get_by_label("Create").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    let [Command::CreateTorrent(second)] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert_ne!(
        second.job, first.job,
        "each creation has its own job number"
    );
    assert!(harness.query_by_label("Listing files…").is_some());
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::CancelCreate(job)] if *job == second.job),
        "{commands:?}"
    );
    assert!(harness.query_by_label("Create torrent").is_none());
}

#[test]
fn the_tracker_switch_runs_rivulets_tracker() {
    let (mut harness, rig) = rig();
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness.get_by_label("Run Rivulet's tracker").click();
    harness.run_steps(1);
    harness
        .get_by_label("Serve any torrent (an open tracker), not only the ones in the list")
        .click();
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(),
            [Command::ApplySettings(s)] if s.tracker == Some(rivulet::engine::TrackerSettings { port: 6969, open: true })),
        "{commands:?}"
    );
    {
        let mut slot = rig.engine.snapshot.lock().unwrap();
        let mut snapshot = (**slot).clone();
        snapshot.tracker = rivulet::engine::TrackerHostState::Running {
            port: 6969,
            torrents: 2,
            peers: 1,
        };
        *slot = Arc::new(snapshot);
    }
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Tracker on port 6969: 2 torrents, 1 peer")
            .is_some()
    );
}

/// The text the next few frames put on the clipboard, if any.
fn copied(harness: &mut Harness<'_, RivuletApp>) -> Option<String> {
    (0..3).find_map(|_| {
        harness.step();
        harness
            .output()
            .platform_output
            .commands
            .iter()
            .find_map(|c| match c {
                egui::OutputCommand::CopyText(text) => Some(text.clone()),
                _ => None,
            })
    })
}

#[test]
fn copy_magnet_link_from_the_row_menu_and_the_general_tab() {
    let (mut harness, rig) = rig();
    rig.engine.set_torrents(vec![torrent(1, "alpha")]);
    harness.run_steps(2);
    let want = format!(
        "magnet:?xt=urn:btih:{}&dn=alpha&xl={}&tr=http%3A%2F%2F127.0.0.1%3A1%2Falpha%2Fannounce",
        InfoHash([1; 20]).to_hex(),
        10 << 20
    );
    harness
        .get_by_label("alpha")
        .click_button(egui::PointerButton::Secondary);
    harness.run_steps(2);
    // The menu opens by the row, above the details (whose General tab has the same button).
    harness
        .get_all_by_label("Copy magnet link")
        .min_by(|a, b| a.rect().center().y.total_cmp(&b.rect().center().y))
        .expect("the row's menu")
        .click();
    assert_eq!(
        copied(&mut harness),
        Some(want.clone()),
        "from the row's menu"
    );
    harness.run_steps(2);
    assert!(
        harness.query_by_label("Copy magnet link").is_some(),
        "the General tab of the selected torrent offers it too"
    );
    harness.get_by_label("Copy magnet link").click();
    assert_eq!(copied(&mut harness), Some(want), "from the General tab");
}

#[test]
fn with_the_add_dialog_off_torrents_and_links_start_at_once() {
    let (mut harness, rig) = rig();
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness
        .get_by_label("Show the add dialog for new torrents")
        .click();
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    assert!(!harness.state().settings.ask_before_adding);
    rig.engine.take();
    let src = tempfile::tempdir().unwrap();
    let a = make_torrent_file(src.path(), "direct.bin", 30_000);
    harness.input_mut().dropped_files.push(Arc::new(Dropped(a)));
    harness.state_mut().open_args(vec![LINK.into()]);
    let start = Instant::now();
    let mut commands = Vec::new();
    while commands.len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "{commands:?}");
        harness.step();
        commands.extend(rig.engine.take());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(harness.query_by_label("Save to").is_none(), "no dialog");
    assert!(commands.iter().any(|c| matches!(
        c,
        Command::Add(add) if add.save_dir == rig._dir.path().join("downloads") && add.seed
    )));
    assert!(commands.iter().any(|c| matches!(
        c,
        Command::AddMagnet(m) if m.uri == LINK && !m.confirm
    )));
}

#[test]
fn peer_sources_and_the_dht_node_count_are_shown() {
    let (mut harness, rig) = rig();
    harness.run_steps(2);
    assert!(harness.query_by_label("DHT off").is_some(), "no DHT yet");
    open_trackers_tab(&mut harness, &rig);
    assert!(harness.query_by_label("DHT").is_some(), "the DHT row");
    assert!(harness.query_by_label("working · 5 peers").is_some());
    let mut snapshot = (*rig.engine.snapshot.lock().unwrap()).as_ref().clone();
    snapshot.dht = Some(rivulet::dht::DhtStats {
        nodes: 42,
        good_nodes: 30,
        ..Default::default()
    });
    *rig.engine.snapshot.lock().unwrap() = Arc::new(snapshot);
    harness.run_steps(2);
    assert!(harness.query_by_label("DHT: 42 nodes").is_some());
}

#[test]
fn dht_and_local_discovery_switches_reach_the_engine() {
    let (mut harness, rig) = rig();
    assert!(harness.state().settings.dht_enabled && harness.state().settings.lsd_enabled);
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness
        .get_by_label("DHT: find peers without trackers")
        .click();
    harness
        .get_by_label("Local discovery: find peers on this network")
        .click();
    harness.run_steps(1);
    // The routers field is off with the DHT; on again, its routers are edited.
    harness
        .get_by_label("DHT: find peers without trackers")
        .click();
    harness.run_steps(1);
    let routers = harness.get_by_label("DHT routers");
    routers.focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_label("DHT routers")
        .type_text("127.0.0.5:6881, 127.0.0.6:6881");
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)]
            if s.dht.as_deref() == Some(&["127.0.0.5:6881".to_string(), "127.0.0.6:6881".to_string()][..]) && !s.lsd),
        "{commands:?}"
    );
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    harness
        .get_by_label("DHT: find peers without trackers")
        .click();
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)] if s.dht.is_none() && !s.lsd),
        "{commands:?}"
    );
}

#[test]
fn start_at_login_and_close_to_tray_switches() {
    let (mut harness, rig) = rig();
    assert!(harness.state().settings.close_to_tray && !harness.state().settings.start_at_login);
    save_settings_after_clicking(
        &mut harness,
        &[
            "Start Rivulet when I log in",
            "Closing the window keeps Rivulet running in the tray",
        ],
    );
    assert_eq!(*rig.desktop.autostart.lock().unwrap(), vec![true]);
    assert!(!harness.state().settings.close_to_tray);
    // Saving again without a change leaves the entry alone; switching off removes it.
    save_settings_after_clicking(&mut harness, &[]);
    assert_eq!(*rig.desktop.autostart.lock().unwrap(), vec![true]);
    save_settings_after_clicking(&mut harness, &["Start Rivulet when I log in"]);
    assert_eq!(*rig.desktop.autostart.lock().unwrap(), vec![true, false]);
}

/// Without a tray (none attached, or close-to-tray off), closing the window closes it; Ctrl+Q
/// quits in any case.
#[test]
fn closing_without_a_tray_quits_and_ctrl_q_quits() {
    let (mut harness, _rig) = rig();
    let commands = common::window::close_window(&mut harness);
    assert!(
        !commands.contains(&egui::ViewportCommand::CancelClose),
        "{commands:?}"
    );
    assert!(harness.state().window_visible());

    let (mut harness, _rig) = rig();
    let (tray, pending) = common::fakes::FakeTray::hosted();
    harness.state_mut().attach_tray(pending);
    harness.state_mut().settings.close_to_tray = false;
    harness.step();
    let commands = common::window::close_window(&mut harness);
    assert!(
        !commands.contains(&egui::ViewportCommand::CancelClose),
        "close-to-tray off: {commands:?}"
    );
    // With the setting on but the tray host gone, closing quits too.
    harness.state_mut().settings.close_to_tray = true;
    tray.hosted
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let commands = common::window::close_window(&mut harness);
    assert!(
        !commands.contains(&egui::ViewportCommand::CancelClose),
        "no tray host: {commands:?}"
    );
    tray.hosted
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let commands = common::window::close_window(&mut harness);
    assert!(
        commands.contains(&egui::ViewportCommand::CancelClose),
        "with a tray host the window hides: {commands:?}"
    );

    assert!(!harness.state().quitting());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Q);
    harness.run_steps(2);
    assert!(harness.state().quitting(), "Ctrl+Q quits");
}

/// `rivulet --minimized`: the window goes to the tray once one is up, and stays shown when
/// there is none.
#[test]
fn started_minimized_it_hides_in_the_tray_or_stays_without_one() {
    let (mut harness, _rig) = rig();
    let (_tray, pending) = common::fakes::FakeTray::hosted();
    harness.state_mut().attach_tray(pending);
    harness.state_mut().start_hidden();
    harness.run_steps(3);
    assert!(!harness.state().window_visible(), "hidden in the tray");

    let (mut harness, _rig) = rig();
    let (no_tray, pending) = std::sync::mpsc::channel();
    drop(no_tray);
    harness.state_mut().attach_tray(pending);
    harness.state_mut().start_hidden();
    harness.run_steps(3);
    assert!(
        harness.state().window_visible(),
        "no tray: the window stays"
    );
}

#[test]
fn the_encryption_setting_reaches_the_engine() {
    let (mut harness, rig) = rig();
    assert_eq!(
        harness.state().settings.encryption,
        rivulet::mse::EncryptionPolicy::Prefer
    );
    save_settings_after_clicking(&mut harness, &["Require"]);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)]
            if s.encryption == rivulet::mse::EncryptionPolicy::Require),
        "{commands:?}"
    );
}

#[test]
fn the_transport_setting_reaches_the_engine() {
    let (mut harness, rig) = rig();
    assert_eq!(
        harness.state().settings.transport,
        rivulet::net::TransportMode::UtpFirst
    );
    save_settings_after_clicking(&mut harness, &["TCP only"]);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)]
            if s.transport == rivulet::net::TransportMode::TcpOnly),
        "{commands:?}"
    );
}

/// Opens Settings, clicks each of `labels`, and saves.
fn save_settings_after_clicking(harness: &mut Harness<'_, RivuletApp>, labels: &[&str]) {
    harness.get_by_label("Settings").click();
    harness.run_steps(4);
    for label in labels {
        harness.get_by_label(label).click();
    }
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    harness.run_steps(2);
}

/// Port mapping: the switch reaches the engine, and the status bar says what the router did.
#[test]
fn port_mapping_switch_and_its_status() {
    let (mut harness, rig) = rig();
    assert!(harness.state().settings.port_mapping);
    save_settings_after_clicking(
        &mut harness,
        &["Open the listen port at the router (UPnP / NAT-PMP)"],
    );
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)] if !s.port_mapping),
        "{commands:?}"
    );
    use rivulet::portmap::{MappingProtocol, MappingStatus};
    for (status, shown) in [
        (
            MappingStatus::Mapped {
                via: MappingProtocol::Upnp,
                external_port: 6881,
                external_ip: None,
            },
            "port 6881 open via UPnP",
        ),
        (
            MappingStatus::Failed {
                reason: "no gateway found".into(),
            },
            "not mapped: no gateway found",
        ),
    ] {
        let mut snapshot = (*rig.engine.snapshot.lock().unwrap()).as_ref().clone();
        snapshot.port_mapping = Some(status);
        *rig.engine.snapshot.lock().unwrap() = Arc::new(snapshot);
        harness.run_steps(2);
        assert!(harness.query_by_label(shown).is_some(), "{shown}");
    }
}

/// The network interface setting: a name reaches the engine as a binding; text that is no
/// interface name or address is explained and cannot be saved; a bound interface that is
/// down shows in the status bar and on the torrent's row.
#[test]
fn the_network_interface_setting_and_a_down_interface() {
    let (mut harness, rig) = rig();
    let set_interface = |harness: &mut Harness<'_, RivuletApp>, text: &str| {
        harness.get_by_label("Settings").click();
        harness.run_steps(4);
        harness.get_by_label("Network interface").focus();
        harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        harness.get_by_label("Network interface").type_text(text);
        harness.run_steps(2);
    };
    set_interface(&mut harness, "wg0/x");
    assert!(
        harness
            .query_by_label("\"wg0/x\" is neither an IP address nor a network interface name")
            .is_some()
    );
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    assert!(
        rig.engine.take().is_empty(),
        "an invalid binding is not saved"
    );
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    set_interface(&mut harness, "wg0");
    harness.get_by_label("Save").click();
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)]
            if s.bind == rivulet::net::Binding::Interface("wg0".into())),
        "{commands:?}"
    );

    let reason = "network interface wg0 is down";
    let mut snapshot = (*rig.engine.snapshot.lock().unwrap()).as_ref().clone();
    snapshot.network_down = Some(reason.into());
    let mut waiting = torrent(1, "waiting.iso");
    waiting.state = TorrentState::Offline(reason.into());
    snapshot.torrents = vec![Arc::new(waiting)];
    *rig.engine.snapshot.lock().unwrap() = Arc::new(snapshot);
    harness.run_steps(2);
    assert!(harness.query_by_label("Network down").is_some());
    assert!(
        harness
            .query_by_label(&format!("Offline · {reason}"))
            .is_some(),
        "the row says why"
    );
}

/// A torrent of three files, two of them in a folder: `set/a/x.bin`, `set/a/y.bin`,
/// `set/z.bin`.
fn make_multi_file_torrent(dir: &Path) -> (PathBuf, Vec<u8>) {
    common::write_files(
        dir,
        &[
            ("set/a/x.bin", 20_000),
            ("set/a/y.bin", 30_000),
            ("set/z.bin", 10_000),
        ],
    );
    let bytes = common::torrent_for(&dir.join("set"), 16384, "http://127.0.0.1:1/announce");
    let path = dir.join("set.torrent");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn added_plans(rig: &Rig) -> Vec<rivulet::engine::DownloadPlan> {
    rig.engine
        .take()
        .into_iter()
        .filter_map(|c| match c {
            Command::Add(a) => Some(a.plan),
            _ => None,
        })
        .collect()
}

#[test]
fn the_add_dialog_chooses_files_and_the_order() {
    use rivulet::engine::FilePriority::{Normal, Skip};
    let (mut harness, rig) = rig();
    let src = tempfile::tempdir().unwrap();
    let (path, bytes) = make_multi_file_torrent(src.path());
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(path)));
    harness.step();
    wait_for_label(&mut harness, "Save to");
    assert_shown(&harness, "58.6 KiB of 58.6 KiB chosen");
    harness.get_by_label("Select none").click();
    harness.run_steps(2);
    assert_shown(&harness, "0 B of 58.6 KiB chosen");
    // The folder's checkbox takes every file in it; then one is unticked.
    harness.get_by_label("a/").click();
    harness.run_steps(2);
    harness.get_by_label("x.bin").click();
    harness.run_steps(2);
    assert_shown(&harness, "29.3 KiB of 58.6 KiB chosen");
    harness.get_by_label("Download in sequential order").click();
    harness.get_by_label("First and last pieces first").click();
    harness.run_steps(2);
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    let plans = added_plans(&rig);
    let [plan] = plans.as_slice() else {
        panic!("one add: {plans:?}")
    };
    assert_eq!(plan.priorities, vec![Skip, Normal, Skip]);
    assert!(plan.sequential && plan.first_last_first);

    // "Select all" after a change adds everything; a magnet link's `so` pre-selects.
    let meta = rivulet::metainfo::Metainfo::from_bytes(&bytes).unwrap();
    rig.engine.events.lock().unwrap().push(Event::ConfirmAdd {
        id: meta.info_hash,
        torrent: Arc::new(bytes.clone()),
        save_dir: rig._dir.path().join("downloads"),
        paused: false,
        seed: true,
        select_only: Some(vec![2..=2]),
    });
    harness.step();
    wait_for_label(&mut harness, "Save to");
    assert_shown(&harness, "9.8 KiB of 58.6 KiB chosen");
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    let plans = added_plans(&rig);
    assert_eq!(plans[0].priorities, vec![Skip, Skip, Normal]);
    assert!(
        !plans[0].sequential,
        "the order is chosen again for each dialog"
    );
}

#[test]
fn the_files_tab_sets_priorities_of_files_and_folders() {
    use rivulet::engine::FilePriority;
    let (mut harness, rig) = rig();
    let mut alpha = torrent(1, "alpha");
    let second = rivulet::engine::FileProgress {
        path: PathBuf::from("alpha/extras/making-of.mkv"),
        length: 1 << 20,
        verified_bytes: 0,
        priority: FilePriority::Skip,
    };
    alpha.files.push(second);
    rig.engine.set_torrents(vec![alpha]);
    harness.run_steps(2);
    harness.get_by_label("alpha").click();
    harness.run_steps(2);
    click_lowest(&mut harness, "Files");
    harness.run_steps(2);
    assert!(
        harness.query_by_label("Skip").is_some(),
        "the priority column"
    );

    harness.get_by_label("inner-file.bin").click_secondary();
    harness.run_steps(2);
    harness.get_by_label("Do not download").click();
    harness.run_steps(2);
    harness.get_by_label_contains("extras/").click_secondary();
    harness.run_steps(2);
    harness.get_by_label("High").click();
    harness.run_steps(2);
    harness.get_by_label("Skip").click();
    harness.run_steps(2);
    click_lowest(&mut harness, "Low");
    harness.run_steps(2);
    let commands = rig.engine.take();
    let id = InfoHash([1; 20]);
    assert!(
        matches!(
            commands.as_slice(),
            [
                Command::SetFilePriority { id: a, files: f1, priority: FilePriority::Skip },
                Command::SetFilePriority { id: b, files: f2, priority: FilePriority::High },
                Command::SetFilePriority { id: c, files: f3, priority: FilePriority::Low },
            ] if *a == id && *b == id && *c == id && f1 == &[0] && f2 == &[1] && f3 == &[1]
        ),
        "{commands:?}"
    );
}

#[test]
fn the_row_menu_switches_the_download_order_and_eta_shows_only_while_downloading() {
    let (mut harness, rig) = rig();
    let mut seeding = torrent(1, "alpha");
    seeding.state = TorrentState::Seeding;
    seeding.eta = None;
    let mut stalled = torrent(2, "beta");
    stalled.eta = None;
    rig.engine.set_torrents(vec![seeding, stalled]);
    harness.run_steps(2);
    assert_eq!(
        harness.query_all_by_label("∞").count(),
        1,
        "∞ for the stalled download only, not the seeding torrent"
    );
    harness.get_by_label("beta").click_secondary();
    harness.run_steps(3);
    harness.get_by_label("Download in sequential order").click();
    harness.run_steps(2);
    // The row, not the details pane's name below it.
    topmost(&harness, "beta").click_secondary();
    harness.run_steps(3);
    harness.get_by_label("First and last pieces first").click();
    harness.run_steps(2);
    let beta = InfoHash([2; 20]);
    let commands = rig.engine.take();
    assert!(
        matches!(
            commands.as_slice(),
            [Command::SetSequential(a, true), Command::SetFirstLastFirst(b, true)]
                if *a == beta && *b == beta
        ),
        "{commands:?}"
    );
}

#[test]
fn the_row_menu_moves_torrents_in_the_queue_and_force_starts_them() {
    let (mut harness, rig) = rig();
    let mut queued = torrent(2, "beta");
    queued.state = TorrentState::Queued;
    queued.queued = true;
    rig.engine.set_torrents(vec![torrent(1, "alpha"), queued]);
    harness.run_steps(2);
    assert!(
        harness.query_by_label("Queued").is_some(),
        "the Queued state"
    );
    harness.get_by_label("2").click(); // the "#" column: beta is second in the queue
    harness.run_steps(2);
    let open_menu = |harness: &mut Harness<'_, RivuletApp>| {
        topmost(harness, "beta").click_secondary();
        harness.run_steps(3);
    };
    open_menu(&mut harness);
    harness.get_by_label("Queue").hover();
    harness.run_steps(3);
    harness.get_by_label("Move to top").click();
    harness.run_steps(2);
    open_menu(&mut harness);
    harness.get_by_label("Force start").click();
    harness.run_steps(2);
    let beta = InfoHash([2; 20]);
    let commands = rig.engine.take();
    assert!(
        matches!(
            commands.as_slice(),
            [
                Command::MoveInQueue(ids, rivulet::engine::QueueMove::Top),
                Command::ForceStart(b, true),
            ] if ids == &[beta] && *b == beta
        ),
        "{commands:?}"
    );
}

#[test]
fn the_queue_settings_reach_the_engine() {
    let (mut harness, rig) = rig();
    assert!(harness.state().settings.queue_enabled);
    save_settings_after_clicking(&mut harness, &["Queue torrents"]);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)]
            if !s.queue.enabled && s.queue.max_downloads == 3 && s.queue.max_seeds == 5),
        "{commands:?}"
    );
}

#[test]
fn the_general_tab_sets_a_torrents_goals_and_limits_and_settings_the_sessions() {
    use rivulet::engine::Limit;
    let (mut harness, rig) = rig();
    rig.engine.set_torrents(vec![torrent(1, "alpha")]);
    harness.run_steps(2);
    harness.get_by_label("alpha").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("Seeding time").is_some());
    // The ratio row's "At", then the time row's "Never".
    topmost(&harness, "At").click();
    harness.run_steps(2);
    lowest(&harness, "Never").click();
    harness.run_steps(2);
    let alpha = InfoHash([1; 20]);
    let commands = rig.engine.take();
    assert!(
        matches!(
            commands.as_slice(),
            [Command::SetSeedGoals(a, g1), Command::SetSeedGoals(b, g2)]
                if *a == alpha && *b == alpha
                    && g1.ratio == Limit::Value(2.0) && g1.seeding_time == Limit::Global
                    && g2.seeding_time == Limit::Unlimited
        ),
        "{commands:?}"
    );
    // A click on a number opens it for typing.
    harness
        .get_by_label("Download limit (KiB/s, 0 = none)")
        .click();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_label("Download limit (KiB/s, 0 = none)")
        .type_text("300");
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
    let commands = rig.engine.take();
    assert!(
        commands.iter().any(|c| matches!(c,
            Command::SetSpeedLimits { id, down, up: 0 } if *id == alpha && *down == 300 * 1024)),
        "{commands:?}"
    );

    save_settings_after_clicking(&mut harness, &["At ratio", "then remove (keep files)"]);
    let commands = rig.engine.take();
    assert!(
        matches!(commands.as_slice(), [Command::ApplySettings(s)]
            if s.seed_goals.ratio == Some(2.0)
                && s.seed_goals.seeding_time.is_none()
                && s.seed_goals.action == rivulet::engine::GoalAction::Remove),
        "{commands:?}"
    );
}

#[test]
fn the_filter_box_and_side_list_narrow_the_table_and_keep_the_selection() {
    let (mut harness, rig) = rig();
    let mut seeding = torrent(2, "beta");
    seeding.state = TorrentState::Seeding;
    seeding.wanted_verified = seeding.wanted_size;
    let mut other_tracker = torrent(3, "gamma");
    other_tracker.trackers[0].url = "udp://tracker.example:1337/announce".into();
    rig.engine
        .set_torrents(vec![torrent(1, "alpha"), seeding, other_tracker]);
    harness.run_steps(2);
    harness.get_by_label("alpha").click();
    harness.run_steps(2);
    let rows = |h: &Harness<'_, RivuletApp>| {
        ["alpha", "beta", "gamma"]
            .into_iter()
            .filter(|n| h.query_all_by_label(n).next().is_some())
            .collect::<Vec<_>>()
    };
    assert!(harness.query_by_label("Seeding (1)").is_some());
    assert!(harness.query_by_label("Downloading (2)").is_some());
    assert!(harness.query_by_label("tracker.example (1)").is_some());
    assert!(harness.query_by_label("127.0.0.1 (2)").is_some());

    harness.get_by_label("Seeding (1)").click();
    harness.run_steps(2);
    // alpha stays in the details pane (still selected), not in the table.
    assert_eq!(rows(&harness), vec!["alpha", "beta"]);
    assert_eq!(harness.query_all_by_label("alpha").count(), 1);
    topmost(&harness, "All (3)").click(); // the state list's All
    harness.run_steps(2);
    harness.get_by_label("tracker.example (1)").click();
    harness.run_steps(2);
    assert_eq!(harness.query_all_by_label("gamma").count(), 1);
    assert!(harness.query_all_by_label("beta").next().is_none());
    lowest(&harness, "All (3)").click(); // the trackers' All
    harness.run_steps(2);
    harness.get_by_label("Filter by name").click();
    harness.run_steps(1);
    harness.get_by_label("Filter by name").type_text("GAM");
    harness.run_steps(2);
    assert!(harness.query_all_by_label("beta").next().is_none());
    assert_eq!(harness.query_all_by_label("gamma").count(), 1);
    // Cleared: every row back, alpha still selected (its row and its details).
    harness.get_by_label("Filter by name").click();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.key_press(egui::Key::Backspace);
    harness.run_steps(2);
    assert_eq!(rows(&harness), vec!["alpha", "beta", "gamma"]);
    assert_eq!(
        harness.query_all_by_label("alpha").count(),
        2,
        "row and details"
    );
    assert!(rig.engine.take().is_empty());
}

#[test]
fn set_location_moves_the_data_and_the_files_tab_opens_folders() {
    let (mut harness, rig) = rig();
    rig.engine.set_torrents(vec![torrent(1, "alpha")]);
    harness.run_steps(2);
    harness.get_by_label("alpha").click_secondary();
    harness.run_steps(3);
    harness.get_by_label("Set location…").click();
    harness.run_steps(3);
    let alpha = InfoHash([1; 20]);
    let commands = rig.engine.take();
    assert!(
        matches!(
            commands.as_slice(),
            [Command::MoveData { id, to }] if *id == alpha && to == Path::new("/data/alpha/picked")
        ),
        "{commands:?}"
    );

    topmost(&harness, "alpha").click();
    harness.run_steps(2);
    click_lowest(&mut harness, "Files");
    harness.run_steps(2);
    harness.get_by_label("inner-file.bin").click_secondary();
    harness.run_steps(2);
    harness.get_by_label("Open containing folder").click();
    harness.run_steps(2);
    harness.get_by_label_contains("alpha/").click_secondary();
    harness.run_steps(2);
    click_lowest(&mut harness, "Open folder"); // the menu's, not the toolbar's
    harness.run_steps(2);
    assert_eq!(
        rig.desktop.opened.lock().unwrap().as_slice(),
        [
            PathBuf::from("/data/alpha/alpha"),
            PathBuf::from("/data/alpha/alpha")
        ]
    );
}
