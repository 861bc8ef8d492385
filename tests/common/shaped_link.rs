//! A rate-limited, delayed IPv4 link between the test's network namespace (A) and a second one
//! of its own (B), for tests that need a real bottleneck queue (LEDBAT against TCP):
//!
//! ```text
//!  A: tun0 10.77.0.1/30 ──▶ forwarder: queue ─rate─▶ delay ──▶ tun1 10.77.0.2/30 :B
//!                      ◀── forwarder: delay ◀─rate─ queue ◀──
//! ```
//!
//! A forwarder thread takes the IP packets off each tun device as soon as they are sent, and
//! plays a router with a slow link: a FIFO queue drained at the rate (tail drop when it holds
//! more than `queue` worth of time, 300 ms by default, as a home router's buffer), then the
//! one-way delay. The queue must be outside the sending host's kernel: a qdisc such as tbf on
//! the sender's own device never fills, as TCP Small Queues keep a socket's packets in its
//! qdisc to about 1 ms; and netem is not available in the test namespaces.
//!
//! B is made by a thread that calls `unshare(CLONE_NEWNET)`; code runs in B on threads that
//! enter it with `setns` ([`ShapedLink::in_b`], [`ShapedLink::spawn_in_b`]). A small UDP echo
//! in B measures the round trip through the queues ([`ShapedLink::probe_rtt`],
//! [`ShapedLink::sample_rtt`]).
//!
//! It needs CAP_SYS_ADMIN and CAP_NET_ADMIN, as root in a user namespace has them (the test runs
//! under `netns::in_loopback_namespace`), and `/dev/net/tun`. It refuses to start in a
//! namespace with any interface besides `lo`, so it never touches a real network. It owns the
//! devices, namespace B and its threads; dropping it removes them.
//!
//! The default TCP congestion control may be BBR, which keeps queues short by design; a test
//! that wants TCP to fill the queue sets a loss-based one on its socket ([`set_tcp_congestion`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The address of A's end of the link.
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The address of B's end of the link.
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// A /30: the two ends and nothing else.
const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 252);
const A_DEVICE: &str = "tun0";
const B_DEVICE: &str = "tun1";
const MTU: libc::c_int = 1500;
/// The bottleneck's queue of [`ShapedLink::start`], in time at the rate: a home router's
/// buffer, which TCP fills (bufferbloat).
const DEFAULT_QUEUE: Duration = Duration::from_millis(300);
/// How long a thread may block before it looks at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Packets in each direction beyond this are dropped (a bound on memory far above what the
/// rate, queue and delay of a test can have on the way).
const MAX_IN_FLIGHT: usize = 20_000;
/// A probe with no reply by then counts as lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The base RTT is the least of this many probes on the idle link.
const BASE_RTT_PROBES: usize = 5;

/// A running link; see the module documentation. Dropping it tears it down.
pub struct ShapedLink {
    /// The network namespace the link was started in (A), kept to make sockets there.
    a_netns: OwnedFd,
    /// The second network namespace (B), kept to run threads there.
    b_netns: OwnedFd,
    stop: Arc<AtomicBool>,
    forwarder: Option<JoinHandle<()>>,
    /// The thread that made B, then answers the RTT probes there.
    echo: Option<JoinHandle<()>>,
    echo_addr: SocketAddrV4,
    /// Packets tail-dropped at the bottleneck: A to B, B to A.
    dropped: Arc<[AtomicU64; 2]>,
    /// A's probe socket (connected to the echo) and the next probe number.
    probe: Mutex<(UdpSocket, u64)>,
    base_rtt: Duration,
}

impl ShapedLink {
    /// Makes namespace B and the link to it from the calling thread's namespace (A), limited
    /// to `rate_bits_per_s` in each direction (counting IP packets) with a queue of 300 ms,
    /// and delayed by `one_way_delay` each way, then measures the base RTT. One link per
    /// namespace (the device names and addresses are fixed). The error says what the
    /// environment lacks.
    pub fn start(rate_bits_per_s: u64, one_way_delay: Duration) -> io::Result<Self> {
        Self::start_with_queue(rate_bits_per_s, one_way_delay, DEFAULT_QUEUE)
    }

