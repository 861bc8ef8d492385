//! `rivulet doctor`: why a torrent is stuck or slow, in plain words. A torrent of the running
//! desktop app's session is asked about there (over the single-instance socket); otherwise the
//! torrent runs in a session of its own for a while (`--for`), each finding printed as it
//! appears, then the report. A torrent of a saved session runs from a copy of its record in a
//! temporary state folder: the saved session is left as it was. Exit code 0: nothing holds it
//! back but information; 1: a warning or an error was found.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::download::{FindingsLog, Source};
use super::{BadInput, NetArgs};
use crate::engine::{DoctorSettings, Session, SessionConfig, TorrentSnapshot};
use crate::ids::InfoHash;
use crate::instance;
use crate::magnet::MagnetLink;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A .torrent file, a magnet link, or the info hash (40 hex digits) of a torrent in
    /// Rivulet's session.
    pub torrent: String,
    /// The folder the data is in (or goes to); a torrent of the saved session uses its own.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// How long to watch the torrent, in seconds, when the desktop app does not run it.
    #[arg(long = "for", value_name = "SECS", default_value_t = 60)]
    pub watch_secs: u64,
    #[command(flatten)]
    pub net: NetArgs,
}

/// What was named: the torrent to run, if it came with one.
enum Named {
    Torrent(Vec<u8>),
    Magnet(String),
    InfoHash,
}

pub fn run(args: &DoctorArgs) -> anyhow::Result<u8> {
    let (id, named) = identify(&args.torrent)?;
    // The running app knows best: its session has been watching the torrent all along.
    if let Ok(answer) = instance::ask(&instance::socket_path(), &format!("doctor {}", id.to_hex()))
    {
        // The first line is the worst severity found ("none" when nothing is), then the report.
        if let Some((worst, report)) = answer.split_once('\n') {
            print!("{report}");
            return Ok(u8::from(worst == "warning" || worst == "error"));
        }
        if matches!(named, Named::InfoHash) {
            return Err(BadInput(format!(
                "the running Rivulet has no torrent {}",
                id.to_hex()
            ))
            .into());
        }
    }
    let (source, save_dir, state_dir) = match named {
        Named::Torrent(bytes) => (
            Source::Torrent(bytes, Default::default()),
            output(args)?,
            None,
        ),
        Named::Magnet(uri) => (Source::Magnet(uri), output(args)?, None),
        Named::InfoHash => {
            let (bytes, save_dir, saved_in) = saved(id, &args.net)?;
            let copy = std::env::temp_dir().join(format!("rivulet-doctor-{}", std::process::id()));
            crate::engine::copy_saved(&saved_in, &copy, id)
                .with_context(|| format!("copying the saved torrent to {}", copy.display()))?;
            let save_dir = args.output.clone().unwrap_or(save_dir);
            (
                Source::Torrent(bytes, Default::default()),
                save_dir,
                Some(copy),
            )
        }
    };
    let temporary_state = state_dir.clone();
    let watch = Duration::from_secs(args.watch_secs.max(1));
    let mut config = args.net.session_config(state_dir)?;
    // A cause must hold a quarter of the watch to be reported.
    config.doctor = DoctorSettings {
        settle: (watch / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)),
        ..DoctorSettings::default()
    };
    std::fs::create_dir_all(&save_dir)
        .map_err(|e| BadInput(format!("{}: {e}", save_dir.display())))?;
    let session = Session::start(config, None)?;
    eprintln!("watching for {} s…", watch.as_secs());
    session.send(source.command(save_dir, true));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut findings = FindingsLog::default();
    let mut snapshots = session.watch();
    let deadline = tokio::time::Instant::now() + watch;
    let last = runtime.block_on(async {
        let mut last: Option<TorrentSnapshot> = None;
        // Made once: a signal between two turns of the loop is not missed.
        let stop = super::stop_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return last,
                _ = tokio::time::sleep_until(deadline) => return last,
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return last;
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    if let Some(t) = snapshot.torrents.iter().find(|t| t.id == id) {
                        for text in findings.new_ones(t) {
                            eprint!("{text}");
                        }
                        last = Some((**t).clone());
                    }
                }
            }
        }
    });
    session.shutdown();
    if let Some(dir) = temporary_state {
        let _ = std::fs::remove_dir_all(dir);
    }
    let t = last.ok_or_else(|| anyhow::anyhow!("the torrent never started"))?;
    print!("{}", crate::engine::report(&t));
    Ok(u8::from(t.worst_finding().is_some()))
}

/// The info hash, and what came with it.
fn identify(text: &str) -> anyhow::Result<(InfoHash, Named)> {
    if text.starts_with("magnet:") {
        let link = MagnetLink::parse(text).map_err(|e| BadInput(e.to_string()))?;
        return Ok((link.info_hash, Named::Magnet(text.to_string())));
    }
    if let Some(id) = InfoHash::from_hex(text).filter(|_| !Path::new(text).exists()) {
        return Ok((id, Named::InfoHash));
    }
    let (bytes, meta) = super::load_torrent(Path::new(text))?;
    Ok((meta.info_hash, Named::Torrent(bytes)))
}

fn output(args: &DoctorArgs) -> anyhow::Result<PathBuf> {
    args.output
        .clone()
        .ok_or_else(|| BadInput("--output: the folder the data is in (or goes to)".into()).into())
}

/// A torrent of a saved session (the desktop app's, then the CLI's, then `--state-dir`): its
/// .torrent, its folder and the session's state folder.
fn saved(id: InfoHash, net: &NetArgs) -> anyhow::Result<(Vec<u8>, PathBuf, PathBuf)> {
    let data = SessionConfig::default_state_dir();
    let places: Vec<PathBuf> = [
        data.as_ref().map(|d| d.join("session")),
        data.as_ref().map(|d| d.join("cli")),
        net.state_dir.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for state_dir in &places {
        if let Some((bytes, save_dir)) = crate::engine::find_saved(state_dir, id) {
            return Ok((bytes, save_dir, state_dir.clone()));
        }
    }
    let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    Err(BadInput(format!(
        "no torrent {} in Rivulet's saved sessions (looked in {}); give its .torrent file",
        id.to_hex(),
        looked.join(", ")
    ))
    .into())
}
