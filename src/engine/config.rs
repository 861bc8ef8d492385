//! How a session is set up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::command::EngineSettings;
use super::doctor::{DoctorSettings, InboundWatch};
use super::goals::SeedGoals;
use super::session::QueueSettings;
use crate::dht::Dht;
use crate::lsd::Lsd;
use crate::mse::EncryptionPolicy;
use crate::net::{Binding, Dialer, Reach, TransportMode};
use crate::portmap::PortMapperConfig;
use crate::sync::RwLockExt;
use crate::utp::UtpSocket;

/// The routers a DHT node bootstraps from when nothing else is set (the well-known public
/// ones). Tests never use them: they set loopback routers, or no DHT at all.
pub const PUBLIC_DHT_ROUTERS: &[&str] = &[
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

/// Settings of a [`crate::engine::Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where torrents and their resume data are kept.
    pub state_dir: PathBuf,
    /// Load every torrent saved in `state_dir` at start (the desktop app); the CLI only resumes
    /// the torrent it is given.
    pub restore_saved: bool,
    /// The address or network interface every peer, tracker and DHT socket uses.
    pub bind: Binding,
    /// Preferred port; the next free one is used if it is taken (0: any port).
    pub listen_port: u16,
    pub max_peers_per_torrent: usize,
    /// Peer connections across all torrents.
    pub max_connections: usize,
    pub upload_slots: usize,
    /// Bytes per second, 0 for unlimited.
    pub download_limit: u64,
    pub upload_limit: u64,
    /// Bytes of received pieces held in memory per torrent before new pieces wait.
    pub piece_buffer_budget: u64,
    /// Bytes of finished pieces that may wait to be hashed and written, across all torrents;
    /// beyond it, receiving waits for the disk (its back-pressure, and the doctor's measure of
    /// a slow disk).
    pub disk_write_budget: u64,
    /// Files open at once across every torrent (fewer if the process's limit is low).
    pub max_open_files: usize,
    /// The default download folder: its free space is reported, and a saved torrent whose
    /// resume data is lost is restored into it and rechecked.
    pub download_dir: Option<PathBuf>,
    /// Rivulet's tracker, started before saved torrents are restored (so their first
    /// announces can reach it).
    pub tracker: Option<super::TrackerSettings>,
    /// The DHT (BEP 5), on the listen address's UDP port, bootstrapping from these routers
    /// (`host:port`); `None`: no DHT. Off by default in the library; the app and the CLI
    /// turn it on.
    pub dht: Option<Vec<String>>,
    /// Local service discovery (BEP 14) on the listen address's network. Off by default in
    /// the library; the app turns it on.
    pub lsd: bool,
    /// Message stream encryption, dialling and accepting. Off (plain only) by default in the
    /// library, as the DHT and LSD are; the app and the CLI prefer it.
    pub encryption: EncryptionPolicy,
    /// Map the listen port (TCP, and UDP for the DHT) at the home router with UPnP IGD or
    /// NAT-PMP. Off by default in the library; the app and the CLI turn it on.
    pub port_mapping: bool,
    /// Which transports peers are dialled over (TCP, uTP). TCP only by default in the
    /// library; the app and the CLI dial uTP first, as libtorrent does.
    pub transport: TransportMode,
    /// How many torrents download and seed at once. Off in the library (every torrent runs);
    /// the app queues as libtorrent does (3 downloads, 5 seeds).
    pub queue: QueueSettings,
    /// When seeding torrents stop (none by default).
    pub seed_goals: SeedGoals,
    /// How the port mapper works (leases, retries, where gateways are looked for); the session
    /// sets the port and the source address.
    pub port_mapper: PortMapperConfig,
    /// When the swarm doctor speaks (how long a cause must hold, how long without inbound
    /// connections says the port may be closed).
    pub doctor: DoctorSettings,
}

impl SessionConfig {
    /// Defaults with state under the user's data folder from `directories`.
    pub fn with_state_dir(state_dir: PathBuf) -> Self {
        Self {
            state_dir,
            restore_saved: true,
            bind: Binding::Any,
            listen_port: 6881,
            max_peers_per_torrent: 50,
            max_connections: 500,
            upload_slots: 4,
            download_limit: 0,
            upload_limit: 0,
            piece_buffer_budget: 24 * 1024 * 1024,
            disk_write_budget: 16 * 1024 * 1024,
            max_open_files: crate::storage::DEFAULT_OPEN_FILES,
            download_dir: None,
            tracker: None,
            dht: None,
            lsd: false,
            encryption: EncryptionPolicy::Disabled,
            port_mapping: false,
            transport: TransportMode::TcpOnly,
            queue: QueueSettings {
                enabled: false,
                ..QueueSettings::default()
            },
            seed_goals: SeedGoals::default(),
            port_mapper: PortMapperConfig::new(0),
            doctor: DoctorSettings::default(),
        }
    }

    /// Takes the settings a front end keeps: the same ones `Command::ApplySettings` changes
    /// while the session runs. The one place where settings become configuration.
    pub fn apply_settings(&mut self, settings: &EngineSettings) {
        self.listen_port = settings.listen_port;
        self.max_peers_per_torrent = settings.max_peers_per_torrent.max(1);
        self.upload_slots = settings.upload_slots.max(1);
        self.download_limit = settings.download_limit;
        self.upload_limit = settings.upload_limit;
        self.download_dir = settings.download_dir.clone();
        self.max_open_files = settings.max_open_files;
        self.tracker = settings.tracker;
        self.dht = settings.dht.clone();
        self.lsd = settings.lsd;
        self.encryption = settings.encryption;
        self.bind = settings.bind.clone();
        self.port_mapping = settings.port_mapping;
        self.transport = settings.transport;
        self.queue = settings.queue;
        self.seed_goals = settings.seed_goals;
    }

