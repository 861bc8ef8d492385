//! [`UtpSocket`]: the UDP sockets of the listen port (one per local address family), shared
//! by every uTP connection and by the DHT node. A task per socket reads datagrams and sorts
//! them: uTP packets go to their connection (or, a SYN, make a new one), bencoded ones to the
//! DHT's inbox, anything else is dropped. A ticker drives the connections' timers and drops
//! the ones that are done.
//!
//! ACKs are deferred until the socket has been read dry (up to a batch of datagrams), so one
//! ACK answers a burst, as libtorrent does. Sending never waits: a datagram the kernel has no
//! room for is lost, and the connection's retransmission makes up for it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::conn::Conn;
use super::packet::{Packet, PacketType, is_utp};
use super::stream::{Entry, UtpStream};
use crate::sync::MutexExt;

/// The largest datagram taken (libtorrent sends at most 1,500 bytes); a longer one is
/// dropped, never cut short.
const RECV_BUFFER: usize = 2048;
/// Datagrams read in one go before the ACKs they call for are sent.
const BATCH: usize = 64;
/// How often the connections' timers are looked at.
const TICK: Duration = Duration::from_millis(50);
/// uTP datagrams (header included) over IPv4 and IPv6: well under any path's MTU.
const MAX_DATAGRAM_V4: usize = 1400;
const MAX_DATAGRAM_V6: usize = 1380;
/// Connections at most, dialled and accepted; SYNs past it are ignored (the peer falls back
/// to TCP).
pub const MAX_CONNECTIONS: usize = 500;
/// Connections from one address at most.
const MAX_PER_IP: usize = 32;
/// New connections a second, inbound (the rest ignored) and outbound each (the rest fail at
/// once), and the burst allowed.
const ATTEMPTS_PER_SECOND: f64 = 50.0;
const ATTEMPT_BURST: f64 = 100.0;
/// Inbound connections waiting for the session to take them.
const ACCEPT_QUEUE: usize = 64;
/// Inbound connections whose peer has not sent data yet (a SYN's source address can be
/// forged; data acknowledging our random sequence number cannot be), and how long one may wait.
const MAX_HALF_OPEN: usize = 64;
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// DHT datagrams waiting for the DHT node.
const DHT_QUEUE: usize = 1024;
/// How long a closed connection is kept to answer a peer that missed our last ACK.
const LINGER: Duration = Duration::from_secs(10);
/// What all connections may hold received and unread, shared out evenly (each also keeps as
/// much in flight and a quarter of it unsent: at most 2.25 times this in all).
const MEMORY_BUDGET: usize = 64 << 20;
/// Socket buffers asked of the kernel (it may give less).
const SOCKET_BUFFER: usize = 4 << 20;

/// A connection's key: the peer's address and the id its packets carry.
type Key = (SocketAddr, u16);
/// A datagram and where it came from.
pub type Datagram = (Vec<u8>, SocketAddr);

/// A running uTP endpoint; cheap to clone. The tasks stop when the last clone is dropped.
#[derive(Clone)]
pub struct UtpSocket {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

impl std::fmt::Debug for UtpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtpSocket")
            .field("addrs", &self.local_addrs())
            .finish()
    }
}

struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The DHT's share of the socket: sending on it, and the datagrams that were for it.
pub struct DhtChannel {
    pub sender: Arc<std::net::UdpSocket>,
    pub inbox: mpsc::Receiver<Datagram>,
}

