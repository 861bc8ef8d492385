//! The swarm doctor: why a torrent is stuck or slow, in plain words.
//!
//! [`diagnose`] is a pure function from the [`Facts`] a torrent's actor gathers (its trackers,
//! sources, peers, the pieces nobody has, its limits, the disk's back-pressure, inbound
//! connections) to [`Finding`]s, most important first. The actor (`torrent::health`) shows a
//! finding whose cause takes time to tell (no peers, choking, slow peers...) only once that
//! cause has held for [`DoctorSettings::settle`], and drops any finding as soon as its cause
//! is gone.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::outcome::TrackerStatus;
use super::snapshot::{
    PeerSource, SourceSnapshot, SourceState, TorrentSnapshot, TorrentState, TrackerSnapshot,
};
use crate::sync::MutexExt;
use crate::tracker::client::TrackerError;
use crate::units;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing to fix (the queue, your own limit, a quiet swarm).
    Info,
    /// Something holds the torrent back; the table's Status cell shows it.
    Warning,
    /// The torrent cannot go on until this changes.
    Error,
}

impl Severity {
    pub fn label(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding is about: one finding of each kind at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// Stopped by an error (a full disk...).
    Failed,
    /// The bound network interface is down.
    Offline,
    /// Wanted pieces no connected peer has.
    PiecesUnavailable,
    /// No peer connected, and none known or none answering.
    NoPeers,
    /// A tracker answered with a failure reason ("unregistered torrent").
    TrackerRefused,
    /// Every peer with pieces we want chokes us.
    AllChoking,
    /// No incoming connection for a long time.
    NoInbound,
    /// Pieces wait for room in the disk's write queue.
    DiskBound,
    /// Our own download limit is what holds the rate.
    DownloadLimit,
    /// Our own upload limit is what holds the rate.
    UploadLimit,
    /// Peers unchoke us but send little.
    SlowPeers,
    /// Seeding to nobody.
    NoLeechers,
    /// Waiting for a slot in the session's queue.
    Queued,
    /// The data must be checked before anything else; it is when the torrent is resumed.
    WaitingForCheck,
}

impl FindingKind {
    /// Whether its cause must hold for [`DoctorSettings::settle`] before it is shown (a
    /// torrent that just started has no peers yet; peers choke until their next round).
    pub fn settles(&self) -> bool {
        !matches!(
            self,
            FindingKind::Failed
                | FindingKind::Offline
                | FindingKind::Queued
                | FindingKind::WaitingForCheck
                | FindingKind::TrackerRefused
                | FindingKind::NoInbound
        )
    }
}

/// One thing the doctor found: how much it matters, a one-line message, and the facts it
/// rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub message: String,
    pub evidence: Vec<String>,
}

/// When the doctor speaks. The defaults suit the app; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoctorSettings {
    /// How long a cause must hold before its finding is shown.
    pub settle: Duration,
    /// No incoming connection for this long (and the session up as long) says the port may
    /// be closed.
    pub inbound_silence: Duration,
    /// Below this (bytes per second) from every unchoking peer, peers are called slow.
    pub slow_rate: u64,
    /// Pieces that wait this long on average for the disk's write queue say the disk is
    /// the bottleneck.
    pub disk_wait: Duration,
}

impl Default for DoctorSettings {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(30),
            inbound_silence: Duration::from_secs(30 * 60),
            slow_rate: 64 * 1024,
            disk_wait: Duration::from_millis(500),
        }
    }
}

/// One connected peer, as the doctor sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerFacts {
    pub addr: SocketAddr,
    pub client: String,
    /// It has pieces we want (we are interested).
    pub has_wanted: bool,
    pub choking_us: bool,
    pub down_rate: u64,
    pub seed: bool,
}

/// A limit of our own that made transfers wait in the last seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitFacts {
    pub rate: u64,
    /// The torrent's own limit (else the session's).
    pub own: bool,
}

/// What the session knows about connections coming in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundFacts {
    pub listen_port: u16,
    /// How long ago the last incoming peer connection was made (`None`: never).
    pub last: Option<Duration>,
    pub session_age: Duration,
    /// The port mapping's state, while port mapping is on.
    pub port_mapping: Option<String>,
}

/// Wanted pieces nobody connected has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unavailable {
    pub ranges: Vec<RangeInclusive<u32>>,
    pub pieces: u32,
    /// Their bytes, and the bytes wanted.
    pub bytes: u64,
    pub wanted_bytes: u64,
}

