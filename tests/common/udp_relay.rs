//! A userspace impairment relay for UDP on loopback, standing in for a peer: datagrams sent to
//! its front address go on to a target, and the target's replies come back, each direction
//! dropped, delayed, jittered, reordered and rate-limited as its [`Impairment`] says. It needs
//! no privileges (the kernel's netem is not available in the test namespaces).
//!
//! It owns its sockets and threads (std threads, no async runtime needed in the caller), and
//! its memory is bounded; dropping it stops the threads within about [`STOP_POLL`] each.

use std::cmp::Ordering as CmpOrdering;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long a thread may block before it looks at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(20);
/// The extra hold of a datagram picked for reordering, so that those behind it overtake it.
const REORDER_HOLD: Duration = Duration::from_millis(30);
/// At most this many datagrams are held at once (both directions); more are dropped.
const MAX_HELD_DATAGRAMS: usize = 16_384;
/// At most this many bytes are held at once (both directions); more are dropped.
const MAX_HELD_BYTES: usize = 32 << 20;
/// At most this many distinct clients get a back socket; datagrams from more are dropped.
const MAX_CLIENTS: usize = 64;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// How one direction of the path misbehaves. Build one with struct update syntax, e.g.
/// `Impairment { loss: 0.1, ..Impairment::none() }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// The probability (0.0 to 1.0) that a datagram is dropped.
    pub loss: f64,
    /// The fixed one-way delay of every datagram.
    pub delay: Duration,
    /// Each datagram is delayed by a further uniform(0, jitter); datagrams closer together than
    /// the jitter overtake each other, as release is by release time.
    pub jitter: Duration,
    /// The probability (0.0 to 1.0) that a datagram is held a further 30 ms.
    pub reorder: f64,
    /// The bottleneck's rate in bytes per second, or `None` for no limit. Datagrams leave it one
    /// after the other at this rate (a token bucket whose burst is one datagram), before the
    /// delay applies.
    pub rate_bytes_per_s: Option<u64>,
    /// The bottleneck's queue: a datagram that would take the bytes waiting for the rate limit
    /// past this is dropped (tail drop). Only used with a rate.
    pub queue_bytes: usize,
    /// The seed of this direction's random choices, so that a run can be repeated.
    pub seed: u64,
}

impl Impairment {
    /// A perfect path: nothing dropped, delayed or limited.
    pub fn none() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            rate_bytes_per_s: None,
            queue_bytes: 0,
            seed: 1,
        }
    }

    /// A poor but usable path: 2% loss, 20 ms delay with 10 ms of jitter, 1% reordered, no
    /// rate limit.
    pub fn lossy() -> Self {
        Self {
            loss: 0.02,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            reorder: 0.01,
            ..Self::none()
        }
    }

    fn check(&self) -> io::Result<()> {
        let probability = 0.0..=1.0;
        if !probability.contains(&self.loss) || !probability.contains(&self.reorder) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("loss and reorder must be probabilities: {self:?}"),
            ));
        }
        if self.rate_bytes_per_s == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a rate limit of 0 bytes/s passes nothing; use loss 1.0",
            ));
        }
        Ok(())
    }
}

/// What happened to the datagrams of one direction so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams sent on.
    pub forwarded: u64,
    /// Datagrams dropped, for any reason (including those counted in `overflowed`).
    pub dropped: u64,
    /// Of `dropped`, those dropped because a queue was full: the rate limit's tail drop, the
    /// relay's own memory cap, or too many clients.
    pub overflowed: u64,
}

/// What happened to the datagrams of each direction so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// From the clients to the target.
    pub to_target: DirectionStats,
    /// From the target back to the clients.
    pub to_client: DirectionStats,
}