    /// As [`ShapedLink::start`], with a bottleneck queue of `queue` (in time at the rate).
    pub fn start_with_queue(
        rate_bits_per_s: u64,
        one_way_delay: Duration,
        queue: Duration,
    ) -> io::Result<Self> {
        if rate_bits_per_s == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a link of 0 bits/s carries nothing",
            ));
        }
        only_loopback_here()?;
        let a_netns = open_own_netns()?;
        let a_tun = open_tun(A_DEVICE)?;
        configure_device(A_DEVICE, Some(A_IP))?;
        let probe = UdpSocket::bind((A_IP, 0))?;

        let stop = Arc::new(AtomicBool::new(false));
        let (made_b, b_made) = mpsc::channel();
        let echo = std::thread::Builder::new()
            .name("shaped-link-b".to_string())
            .spawn({
                let stop = stop.clone();
                move || match make_b() {
                    Ok((b, echo)) => {
                        let _ = made_b.send(Ok(b));
                        answer_probes(&echo, &stop);
                    }
                    Err(e) => {
                        let _ = made_b.send(Err(e));
                    }
                }
            })?;
        let b = match b_made.recv() {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let _ = echo.join();
                return Err(e);
            }
            Err(_) => {
                let _ = echo.join();
                return Err(io::Error::other("the thread making namespace B panicked"));
            }
        };
        let dropped: Arc<[AtomicU64; 2]> = Arc::default();
        let bottleneck = Bottleneck {
            rate_bits_per_s,
            queue,
            delay: one_way_delay,
        };
        let forwarder = std::thread::Builder::new()
            .name("shaped-link-forwarder".to_string())
            .spawn({
                let (stop, dropped) = (stop.clone(), dropped.clone());
                move || forward([a_tun, b.tun], bottleneck, &dropped, &stop)
            });
        let forwarder = match forwarder {
            Ok(forwarder) => forwarder,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = echo.join();
                return Err(e);
            }
        };
        // From here on, an error drops the link, which stops its threads.
        let mut link = Self {
            a_netns,
            b_netns: b.netns,
            stop,
            forwarder: Some(forwarder),
            echo: Some(echo),
            echo_addr: b.echo_addr,
            dropped,
            probe: Mutex::new((probe, 0)),
            base_rtt: Duration::ZERO,
        };
        link.probe
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
            .connect(b.echo_addr)?;
        let mut base = Duration::MAX;
        for _ in 0..BASE_RTT_PROBES {
            base = base.min(link.probe_rtt()?);
        }
        link.base_rtt = base;
        Ok(link)
    }

    /// A's address on the link.
    pub fn a_ip(&self) -> Ipv4Addr {
        A_IP
    }

    /// B's address on the link.
    pub fn b_ip(&self) -> Ipv4Addr {
        B_IP
    }

    /// The packets dropped so far because the bottleneck's queue was full: (A to B, B to A).
    pub fn dropped_packets(&self) -> (u64, u64) {
        let [a_to_b, b_to_a] = &*self.dropped;
        (
            a_to_b.load(Ordering::Relaxed),
            b_to_a.load(Ordering::Relaxed),
        )
    }

    /// The least RTT of a few probes on the idle link, measured by `start`: twice the delay,
    /// plus the serialisation and forwarding time.
    pub fn base_rtt(&self) -> Duration {
        self.base_rtt
    }

    /// Runs `f` on a new thread in namespace B and returns its result (a panic in `f` goes on
    /// here). Sockets keep the namespace they were made in, and threads started by `f` are in
    /// B too: a tokio runtime built in `f` has its worker threads in B, but a future given to
    /// its `block_on` on a thread in A runs in A, and the sockets it makes are A's.
    pub fn in_b<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.b_netns, f).expect("enter namespace B")
    }

    /// Starts `f` on a new thread in namespace B (a server that runs while the test goes on).
    pub fn spawn_in_b<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let netns = self
            .b_netns
            .try_clone()
            .expect("a descriptor for namespace B");
        std::thread::spawn(move || {
            enter_netns(netns.as_raw_fd()).expect("enter namespace B");
            drop(netns);
            f()
        })
    }

    /// One round trip of a small UDP datagram from A to the echo in B and back, through both
    /// queues: RTT − base RTT is the queuing delay now. `TimedOut` if lost.
    pub fn probe_rtt(&self) -> io::Result<Duration> {
        let mut probe = self
            .probe
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (socket, next) = &mut *probe;
        let number = *next;
        *next += 1;
        let sent = Instant::now();
        socket.send(&number.to_be_bytes())?;
        let mut buf = [0u8; 16];
        loop {
            let left = PROBE_TIMEOUT.saturating_sub(sent.elapsed());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no reply to the RTT probe",
                ));
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buf) {
                // Replies to earlier probes that were given up on are skipped.
                Ok(8) if buf[..8] == number.to_be_bytes() => return Ok(sent.elapsed()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts probing the RTT every `every` (at least 1 ms; without waiting for replies, so
    /// the samples stay evenly spaced however long the queue), from a socket of its own in A.
    pub fn sample_rtt(&self, every: Duration) -> io::Result<RttSampler> {
        let every = every.max(Duration::from_millis(1));
        let echo = self.echo_addr;
        let socket = in_netns(&self.a_netns, move || -> io::Result<UdpSocket> {
            let socket = UdpSocket::bind((A_IP, 0))?;
            socket.connect(echo)?;
            Ok(socket)
        })??;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("shaped-link-rtt".to_string())
            .spawn({
                let stop = stop.clone();
                move || sample(&socket, every, &stop)
            })?;
        Ok(RttSampler {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ShapedLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The forwarder owns the tun devices: they go when it ends. B goes when nothing
        // refers to it any more (this descriptor, the echo socket, any test's sockets there).
        for thread in [self.forwarder.take(), self.echo.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }
}

/// One RTT probe of an [`RttSampler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSample {
    /// When it was sent, from the start of sampling.
    pub at: Duration,
    /// Its round trip, or `None` if it was lost (no reply within 2 s).
    pub rtt: Option<Duration>,
}

/// RTT probes at a steady interval, on a thread of their own; see [`ShapedLink::sample_rtt`].
pub struct RttSampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<RttSample>>>,
}

impl RttSampler {
    /// Stops probing, waits for the replies still on their way, and returns every sample.
    pub fn finish(mut self) -> Vec<RttSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("finished only once")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for RttSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the thread that made B hands back.
struct NamespaceB {
    netns: OwnedFd,
    tun: File,
    echo_addr: SocketAddrV4,
}

/// Turns the calling thread's namespace into a new one (B) and sets up its side: `lo`, tun1
/// with its address, and the echo socket.
fn make_b() -> io::Result<(NamespaceB, UdpSocket)> {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET affects only this thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "a second network namespace needs CAP_SYS_ADMIN (root in a user namespace: \
                 run the test under `unshare -rn`): unshare(CLONE_NEWNET): {e}"
            ),
        ));
    }
    let netns = open_own_netns()?;
    configure_device("lo", None)?;
    let tun = open_tun(B_DEVICE)?;
    configure_device(B_DEVICE, Some(B_IP))?;
    let echo = UdpSocket::bind((B_IP, 0))?;
    echo.set_read_timeout(Some(STOP_POLL))?;
    let echo_addr = match echo.local_addr()? {
        SocketAddr::V4(addr) => addr,
        SocketAddr::V6(addr) => unreachable!("bound to an IPv4 address, got {addr}"),
    };
    Ok((
        NamespaceB {
            netns,
            tun,
            echo_addr,
        },
        echo,
    ))
}