/// Everything [`diagnose`] looks at, for one torrent at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub state: &'a TorrentState,
    /// Every wanted piece is in.
    pub finished: bool,
    /// Connected to the swarm (downloading or seeding).
    pub active: bool,
    /// Paused with data that must be checked first.
    pub needs_check: bool,
    pub trackers: &'a [TrackerSnapshot],
    pub sources: &'a [SourceSnapshot],
    /// Addresses known but not connected.
    pub known_addresses: usize,
    pub peers: &'a [PeerFacts],
    /// A peer was connected at some point since the torrent became active.
    pub ever_connected: bool,
    pub unavailable: &'a Unavailable,
    /// How long ago a seed was last connected (`None`: not since the torrent started).
    pub last_seed: Option<Duration>,
    /// Seeders and leechers by the trackers' counts.
    pub swarm: (Option<u32>, Option<u32>),
    pub down_rate: u64,
    pub up_rate: u64,
    pub down_limit: Option<LimitFacts>,
    pub up_limit: Option<LimitFacts>,
    /// The recent average wait of a piece for room in the disk's write queue.
    pub disk_wait: Duration,
    pub inbound: &'a InboundFacts,
}

/// The findings for `facts`, most important first.
pub fn diagnose(facts: &Facts<'_>, settings: &DoctorSettings) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut add = |kind, severity, message: String, evidence: Vec<String>| {
        found.push(Finding {
            kind,
            severity,
            message,
            evidence,
        })
    };
    match facts.state {
        TorrentState::Error(e) => add(
            FindingKind::Failed,
            Severity::Error,
            format!("Stopped by an error: {e}"),
            vec!["Resume the torrent once the cause is fixed".into()],
        ),
        TorrentState::Offline(why) => add(
            FindingKind::Offline,
            Severity::Warning,
            format!("Offline: {why}"),
            vec!["It starts again when the network is back".into()],
        ),
        TorrentState::Queued => add(
            FindingKind::Queued,
            Severity::Info,
            "Paused by the queue: it starts when a download or seeding slot frees up".into(),
            vec![
                "The Queue row of Settings sets how many torrents run at once".into(),
                "Force start runs it now, whatever the queue says".into(),
            ],
        ),
        _ => {}
    }
    if facts.needs_check {
        add(
            FindingKind::WaitingForCheck,
            Severity::Info,
            "Waiting for a recheck: what is on disk is checked when it is resumed".into(),
            vec!["The data on disk is not known to match the torrent".into()],
        );
    }
    if !facts.active {
        return sorted(found);
    }
    if let Some((message, evidence)) = trackers_refusing(facts.trackers) {
        add(
            FindingKind::TrackerRefused,
            Severity::Warning,
            message,
            evidence,
        );
    }
    if facts.finished {
        seeding_findings(facts, &mut add);
    } else {
        download_findings(facts, settings, &mut add);
    }
    if let Some((message, evidence)) = no_inbound(facts.inbound, settings.inbound_silence) {
        // It matters most to a download with no peer: peers that cannot reach us either never
        // meet us. A torrent that has peers is told, without a warning.
        let severity = match !facts.finished && facts.peers.is_empty() {
            true => Severity::Warning,
            false => Severity::Info,
        };
        add(FindingKind::NoInbound, severity, message, evidence);
    }
    sorted(found)
}

fn sorted(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| std::cmp::Reverse(f.severity));
    found
}

type Add<'a> = dyn FnMut(FindingKind, Severity, String, Vec<String>) + 'a;

