//! [`Dht`]: a mainline DHT node (BEP 5) on one UDP socket, run as a task on the engine's
//! runtime. It answers `ping`, `find_node`, `get_peers` and `announce_peer`; it bootstraps
//! from saved nodes and the configured routers; it runs `get_peers` lookups for the engine,
//! streaming the peers found, then announces our port to the closest nodes.
//!
//! Everything is bounded: the routing table (160 × 8 nodes), the peers stored for others
//! ([`PeerStore`]), queries in flight ([`MAX_PENDING`]), lookups at once ([`MAX_LOOKUPS`],
//! the rest wait their turn), queries answered per address and second
//! ([`QUERIES_PER_IP_SECOND`]; the rest are dropped unanswered), and the bytes sent per
//! second ([`UPLOAD_LIMIT`], libtorrent's default). IPv4 only for now (BEP 32 is not built).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};

use super::id::NodeId;
use super::krpc::{Body, Message, NodeInfo, Query, Response};
use super::lookup::{Lookup, QUERY_TIMEOUT};
use super::persist;
use super::routing::{Insert, K, RoutingTable};
use super::store::{PeerStore, Tokens};
use crate::utp::DhtChannel;
use crate::utp::socket::Datagram;

/// Queries of ours awaiting an answer.
pub const MAX_PENDING: usize = 256;
/// Lookups running at once; more wait in line.
pub const MAX_LOOKUPS: usize = 16;
/// Lookups waiting in line; past it, a request is dropped (its torrent asks again later).
const MAX_QUEUED_LOOKUPS: usize = 4096;
/// Announces waiting for the upload budget at most.
const MAX_QUEUED_ANNOUNCES: usize = 8 * 1024;
/// Bytes of upload budget a lookup needs to start (a handful of queries).
const LOOKUP_BUDGET: f64 = 1024.0;
/// Queries from one IP address answered per second.
pub const QUERIES_PER_IP_SECOND: u32 = 50;
/// Addresses tracked by the per-address limit before the count starts afresh.
const MAX_TRACKED_IPS: usize = 10_000;
/// Bytes sent per second, with bursts of twice that (libtorrent's `dht_upload_rate_limit`).
pub const UPLOAD_LIMIT: u64 = 8_000;
/// Fewer good nodes than this and the node bootstraps (again).
const WANT_GOOD: usize = 8;
const BOOTSTRAP_EVERY: Duration = Duration::from_secs(30);
const SAVE_EVERY: Duration = Duration::from_secs(10 * 60);
const TICK: Duration = Duration::from_millis(250);
/// Longest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// How a DHT node starts.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// The UDP address to listen on.
    pub bind: SocketAddr,
    /// Routers to bootstrap from, as `host:port`.
    pub bootstrap: Vec<String>,
    /// Where the node id and routing table are saved and read at start.
    pub state_file: Option<PathBuf>,
}

/// What the node is doing, for front ends and figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhtStats {
    pub nodes: usize,
    pub good_nodes: usize,
    /// Torrents and peers stored for others.
    pub torrents: usize,
    pub peers: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub lookups: usize,
}

enum DhtCommand {
    GetPeers {
        info_hash: [u8; 20],
        announce: Option<u16>,
        found: UnboundedSender<Vec<SocketAddr>>,
    },
    /// A peer's `port` message (BEP 5): its DHT node is pinged, and kept if it answers.
    AddNode(SocketAddr),
    Shutdown(oneshot::Sender<()>),
}

/// The handle on a running DHT node; cheap to clone.
#[derive(Clone)]
pub struct Dht {
    commands: UnboundedSender<DhtCommand>,
    stats: watch::Receiver<DhtStats>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Dht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dht")
            .field("addr", &self.local_addr)
            .finish()
    }
}

impl Dht {
    /// Binds a socket of its own on `config.bind`, reads the saved state and starts the node
    /// on the current runtime.
    pub async fn start(config: DhtConfig) -> std::io::Result<Dht> {
        let sender = std::net::UdpSocket::bind(config.bind)?;
        sender.set_nonblocking(true)?;
        let receiver = UdpSocket::from_std(sender.try_clone()?)?;
        Self::start_on(config, Arc::new(sender), Inbound::Own(receiver)).await
    }