/// Sends every probe back where it came from, until stopped.
fn answer_probes(echo: &UdpSocket, stop: &AtomicBool) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((len, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..len], from);
        }
    }
}

/// What each direction of the link does to a packet.
#[derive(Clone, Copy)]
struct Bottleneck {
    rate_bits_per_s: u64,
    /// The most the queue before the rate may hold, in time to send it.
    queue: Duration,
    delay: Duration,
}

/// One direction's packets on their way: each with the time it comes out of the delay.
struct Lane {
    on_the_way: VecDeque<(Instant, Vec<u8>)>,
    /// When the rate has sent everything queued so far.
    free_at: Instant,
}

impl Lane {
    /// Queues a packet behind those before it, or refuses it if the queue is full (tail drop).
    fn admit(&mut self, packet: &[u8], now: Instant, bottleneck: Bottleneck) -> bool {
        let sending =
            Duration::from_secs_f64(packet.len() as f64 * 8.0 / bottleneck.rate_bits_per_s as f64);
        let waiting = self.free_at.saturating_duration_since(now);
        if waiting + sending > bottleneck.queue || self.on_the_way.len() >= MAX_IN_FLIGHT {
            return false;
        }
        self.free_at = self.free_at.max(now) + sending;
        // The rate and delay are the same for every packet, so they come out in order.
        self.on_the_way
            .push_back((self.free_at + bottleneck.delay, packet.to_vec()));
        true
    }
}