fn download_findings(facts: &Facts<'_>, settings: &DoctorSettings, add: &mut Add<'_>) {
    if facts.peers.is_empty() {
        let (message, evidence) = no_peers(facts);
        add(FindingKind::NoPeers, Severity::Error, message, evidence);
    }
    // A torrent that never had a peer and has nothing yet is told so by `NoPeers`; one that
    // had (or has some of its data, as after a restart) has gaps worth naming.
    let u = facts.unavailable;
    if u.pieces > 0 && (facts.ever_connected || u.bytes < u.wanted_bytes) {
        let (message, evidence) = unavailable(facts);
        add(
            FindingKind::PiecesUnavailable,
            Severity::Error,
            message,
            evidence,
        );
    }
    let sources: Vec<&PeerFacts> = facts.peers.iter().filter(|p| p.has_wanted).collect();
    let unchoking = sources.iter().filter(|p| !p.choking_us).count();
    if !sources.is_empty() && unchoking == 0 {
        let mut evidence = vec![format!(
            "{} of {} with pieces you want, none unchoking you",
            units::count(sources.len(), "peer"),
            units::count(facts.peers.len(), "peer")
        )];
        evidence.extend(sources.iter().take(5).map(|p| peer_line(p)));
        add(
            FindingKind::AllChoking,
            Severity::Warning,
            format!(
                "Connected to {}, all choking us",
                units::count(sources.len(), "peer")
            ),
            evidence,
        );
    }
    if let Some(limit) = facts.down_limit {
        add_limit(add, FindingKind::DownloadLimit, facts.down_rate, limit);
    }
    // The write queue is the session's: only a torrent receiving data is held by it.
    let disk_bound = facts.disk_wait >= settings.disk_wait && facts.down_rate > 0;
    if disk_bound {
        add(
            FindingKind::DiskBound,
            Severity::Warning,
            format!(
                "Limited by the disk: writes wait {} ms",
                facts.disk_wait.as_millis()
            ),
            vec![
                "Pieces wait for room in the write queue: the disk takes them slower than peers send them".into(),
                format!("Downloading at {}", units::rate(facts.down_rate)),
            ],
        );
    }
    if unchoking > 0 && facts.down_limit.is_none() && !disk_bound {
        let mut fastest: Vec<&&PeerFacts> = sources.iter().filter(|p| !p.choking_us).collect();
        fastest.sort_by_key(|p| std::cmp::Reverse(p.down_rate));
        let best = fastest.first().map_or(0, |p| p.down_rate);
        if best < settings.slow_rate && facts.down_rate < settings.slow_rate {
            let mut evidence = vec![format!(
                "{} unchoking you, {} in all",
                units::count(unchoking, "peer"),
                units::rate(facts.down_rate)
            )];
            evidence.extend(fastest.iter().take(3).map(|p| peer_line(p)));
            add(
                FindingKind::SlowPeers,
                Severity::Info,
                format!("Peers are slow: the best gives {}", units::rate(best)),
                evidence,
            );
        }
    }
}

fn seeding_findings(facts: &Facts<'_>, add: &mut Add<'_>) {
    let leechers = facts.peers.iter().filter(|p| !p.seed).count();
    let swarm_leechers = facts.swarm.1;
    if matches!(facts.state, TorrentState::Seeding)
        && leechers == 0
        && swarm_leechers.unwrap_or(0) == 0
    {
        let message = match swarm_leechers {
            Some(n) => format!(
                "Seeding, but no one is downloading ({} in the swarm by the tracker)",
                units::count(n as usize, "leecher")
            ),
            None => "Seeding, but no one is downloading".into(),
        };
        let mut evidence = vec![format!(
            "Connected to {}, none downloading",
            units::count(facts.peers.len(), "peer")
        )];
        evidence.extend(tracker_lines(facts.trackers));
        add(FindingKind::NoLeechers, Severity::Info, message, evidence);
    }
    if let Some(limit) = facts.up_limit {
        add_limit(add, FindingKind::UploadLimit, facts.up_rate, limit);
    }
}

/// "No peers known: every tracker failed, DHT found none", and the evidence.
fn no_peers(facts: &Facts<'_>) -> (String, Vec<String>) {
    let trackers = facts.trackers;
    let mut why = Vec::new();
    if trackers.is_empty() {
        why.push("the torrent has no trackers".to_string());
    } else if trackers
        .iter()
        .all(|t| matches!(t.status, TrackerStatus::Failed(_)))
    {
        why.push(if trackers.len() == 1 {
            "its only tracker failed".to_string()
        } else {
            "every tracker failed".to_string()
        });
    } else if trackers.iter().any(|t| t.status.is_working()) {
        why.push("the trackers know no other peer".to_string());
    }
    // PEX needs a connected peer to ask: with none, its silence says nothing.
    for source in facts.sources.iter().filter(|s| s.source != PeerSource::Pex) {
        match source.state {
            SourceState::Working | SourceState::Searching if source.peers == 0 => {
                why.push(format!("{} found none", source.source.label()));
            }
            _ => {}
        }
    }
    let mut evidence = tracker_lines(trackers);
    evidence.extend(facts.sources.iter().map(|s| match s.state {
        SourceState::Off | SourceState::Private => format!("{}: {}", s.source.label(), s.state),
        _ => format!(
            "{}: {} ({} found)",
            s.source.label(),
            s.state,
            units::count(s.peers as usize, "peer")
        ),
    }));
    let message = if facts.known_addresses == 0 {
        format!("No peers known: {}", why.join(", "))
    } else {
        format!(
            "None of the {} known answers",
            units::count(facts.known_addresses, "peer")
        )
    };
    (message.trim_end_matches(": ").to_string(), evidence)
}

