//! `rivulet tracker`: Rivulet's tracker on its own, until Ctrl-C or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::BadInput;
use crate::tracker::server::{Access, AllowList, RunningTracker, TrackerConfig};

#[derive(Debug, clap::Args)]
pub struct TrackerArgs {
    /// Port for HTTP (TCP) and UDP alike; 0 picks a free one.
    #[arg(long, default_value_t = 6969)]
    pub port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Serve these torrents (repeat for more).
    #[arg(long = "torrent")]
    pub torrents: Vec<PathBuf>,
    /// Serve any info hash (an open tracker) instead of only the --torrent ones.
    #[arg(long)]
    pub open: bool,
    /// Seconds between a peer's announces (1 to 86400); peers silent for two intervals are
    /// dropped.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,
    #[arg(long, default_value_t = 10_000)]
    pub max_torrents: usize,
    #[arg(long, default_value_t = 1_000)]
    pub max_peers_per_torrent: usize,
}

pub fn run(args: TrackerArgs) -> anyhow::Result<u8> {
    let access = if args.open {
        Access::Open
    } else if args.torrents.is_empty() {
        return Err(BadInput(
            "nothing to serve: give --torrent FILE for each torrent, or --open to serve any".into(),
        )
        .into());
    } else {
        let list = AllowList::default();
        for path in &args.torrents {
            list.insert(super::load_torrent(path)?.1.info_hash);
        }
        Access::Listed(list)
    };
    let mut config = TrackerConfig::new(args.bind, args.port, access);
    config.limits.interval = Duration::from_secs(args.interval);
    config.limits.max_torrents = args.max_torrents;
    config.limits.max_peers_per_torrent = args.max_peers_per_torrent;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let tracker = RunningTracker::start(config).await?;
        let addr = tracker.addr();
        println!("tracker listening on http://{addr}/announce and udp://{addr}/announce");
        super::stop_signal().await;
        let (torrents, peers) = tracker.swarms().size();
        eprintln!("tracker stopped ({torrents} torrents, {peers} peers)");
        Ok(0)
    })
}