/// Carries packets between the two tun devices through a bottleneck each way, until stopped:
/// `tuns[i]`'s packets go into `tuns[1 - i]`, and those dropped are counted in `dropped[i]`.
fn forward(tuns: [File; 2], bottleneck: Bottleneck, dropped: &[AtomicU64; 2], stop: &AtomicBool) {
    let now = Instant::now();
    let mut lanes = [(); 2].map(|()| Lane {
        on_the_way: VecDeque::new(),
        free_at: now,
    });
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let next_due = lanes
            .iter()
            .filter_map(|lane| lane.on_the_way.front().map(|(due, _)| *due))
            .min();
        let wait = next_due.map_or(STOP_POLL, |due| {
            due.saturating_duration_since(Instant::now()).min(STOP_POLL)
        });
        let mut fds = tuns.each_ref().map(|tun| libc::pollfd {
            fd: tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let timeout = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos().into(),
        };
        // ppoll rather than poll: its timeout is in nanoseconds, so packets leave on time.
        // SAFETY: two valid pollfds, a valid timespec, no signal mask.
        unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &timeout, std::ptr::null()) };
        let now = Instant::now();
        for (side, fd) in fds.iter().enumerate() {
            if fd.revents & libc::POLLIN == 0 {
                continue;
            }
            // Non-blocking: read everything there is, so the sender's kernel holds nothing.
            while let Ok(len @ 1..) = (&tuns[side]).read(&mut buf) {
                if !lanes[side].admit(&buf[..len], now, bottleneck) {
                    dropped[side].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for (side, lane) in lanes.iter_mut().enumerate() {
            while lane.on_the_way.front().is_some_and(|(due, _)| *due <= now) {
                let (_, packet) = lane.on_the_way.pop_front().expect("a front packet");
                // A write the other stack refuses is a packet lost on the link.
                let _ = (&tuns[1 - side]).write(&packet);
            }
        }
    }
}

/// Sends a probe every `every` and times the replies, until stopped and the replies still
/// due have come (or timed out).
fn sample(socket: &UdpSocket, every: Duration, stop: &AtomicBool) -> Vec<RttSample> {
    let start = Instant::now();
    let mut samples: Vec<RttSample> = Vec::new();
    let mut next_send = start;
    let mut buf = [0u8; 16];
    loop {
        let now = Instant::now();
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            let waiting = samples
                .iter()
                .any(|s| s.rtt.is_none() && now - (start + s.at) < PROBE_TIMEOUT);
            if !waiting {
                return samples;
            }
        } else if now >= next_send {
            let number = samples.len() as u64;
            // A probe that cannot be sent is as lost as one dropped on the way.
            let _ = socket.send(&number.to_be_bytes());
            samples.push(RttSample {
                at: now - start,
                rtt: None,
            });
            next_send += every;
            continue;
        }
        let wait = if stopping {
            STOP_POLL
        } else {
            next_send.saturating_duration_since(now).min(STOP_POLL)
        };
        // A zero timeout would mean "block forever".
        let _ = socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        if let Ok(8) = socket.recv(&mut buf) {
            let number = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
            if let Some(sample) = samples.get_mut(number as usize) {
                sample.rtt = Some(start.elapsed() - sample.at);
            }
        }
    }
}