/// "No one has pieces 311–340 (12% of the torrent): …", and the evidence.
fn unavailable(facts: &Facts<'_>) -> (String, Vec<String>) {
    let u = facts.unavailable;
    let share = if u.wanted_bytes == 0 {
        0.0
    } else {
        u.bytes as f64 * 100.0 / u.wanted_bytes as f64
    };
    let seed = match facts.last_seed {
        Some(ago) => format!("no seed has been seen for {}", coarse(ago)),
        None => "no seed has been seen since it started".into(),
    };
    let message = format!(
        "No one has {} ({:.0}% of the torrent): {seed}; the download cannot finish until one returns",
        piece_ranges(&u.ranges),
        share.max(1.0),
    );
    let mut evidence = vec![
        format!(
            "{} missing ({}) that no connected peer has",
            units::count(u.pieces as usize, "piece"),
            units::bytes(u.bytes)
        ),
        format!("Connected to {}", units::count(facts.peers.len(), "peer")),
    ];
    if let Some(seeds) = facts.swarm.0 {
        evidence.push(format!(
            "{} in the swarm by the tracker",
            units::count(seeds as usize, "seed")
        ));
    }
    (message, evidence)
}

/// "piece 4", "pieces 311–340", "pieces 3, 7–9 and 4 more ranges".
fn piece_ranges(ranges: &[RangeInclusive<u32>]) -> String {
    const SHOWN: usize = 4;
    let one = |r: &RangeInclusive<u32>| {
        if r.start() == r.end() {
            r.start().to_string()
        } else {
            format!("{}–{}", r.start(), r.end())
        }
    };
    let single = ranges.len() == 1 && ranges.first().is_some_and(|r| r.start() == r.end());
    let mut text = String::from(if single { "piece " } else { "pieces " });
    text.push_str(
        &ranges
            .iter()
            .take(SHOWN)
            .map(one)
            .collect::<Vec<_>>()
            .join(", "),
    );
    if ranges.len() > SHOWN {
        let more = ranges.len() - SHOWN;
        text.push_str(&format!(
            " and {more} more {}",
            if more == 1 { "range" } else { "ranges" }
        ));
    }
    text
}

fn trackers_refusing(trackers: &[TrackerSnapshot]) -> Option<(String, Vec<String>)> {
    let refusing: Vec<(&str, &str)> = trackers
        .iter()
        .filter_map(|t| match &t.status {
            TrackerStatus::Failed(TrackerError::Failure(reason)) => {
                Some((t.url.as_str(), reason.as_str()))
            }
            _ => None,
        })
        .collect();
    let (_, first) = refusing.first()?;
    let message = match (trackers.len(), refusing.len()) {
        (1, _) => format!("The only tracker says: {first}"),
        (_, 1) => format!("A tracker says: {first}"),
        (_, n) => format!("{n} trackers refuse the torrent: {first}"),
    };
    let evidence = refusing
        .iter()
        .map(|(url, reason)| format!("{url} says: {reason}"))
        .collect();
    Some((message, evidence))
}

fn no_inbound(inbound: &InboundFacts, silence: Duration) -> Option<(String, Vec<String>)> {
    let quiet = inbound.last.is_none_or(|ago| ago >= silence);
    if inbound.session_age < silence || !quiet {
        return None;
    }
    let mut evidence = vec![match inbound.last {
        Some(ago) => format!("Last incoming connection {} ago", coarse(ago)),
        None => "No incoming connection since Rivulet started".into(),
    }];
    evidence.push(match &inbound.port_mapping {
        Some(status) => format!("Port mapping: {status}"),
        None => "Port mapping: off".into(),
    });
    evidence.push(
        "Peers that cannot reach you can only be dialled by you; two such peers never meet".into(),
    );
    Some((
        format!(
            "Nobody can connect to you: no incoming connection in {}; your port {} may be closed",
            units::duration(silence),
            inbound.listen_port
        ),
        evidence,
    ))
}

/// A time in whole minutes ("less than a minute", "12m", "2h 5m"): a finding's text changes
/// at most once a minute, so an idle torrent's snapshot stays the same between looks.
fn coarse(d: Duration) -> String {
    match d.as_secs() {
        0..60 => "less than a minute".into(),
        60..3600 => format!("{}m", d.as_secs() / 60),
        s => units::duration(Duration::from_secs(s - s % 60)),
    }
}

