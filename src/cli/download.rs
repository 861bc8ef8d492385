//! `rivulet download` and `rivulet seed`: one torrent (a .torrent file, or for a download a
//! magnet link) on a session of its own, with a progress bar on a terminal and plain lines
//! otherwise. Ctrl-C or SIGTERM stops cleanly (trackers get `stopped`); running the same
//! command again resumes.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BadInput, NetArgs, TrackerEdits};
use crate::engine::{
    AddMagnet, AddSource, AddTorrent, Command, DownloadPlan, Event, FindingKind, Session,
    TorrentSnapshot, TorrentState, finding_text,
};
use crate::magnet::MagnetLink;
use crate::units;

/// Which files a download takes, and in which order.
#[derive(Debug, Default)]
pub struct Choice {
    /// `--only`: file numbers as `rivulet info` prints them.
    pub only: Option<Vec<RangeInclusive<u32>>>,
    pub sequential: bool,
}

pub fn run(
    torrent: &Path,
    dir: &Path,
    seed: bool,
    choice: &Choice,
    net: &NetArgs,
    edits: &TrackerEdits,
) -> anyhow::Result<u8> {
    // A magnet link is fetched by the engine; a .torrent file is read here.
    let link = torrent
        .to_str()
        .filter(|t| t.starts_with("magnet:"))
        .map(|t| MagnetLink::parse(t).map(|link| (t.to_string(), link)))
        .transpose()
        .map_err(|e| BadInput(e.to_string()))?;
    let (add, id, name, total) = match link {
        Some((uri, mut link)) => {
            let name = link.name.clone().unwrap_or_else(|| link.info_hash.to_hex());
            // The files are known once the metadata is: `--only` travels as BEP 53's `so`.
            let uri = match &choice.only {
                Some(ranges) => {
                    link.select_only = Some(ranges.clone());
                    link.to_string()
                }
                None => uri,
            };
            (Source::Magnet(uri), link.info_hash, name, 0)
        }
        None => {
            let (bytes, meta) = super::load_torrent(torrent)?;
            let count = meta.visible_files().count();
            let mut plan = match &choice.only {
                Some(ranges) => {
                    if let Some(past) = ranges
                        .iter()
                        .map(|r| *r.end())
                        .find(|&n| n as usize >= count)
                    {
                        return Err(BadInput(format!(
                            "--only: there is no file {past}: the torrent has {count} (numbered from 0 by `rivulet info`)"
                        ))
                        .into());
                    }
                    DownloadPlan::only(count, ranges)
                }
                None => DownloadPlan::default(),
            };
            plan.sequential = choice.sequential;
            (
                Source::Torrent(bytes, plan),
                meta.info_hash,
                meta.name,
                meta.total_length,
            )
        }
    };
    for url in &edits.add {
        crate::engine::validate_tracker_url(url).map_err(|e| BadInput(format!("{url}: {e}")))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| BadInput(format!("{}: {e}", dir.display())))?;
    let save_dir =
        std::fs::canonicalize(dir).map_err(|e| BadInput(format!("{}: {e}", dir.display())))?;
    let mut session = Session::start(net.session_config(None)?, None)?;
    eprintln!("{name}: listening on port {}", session.listen_port());
    session.send(add.command(save_dir, seed));
    for url in &edits.remove {
        session.send(Command::RemoveTracker(id, url.clone()));
    }
    for url in &edits.add {
        session.send(Command::AddTracker(id, url.clone()));
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut progress = Progress::new(total);
    let mut findings = FindingsLog::default();
    let mut snapshots = session.watch();
    let outcome = runtime.block_on(async {
        // Made once: a signal between two turns of the loop is not missed.
        let stop = super::stop_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => {
                    progress.finish(&progress.totals(&name));
                    return Ok(130);
                }
                event = session.next_event() => match event {
                    Some(Event::Completed { name, .. }) if !seed => {
                        progress.finish(&format!("{name}: complete"));
                        return Ok(0);
                    }
                    Some(Event::Completed { name, .. }) => progress.note(&format!("{name}: complete, seeding")),
                    Some(Event::MetadataFetched { name, took, .. }) => {
                        progress.note(&format!("{name}: metadata in {:.4} s", took.as_secs_f64()));
                        if choice.sequential {
                            // Handled after the torrent takes the link's place.
                            session.send(Command::SetSequential(id, true));
                        }
                    }
                    Some(Event::AddFailed { error, .. }) => return Err(BadInput(error.to_string()).into()),
                    Some(Event::Error { error, .. }) => return Err(anyhow::Error::new(error)),
                    Some(_) => {}
                    None => return Err(anyhow::anyhow!("the engine stopped")),
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Err(anyhow::anyhow!("the engine stopped"));
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    if let Some(t) = snapshot.torrents.iter().find(|t| t.id == id) {
                        if !seed && t.state == TorrentState::Finished {
                            progress.finish(&format!("{}: complete", t.name));
                            return Ok(0);
                        }
                        progress.update(t);
                        for text in findings.new_ones(t) {
                            progress.note(text.trim_end());
                        }
                    }
                }
            }
        }
    });
    session.shutdown();
    outcome
}