pub(super) struct Shared {
    /// The sockets, as std handles to send on: every send is tried at once (tokio's
    /// `try_send_to` gives up without trying until the reactor has seen the socket writable).
    /// Each socket's receiving handle belongs to its task.
    sockets: Vec<Arc<std::net::UdpSocket>>,
    conns: Mutex<HashMap<Key, Arc<Entry>>>,
    accepted: mpsc::Sender<(UtpStream, SocketAddr)>,
    accept_queue: tokio::sync::Mutex<mpsc::Receiver<(UtpStream, SocketAddr)>>,
    dht: Mutex<Option<mpsc::Sender<Datagram>>>,
    inbound_attempts: Mutex<Attempts>,
    outbound_attempts: Mutex<Attempts>,
    /// Whether peers' SYNs are answered (else ignored: the session dials TCP only).
    accepting: AtomicBool,
    /// The clock every connection's timestamps count from.
    epoch: Instant,
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl UtpSocket {
    /// Takes over bound UDP sockets (one per address family) and starts reading them on the
    /// current runtime.
    pub fn start(sockets: Vec<std::net::UdpSocket>) -> io::Result<Self> {
        let mut senders = Vec::with_capacity(sockets.len());
        let mut receivers = Vec::with_capacity(sockets.len());
        for socket in sockets {
            socket.set_nonblocking(true)?;
            let socket = socket2::Socket::from(socket);
            // Best effort: a small buffer only means more loss under load.
            let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
            let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
            let socket = std::net::UdpSocket::from(socket);
            let sender = Arc::new(socket.try_clone()?);
            receivers.push((UdpSocket::from_std(socket)?, sender.clone()));
            senders.push(sender);
        }
        let (accepted, accept_queue) = mpsc::channel(ACCEPT_QUEUE);
        let shared = Arc::new(Shared {
            sockets: senders,
            conns: Mutex::new(HashMap::new()),
            accepted,
            accept_queue: tokio::sync::Mutex::new(accept_queue),
            dht: Mutex::new(None),
            inbound_attempts: Mutex::new(Attempts::new()),
            outbound_attempts: Mutex::new(Attempts::new()),
            accepting: AtomicBool::new(true),
            epoch: Instant::now(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        let mut tasks = Vec::new();
        for (receiver, sender) in receivers {
            tasks.push(tokio::spawn(receive(shared.clone(), receiver, sender)));
        }
        tasks.push(tokio::spawn(tick(shared.clone())));
        Ok(Self {
            shared,
            _tasks: Arc::new(Tasks(tasks)),
        })
    }

    /// Which socket this is: a new one (the listen sockets moved) has another id.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// The IPv4 socket's address, where the DHT node is reached.
    pub fn ipv4_addr(&self) -> Option<SocketAddr> {
        self.local_addrs().into_iter().find(SocketAddr::is_ipv4)
    }

    /// Hands the DHT node its share of the IPv4 socket; a node attached before loses its
    /// inbox (and stops).
    pub fn attach_dht(&self) -> Option<DhtChannel> {
        let sender = self
            .shared
            .sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|a| a.is_ipv4()))?
            .clone();
        let (tx, inbox) = mpsc::channel(DHT_QUEUE);
        *self.shared.dht.locked() = Some(tx);
        Some(DhtChannel { sender, inbox })
    }

    /// Whether peers may connect (their SYNs are ignored otherwise).
    pub fn set_accepting(&self, accepting: bool) {
        self.shared.accepting.store(accepting, Ordering::Relaxed);
    }

    /// Ends every connection (their readers and writers see an error) and stops the tasks;
    /// what the DHT shares stops with it. Called when the listen sockets move or close.
    pub fn close(&self) {
        for task in &self._tasks.0 {
            task.abort();
        }
        *self.shared.dht.locked() = None;
        let entries: Vec<Arc<Entry>> = self.shared.conns.locked().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.abort();
        }
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.conns.locked().len()
    }

    /// Dials `peer` over uTP; fails after the connect timeout when nothing answers.
    pub async fn connect(&self, peer: SocketAddr) -> io::Result<UtpStream> {
        let socket = self.shared.socket_for(peer.ip()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no uTP socket of the peer's address family",
            )
        })?;
        let max_datagram = max_datagram(peer);
        let (entry, connected) = {
            let mut conns = self.shared.conns.locked();
            if conns.len() >= MAX_CONNECTIONS
                || !self.shared.outbound_attempts.locked().take(Instant::now())
            {
                // Not the peer's fault: a dial over TCP may go ahead.
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "too many uTP connections or attempts",
                ));
            }
            // Packets for the connection arrive with this id: one no connection with the
            // peer uses yet.
            let recv_id = loop {
                let id: u16 = rand::random();
                if !conns.contains_key(&(peer, id)) {
                    break id;
                }
            };
            let now = Instant::now();
            let mut conn = Conn::connect(
                recv_id,
                rand::random(),
                now,
                self.shared.epoch,
                max_datagram,
            );
            conn.set_memory_limit(memory_share(conns.len() + 1));
            let (tx, rx) = oneshot::channel();
            let entry = Arc::new(Entry::new(conn, socket, peer, Some(tx)));
            conns.insert((peer, recv_id), entry.clone());
            (entry, rx)
        };
        // Made now, so that a dial given up on (this future dropped) closes the connection.
        let stream = UtpStream::new(entry.clone());
        entry.flush(Instant::now());
        match connected.await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(kind)) => Err(io::Error::new(kind, "uTP connection failed")),
            Err(_) => Err(io::Error::other("the uTP socket closed")),
        }
    }

    /// The next connection a peer dialled.
    pub async fn accept(&self) -> io::Result<(UtpStream, SocketAddr)> {
        self.shared
            .accept_queue
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| io::Error::other("the uTP socket closed"))
    }
}

/// Each connection's share of the memory budget when there are `connections`.
fn memory_share(connections: usize) -> usize {
    MEMORY_BUDGET / connections.max(1)
}

