//! One uTP connection as a state machine with no sockets and no clock of its own: datagrams
//! go in through [`Conn::on_packet`], come out of [`Conn::poll_transmit`], and time moves
//! only when the caller says what time it is. The socket task ([`super::socket`]) and the
//! byte stream ([`super::stream`]) drive it; tests drive it over a virtual link.
//!
//! It owns both directions of the byte stream: the send buffer, the packets in flight (by
//! sequence number, each with its transmissions), the reorder buffer and what is ready to be
//! read, and the timers: retransmission ([`RttEstimator`]), the connect deadline, keepalive.
//! The congestion window is [`Ledbat`]'s.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::ledbat::{DelayHistory, Ledbat};
use super::packet::{HEADER_LEN, Header, Packet, PacketType, encode, seq_before};
use super::rtt::RttEstimator;

/// Bytes received and not yet read (in order or waiting for a gap) that a connection holds
/// at most, and the largest congestion window; less when many connections share the
/// socket's memory budget ([`Conn::set_memory_limit`]).
pub const RECV_WINDOW: usize = 1024 * 1024;
/// The least of it, however many connections there are.
pub const MIN_WINDOW: usize = 64 * 1024;
/// Packets the reorder buffer reaches ahead of the next expected one.
const MAX_REORDER: u16 = 2048;
/// Packets in flight at most (well within half the sequence space).
const MAX_OUTSTANDING: usize = 4096;
/// A connection that has not heard back from its SYN gives up (and the peer is dialled over
/// TCP instead).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The SYN is sent again once, this long after the first.
const SYN_RESEND: Duration = Duration::from_secs(1);
/// Retransmission timeouts in a row with nothing at all heard from the peer before the
/// connection is given up (after our FIN: fewer). A peer that answers, even with a closed
/// window, keeps the connection: only silence ends it.
const MAX_SILENT_TIMEOUTS: u8 = 6;
const MAX_SILENT_FIN_TIMEOUTS: u8 = 3;
/// An idle connection sends an ACK this often, so that NATs keep its mapping.
const KEEPALIVE: Duration = Duration::from_secs(29);
/// Room kept in each data packet for a selective ACK of 32 packets.
const SACK_ROOM: usize = 6;
/// The longest selective ACK sent (1024 packets).
const MAX_SACK_BYTES: usize = 128;
/// Later packets acknowledged selectively before a hole counts as a loss.
const SACK_LOSS_THRESHOLD: usize = 3;
/// Duplicate ACKs that count as a loss of the packet after them.
const DUP_ACK_THRESHOLD: u8 = 3;
/// Holes re-sent for one selective ACK at most.
const MAX_SACK_RESENDS: usize = 5;
/// libtorrent's marker for "no delay measured" in `timestamp_difference` (a uTorrent bug).
const NO_DELAY: u32 = 0x7fff_ffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Our SYN is out, nothing heard back yet.
    SynSent,
    Connected,
    Closed,
}

/// A packet sent and not yet acknowledged cumulatively.
#[derive(Debug)]
struct Outgoing {
    seq: u16,
    kind: PacketType,
    payload: Bytes,
    sent_at: Option<Instant>,
    transmissions: u8,
    /// Acknowledged by a selective ACK: arrived, not to be sent again.
    sacked: bool,
    /// Counted in `flight`: sent and neither acknowledged nor taken for lost.
    in_flight: bool,
}

impl Outgoing {
    fn size(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// What [`Conn::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(usize),
    /// Nothing to read yet.
    Pending,
    /// The peer closed its side and everything before its FIN was read.
    Eof,
    Failed(io::ErrorKind),
}

/// What [`Conn::write`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Accepted(usize),
    /// The send buffer is full.
    Pending,
    Failed(io::ErrorKind),
}

/// Figures of a connection, for tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    pub packets_sent: u64,
    pub retransmits: u64,
    pub window: usize,
    pub smoothed_rtt: Option<Duration>,
    pub queuing_delay: Duration,
}

