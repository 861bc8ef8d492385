//! The headless command line: `info`, `create`, `download`, `seed` and `doctor` over the same
//! engine as the desktop app, `scrape`, and `tracker`.

mod create;
mod doctor;
mod download;
mod info;
mod scrape;
mod tracker;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// An error in what the user gave us (a bad .torrent, a bad argument): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[derive(Debug, Parser)]
#[command(
    name = "rivulet",
    version,
    about = "A fast, light and safe BitTorrent client",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    /// .torrent files (or magnet links) to open in the desktop app.
    pub torrents: Vec<String>,
    /// Start the desktop app hidden in the tray (as at login).
    #[arg(long)]
    pub minimized: bool,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Show what a .torrent file or a magnet link holds (a link is not fetched).
    Info { torrent: PathBuf },
    /// Make a .torrent from a file or a folder.
    Create {
        path: PathBuf,
        /// Where to write the .torrent.
        #[arg(short, long)]
        output: PathBuf,
        /// Tracker announce URL (repeat for more tiers).
        #[arg(long = "tracker", short = 't')]
        trackers: Vec<String>,
        /// Piece length in bytes (a power of two); chosen from the size if left out.
        #[arg(long)]
        piece_length: Option<u64>,
        /// Mark the torrent private (no DHT or peer exchange).
        #[arg(long)]
        private: bool,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Download a torrent into a folder; exits 0 once the data verifies.
    Download {
        /// A .torrent file, or a magnet link (its metadata is fetched from peers first).
        torrent: PathBuf,
        /// The folder to download into.
        #[arg(short, long)]
        output: PathBuf,
        /// Keep seeding once the download is complete.
        #[arg(long)]
        seed: bool,
        /// Download only these files, by the numbers `rivulet info` prints: `0,2,4-7`.
        #[arg(long, value_name = "FILES")]
        only: Option<String>,
        /// Download pieces in order (to play the file while it downloads).
        #[arg(long)]
        sequential: bool,
        #[command(flatten)]
        net: NetArgs,
        #[command(flatten)]
        trackers: TrackerEdits,
    },
    /// Seed a torrent whose data is in DIR (as `download -o DIR` leaves it).
    Seed {
        torrent: PathBuf,
        dir: PathBuf,
        #[command(flatten)]
        net: NetArgs,
        #[command(flatten)]
        trackers: TrackerEdits,
    },
    /// Ask each tracker of a torrent how many seeders and leechers it has.
    Scrape { torrent: PathBuf },
    /// Say why a torrent is stuck or slow: asks the running app about a torrent of its
    /// session, else watches the torrent for a while. Exit code 1 when a warning or an error
    /// is found.
    Doctor(doctor::DoctorArgs),
    /// Run Rivulet's tracker (HTTP and UDP on one port) until Ctrl-C.
    Tracker(tracker::TrackerArgs),
}

#[derive(Debug, Args)]
pub struct NetArgs {
    /// Port to listen on for peers (the next free one is used if it is taken).
    #[arg(long, default_value_t = 6881)]
    pub port: u16,
    /// The address or network interface (`wg0`) every peer, tracker and DHT socket uses;
    /// `any`: every address, IPv4 and IPv6. Bound to an interface, nothing falls back to
    /// another one: while it is down, torrents wait.
    #[arg(long, visible_alias = "interface", default_value = "any")]
    pub bind: crate::net::Binding,
    /// Folder for resume data (default: the user's data folder).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Download limit in KiB/s (0: none).
    #[arg(long, default_value_t = 0)]
    pub download_limit: u64,
    /// Upload limit in KiB/s (0: none).
    #[arg(long, default_value_t = 0)]
    pub upload_limit: u64,
    /// Files kept open at once (lowered to fit the open-file limit).
    #[arg(long, default_value_t = crate::storage::DEFAULT_OPEN_FILES)]
    pub max_open_files: usize,
    /// Run no DHT node (BEP 5).
    #[arg(long)]
    pub no_dht: bool,
    /// Run no local service discovery (BEP 14). It is off anyway when --bind is a loopback
    /// address.
    #[arg(long)]
    pub no_lsd: bool,
    /// Do not map the listen port at the router (UPnP IGD, NAT-PMP). It is off anyway when
    /// --bind is a loopback address.
    #[arg(long)]
    pub no_port_mapping: bool,
    /// A DHT router to bootstrap from, HOST:PORT (repeatable). Default: the public routers,
    /// or none when --bind is a loopback address (they cannot be reached from it).
    #[arg(long, value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Message stream encryption: prefer (try it, fall back to plain), require, or disabled.
    #[arg(long, default_value = "prefer", value_name = "POLICY")]
    pub encryption: crate::mse::EncryptionPolicy,
    /// Which transports peers are dialled over: utp-first (TCP as well when a peer has not
    /// answered over uTP within 0.5 s; the first connection wins), tcp-first, tcp (no uTP at
    /// all), or utp.
    #[arg(long, default_value = "utp-first", value_name = "MODE")]
    pub transport: crate::net::TransportMode,
}