fn tracker_lines(trackers: &[TrackerSnapshot]) -> Vec<String> {
    trackers
        .iter()
        .map(|t| {
            let counts = match (t.seeders, t.leechers) {
                (Some(s), Some(l)) => format!(" ({s} seeds, {l} leechers)"),
                _ => String::new(),
            };
            format!("Tracker {}: {}{counts}", t.url, t.status)
        })
        .collect()
}

fn peer_line(p: &PeerFacts) -> String {
    format!(
        "{} ({}){}: {}",
        p.addr,
        p.client,
        if p.choking_us { ", choking you" } else { "" },
        units::rate(p.down_rate)
    )
}

/// "Limited by your own download limit (500 KiB/s)", or its upload twin (`kind`).
fn add_limit(add: &mut Add<'_>, kind: FindingKind, rate: u64, limit: LimitFacts) {
    let (direction, doing, setting) = match kind {
        FindingKind::DownloadLimit => ("download", "Downloading", "Download limit"),
        _ => ("upload", "Uploading", "Upload limit"),
    };
    let whose = if limit.own {
        "The torrent's own limit (General tab)".to_string()
    } else {
        format!("The session's limit (Settings: {setting})")
    };
    add(
        kind,
        Severity::Info,
        format!(
            "Limited by your own {direction} limit ({})",
            units::rate(limit.rate)
        ),
        vec![format!("{doing} at {}", units::rate(rate)), whose],
    );
}

/// A torrent's findings as text (for `rivulet doctor`, also when it asks the running app): a
/// head line (name, state, progress, peers, rates), then each finding with its evidence.
pub fn report(t: &TorrentSnapshot) -> String {
    let mut text = format!(
        "{}: {} {:.1}%, {} ({} seeds), down {} up {}\n",
        t.name,
        t.state.label(),
        t.progress * 100.0,
        units::count((t.connected_peers + t.connected_seeds) as usize, "peer"),
        t.connected_seeds,
        units::rate(t.down_rate),
        units::rate(t.up_rate),
    );
    if t.findings.is_empty() {
        text.push_str("  nothing holds it back\n");
    }
    for finding in &t.findings {
        text.push_str(&finding_text(finding));
    }
    text
}

/// One finding: `  warning: message`, then its evidence, a line each.
pub fn finding_text(finding: &Finding) -> String {
    let mut text = format!("  {}: {}\n", finding.severity.label(), finding.message);
    for fact in &finding.evidence {
        text.push_str(&format!("      - {fact}\n"));
    }
    text
}

/// The session's record of incoming connections and of the port mapping's state, read by
/// every torrent for [`InboundFacts`].
#[derive(Debug)]
pub(crate) struct InboundWatch {
    started: Instant,
    last: Mutex<Option<Instant>>,
    port_mapping: Mutex<Option<String>>,
}

impl InboundWatch {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            last: Mutex::new(None),
            port_mapping: Mutex::new(None),
        }
    }

    /// A peer connected to us (its handshake named a torrent of ours).
    pub fn arrived(&self) {
        *self.last.locked() = Some(Instant::now());
    }

    pub fn set_port_mapping(&self, status: Option<String>) {
        *self.port_mapping.locked() = status;
    }

    /// When `silence` without an incoming connection will have passed (in the past once it
    /// has): a quiet torrent wakes then to say so.
    pub fn silent_at(&self, silence: Duration) -> Instant {
        self.last.locked().unwrap_or(self.started).max(self.started) + silence
    }

    pub fn facts(&self, listen_port: u16) -> InboundFacts {
        InboundFacts {
            listen_port,
            last: self.last.locked().map(|at| at.elapsed()),
            session_age: self.started.elapsed(),
            port_mapping: self.port_mapping.locked().clone(),
        }
    }
}

/// The wanted pieces we lack whose availability is 0, as ranges.
pub(crate) fn unavailable_ranges(
    wanted_missing: impl Iterator<Item = u32>,
    availability: &[u32],
) -> Vec<RangeInclusive<u32>> {
    let mut ranges: Vec<RangeInclusive<u32>> = Vec::new();
    for piece in wanted_missing {
        if availability.get(piece as usize).copied().unwrap_or(0) > 0 {
            continue;
        }
        match ranges.last_mut() {
            Some(last) if *last.end() + 1 == piece => *last = *last.start()..=piece,
            _ => ranges.push(piece..=piece),
        }
    }
    ranges
}

#[cfg(test)]
mod tests;