#[derive(Debug)]
pub struct Conn {
    state: State,
    error: Option<io::ErrorKind>,
    recv_id: u16,
    send_id: u16,
    /// The next sequence number to use.
    seq_nr: u16,
    /// The last sequence number received in order.
    ack_nr: u16,
    /// The sequence number of the peer's SYN, when it dialled us.
    peer_syn: Option<u16>,
    epoch: Instant,
    max_datagram: usize,

    /// The receive window and congestion window cap; a quarter of it for the send buffer.
    memory_limit: usize,
    unsent: BytesMut,
    outgoing: VecDeque<Outgoing>,
    /// Packets taken for lost, to be sent again as the window allows.
    resend: VecDeque<u16>,
    flight: usize,
    cc: Ledbat,
    rtt: RttEstimator,
    delays: DelayHistory,
    peer_window: usize,
    dup_acks: u8,
    fast_resent: Option<u16>,
    /// Packets from here on were sent after the last window cut.
    loss_seq: u16,
    rto_at: Option<Instant>,
    /// Retransmission timeouts since the peer last sent anything.
    silent_timeouts: u8,
    /// Bytes of payload in `outgoing` (sent and not acknowledged cumulatively).
    outgoing_bytes: usize,
    connect_deadline: Option<Instant>,
    last_sent: Instant,
    close_requested: bool,
    fin_queued: bool,
    fin_acked: bool,
    /// The small packet in flight, if any: Nagle's rule allows one.
    nagle_seq: Option<u16>,

    reorder: HashMap<u16, Vec<u8>>,
    reorder_bytes: usize,
    readable: VecDeque<Vec<u8>>,
    read_offset: usize,
    readable_bytes: usize,
    eof_pkt: Option<u16>,
    eof: bool,
    /// The one-way delay of the peer's last packet as we see it, echoed back.
    reply_micro: u32,
    needs_ack: bool,
    /// A RESET is due (to a peer sending to a connection this side abandoned).
    reset_due: bool,
    stats: ConnStats,
}

impl Conn {
    fn new(
        recv_id: u16,
        send_id: u16,
        seq_nr: u16,
        now: Instant,
        epoch: Instant,
        max_datagram: usize,
    ) -> Self {
        let mss = max_datagram - HEADER_LEN - SACK_ROOM;
        Self {
            state: State::SynSent,
            error: None,
            recv_id,
            send_id,
            seq_nr,
            ack_nr: 0,
            peer_syn: None,
            epoch,
            max_datagram,
            memory_limit: RECV_WINDOW,
            unsent: BytesMut::new(),
            outgoing: VecDeque::new(),
            resend: VecDeque::new(),
            flight: 0,
            cc: Ledbat::new(mss + HEADER_LEN, RECV_WINDOW),
            rtt: RttEstimator::default(),
            delays: DelayHistory::default(),
            peer_window: mss + HEADER_LEN,
            dup_acks: 0,
            fast_resent: None,
            loss_seq: seq_nr,
            rto_at: None,
            silent_timeouts: 0,
            outgoing_bytes: 0,
            connect_deadline: None,
            last_sent: now,
            close_requested: false,
            fin_queued: false,
            fin_acked: false,
            nagle_seq: None,
            reorder: HashMap::new(),
            reorder_bytes: 0,
            readable: VecDeque::new(),
            read_offset: 0,
            readable_bytes: 0,
            eof_pkt: None,
            eof: false,
            reply_micro: 0,
            needs_ack: false,
            reset_due: false,
            stats: ConnStats::default(),
        }
    }