/// Refuses a namespace with any interface besides `lo`: the link must not touch a real one.
fn only_loopback_here() -> io::Result<()> {
    // thread-self: the namespace of this thread, which is the one the devices go into.
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev")?;
    let others: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .filter(|name| *name != "lo")
        .collect();
    if others.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ShapedLink must start in a network namespace with only `lo` (run the test under \
             netns::in_loopback_namespace), but this one has {others:?}"
        )))
    }
}

/// The calling thread's network namespace, as a descriptor that keeps it alive.
fn open_own_netns() -> io::Result<OwnedFd> {
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

/// Moves the calling thread into the network namespace `netns`.
fn enter_netns(netns: libc::c_int) -> io::Result<()> {
    // SAFETY: setns on a descriptor the caller keeps open; CLONE_NEWNET moves only this thread.
    if unsafe { libc::setns(netns, libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `f` on a new thread in the network namespace `netns`.
fn in_netns<T: Send>(netns: &OwnedFd, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let netns = netns.as_raw_fd();
    std::thread::scope(|scope| {
        scope
            .spawn(move || enter_netns(netns).map(|()| f()))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A name in an `ifreq`.
fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data, all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    assert!(name.len() < req.ifr_name.len(), "interface name too long");
    for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    req
}

/// A new tun device `name` (IP packets, no extra header) in the calling thread's namespace;
/// the device lasts as long as the returned file.
fn open_tun(name: &str) -> io::Result<File> {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .map_err(|e| io::Error::new(e.kind(), format!("ShapedLink needs /dev/net/tun: {e}")))?;
    let mut req = ifreq_for(name);
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the ifreq, which outlives the call.
    if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("creating tun device {name} needs CAP_NET_ADMIN and a free name: {e}"),
        ));
    }
    Ok(tun)
}

/// Brings the device `name` up, with MTU 1500 and `ip`/30 if given (as `ip addr add` and
/// `ip link set up` would, through the ioctls, in the calling thread's namespace).
fn configure_device(name: &str, ip: Option<Ipv4Addr>) -> io::Result<()> {
    // SAFETY: a plain socket, owned at once.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if socket < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened and owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(socket) };
    let ioctl = |request: libc::Ioctl, req: &mut libc::ifreq, what: &str| {
        // SAFETY: the interface ioctls read and write the ifreq, which outlives the call.
        if unsafe { libc::ioctl(socket.as_raw_fd(), request, req as *mut libc::ifreq) } == 0 {
            Ok(())
        } else {
            let e = io::Error::last_os_error();
            Err(io::Error::new(e.kind(), format!("{what} on {name}: {e}")))
        }
    };
    if let Some(ip) = ip {
        for (request, value, what) in [
            (libc::SIOCSIFADDR, ip, "SIOCSIFADDR"),
            (libc::SIOCSIFNETMASK, NETMASK, "SIOCSIFNETMASK"),
        ] {
            let mut req = ifreq_for(name);
            let address = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(value).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in has the size of the sockaddr it is written over.
            unsafe {
                std::ptr::write(
                    (&raw mut req.ifr_ifru.ifru_addr).cast::<libc::sockaddr_in>(),
                    address,
                )
            };
            ioctl(request, &mut req, what)?;
        }
        let mut req = ifreq_for(name);
        req.ifr_ifru.ifru_mtu = MTU;
        ioctl(libc::SIOCSIFMTU, &mut req, "SIOCSIFMTU")?;
    }
    let mut req = ifreq_for(name);
    ioctl(libc::SIOCGIFFLAGS, &mut req, "SIOCGIFFLAGS")?;
    // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(libc::SIOCSIFFLAGS, &mut req, "SIOCSIFFLAGS")
}

/// Sets the congestion control of a TCP socket (`"cubic"`, `"reno"`, `"bbr"`), as a test
/// that wants TCP to fill the bottleneck's queue must where the default is BBR.
pub fn set_tcp_congestion(socket: &impl AsRawFd, algorithm: &str) -> io::Result<()> {
    // SAFETY: the option value is the name's bytes, read for the length given.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            algorithm.as_ptr().cast(),
            algorithm.len() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("TCP congestion control {algorithm}: {e}"),
        ))
    }
}