fn max_datagram(peer: SocketAddr) -> usize {
    if peer.is_ipv4() {
        MAX_DATAGRAM_V4
    } else {
        MAX_DATAGRAM_V6
    }
}

impl Shared {
    fn socket_for(&self, ip: IpAddr) -> Option<Arc<std::net::UdpSocket>> {
        self.sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|a| a.is_ipv4() == ip.is_ipv4()))
            .cloned()
    }

    /// One datagram from `from`; returns the connection it was for, if any.
    fn on_datagram(
        &self,
        socket: &Arc<std::net::UdpSocket>,
        datagram: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<Arc<Entry>> {
        if !is_utp(datagram) {
            if datagram.first() == Some(&b'd')
                && let Some(dht) = self.dht.locked().as_ref()
            {
                // A full inbox drops the datagram, as a full socket buffer would.
                let _ = dht.try_send((datagram.to_vec(), from));
            }
            return None;
        }
        let packet = Packet::decode(datagram).ok()?;
        let header = packet.header;
        if header.kind == PacketType::Syn {
            return self.on_syn(socket, &packet, from, now);
        }
        let entry = self.conns.locked().get(&(from, header.conn_id)).cloned()?;
        entry.on_packet(&packet, now);
        if entry.confirm_inbound()
            && self
                .accepted
                .try_send((UtpStream::new(entry.clone()), from))
                .is_err()
        {
            // The session is not taking connections fast enough: this one goes.
            entry.abort();
        }
        Some(entry)
    }

    fn on_syn(
        &self,
        socket: &Arc<std::net::UdpSocket>,
        syn: &Packet<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Option<Arc<Entry>> {
        let key = (from, syn.header.conn_id.wrapping_add(1));
        let mut conns = self.conns.locked();
        if let Some(entry) = conns.get(&key) {
            // The same SYN again (our answer was lost) is answered again; another one with
            // the same id is a collision, and ignored.
            entry.on_packet(syn, now);
            return Some(entry.clone());
        }
        let from_ip = from.ip();
        let admitted = self.accepting.load(Ordering::Relaxed)
            && conns.len() < MAX_CONNECTIONS
            && conns.keys().filter(|(a, _)| a.ip() == from_ip).count() < MAX_PER_IP
            && conns.values().filter(|e| e.is_half_open()).count() < MAX_HALF_OPEN
            && self.inbound_attempts.locked().take(now);
        if !admitted {
            tracing::debug!(%from, "uTP SYN ignored: at a limit");
            return None;
        }
        let mut conn = Conn::accept(
            &syn.header,
            rand::random(),
            now,
            self.epoch,
            max_datagram(from),
        );
        conn.set_memory_limit(memory_share(conns.len() + 1));
        let entry = Arc::new(Entry::new(conn, socket.clone(), from, None));
        entry.await_inbound_data(now);
        conns.insert(key, entry.clone());
        Some(entry)
    }
}

/// Connection attempts allowed now: a token bucket of [`ATTEMPTS_PER_SECOND`].
struct Attempts {
    tokens: f64,
    at: Instant,
}

impl Attempts {
    fn new() -> Self {
        Self {
            tokens: ATTEMPT_BURST,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * ATTEMPTS_PER_SECOND;
        self.tokens = (self.tokens + earned).min(ATTEMPT_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Reads one socket: batches of datagrams, then the ACKs they call for.
async fn receive(shared: Arc<Shared>, socket: UdpSocket, sender: Arc<std::net::UdpSocket>) {
    let mut buf = vec![0u8; RECV_BUFFER + 1];
    let mut touched: Vec<Arc<Entry>> = Vec::with_capacity(BATCH);
    loop {
        if let Err(e) = socket.readable().await {
            tracing::warn!(error = %e, "the uTP socket failed");
            return;
        }
        for _ in 0..BATCH {
            match socket.try_recv_from(&mut buf) {
                Ok((len, from)) => {
                    let now = Instant::now();
                    let Some(datagram) = buf.get(..len).filter(|_| len <= RECV_BUFFER) else {
                        continue; // too long: it may have been cut
                    };
                    if let Some(entry) = shared.on_datagram(&sender, datagram, from, now)
                        && !touched.iter().any(|t| Arc::ptr_eq(t, &entry))
                    {
                        touched.push(entry);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors of earlier sends surface here on some systems: not fatal.
                Err(e) => tracing::trace!(error = %e, "uTP receive failed"),
            }
        }
        let now = Instant::now();
        for entry in touched.drain(..) {
            entry.flush(now);
        }
    }
}

/// Drives every connection's timers and lets go of the ones that are done.
async fn tick(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = Instant::now();
        let entries: Vec<(Key, Arc<Entry>)> = shared
            .conns
            .locked()
            .iter()
            .map(|(k, e)| (*k, e.clone()))
            .collect();
        let mut done = Vec::new();
        let share = memory_share(entries.len());
        for (key, entry) in entries {
            if entry.on_tick(now, LINGER, share) || entry.half_open_since(now) > HALF_OPEN_TIMEOUT {
                done.push(key);
            }
        }
        if !done.is_empty() {
            let mut conns = shared.conns.locked();
            for key in done {
                conns.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn bound() -> UtpSocket {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        UtpSocket::start(vec![udp]).unwrap()
    }

    #[tokio::test]
    async fn a_stream_carries_bytes_both_ways_and_ends_with_eof() {
        let (a, b) = (bound(), bound());
        let b_addr = b.ipv4_addr().unwrap();
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let sent = data.clone();
        let server = tokio::spawn(async move {
            let (mut stream, from) = b.accept().await.unwrap();
            assert_eq!(from.port(), stream.peer_addr().port());
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.unwrap();
            stream.write_all(b"thanks").await.unwrap();
            stream.shutdown().await.unwrap();
            got
        });
        let started = Instant::now();
        let stream = a.connect(b_addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        write.write_all(&sent).await.unwrap();
        drop(write);
        let mut reply = Vec::new();
        read.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"thanks");
        assert!(server.await.unwrap() == data, "the bytes differ");
        eprintln!("8 MiB over uTP on loopback in {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_dial_to_nobody_times_out() {
        let a = bound();
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        let error = a.connect(silent.local_addr().unwrap()).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(2900));
        tokio::time::sleep(TICK * 3).await;
        assert_eq!(a.connections(), 0, "the failed dial is forgotten");
    }

    #[tokio::test]
    async fn dht_datagrams_reach_the_dht_and_others_are_dropped() {
        let a = bound();
        let mut dht = a.attach_dht().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = a.ipv4_addr().unwrap();
        peer.send_to(b"garbage that is neither", to).unwrap();
        peer.send_to(b"d1:y1:qe", to).unwrap();
        let (bytes, from) = tokio::time::timeout(Duration::from_secs(5), dht.inbox.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes, b"d1:y1:qe");
        assert_eq!(from, peer.local_addr().unwrap());
        // The DHT answers on the same socket.
        dht.sender.send_to(b"d1:y1:re", from).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"d1:y1:re");
    }

    #[tokio::test]
    async fn a_syn_without_data_is_answered_but_never_accepted() {
        let b = bound();
        let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut syn = Vec::new();
        let header = crate::utp::packet::Header {
            kind: PacketType::Syn,
            conn_id: 500,
            timestamp_us: 0,
            timestamp_diff_us: 0,
            wnd_size: 0,
            seq_nr: 7,
            ack_nr: 0,
        };
        crate::utp::packet::encode(&header, None, &[], &mut syn);
        spoofer.send_to(&syn, b.ipv4_addr().unwrap()).await.unwrap();
        let mut reply = [0u8; 64];
        let (n, _) = spoofer.recv_from(&mut reply).await.unwrap();
        assert_eq!(
            Packet::decode(&reply[..n]).unwrap().header.kind,
            PacketType::State
        );
        let accepted = tokio::time::timeout(Duration::from_millis(500), b.accept()).await;
        assert!(accepted.is_err(), "no data, no connection for the session");
        assert_eq!(b.connections(), 1, "held half-open until its deadline");
    }

    #[tokio::test]
    async fn closing_the_socket_ends_its_streams() {
        let (a, b) = (bound(), bound());
        let b_addr = b.ipv4_addr().unwrap();
        let accepting = tokio::spawn(async move { b.accept().await.map(|(s, _)| (s, b)) });
        let mut stream = a.connect(b_addr).await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        let (_theirs, _b) = accepting.await.unwrap().unwrap();
        a.close();
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
        assert!(read.expect("the reader is woken").is_err());
        assert_eq!(a.connections(), 0);
    }

    #[tokio::test]
    async fn a_stream_dropped_by_both_sides_is_forgotten() {
        let (a, b) = (bound(), bound());
        let b_addr = b.ipv4_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let (stream, _) = b.accept().await.unwrap();
            drop(stream);
            b
        });
        let mut stream = a.connect(b_addr).await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        let b = accepting.await.unwrap();
        drop(stream);
        tokio::time::timeout(Duration::from_secs(15), async {
            while a.connections() + b.connections() > 0 {
                tokio::time::sleep(TICK).await;
            }
        })
        .await
        .expect("both sides let go");
    }
}