    /// A connection we dial: its SYN waits in [`Conn::poll_transmit`]. Packets for it arrive
    /// with `recv_id`; it sends with `recv_id + 1`. `isn` is a random first sequence number.
    pub fn connect(
        recv_id: u16,
        isn: u16,
        now: Instant,
        epoch: Instant,
        max_datagram: usize,
    ) -> Self {
        let mut conn = Self::new(
            recv_id,
            recv_id.wrapping_add(1),
            isn,
            now,
            epoch,
            max_datagram,
        );
        conn.push_outgoing(PacketType::Syn, Bytes::new());
        conn.connect_deadline = Some(now + CONNECT_TIMEOUT);
        conn
    }

    /// A connection a peer dialled with `syn`: connected at once, its reply (an ACK) due.
    pub fn accept(
        syn: &Header,
        isn: u16,
        now: Instant,
        epoch: Instant,
        max_datagram: usize,
    ) -> Self {
        let mut conn = Self::new(
            syn.conn_id.wrapping_add(1),
            syn.conn_id,
            isn,
            now,
            epoch,
            max_datagram,
        );
        conn.state = State::Connected;
        conn.ack_nr = syn.seq_nr;
        conn.peer_syn = Some(syn.seq_nr);
        conn.reply_micro = conn.micros(now).wrapping_sub(syn.timestamp_us);
        conn.needs_ack = true;
        conn
    }

    /// The connection id packets for this connection arrive with.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Closed for good: reset, timed out, or both sides done.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether our FIN was acknowledged (everything we wrote arrived).
    pub fn is_flushed(&self) -> bool {
        self.fin_acked
    }

    pub fn error(&self) -> Option<io::ErrorKind> {
        self.error
    }

    pub fn stats(&self) -> ConnStats {
        ConnStats {
            window: self.cc.window(),
            smoothed_rtt: self.rtt.smoothed(),
            queuing_delay: self.delays.queuing_delay(),
            ..self.stats.clone()
        }
    }

    fn micros(&self, now: Instant) -> u32 {
        // The low 32 bits: timestamps wrap every 71 minutes, and only differences count.
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }

    fn mss(&self) -> usize {
        self.max_datagram - HEADER_LEN - SACK_ROOM
    }

    fn fail(&mut self, error: io::ErrorKind) {
        if self.state != State::Closed {
            self.error = Some(error);
            self.state = State::Closed;
        }
    }

    /// Whether the peer's `syn` is the one this connection was accepted for (a SYN sent
    /// again): it is answered again, and no second connection made.
    pub fn is_from_syn(&self, syn: &Header) -> bool {
        self.peer_syn == Some(syn.seq_nr)
    }

    /// A datagram for this connection.
    pub fn on_packet(&mut self, packet: &Packet<'_>, now: Instant) {
        let header = &packet.header;
        match header.kind {
            PacketType::Reset => {
                let refused = self.state == State::SynSent;
                self.fail(if refused {
                    io::ErrorKind::ConnectionRefused
                } else {
                    io::ErrorKind::ConnectionReset
                });
                return;
            }
            PacketType::Syn => {
                if self.is_from_syn(header) {
                    self.needs_ack = true;
                }
                return;
            }
            _ => {}
        }
        if self.state == State::Closed {
            // Both sides were done: a peer sending again missed our last ACK.
            if self.error.is_none() && header.kind != PacketType::State {
                self.needs_ack = true;
            }
            return;
        }
        let last_sent = self.seq_nr.wrapping_sub(1);
        // The acknowledgement must lie between the last one (just before the oldest packet
        // out) and the last packet sent; one further back is old news, one ahead is bogus.
        let oldest = self
            .outgoing
            .front()
            .map_or(last_sent, |f| f.seq.wrapping_sub(1));
        let behind = last_sent.wrapping_sub(header.ack_nr);
        let current_ack = behind <= last_sent.wrapping_sub(oldest);
        if !current_ack && behind >= 0x8000 {
            return; // acknowledges what was never sent
        }
        if self.state == State::SynSent {
            // The SYN's is the only sequence number out.
            if header.ack_nr != last_sent {
                return;
            }
            self.state = State::Connected;
            self.connect_deadline = None;
            // The acceptor's ACK carries the sequence number of its first DATA.
            self.ack_nr = header.seq_nr.wrapping_sub(1);
        }
        self.reply_micro = self.micros(now).wrapping_sub(header.timestamp_us);
        if header.timestamp_diff_us != 0 && header.timestamp_diff_us != NO_DELAY {
            self.delays.add(header.timestamp_diff_us, now);
        }
        self.rtt.answered();
        self.silent_timeouts = 0;
        if current_ack {
            self.take_ack(packet, now);
        }
        self.peer_window = header.wnd_size as usize;
        match header.kind {
            PacketType::Data => self.receive(header.seq_nr, packet.payload),
            PacketType::Fin => self.receive_fin(header.seq_nr),
            _ => {}
        }
        if self.fin_acked && self.eof {
            self.state = State::Closed;
        }
    }