/// The findings already printed: a finding is printed when it appears, and again only if it
/// went away and came back.
#[derive(Default)]
pub(super) struct FindingsLog {
    shown: HashSet<FindingKind>,
}

impl FindingsLog {
    /// The text of each finding of `t` that was not there at the last look.
    pub fn new_ones(&mut self, t: &TorrentSnapshot) -> Vec<String> {
        self.shown
            .retain(|kind| t.findings.iter().any(|f| f.kind == *kind));
        t.findings
            .iter()
            .filter(|f| self.shown.insert(f.kind))
            .map(|f| format!("{}: {}", t.name, finding_text(f).trim_start()))
            .collect()
    }
}

/// What the command adds.
pub(super) enum Source {
    Torrent(Vec<u8>, DownloadPlan),
    Magnet(String),
}

impl Source {
    pub fn command(self, save_dir: std::path::PathBuf, seed: bool) -> Command {
        match self {
            Source::Torrent(bytes, plan) => Command::Add(AddTorrent {
                source: AddSource::Bytes(bytes),
                save_dir,
                paused: false,
                seed,
                plan,
            }),
            Source::Magnet(uri) => Command::AddMagnet(AddMagnet {
                uri,
                save_dir,
                paused: false,
                seed,
                confirm: false,
            }),
        }
    }
}

/// A progress bar on a terminal, or a plain line every few seconds.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
    last_state: String,
    /// Bytes downloaded and uploaded in all, at the last snapshot.
    transferred: (u64, u64),
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{msg:12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            last_line: Instant::now() - Duration::from_secs(60),
            last_state: String::new(),
            transferred: (0, 0),
        }
    }

    /// The line said when the user stops the command: what went each way, exactly.
    fn totals(&self, name: &str) -> String {
        let (down, up) = self.transferred;
        format!(
            "{name}: stopped; downloaded {} ({down} bytes), uploaded {} ({up} bytes)",
            units::bytes(down),
            units::bytes(up)
        )
    }

    fn update(&mut self, t: &Arc<TorrentSnapshot>) {
        self.transferred = (t.downloaded, t.uploaded);
        let state = match &t.state {
            TorrentState::Error(e) => format!("Error: {e}"),
            TorrentState::Offline(reason) => format!("Offline: {reason}"),
            TorrentState::Checking(p) => format!("Checking {:.0}%", p * 100.0),
            other => other.label().to_string(),
        };
        if let Some(bar) = &self.bar {
            // A magnet link's size is known once its metadata is.
            bar.set_length(t.wanted_size);
            bar.set_position(t.wanted_verified);
            bar.set_message(state);
            return;
        }
        let changed = state != self.last_state;
        if changed || self.last_line.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "{}: {state} {:.1}% down {} up {} peers {} seeds {} tracker: {}",
                t.name,
                t.progress * 100.0,
                units::rate(t.down_rate),
                units::rate(t.up_rate),
                t.connected_peers,
                t.connected_seeds,
                t.tracker_status
            );
            self.last_line = Instant::now();
            self.last_state = state;
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{line}");
    }
}