    /// Starts the node on the session's UDP socket, which it shares with uTP: it sends on
    /// it, and what arrives for it comes through the channel's inbox (`config.bind` is not
    /// used).
    pub async fn start_shared(config: DhtConfig, channel: DhtChannel) -> std::io::Result<Dht> {
        Self::start_on(config, channel.sender, Inbound::Shared(channel.inbox)).await
    }

    async fn start_on(
        config: DhtConfig,
        sender: Arc<std::net::UdpSocket>,
        inbound: Inbound,
    ) -> std::io::Result<Dht> {
        let local_addr = sender.local_addr()?;
        let saved = match config.state_file.clone() {
            Some(path) => tokio::task::spawn_blocking(move || persist::load(&path))
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let now = Instant::now();
        let own = saved.as_ref().map_or_else(NodeId::random, |s| s.id);
        let mut table = RoutingTable::new(own);
        for node in saved.iter().flat_map(|s| s.nodes.iter()) {
            table.seen(*node, false, now);
        }
        tracing::info!(addr = %local_addr, nodes = table.len(), "DHT node started");
        let (commands, inbox) = mpsc::unbounded_channel();
        let (stats_tx, stats) = watch::channel(DhtStats::default());
        let node = Node {
            sender,
            inbound: Some(inbound),
            table,
            store: PeerStore::default(),
            tokens: Tokens::new(now),
            pending: HashMap::new(),
            next_transaction: rand::random(),
            lookups: HashMap::new(),
            queued: VecDeque::new(),
            announces: VecDeque::new(),
            next_lookup: 0,
            routers: Vec::new(),
            router_names: config.bootstrap,
            last_bootstrap: None,
            per_ip: HashMap::new(),
            per_ip_since: now,
            budget: UPLOAD_LIMIT as f64 * 2.0,
            budget_at: now,
            stats: DhtStats::default(),
            stats_tx,
            state_file: config.state_file,
            last_save: now,
        };
        tokio::spawn(node.run(inbox));
        Ok(Dht {
            commands,
            stats,
            local_addr,
        })
    }

    /// Looks up the peers of `info_hash`; batches of new ones arrive on the receiver, which
    /// closes when the lookup is over. With `announce`, our port is then announced to the
    /// closest nodes.
    pub fn get_peers(
        &self,
        info_hash: [u8; 20],
        announce: Option<u16>,
    ) -> UnboundedReceiver<Vec<SocketAddr>> {
        let (found, rx) = mpsc::unbounded_channel();
        let _ = self.commands.send(DhtCommand::GetPeers {
            info_hash,
            announce,
            found,
        });
        rx
    }

    pub fn add_node(&self, addr: SocketAddr) {
        let _ = self.commands.send(DhtCommand::AddNode(addr));
    }

    pub fn stats(&self) -> DhtStats {
        self.stats.borrow().clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Saves the routing table and stops the node.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(DhtCommand::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

#[derive(Clone, Copy)]
enum Purpose {
    Ping,
    Lookup(u64),
    /// A router asked for nodes on behalf of a lookup (its id is not known).
    Router(u64),
    Announce,
}

struct Pending {
    addr: SocketAddr,
    sent: Instant,
    purpose: Purpose,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    FindNode,
    GetPeers,
}

struct Running {
    lookup: Lookup,
    /// Routers asked and not yet answered: the lookup waits for them.
    routers: usize,
    kind: Kind,
    found: Option<UnboundedSender<Vec<SocketAddr>>>,
    announce: Option<u16>,
}

struct Queued {
    info_hash: [u8; 20],
    announce: Option<u16>,
    found: UnboundedSender<Vec<SocketAddr>>,
}

struct Node {
    /// Sends: a std handle, so every send is tried at once (a datagram never waits: a full
    /// buffer drops it).
    sender: Arc<std::net::UdpSocket>,
    /// Where datagrams arrive, until `run` takes it.
    inbound: Option<Inbound>,
    table: RoutingTable,
    store: PeerStore,
    tokens: Tokens,
    pending: HashMap<u16, Pending>,
    next_transaction: u16,
    lookups: HashMap<u64, Running>,
    queued: VecDeque<Queued>,
    /// `announce_peer`s waiting for the upload budget.
    announces: VecDeque<(SocketAddr, Query)>,
    next_lookup: u64,
    /// The routers, resolved.
    routers: Vec<SocketAddr>,
    router_names: Vec<String>,
    last_bootstrap: Option<Instant>,
    /// Queries answered per address in the current second.
    per_ip: HashMap<IpAddr, u32>,
    per_ip_since: Instant,
    /// Bytes that may be sent now.
    budget: f64,
    budget_at: Instant,
    stats: DhtStats,
    stats_tx: watch::Sender<DhtStats>,
    state_file: Option<PathBuf>,
    last_save: Instant,
}

/// Where a node's datagrams arrive.
enum Inbound {
    /// Its own socket (the sending handle's clone, on the runtime).
    Own(UdpSocket),
    /// What the session's UDP socket, shared with uTP, sorts out for the DHT.
    Shared(mpsc::Receiver<Datagram>),
}

/// The next datagram for the node (`None` once the shared socket's inbox closed).
async fn receive(
    inbound: &mut Inbound,
    buf: &mut [u8],
) -> Option<std::io::Result<(usize, SocketAddr)>> {
    match inbound {
        Inbound::Own(socket) => Some(socket.recv_from(buf).await),
        Inbound::Shared(inbox) => {
            let (datagram, from) = inbox.recv().await?;
            let len = datagram.len().min(buf.len());
            buf[..len].copy_from_slice(&datagram[..len]);
            Some(Ok((len, from)))
        }
    }
}

impl Node {
    async fn run(mut self, mut inbox: UnboundedReceiver<DhtCommand>) {
        self.routers = resolve(&self.router_names).await;
        self.bootstrap(Instant::now());
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let Some(mut inbound) = self.inbound.take() else {
            return;
        };
        loop {
            tokio::select! {
                received = receive(&mut inbound, &mut buf) => match received {
                    None => {
                        // The shared socket is gone (the listen sockets moved): so is the node.
                        self.save().await;
                        return;
                    }
                    Some(Ok((len, from))) => {
                        self.stats.bytes_in += len as u64;
                        if let Some(datagram) = buf.get(..len) {
                            self.on_datagram(datagram, from, Instant::now());
                        }
                    }
                    Some(Err(e)) => {
                        // ICMP errors (a node gone) surface here on some systems: not fatal.
                        tracing::trace!(error = %e, "DHT receive failed");
                    }
                },
                command = inbox.recv() => match command {
                    Some(DhtCommand::GetPeers { info_hash, announce, found }) => {
                        if self.queued.len() < MAX_QUEUED_LOOKUPS {
                            self.queued.push_back(Queued { info_hash, announce, found });
                        }
                        self.start_queued(Instant::now());
                    }
                    Some(DhtCommand::AddNode(addr)) => {
                        self.send_query(addr, Query::Ping, Purpose::Ping, Instant::now());
                    }
                    Some(DhtCommand::Shutdown(done)) => {
                        self.save().await;
                        // The socket is closed before the caller hears: a new node may bind
                        // the same port at once.
                        drop(inbound);
                        drop(self);
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.save().await;
                        return;
                    }
                },
                _ = tick.tick() => self.on_tick(Instant::now()).await,
            }
        }
    }

    fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        let message = match Message::decode(datagram) {
            Ok(m) => m,
            Err(e) => {
                tracing::trace!(%from, error = %e, "bad DHT datagram");
                return;
            }
        };
        match message.body {
            Body::Query {
                id,
                query,
                read_only,
            } => {
                if !self.allow_query(from.ip(), now) {
                    return;
                }
                if !read_only {
                    self.offer(NodeInfo { id, addr: from }, false, now);
                }
                self.answer(message.transaction, query, from, now);
            }
            Body::Response(response) => {
                let Some(pending) = self.take_pending(&message.transaction, from) else {
                    return;
                };
                self.offer(
                    NodeInfo {
                        id: response.id,
                        addr: from,
                    },
                    true,
                    now,
                );
                self.on_response(pending.purpose, from, response, now);
            }
            Body::Error {
                code,
                message: text,
            } => {
                let Some(pending) = self.take_pending(&message.transaction, from) else {
                    return;
                };
                tracing::debug!(%from, code, %text, "DHT error");
                match pending.purpose {
                    Purpose::Lookup(id) => {
                        if let Some(run) = self.lookups.get_mut(&id) {
                            run.lookup.failed(from);
                        }
                        self.advance(id, now);
                    }
                    Purpose::Router(id) => {
                        if let Some(run) = self.lookups.get_mut(&id) {
                            run.routers = run.routers.saturating_sub(1);
                        }
                        self.advance(id, now);
                    }
                    Purpose::Ping | Purpose::Announce => {}
                }
            }
        }
    }

    fn take_pending(&mut self, transaction: &[u8], from: SocketAddr) -> Option<Pending> {
        let tid = u16::from_be_bytes(transaction.try_into().ok()?);
        // The answer must come from where the query went.
        if self.pending.get(&tid)?.addr != from {
            return None;
        }
        self.pending.remove(&tid)
    }

    /// The per-address limit: at most [`QUERIES_PER_IP_SECOND`] queries a second answered.
    fn allow_query(&mut self, ip: IpAddr, now: Instant) -> bool {
        if now.duration_since(self.per_ip_since) >= Duration::from_secs(1)
            || self.per_ip.len() >= MAX_TRACKED_IPS
        {
            self.per_ip.clear();
            self.per_ip_since = now;
        }
        let count = self.per_ip.entry(ip).or_default();
        *count += 1;
        *count <= QUERIES_PER_IP_SECOND
    }

    /// A node was seen; a full bucket's stalest node is pinged.
    fn offer(&mut self, info: NodeInfo, answered: bool, now: Instant) {
        if let Insert::Full(Some(stale)) = self.table.seen(info, answered, now) {
            self.send_query(stale.addr, Query::Ping, Purpose::Ping, now);
        }
    }

    fn answer(&mut self, transaction: Vec<u8>, query: Query, from: SocketAddr, now: Instant) {
        let own = self.table.own_id();
        let v6 = Some(from.is_ipv6());
        let body = match query {
            Query::Ping => Body::Response(Response {
                id: own,
                ..Default::default()
            }),
            Query::FindNode { target } => Body::Response(Response {
                id: own,
                nodes: self.table.closest(&target, K, v6),
                ..Default::default()
            }),
            Query::GetPeers { info_hash } => {
                let values = self.store.peers(&info_hash, from.is_ipv6(), now);
                let nodes = if values.is_empty() {
                    self.table.closest(&NodeId(info_hash), K, v6)
                } else {
                    Vec::new()
                };
                Body::Response(Response {
                    id: own,
                    nodes,
                    values,
                    token: Some(self.tokens.token_for(from.ip())),
                })
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.is_valid(&token, from.ip()) {
                    Body::Error {
                        code: 203,
                        message: "bad token".into(),
                    }
                } else {
                    let port = if implied_port { from.port() } else { port };
                    self.store
                        .announce(info_hash, SocketAddr::new(from.ip(), port), now);
                    Body::Response(Response {
                        id: own,
                        ..Default::default()
                    })
                }
            }
        };
        self.send(from, &Message { transaction, body }, now);
    }

    fn on_response(&mut self, purpose: Purpose, from: SocketAddr, r: Response, now: Instant) {
        let id = match purpose {
            Purpose::Ping | Purpose::Announce => return,
            Purpose::Lookup(id) | Purpose::Router(id) => id,
        };
        let Some(run) = self.lookups.get_mut(&id) else {
            return;
        };
        if matches!(purpose, Purpose::Router(_)) {
            run.routers = run.routers.saturating_sub(1);
        }
        let responder = NodeInfo {
            id: r.id,
            addr: from,
        };
        let peers = run.lookup.answered(responder, r.nodes, &r.values, r.token);
        if !peers.is_empty()
            && let Some(found) = &run.found
        {
            let _ = found.send(peers);
        }
        self.advance(id, now);
    }

    /// Sends a lookup's next queries, or finishes it.
    fn advance(&mut self, id: u64, now: Instant) {
        let Some(run) = self.lookups.get_mut(&id) else {
            return;
        };
        if run.lookup.is_done(now) && (run.routers == 0 || run.lookup.timed_out(now)) {
            if let Some(run) = self.lookups.remove(&id) {
                self.finish(run, now);
            }
            self.start_queued(now);
            return;
        }
        let target = run.lookup.target();
        let kind = run.kind;
        let asks = run.lookup.next_queries(now);
        for node in asks {
            let query = lookup_query(kind, target);
            if !self.send_query(node.addr, query, Purpose::Lookup(id), now)
                && let Some(run) = self.lookups.get_mut(&id)
            {
                run.lookup.failed(node.addr);
            }
        }
    }

    fn finish(&mut self, run: Running, now: Instant) {
        tracing::debug!(
            target = ?run.lookup.target(),
            answered = run.lookup.answered_nodes(),
            "DHT lookup done"
        );
        if let Some(port) = run.announce {
            let info_hash = run.lookup.target().0;
            for (node, token) in run.lookup.announce_to() {
                let query = Query::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port: false,
                    token,
                };
                if self.announces.len() < MAX_QUEUED_ANNOUNCES {
                    self.announces.push_back((node.addr, query));
                }
            }
            self.send_announces(now);
        }
        // Dropping `found` closes the requester's receiver: the lookup is over.
    }

    /// Sends the announces waiting for the upload budget, oldest first.
    fn send_announces(&mut self, now: Instant) {
        while let Some((addr, query)) = self.announces.pop_front() {
            if !self.send_query(addr, query.clone(), Purpose::Announce, now) {
                self.announces.push_front((addr, query));
                return;
            }
        }
    }

    /// Bytes that may be sent now.
    fn budget(&mut self, now: Instant) -> f64 {
        let refill = now.duration_since(self.budget_at).as_secs_f64() * UPLOAD_LIMIT as f64;
        self.budget = (self.budget + refill).min(UPLOAD_LIMIT as f64 * 2.0);
        self.budget_at = now;
        self.budget
    }

    /// Starts waiting lookups while there is room.
    fn start_queued(&mut self, now: Instant) {
        // A lookup starts only with room in the upload budget (its queries would be dropped),
        // and after the announces of the ones before it.
        while self.lookups.len() < MAX_LOOKUPS
            && self.announces.is_empty()
            && self.budget(now) >= LOOKUP_BUDGET
        {
            let Some(q) = self.queued.pop_front() else {
                return;
            };
            if q.found.is_closed() {
                continue;
            }
            self.start_lookup(
                Kind::GetPeers,
                NodeId(q.info_hash),
                Some(q.found),
                q.announce,
                now,
            );
        }
    }

    fn start_lookup(
        &mut self,
        kind: Kind,
        target: NodeId,
        found: Option<UnboundedSender<Vec<SocketAddr>>>,
        announce: Option<u16>,
        now: Instant,
    ) {
        let id = self.next_lookup;
        self.next_lookup += 1;
        let seeds = self.table.closest(&target, K * 2, None);
        let cold = seeds.len() < K;
        self.lookups.insert(
            id,
            Running {
                lookup: Lookup::new(target, seeds, now),
                routers: 0,
                kind,
                found,
                announce,
            },
        );
        if cold {
            // Too few nodes known: the routers are asked too.
            let mut asked = 0;
            for router in self.routers.clone() {
                if self.send_query(router, lookup_query(kind, target), Purpose::Router(id), now) {
                    asked += 1;
                }
            }
            if let Some(run) = self.lookups.get_mut(&id) {
                run.routers = asked;
            }
        }
        self.advance(id, now);
    }

    fn bootstrap(&mut self, now: Instant) {
        self.last_bootstrap = Some(now);
        let own = self.table.own_id();
        self.start_lookup(Kind::FindNode, own, None, None, now);
    }

    async fn on_tick(&mut self, now: Instant) {
        // Queries unanswered in time fail.
        let expired: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) >= QUERY_TIMEOUT)
            .map(|(t, _)| *t)
            .collect();
        for tid in expired {
            if let Some(p) = self.pending.remove(&tid) {
                self.table.failed(p.addr);
                match p.purpose {
                    Purpose::Lookup(id) => {
                        if let Some(run) = self.lookups.get_mut(&id) {
                            run.lookup.failed(p.addr);
                        }
                    }
                    Purpose::Router(id) => {
                        if let Some(run) = self.lookups.get_mut(&id) {
                            run.routers = run.routers.saturating_sub(1);
                        }
                    }
                    Purpose::Ping | Purpose::Announce => {}
                }
            }
        }
        let ids: Vec<u64> = self.lookups.keys().copied().collect();
        for id in ids {
            if let Some(run) = self.lookups.get_mut(&id) {
                run.lookup.expire(now);
            }
            self.advance(id, now);
        }
        self.send_announces(now);
        self.start_queued(now);
        self.tokens.rotate(now);
        if self.table.good(now) < WANT_GOOD
            && self
                .last_bootstrap
                .is_none_or(|t| now.duration_since(t) >= BOOTSTRAP_EVERY)
        {
            self.bootstrap(now);
        }
        for target in self.table.refresh_targets(now) {
            self.start_lookup(Kind::FindNode, target, None, None, now);
        }
        for node in self.table.to_ping(now, 2) {
            self.send_query(node.addr, Query::Ping, Purpose::Ping, now);
        }
        if now.duration_since(self.last_save) >= SAVE_EVERY {
            self.last_save = now;
            self.store.expire(now);
            self.save().await;
        }
        let (torrents, peers) = self.store.counts();
        self.stats.nodes = self.table.len();
        self.stats.good_nodes = self.table.good(now);
        self.stats.torrents = torrents;
        self.stats.peers = peers;
        self.stats.lookups = self.lookups.len() + self.queued.len();
        self.stats_tx.send_if_modified(|s| {
            let changed = *s != self.stats;
            if changed {
                *s = self.stats.clone();
            }
            changed
        });
    }