    /// The cumulative and selective acknowledgement of a packet.
    fn take_ack(&mut self, packet: &Packet<'_>, now: Instant) {
        let ack = packet.header.ack_nr;
        let flight_before = self.flight;
        let mut acked = 0;
        let mut progressed = false;
        while let Some(front) = self.outgoing.front() {
            if seq_before(ack, front.seq) {
                break;
            }
            let Some(done) = self.outgoing.pop_front() else {
                break;
            };
            progressed = true;
            self.outgoing_bytes -= done.payload.len();
            if done.in_flight {
                self.flight -= done.size();
            }
            if !done.sacked {
                acked += done.size();
                self.rtt_sample(&done, now);
            }
            if done.kind == PacketType::Fin {
                self.fin_acked = true;
            }
            if self.nagle_seq == Some(done.seq) {
                self.nagle_seq = None;
            }
        }
        if let Some(sack) = packet.sack {
            acked += self.take_sack(ack, sack, now);
        }
        let duplicate = !progressed
            && packet.header.kind == PacketType::State
            && self
                .outgoing
                .front()
                .is_some_and(|f| f.seq == ack.wrapping_add(1) && f.in_flight);
        if duplicate {
            self.dup_acks = self.dup_acks.saturating_add(1);
            if self.dup_acks >= DUP_ACK_THRESHOLD {
                let seq = ack.wrapping_add(1);
                if self.fast_resent != Some(seq) {
                    self.fast_resent = Some(seq);
                    self.mark_lost(0, now);
                }
            }
        } else if progressed {
            self.dup_acks = 0;
        }
        if progressed {
            self.rto_at = (self.flight > 0).then(|| now + self.rtt.timeout());
        }
        self.cc
            .on_ack(acked, flight_before, self.delays.queuing_delay());
    }

    /// Marks what a selective ACK acknowledges, and takes for lost each hole with enough
    /// later packets acknowledged. Returns the bytes newly acknowledged.
    fn take_sack(&mut self, ack: u16, sack: &[u8], now: Instant) -> usize {
        let Some(first) = self.outgoing.front().map(|f| f.seq) else {
            return 0;
        };
        let mut acked = 0;
        let mut highest = None;
        for (j, byte) in sack.iter().enumerate() {
            for i in 0..8 {
                if byte & (1 << i) == 0 {
                    continue;
                }
                let seq = ack.wrapping_add(2).wrapping_add((8 * j + i) as u16);
                let index = usize::from(seq.wrapping_sub(first));
                let Some(out) = self.outgoing.get_mut(index) else {
                    continue;
                };
                highest = Some(index);
                if out.sacked {
                    continue;
                }
                out.sacked = true;
                if out.in_flight {
                    out.in_flight = false;
                    self.flight -= out.size();
                }
                acked += out.size();
                if out.transmissions == 1
                    && let Some(at) = out.sent_at
                {
                    self.rtt.sample(now.duration_since(at));
                }
            }
        }
        let Some(highest) = highest else {
            return acked;
        };
        // Holes, oldest first, with enough acknowledged after them.
        let srtt = self.rtt.smoothed().unwrap_or(Duration::ZERO);
        let mut later = 0;
        let mut lost = Vec::new();
        for index in (0..=highest).rev() {
            let Some(out) = self.outgoing.get(index) else {
                continue;
            };
            if out.sacked {
                later += 1;
                continue;
            }
            let sent_long_ago = out.sent_at.is_some_and(|at| now.duration_since(at) >= srtt);
            if later >= SACK_LOSS_THRESHOLD && out.in_flight && sent_long_ago {
                lost.push(index);
            }
        }
        // The oldest holes, the oldest ending first in line (`mark_lost` queues at the front).
        let oldest: Vec<usize> = lost.into_iter().rev().take(MAX_SACK_RESENDS).collect();
        for index in oldest.into_iter().rev() {
            self.mark_lost(index, now);
        }
        acked
    }