/// A running relay; see the module documentation. Dropping it stops it.
pub struct UdpRelay {
    front_addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpRelay {
    /// A relay in front of `target`, impairing both directions alike (with different random
    /// draws in each).
    pub fn start(target: SocketAddr, impairment: Impairment) -> io::Result<Self> {
        let to_client = Impairment {
            // The same seed in both directions would drop a datagram's reply exactly when the
            // datagram itself survives the same draw, a pattern no real path has.
            seed: impairment.seed ^ 0x9e37_79b9_7f4a_7c15,
            ..impairment
        };
        Self::start_asymmetric(target, impairment, to_client)
    }

    /// A relay in front of `target` with each direction impaired on its own.
    pub fn start_asymmetric(
        target: SocketAddr,
        to_target: Impairment,
        to_client: Impairment,
    ) -> io::Result<Self> {
        to_target.check()?;
        to_client.check()?;
        let front = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?);
        front.set_read_timeout(Some(STOP_POLL))?;
        let front_addr = front.local_addr()?;
        let now = Instant::now();
        let shared = Arc::new(Shared {
            schedule: Mutex::new(Schedule {
                held: BinaryHeap::new(),
                held_bytes: 0,
                next_seq: 0,
                directions: [
                    DirectionState::new(to_target, now),
                    DirectionState::new(to_client, now),
                ],
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            counters: Default::default(),
            back_threads: Mutex::new(Vec::new()),
        });
        let threads = vec![
            spawn_named("udp-relay-front", {
                let shared = shared.clone();
                move || run_front(&shared, front, target)
            })?,
            spawn_named("udp-relay-release", {
                let shared = shared.clone();
                move || run_release(&shared)
            })?,
        ];
        Ok(Self {
            front_addr,
            shared,
            threads,
        })
    }

    /// The address the dialling side sends to (127.0.0.1:port).
    pub fn addr(&self) -> SocketAddr {
        self.front_addr
    }

    /// The counts so far (they keep changing while the relay runs).
    pub fn stats(&self) -> RelayStats {
        let [to_target, to_client] = &self.shared.counters;
        RelayStats {
            to_target: to_target.snapshot(),
            to_client: to_client.snapshot(),
        }
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        // The front thread is joined first: after it, no back thread can be added.
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let back = std::mem::take(&mut *lock(&self.shared.back_threads));
        for thread in back {
            let _ = thread.join();
        }
    }
}

/// The two directions, as indices into the per-direction arrays.
#[derive(Debug, Clone, Copy)]
enum Direction {
    ToTarget = 0,
    ToClient = 1,
}

/// What the threads share.
struct Shared {
    schedule: Mutex<Schedule>,
    /// Signalled when a datagram becomes the next to release, and on stop.
    wake: Condvar,
    stop: AtomicBool,
    counters: [Counters; 2],
    /// The threads reading each client's back socket, joined on drop.
    back_threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The datagrams waiting for their release time, and each direction's impairment state.
struct Schedule {
    held: BinaryHeap<Held>,
    held_bytes: usize,
    /// Breaks ties in release time in arrival order.
    next_seq: u64,
    directions: [DirectionState; 2],
}

struct DirectionState {
    impairment: Impairment,
    rng: StdRng,
    /// When the rate limit has sent everything admitted so far.
    bottleneck_free_at: Instant,
}

impl DirectionState {
    fn new(impairment: Impairment, now: Instant) -> Self {
        Self {
            impairment,
            rng: StdRng::seed_from_u64(impairment.seed),
            bottleneck_free_at: now,
        }
    }
}

/// A datagram waiting for its release.
struct Held {
    release_at: Instant,
    seq: u64,
    direction: Direction,
    data: Vec<u8>,
    /// The socket it leaves from: the client's back socket towards the target, or the front
    /// socket towards a client.
    from: Arc<UdpSocket>,
    to: SocketAddr,
}

// BinaryHeap is a max-heap: the earliest release (then the lowest seq) must compare greatest.
impl Ord for Held {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.release_at, other.seq).cmp(&(self.release_at, self.seq))
    }
}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Held {}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    overflowed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DirectionStats {
        DirectionStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            overflowed: self.overflowed.load(Ordering::Relaxed),
        }
    }

    fn drop_one(&self, overflow: bool) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if overflow {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking relay thread must not hide the counts or wedge the drop.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}

/// Whether a receive error is just the read timeout (time to look at the stop flag).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads what clients send to the front socket, giving each new client a back socket (and a
/// thread reading it), and admits each datagram towards the target.
fn run_front(shared: &Arc<Shared>, front: Arc<UdpSocket>, target: SocketAddr) {
    let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0; MAX_DATAGRAM];
    while !shared.stop.load(Ordering::Relaxed) {
        let (len, client) = match front.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if is_timeout(&e) => continue,
            // An ICMP error for an earlier send (a client gone): nothing to do.
            Err(_) => continue,
        };
        let clients = backs.len();
        let back = match backs.entry(client) {
            Entry::Occupied(known) => known.get().clone(),
            Entry::Vacant(_) if clients >= MAX_CLIENTS => {
                shared.counters[Direction::ToTarget as usize].drop_one(true);
                continue;
            }
            Entry::Vacant(new) => match open_back(shared, &front, client, target) {
                Ok(back) => new.insert(back).clone(),
                Err(_) => {
                    shared.counters[Direction::ToTarget as usize].drop_one(true);
                    continue;
                }
            },
        };
        admit(shared, Direction::ToTarget, &buf[..len], back, target);
    }
}