    /// The platform's data folder for Rivulet, e.g. `~/.local/share/rivulet`.
    pub fn default_state_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "rivulet", "Rivulet")
            .map(|d| d.data_dir().to_path_buf())
    }
}

/// The settings every torrent reads live, so a change applies without a restart.
#[derive(Debug)]
pub(crate) struct LiveSettings {
    /// What the session's binding means now: where sockets listen and dial from.
    reach: RwLock<Reach>,
    /// The global IPv6 address announced to trackers (BEP 7), when there is one.
    public_ipv6: RwLock<Option<Ipv6Addr>>,
    pub listen_port: AtomicU16,
    pub max_peers: AtomicUsize,
    pub upload_slots: AtomicUsize,
    pub max_connections: AtomicUsize,
    /// Peer connections open now, session-wide.
    connections: Arc<AtomicUsize>,
    /// The session's DHT node, while one runs.
    dht: RwLock<Option<Dht>>,
    /// Local service discovery, while it runs.
    lsd: RwLock<Option<Lsd>>,
    encryption: RwLock<EncryptionPolicy>,
    transport: RwLock<TransportMode>,
    /// The uTP endpoint on the listen port, while the session listens.
    utp: RwLock<Option<UtpSocket>>,
    /// Dials peers, remembering which do not answer over uTP.
    pub dialer: Dialer,
    pub doctor: DoctorSettings,
    /// Incoming connections and the port mapping, for the swarm doctor.
    pub inbound: InboundWatch,
}

/// One peer connection counted against the session's cap; released when dropped.
pub(crate) struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LiveSettings {
    pub fn new(listen_port: u16, reach: Reach, config: &SessionConfig) -> Self {
        Self {
            reach: RwLock::new(reach),
            public_ipv6: RwLock::new(None),
            listen_port: AtomicU16::new(listen_port),
            max_peers: AtomicUsize::new(config.max_peers_per_torrent),
            upload_slots: AtomicUsize::new(config.upload_slots),
            max_connections: AtomicUsize::new(config.max_connections),
            connections: Arc::new(AtomicUsize::new(0)),
            dht: RwLock::new(None),
            lsd: RwLock::new(None),
            encryption: RwLock::new(config.encryption),
            transport: RwLock::new(config.transport),
            utp: RwLock::new(None),
            dialer: Dialer::default(),
            doctor: config.doctor,
            inbound: InboundWatch::new(),
        }
    }

    /// Which transports peers are dialled over.
    pub fn transport(&self) -> TransportMode {
        *self.transport.read_locked()
    }

    pub fn set_transport(&self, mode: TransportMode) {
        *self.transport.write_locked() = mode;
        if let Some(utp) = self.utp() {
            utp.set_accepting(mode.accepts_utp());
        }
    }

    /// The uTP endpoint, while the session listens.
    pub fn utp(&self) -> Option<UtpSocket> {
        self.utp.read_locked().clone()
    }

    pub fn set_utp(&self, utp: Option<UtpSocket>) {
        if let Some(utp) = &utp {
            utp.set_accepting(self.transport().accepts_utp());
        }
        *self.utp.write_locked() = utp;
    }

    /// How connections are encrypted, dialling and accepting.
    pub fn encryption(&self) -> EncryptionPolicy {
        *self.encryption.read_locked()
    }

    pub fn set_encryption(&self, policy: EncryptionPolicy) {
        *self.encryption.write_locked() = policy;
    }

    pub fn lsd(&self) -> Option<Lsd> {
        self.lsd.read_locked().clone()
    }

    pub fn set_lsd(&self, lsd: Option<Lsd>) {
        *self.lsd.write_locked() = lsd;
    }

    /// The DHT node, if one runs.
    pub fn dht(&self) -> Option<Dht> {
        self.dht.read_locked().clone()
    }

    pub fn set_dht(&self, dht: Option<Dht>) {
        *self.dht.write_locked() = dht;
    }

    /// How many more connections the session-wide cap allows.
    pub fn connections_free(&self) -> usize {
        self.max_connections
            .load(Ordering::Relaxed)
            .saturating_sub(self.connections.load(Ordering::Relaxed))
    }

    /// A connection slot, unless the session-wide cap is reached.
    pub fn take_connection(&self) -> Option<ConnectionSlot> {
        let max = self.max_connections.load(Ordering::Relaxed);
        self.connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(self.connections.clone()))
    }

    pub fn listen_port(&self) -> u16 {
        self.listen_port.load(Ordering::Relaxed)
    }

    /// Where peers reach us: the listen address (IPv4 first) and port.
    pub fn listen_addr(&self) -> SocketAddr {
        let ip = self
            .reach()
            .listen_ips()
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, self.listen_port())
    }

    /// What the binding means now.
    pub fn reach(&self) -> Reach {
        self.reach.read_locked().clone()
    }

    pub fn set_reach(&self, reach: Reach) {
        *self.reach.write_locked() = reach;
    }

    /// The global IPv6 address to announce, when there is one.
    pub fn public_ipv6(&self) -> Option<Ipv6Addr> {
        *self.public_ipv6.read_locked()
    }

    pub fn set_public_ipv6(&self, ip: Option<Ipv6Addr>) {
        *self.public_ipv6.write_locked() = ip;
    }

    pub fn max_peers(&self) -> usize {
        self.max_peers.load(Ordering::Relaxed)
    }

    pub fn upload_slots(&self) -> usize {
        self.upload_slots.load(Ordering::Relaxed)
    }
}