    fn rtt_sample(&mut self, out: &Outgoing, now: Instant) {
        if out.transmissions == 1
            && let Some(at) = out.sent_at
        {
            self.rtt.sample(now.duration_since(at));
        }
    }

    /// Takes the packet at `index` of the outgoing queue for lost: out of the flight, first
    /// in line to be sent again, and the window cut if it was sent after the last cut.
    fn mark_lost(&mut self, index: usize, now: Instant) {
        let Some(out) = self.outgoing.get_mut(index) else {
            return;
        };
        if !out.in_flight {
            return;
        }
        out.in_flight = false;
        self.flight -= out.size();
        let seq = out.seq;
        self.resend.push_front(seq);
        if !seq_before(seq, self.loss_seq) && self.cc.on_loss(now) {
            self.loss_seq = self.seq_nr;
        }
    }

    fn receive(&mut self, seq: u16, payload: &[u8]) {
        self.needs_ack = true;
        if payload.is_empty() {
            return;
        }
        if self.eof_pkt.is_some_and(|eof| !seq_before(seq, eof)) {
            return; // past the FIN
        }
        let ahead = seq.wrapping_sub(self.ack_nr);
        if ahead == 0 || ahead >= 0x8000 {
            return; // a duplicate: the ACK it gets repairs a lost one
        }
        // The next packet in order is always taken when others wait behind it: it only moves
        // them on to the reader (refusing it would stall the stream, as they are acknowledged
        // and never sent again).
        let fills_a_hole = ahead == 1 && !self.reorder.is_empty();
        let over = self.buffered() + payload.len() > self.memory_limit;
        if ahead > MAX_REORDER || (over && !fills_a_hole) {
            return; // beyond the window: dropped unacknowledged, the sender slows
        }
        if ahead > 1 {
            if !self.reorder.contains_key(&seq) {
                self.reorder_bytes += payload.len();
                self.reorder.insert(seq, payload.to_vec());
            }
            return;
        }
        self.deliver(payload.to_vec());
        self.ack_nr = seq;
        loop {
            let next = self.ack_nr.wrapping_add(1);
            match self.reorder.remove(&next) {
                Some(data) => {
                    self.reorder_bytes -= data.len();
                    self.deliver(data);
                    self.ack_nr = next;
                }
                None => break,
            }
        }
        self.reach_eof();
    }

    fn receive_fin(&mut self, seq: u16) {
        self.needs_ack = true;
        if self.eof_pkt.is_none() && seq_before(self.ack_nr, seq) {
            self.eof_pkt = Some(seq);
        }
        self.reach_eof();
    }

    /// Everything before the FIN arrived: the FIN is acknowledged and the reader sees EOF.
    fn reach_eof(&mut self) {
        if let Some(eof) = self.eof_pkt
            && self.ack_nr.wrapping_add(1) == eof
        {
            self.ack_nr = eof;
            self.eof = true;
            self.reorder.clear();
            self.reorder_bytes = 0;
        }
    }