    /// Sends a query; false if it could not go (too many in flight, or over the budget).
    fn send_query(
        &mut self,
        addr: SocketAddr,
        query: Query,
        purpose: Purpose,
        now: Instant,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        self.next_transaction = self.next_transaction.wrapping_add(1);
        let tid = self.next_transaction;
        let message = Message {
            transaction: tid.to_be_bytes().to_vec(),
            body: Body::Query {
                id: self.table.own_id(),
                query,
                read_only: false,
            },
        };
        if !self.send(addr, &message, now) {
            return false;
        }
        self.pending.insert(
            tid,
            Pending {
                addr,
                sent: now,
                purpose,
            },
        );
        true
    }

    /// Sends a datagram within the upload budget; false when it was not sent.
    fn send(&mut self, addr: SocketAddr, message: &Message, now: Instant) -> bool {
        let bytes = message.encode();
        if self.budget(now) < bytes.len() as f64 {
            return false;
        }
        match self.sender.send_to(&bytes, addr) {
            Ok(n) => {
                self.budget -= n as f64;
                self.stats.bytes_out += n as u64;
                true
            }
            Err(e) => {
                tracing::trace!(%addr, error = %e, "DHT send failed");
                false
            }
        }
    }

    async fn save(&self) {
        let Some(path) = self.state_file.clone() else {
            return;
        };
        let saved = persist::Saved {
            id: self.table.own_id(),
            nodes: self.table.nodes(Instant::now()),
        };
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = persist::save(&path, &saved) {
                tracing::warn!(error = %e, "could not save the DHT's nodes");
            }
        })
        .await;
    }
}

fn lookup_query(kind: Kind, target: NodeId) -> Query {
    match kind {
        Kind::FindNode => Query::FindNode { target },
        Kind::GetPeers => Query::GetPeers {
            info_hash: target.0,
        },
    }
}

/// Resolves the routers (`host:port`); those that do not resolve are left out.
async fn resolve(names: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(addrs) => out.extend(addrs.filter(SocketAddr::is_ipv4)),
            Err(e) => tracing::warn!(router = %name, error = %e, "cannot resolve a DHT router"),
        }
    }
    out
}
