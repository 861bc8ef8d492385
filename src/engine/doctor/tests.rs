use super::*;

fn tracker(status: TrackerStatus) -> TrackerSnapshot {
    TrackerSnapshot {
        url: "http://127.0.0.1:1/announce".into(),
        tier: 0,
        status,
        seeders: None,
        leechers: None,
        completed: None,
        last_announce: None,
        next_announce: None,
    }
}

fn peer(port: u16, has_wanted: bool, choking_us: bool, down_rate: u64) -> PeerFacts {
    PeerFacts {
        addr: ([127, 0, 0, 1], port).into(),
        client: "libtorrent 2.0.8".into(),
        has_wanted,
        choking_us,
        down_rate,
        seed: false,
    }
}

const DOWNLOADING: TorrentState = TorrentState::Downloading;

/// A healthy download: a working tracker, one fast unchoking seed, no limits, the port open.
fn healthy<'a>(
    trackers: &'a [TrackerSnapshot],
    peers: &'a [PeerFacts],
    unavailable: &'a Unavailable,
    inbound: &'a InboundFacts,
) -> Facts<'a> {
    Facts {
        state: &DOWNLOADING,
        finished: false,
        active: true,
        needs_check: false,
        trackers,
        sources: &[],
        known_addresses: 1,
        peers,
        ever_connected: true,
        unavailable,
        last_seed: Some(Duration::ZERO),
        swarm: (Some(1), Some(1)),
        down_rate: 5 << 20,
        up_rate: 0,
        down_limit: None,
        up_limit: None,
        disk_wait: Duration::ZERO,
        inbound,
    }
}

fn kinds(found: &[Finding]) -> Vec<FindingKind> {
    found.iter().map(|f| f.kind).collect()
}

#[test]
fn a_healthy_download_has_no_finding() {
    let trackers = [tracker(TrackerStatus::Working { warning: None })];
    let peers = [peer(1, true, false, 5 << 20)];
    let inbound = InboundFacts {
        listen_port: 6881,
        last: Some(Duration::from_secs(5)),
        session_age: Duration::from_secs(7200),
        port_mapping: None,
    };
    let unavailable = Unavailable::default();
    let facts = healthy(&trackers, &peers, &unavailable, &inbound);
    assert_eq!(diagnose(&facts, &DoctorSettings::default()), vec![]);
}