/// A socket towards `target` for `client` alone, so that the target's replies to it can be
/// told apart from those to other clients (as a NAT does), and a thread relaying them back.
fn open_back(
    shared: &Arc<Shared>,
    front: &Arc<UdpSocket>,
    client: SocketAddr,
    target: SocketAddr,
) -> io::Result<Arc<UdpSocket>> {
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (Ipv6Addr::LOCALHOST, 0).into()
    };
    let back = Arc::new(UdpSocket::bind(local)?);
    // Connected, so that the kernel passes only the target's datagrams.
    back.connect(target)?;
    back.set_read_timeout(Some(STOP_POLL))?;
    let thread = spawn_named("udp-relay-back", {
        let (shared, back, front) = (shared.clone(), back.clone(), front.clone());
        move || {
            let mut buf = vec![0; MAX_DATAGRAM];
            while !shared.stop.load(Ordering::Relaxed) {
                match back.recv(&mut buf) {
                    Ok(len) => admit(
                        &shared,
                        Direction::ToClient,
                        &buf[..len],
                        front.clone(),
                        client,
                    ),
                    // The timeout, or an ICMP "port unreachable" from the target: go on.
                    Err(_) => continue,
                }
            }
        }
    })?;
    lock(&shared.back_threads).push(thread);
    Ok(back)
}

/// Applies the direction's loss, rate limit and delays to a datagram just received, and holds
/// it for release (or counts it dropped).
fn admit(shared: &Shared, direction: Direction, data: &[u8], from: Arc<UdpSocket>, to: SocketAddr) {
    let counters = &shared.counters[direction as usize];
    let now = Instant::now();
    let mut schedule = lock(&shared.schedule);
    let state = &mut schedule.directions[direction as usize];
    let impairment = state.impairment;
    if state.rng.random_bool(impairment.loss) {
        counters.drop_one(false);
        return;
    }
    let mut release_at = now;
    if let Some(rate) = impairment.rate_bytes_per_s {
        let rate = rate as f64;
        let waiting_bytes = state
            .bottleneck_free_at
            .saturating_duration_since(now)
            .as_secs_f64()
            * rate;
        if waiting_bytes + data.len() as f64 > impairment.queue_bytes as f64 {
            counters.drop_one(true);
            return;
        }
        state.bottleneck_free_at =
            state.bottleneck_free_at.max(now) + Duration::from_secs_f64(data.len() as f64 / rate);
        release_at = state.bottleneck_free_at;
    }
    release_at += impairment.delay + impairment.jitter.mul_f64(state.rng.random::<f64>());
    if state.rng.random_bool(impairment.reorder) {
        release_at += REORDER_HOLD;
    }
    if schedule.held.len() >= MAX_HELD_DATAGRAMS
        || schedule.held_bytes + data.len() > MAX_HELD_BYTES
    {
        counters.drop_one(true);
        return;
    }
    let seq = schedule.next_seq;
    schedule.next_seq += 1;
    schedule.held_bytes += data.len();
    schedule.held.push(Held {
        release_at,
        seq,
        direction,
        data: data.to_vec(),
        from,
        to,
    });
    // Only a new earliest datagram changes how long the release thread should sleep.
    if schedule.held.peek().is_some_and(|first| first.seq == seq) {
        shared.wake.notify_one();
    }
}

/// Sends the held datagrams on, each at its release time.
fn run_release(shared: &Shared) {
    let mut due = Vec::new();
    loop {
        {
            let mut schedule = lock(&shared.schedule);
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let now = Instant::now();
                let wait = match schedule.held.peek() {
                    Some(first) if first.release_at <= now => {
                        let held = schedule.held.pop().expect("peeked");
                        schedule.held_bytes -= held.data.len();
                        due.push(held);
                        continue;
                    }
                    Some(first) => (first.release_at - now).min(STOP_POLL),
                    None => STOP_POLL,
                };
                if !due.is_empty() {
                    break;
                }
                schedule = shared
                    .wake
                    .wait_timeout(schedule, wait)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
        }
        // Sent without the lock, so that the receiving threads are not held up.
        for held in due.drain(..) {
            let counters = &shared.counters[held.direction as usize];
            match held.from.send_to(&held.data, held.to) {
                Ok(_) => counters.forwarded.fetch_add(1, Ordering::Relaxed),
                // The socket buffer is full or the peer is gone: lost on the way, as on a path.
                Err(_) => counters.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}