    fn deliver(&mut self, data: Vec<u8>) {
        self.readable_bytes += data.len();
        self.readable.push_back(data);
    }

    fn buffered(&self) -> usize {
        self.readable_bytes + self.reorder_bytes
    }

    fn window_left(&self) -> usize {
        self.memory_limit.saturating_sub(self.buffered())
    }

    /// Copies received bytes into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        let mut copied = 0;
        self.read_with(|chunk| {
            let n = chunk.len().min(buf.len() - copied);
            buf[copied..copied + n].copy_from_slice(&chunk[..n]);
            copied += n;
            n
        })
    }

    /// Hands received bytes to `take`, chunk by chunk, until it takes less than a whole
    /// chunk; `take` returns how many bytes of the chunk it took. (A reader's buffer need
    /// not be zeroed first, as `read` would need.)
    pub fn read_with(&mut self, mut take: impl FnMut(&[u8]) -> usize) -> ReadOutcome {
        if self.readable_bytes == 0 {
            return if self.eof {
                ReadOutcome::Eof
            } else if let Some(e) = self.error {
                ReadOutcome::Failed(e)
            } else if self.state == State::Closed {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Pending
            };
        }
        let was_shut = self.window_left() < self.mss();
        let mut taken = 0;
        while let Some(front) = self.readable.front() {
            let rest = &front[self.read_offset..];
            let n = take(rest).min(rest.len());
            taken += n;
            self.read_offset += n;
            if self.read_offset < front.len() {
                break;
            }
            self.readable.pop_front();
            self.read_offset = 0;
        }
        self.readable_bytes -= taken;
        if was_shut && self.window_left() >= self.mss() {
            self.needs_ack = true; // tells the peer the window opened
        }
        ReadOutcome::Data(taken)
    }

    /// Bounds what the connection holds: `limit` bytes received and unread, `limit` in
    /// flight, a quarter of it waiting to be sent (clamped to [`MIN_WINDOW`]..[`RECV_WINDOW`]).
    pub fn set_memory_limit(&mut self, limit: usize) {
        self.memory_limit = limit.clamp(MIN_WINDOW, RECV_WINDOW);
        self.cc.set_max(self.memory_limit);
    }

    fn send_buffer(&self) -> usize {
        self.memory_limit / 4
    }

    /// Queues bytes to send, as many as the send buffer takes.
    pub fn write(&mut self, data: &[u8]) -> WriteOutcome {
        if let Some(e) = self.error {
            return WriteOutcome::Failed(e);
        }
        if self.state == State::Closed || self.close_requested {
            return WriteOutcome::Failed(io::ErrorKind::BrokenPipe);
        }
        let room = self.send_buffer().saturating_sub(self.unsent.len());
        if room == 0 {
            return WriteOutcome::Pending;
        }
        let n = room.min(data.len());
        self.unsent.extend_from_slice(&data[..n]);
        WriteOutcome::Accepted(n)
    }

    /// Whether a write would take bytes now.
    pub fn writable(&self) -> bool {
        self.unsent.len() < self.send_buffer() || self.state == State::Closed
    }

    /// Bytes received and not read yet.
    pub fn unread(&self) -> usize {
        self.readable_bytes
    }

    /// Whether a read would return something now (data, EOF or an error).
    pub fn readable(&self) -> bool {
        self.readable_bytes > 0 || self.eof || self.state == State::Closed
    }

    /// No more writes: a FIN follows what was written.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// Answers a packet from a peer this side has stopped listening to with a RESET.
    pub fn reset(&mut self) {
        self.fail(io::ErrorKind::ConnectionReset);
        self.reset_due = true;
    }

    /// When [`Conn::on_tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.rto_at, self.connect_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Timers: the connect deadline, the SYN's second send and retransmission timeouts.
    pub fn on_tick(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.state == State::SynSent {
            if self.connect_deadline.is_some_and(|d| now >= d) {
                self.fail(io::ErrorKind::TimedOut);
                return;
            }
            let syn_again = self.outgoing.front().is_some_and(|syn| {
                syn.transmissions == 1 && syn.sent_at.is_some_and(|at| now >= at + SYN_RESEND)
            });
            if syn_again && let Some(syn) = self.outgoing.front_mut() {
                syn.in_flight = false;
                self.flight = 0;
                self.resend.push_back(syn.seq);
            }
            return;
        }
        let Some(at) = self.rto_at else {
            return;
        };
        if now < at {
            return;
        }
        if !self.outgoing.iter().any(|o| !o.sacked) {
            self.rto_at = None;
            self.cc.on_idle();
            return;
        }
        self.silent_timeouts = self.silent_timeouts.saturating_add(1);
        let limit = if self.fin_queued {
            MAX_SILENT_FIN_TIMEOUTS
        } else {
            MAX_SILENT_TIMEOUTS
        };
        if self.silent_timeouts >= limit {
            if self.fin_queued && self.eof {
                self.state = State::Closed; // both sides done; the peer missed our last word
            } else {
                self.fail(io::ErrorKind::TimedOut);
            }
            return;
        }
        tracing::trace!(recv_id = self.recv_id, timeout = ?self.rtt.timeout(), "uTP retransmission timeout");
        self.rtt.backed_off();
        self.cc.on_timeout(now);
        self.loss_seq = self.seq_nr;
        self.resend.clear();
        for out in self.outgoing.iter_mut() {
            if out.in_flight {
                out.in_flight = false;
            }
            if !out.sacked && out.transmissions > 0 {
                self.resend.push_back(out.seq);
            }
        }
        self.flight = 0;
        self.rto_at = Some(now + self.rtt.timeout());
    }

    fn push_outgoing(&mut self, kind: PacketType, payload: Bytes) -> u16 {
        let seq = self.seq_nr;
        self.outgoing_bytes += payload.len();
        self.outgoing.push_back(Outgoing {
            seq,
            kind,
            payload,
            sent_at: None,
            transmissions: 0,
            sacked: false,
            in_flight: false,
        });
        self.seq_nr = self.seq_nr.wrapping_add(1);
        seq
    }

    fn window_allows(&self, size: usize) -> bool {
        self.flight == 0 || self.flight + size <= self.cc.window().min(self.peer_window)
    }

    /// The next datagram to send, written into `out`; false when there is none now.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        if self.state == State::Closed {
            if self.reset_due {
                self.reset_due = false;
                self.write_packet(PacketType::Reset, self.seq_nr, &[], now, out);
                return true;
            }
            if self.error.is_none() && self.needs_ack {
                self.write_packet(PacketType::State, self.seq_nr, &[], now, out);
                return true;
            }
            return false;
        }
        while let Some(&seq) = self.resend.front() {
            let Some(index) = self.index_of(seq) else {
                self.resend.pop_front();
                continue;
            };
            let (sacked, in_flight, size) = {
                let o = &self.outgoing[index];
                (o.sacked, o.in_flight, o.size())
            };
            if sacked || in_flight {
                self.resend.pop_front();
                continue;
            }
            if !self.window_allows(size) {
                break;
            }
            self.resend.pop_front();
            self.stats.retransmits += 1;
            self.transmit(index, now, out);
            return true;
        }
        if self.state == State::Connected && self.resend.is_empty() {
            if let Some(index) = self.packetize() {
                self.transmit(index, now, out);
                return true;
            }
            if self.close_requested && self.unsent.is_empty() && !self.fin_queued {
                self.fin_queued = true;
                self.push_outgoing(PacketType::Fin, Bytes::new());
                self.transmit(self.outgoing.len() - 1, now, out);
                return true;
            }
        }
        if self.state == State::SynSent
            && self.outgoing.front().is_some_and(|s| s.transmissions == 0)
        {
            self.transmit(0, now, out);
            return true;
        }
        let keepalive = self.state == State::Connected && now >= self.last_sent + KEEPALIVE;
        if (self.needs_ack && self.state == State::Connected) || keepalive {
            self.write_packet(PacketType::State, self.seq_nr, &[], now, out);
            return true;
        }
        false
    }

    fn index_of(&self, seq: u16) -> Option<usize> {
        let first = self.outgoing.front()?.seq;
        let index = usize::from(seq.wrapping_sub(first));
        (index < self.outgoing.len()).then_some(index)
    }

    /// Makes the next data packet from the send buffer, if the windows and Nagle allow one.
    fn packetize(&mut self) -> Option<usize> {
        // What waits for an acknowledgement (selectively acknowledged packets too) stays
        // within the connection's memory share.
        if self.unsent.is_empty()
            || self.outgoing.len() >= MAX_OUTSTANDING
            || self.outgoing_bytes >= self.memory_limit
        {
            return None;
        }
        let size = self.unsent.len().min(self.mss());
        if !self.window_allows(size + HEADER_LEN) {
            return None;
        }
        let small = size < self.mss();
        if small && self.nagle_seq.is_some() && self.flight > 0 && !self.close_requested {
            return None; // one small packet in flight at a time
        }
        let payload = self.unsent.split_to(size).freeze();
        let seq = self.push_outgoing(PacketType::Data, payload);
        if small {
            self.nagle_seq = Some(seq);
        }
        Some(self.outgoing.len() - 1)
    }

    fn transmit(&mut self, index: usize, now: Instant, out: &mut Vec<u8>) {
        let Some(packet) = self.outgoing.get_mut(index) else {
            return;
        };
        packet.transmissions = packet.transmissions.saturating_add(1);
        packet.sent_at = Some(now);
        packet.in_flight = true;
        let (kind, seq, payload) = (packet.kind, packet.seq, packet.payload.clone());
        self.flight += HEADER_LEN + payload.len();
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.timeout());
        }
        self.write_packet(kind, seq, &payload, now, out);
    }

    fn write_packet(
        &mut self,
        kind: PacketType,
        seq: u16,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let header = Header {
            kind,
            conn_id: if kind == PacketType::Syn {
                self.recv_id
            } else {
                self.send_id
            },
            timestamp_us: self.micros(now),
            timestamp_diff_us: self.reply_micro,
            wnd_size: self.window_left() as u32,
            seq_nr: seq,
            ack_nr: if kind == PacketType::Syn {
                0
            } else {
                self.ack_nr
            },
        };
        let room = self.max_datagram - HEADER_LEN - payload.len();
        let sack = self.selective_ack(room.saturating_sub(2));
        encode(&header, sack.as_deref(), payload, out);
        self.needs_ack = false;
        self.last_sent = now;
        self.stats.packets_sent += 1;
    }

    /// The selective ACK of what waits in the reorder buffer, in whole 4-byte words, at
    /// most `room` bytes.
    fn selective_ack(&self, room: usize) -> Option<Vec<u8>> {
        if self.reorder.is_empty() {
            return None;
        }
        let base = self.ack_nr.wrapping_add(2);
        let span = self
            .reorder
            .keys()
            .map(|&seq| usize::from(seq.wrapping_sub(base)))
            .max()?
            + 1;
        let bytes = span.div_ceil(32) * 4;
        let bytes = bytes.min(MAX_SACK_BYTES).min(room / 4 * 4);
        if bytes == 0 {
            return None;
        }
        let mut mask = vec![0u8; bytes];
        for &seq in self.reorder.keys() {
            let bit = usize::from(seq.wrapping_sub(base));
            if let Some(byte) = mask.get_mut(bit / 8) {
                *byte |= 1 << (bit % 8);
            }
        }
        Some(mask)
    }
}

#[cfg(test)]
mod tests;