#[test]
fn no_peers_names_every_source_that_found_none() {
    let trackers = [tracker(TrackerStatus::Failed(TrackerError::Unreachable(
        "connection refused".into(),
    )))];
    let sources = [SourceSnapshot {
        source: PeerSource::Dht,
        state: SourceState::Working,
        peers: 0,
    }];
    let inbound = InboundFacts::default();
    let unavailable = Unavailable::default();
    let facts = Facts {
        sources: &sources,
        known_addresses: 0,
        ever_connected: false,
        ..healthy(&trackers, &[], &unavailable, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(kinds(&found), vec![FindingKind::NoPeers]);
    assert_eq!(
        found[0].message,
        "No peers known: its only tracker failed, DHT found none"
    );
    assert_eq!(found[0].severity, Severity::Error);
    assert!(
        found[0]
            .evidence
            .iter()
            .any(|e| e.contains("tracker unreachable: connection refused")),
        "{:?}",
        found[0].evidence
    );
    let known = Facts {
        known_addresses: 3,
        ..facts
    };
    assert_eq!(
        diagnose(&known, &DoctorSettings::default())[0].message,
        "None of the 3 peers known answers"
    );
}

#[test]
fn pieces_nobody_has_are_named_as_ranges_with_their_share() {
    let ranges = unavailable_ranges(
        [3, 4, 5, 9, 20, 21].into_iter(),
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ],
    );
    assert_eq!(ranges, vec![3..=5, 9..=9, 20..=20]);
    assert_eq!(piece_ranges(&ranges), "pieces 3–5, 9, 20");
    assert_eq!(piece_ranges(&[7..=7]), "piece 7");
    let many: Vec<_> = (0..6).map(|i| i * 2..=i * 2).collect();
    assert_eq!(piece_ranges(&many), "pieces 0, 2, 4, 6 and 2 more ranges");

    let unavailable = Unavailable {
        ranges: vec![311..=340],
        pieces: 30,
        bytes: 120 << 20,
        wanted_bytes: 1000 << 20,
    };
    let trackers = [tracker(TrackerStatus::Working { warning: None })];
    let peers = [peer(1, false, true, 0)];
    let inbound = InboundFacts::default();
    let facts = Facts {
        last_seed: Some(Duration::from_secs(7200)),
        swarm: (Some(0), Some(3)),
        down_rate: 0,
        ..healthy(&trackers, &peers, &unavailable, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(kinds(&found), vec![FindingKind::PiecesUnavailable]);
    assert_eq!(
        found[0].message,
        "No one has pieces 311–340 (12% of the torrent): no seed has been seen for 2h 0m; \
         the download cannot finish until one returns"
    );
    assert!(
        found[0]
            .evidence
            .contains(&"0 seeds in the swarm by the tracker".to_string())
    );
}

#[test]
fn gaps_are_named_after_a_restart_but_not_for_a_torrent_with_nothing_yet() {
    let trackers = [tracker(TrackerStatus::Working { warning: None })];
    let inbound = InboundFacts::default();
    let restarted = Unavailable {
        ranges: vec![10..=11],
        pieces: 2,
        bytes: 2 << 18,
        wanted_bytes: 12 << 18,
    };
    let facts = Facts {
        ever_connected: false,
        last_seed: None,
        down_rate: 0,
        ..healthy(&trackers, &[], &restarted, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(
        kinds(&found),
        vec![FindingKind::NoPeers, FindingKind::PiecesUnavailable]
    );
    assert!(
        found[1]
            .message
            .contains("no seed has been seen since it started")
    );
    let fresh = Unavailable {
        ranges: vec![0..=11],
        pieces: 12,
        bytes: 12 << 18,
        wanted_bytes: 12 << 18,
    };
    let facts = Facts {
        unavailable: &fresh,
        ..facts
    };
    assert_eq!(
        kinds(&diagnose(&facts, &DoctorSettings::default())),
        vec![FindingKind::NoPeers],
        "nothing yet and no peer ever: no peers is the whole story"
    );
}

#[test]
fn peers_that_all_choke_us_are_told_apart_from_slow_ones() {
    let trackers = [tracker(TrackerStatus::Working { warning: None })];
    let inbound = InboundFacts::default();
    let unavailable = Unavailable::default();
    let choking = [
        peer(1, true, true, 0),
        peer(2, true, true, 0),
        peer(3, false, false, 0),
    ];
    let facts = Facts {
        down_rate: 0,
        ..healthy(&trackers, &choking, &unavailable, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(kinds(&found), vec![FindingKind::AllChoking]);
    assert_eq!(found[0].message, "Connected to 2 peers, all choking us");

    let slow = [
        peer(1, true, false, 40 << 10),
        peer(2, true, false, 10 << 10),
    ];
    let facts = Facts {
        down_rate: 50 << 10,
        ..healthy(&trackers, &slow, &unavailable, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(kinds(&found), vec![FindingKind::SlowPeers]);
    assert_eq!(
        found[0].message,
        "Peers are slow: the best gives 40.0 KiB/s"
    );
    assert_eq!(found[0].severity, Severity::Info);

    // Our own limit, not the peers, is what holds the rate.
    let limited = Facts {
        down_limit: Some(LimitFacts {
            rate: 50 << 10,
            own: true,
        }),
        ..facts
    };
    let found = diagnose(&limited, &DoctorSettings::default());
    assert_eq!(kinds(&found), vec![FindingKind::DownloadLimit]);
    assert_eq!(
        found[0].message,
        "Limited by your own download limit (50.0 KiB/s)"
    );
    assert!(
        found[0]
            .evidence
            .contains(&"The torrent's own limit (General tab)".to_string())
    );
}

#[test]
fn a_slow_disk_and_a_closed_port_are_warnings() {
    let trackers = [tracker(TrackerStatus::Working { warning: None })];
    let peers = [peer(1, true, false, 5 << 20)];
    let unavailable = Unavailable::default();
    let inbound = InboundFacts {
        listen_port: 6881,
        last: None,
        session_age: Duration::from_secs(3600),
        port_mapping: Some("not mapped: no gateway found".into()),
    };
    let facts = Facts {
        disk_wait: Duration::from_millis(850),
        ..healthy(&trackers, &peers, &unavailable, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(
        kinds(&found),
        vec![FindingKind::DiskBound, FindingKind::NoInbound]
    );
    assert_eq!(found[0].message, "Limited by the disk: writes wait 850 ms");
    assert_eq!(
        found[1].message,
        "Nobody can connect to you: no incoming connection in 30m 0s; your port 6881 may be closed"
    );
    assert!(
        found[1]
            .evidence
            .contains(&"Port mapping: not mapped: no gateway found".to_string())
    );
    assert_eq!(
        found[1].severity,
        Severity::Info,
        "a download with peers is told of a closed port, without a warning"
    );

    // A session younger than the silence cannot tell yet.
    let young = InboundFacts {
        session_age: Duration::from_secs(60),
        ..inbound.clone()
    };
    let facts = Facts {
        inbound: &young,
        ..facts
    };
    assert_eq!(
        kinds(&diagnose(&facts, &DoctorSettings::default())),
        vec![FindingKind::DiskBound]
    );
}

#[test]
fn seeding_to_nobody_queued_and_refused_are_said() {
    let trackers = [tracker(TrackerStatus::Failed(TrackerError::Failure(
        "unregistered torrent".into(),
    )))];
    let inbound = InboundFacts::default();
    let unavailable = Unavailable::default();
    let seeding = TorrentState::Seeding;
    let facts = Facts {
        state: &seeding,
        finished: true,
        swarm: (None, None),
        ..healthy(&trackers, &[], &unavailable, &inbound)
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(
        kinds(&found),
        vec![FindingKind::TrackerRefused, FindingKind::NoLeechers]
    );
    assert_eq!(
        found[0].message,
        "The only tracker says: unregistered torrent"
    );
    assert_eq!(found[1].message, "Seeding, but no one is downloading");

    let queued = TorrentState::Queued;
    let facts = Facts {
        state: &queued,
        active: false,
        ..facts
    };
    let found = diagnose(&facts, &DoctorSettings::default());
    assert_eq!(kinds(&found), vec![FindingKind::Queued]);
    assert!(found[0].message.starts_with("Paused by the queue"));
}