impl NetArgs {
    /// The session these arguments ask for, its state in `state_dir` (else `--state-dir`, else
    /// the user's data folder's `cli`); it restores nothing by itself.
    pub fn session_config(
        &self,
        state_dir: Option<PathBuf>,
    ) -> anyhow::Result<crate::engine::SessionConfig> {
        use anyhow::Context;
        let state_dir = match state_dir.or_else(|| self.state_dir.clone()) {
            Some(d) => d,
            None => crate::engine::SessionConfig::default_state_dir()
                .context("no home folder for resume data; pass --state-dir")?
                .join("cli"),
        };
        let mut config = crate::engine::SessionConfig::with_state_dir(state_dir);
        config.restore_saved = false;
        config.bind = self.bind.clone();
        config.listen_port = self.port;
        config.download_limit = self.download_limit * 1024;
        config.upload_limit = self.upload_limit * 1024;
        config.max_open_files = self.max_open_files;
        config.dht = self.dht();
        config.lsd = self.lsd();
        config.encryption = self.encryption;
        config.port_mapping = self.port_mapping();
        config.transport = self.transport;
        Ok(config)
    }

    /// Whether to map the listen port at the router.
    pub fn port_mapping(&self) -> bool {
        !self.no_port_mapping && !self.bind.is_loopback()
    }

    /// Whether to run local service discovery.
    pub fn lsd(&self) -> bool {
        !self.no_lsd && !self.bind.is_loopback()
    }

    /// The DHT routers to use, or `None` for no DHT.
    pub fn dht(&self) -> Option<Vec<String>> {
        if self.no_dht {
            return None;
        }
        if !self.dht_bootstrap.is_empty() {
            return Some(self.dht_bootstrap.clone());
        }
        if self.bind.is_loopback() {
            return Some(Vec::new());
        }
        Some(
            crate::engine::PUBLIC_DHT_ROUTERS
                .iter()
                .map(|r| r.to_string())
                .collect(),
        )
    }
}

/// Changes to a torrent's trackers; they are kept with its resume data.
#[derive(Debug, Args)]
pub struct TrackerEdits {
    /// Also announce to this tracker (repeat for more; each is a tier of its own).
    #[arg(long = "add-tracker", value_name = "URL")]
    pub add: Vec<String>,
    /// Stop announcing to this tracker (repeat for more).
    #[arg(long = "remove-tracker", value_name = "URL")]
    pub remove: Vec<String>,
}

/// Runs a subcommand and returns the process exit code.
pub fn run(command: CliCommand) -> anyhow::Result<u8> {
    match command {
        CliCommand::Info { torrent } => info::run(&torrent),
        CliCommand::Create {
            path,
            output,
            trackers,
            piece_length,
            private,
            comment,
        } => create::run(
            &path,
            &output,
            crate::create::CreateOptions {
                trackers,
                piece_length,
                private,
                comment,
            },
        ),
        CliCommand::Download {
            torrent,
            output,
            seed,
            only,
            sequential,
            net,
            trackers,
        } => {
            let choice = download::Choice {
                only: only
                    .map(|text| {
                        crate::magnet::parse_file_numbers(&text).ok_or_else(|| {
                            BadInput(format!(
                                "--only {text:?}: not a list of file numbers like 0,2,4-7"
                            ))
                        })
                    })
                    .transpose()?,
                sequential,
            };
            download::run(&torrent, &output, seed, &choice, &net, &trackers)
        }
        CliCommand::Seed {
            torrent,
            dir,
            net,
            trackers,
        } => download::run(
            &torrent,
            &dir,
            true,
            &download::Choice::default(),
            &net,
            &trackers,
        ),
        CliCommand::Scrape { torrent } => scrape::run(&torrent),
        CliCommand::Doctor(args) => doctor::run(&args),
        CliCommand::Tracker(args) => tracker::run(args),
    }
}

/// Reads and parses a .torrent file, as a [`BadInput`] error if it is not one.
fn load_torrent(path: &std::path::Path) -> anyhow::Result<(Vec<u8>, crate::metainfo::Metainfo)> {
    crate::metainfo::read_torrent_file(path)
        .map_err(|e| BadInput(format!("{}: {e}", path.display())).into())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
