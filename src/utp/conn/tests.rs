//! The state machine against a scripted peer (single packets, by hand), and two connections
//! over a virtual link with loss, delay and reordering, in virtual time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const DGRAM: usize = 1400;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every datagram the connection has to send now.
fn drain(conn: &mut Conn, now: Instant) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let mut buf = Vec::new();
    while conn.poll_transmit(now, &mut buf) {
        sent.push(buf.clone());
        assert!(sent.len() < 10_000, "a connection that never stops sending");
    }
    sent
}

fn header(bytes: &[u8]) -> Header {
    Packet::decode(bytes).unwrap().header
}

fn deliver(conn: &mut Conn, bytes: &[u8], now: Instant) {
    conn.on_packet(&Packet::decode(bytes).unwrap(), now);
}

/// A packet from the scripted peer.
fn peer_packet(
    kind: PacketType,
    conn_id: u16,
    seq: u16,
    ack: u16,
    sack: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let header = Header {
        kind,
        conn_id,
        timestamp_us: 1,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr: seq,
        ack_nr: ack,
    };
    encode(&header, sack, payload, &mut out);
    out
}

/// A connection we dialled, connected to a scripted acceptor whose first sequence number is
/// 1000; returns it and our first data sequence number.
fn dialled(now: Instant) -> (Conn, u16) {
    let mut conn = Conn::connect(7, 500, now, now, DGRAM);
    let syn = drain(&mut conn, now);
    assert_eq!(syn.len(), 1);
    let h = header(&syn[0]);
    assert_eq!(
        (h.kind, h.conn_id, h.seq_nr, h.ack_nr),
        (PacketType::Syn, 7, 500, 0)
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::State, 7, 1000, 500, None, &[]),
        now,
    );
    assert!(conn.is_connected());
    (conn, 501)
}

#[test]
fn the_dialler_connects_on_the_acceptors_ack_and_sends_with_id_plus_one() {
    let now = Instant::now();
    let (mut conn, first) = dialled(now);
    assert_eq!(conn.write(b"hello"), WriteOutcome::Accepted(5));
    let sent = drain(&mut conn, now);
    assert_eq!(sent.len(), 1);
    let packet = Packet::decode(&sent[0]).unwrap();
    assert_eq!(packet.header.kind, PacketType::Data);
    assert_eq!(packet.header.conn_id, 8);
    assert_eq!(packet.header.seq_nr, first);
    // The ACK's sequence number is the acceptor's first DATA's: ack_nr is one less.
    assert_eq!(packet.header.ack_nr, 999);
    assert_eq!(packet.payload, b"hello");
}

#[test]
fn the_acceptor_answers_a_syn_and_a_repeated_syn_the_same_way() {
    let now = Instant::now();
    let syn = peer_packet(PacketType::Syn, 40, 77, 0, None, &[]);
    let mut conn = Conn::accept(&header(&syn), 3000, now, now, DGRAM);
    assert_eq!(conn.recv_id(), 41);
    let reply = drain(&mut conn, now);
    assert_eq!(reply.len(), 1);
    let h = header(&reply[0]);
    assert_eq!(
        (h.kind, h.conn_id, h.seq_nr, h.ack_nr),
        (PacketType::State, 40, 3000, 77)
    );
    assert!(conn.is_from_syn(&header(&syn)));
    deliver(&mut conn, &syn, now);
    let again = drain(&mut conn, now);
    assert_eq!(again.len(), 1);
    assert_eq!(
        header(&again[0]),
        Header {
            timestamp_us: h.timestamp_us,
            ..h
        }
    );
    // The dialler's first DATA, then ours carries the sequence number the ACK showed.
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 41, 78, 2999, None, b"hi"),
        now,
    );
    let mut buf = [0u8; 8];
    assert_eq!(conn.read(&mut buf), ReadOutcome::Data(2));
    conn.write(b"yo");
    let sent = drain(&mut conn, now);
    assert_eq!(header(&sent[0]).seq_nr, 3000);
    assert_eq!(header(&sent[0]).ack_nr, 78);
}

#[test]
fn an_unanswered_syn_is_sent_again_once_then_the_dial_fails() {
    let now = Instant::now();
    let mut conn = Conn::connect(7, 500, now, now, DGRAM);
    assert_eq!(drain(&mut conn, now).len(), 1);
    conn.on_tick(now + ms(500));
    assert!(drain(&mut conn, now + ms(500)).is_empty());
    conn.on_tick(now + ms(1000));
    let again = drain(&mut conn, now + ms(1000));
    assert_eq!(again.len(), 1);
    assert_eq!(header(&again[0]).kind, PacketType::Syn);
    conn.on_tick(now + ms(2500));
    assert!(drain(&mut conn, now + ms(2500)).is_empty());
    conn.on_tick(now + CONNECT_TIMEOUT);
    assert!(conn.is_closed());
    assert_eq!(conn.error(), Some(io::ErrorKind::TimedOut));
}

#[test]
fn a_reset_refuses_a_dial_and_resets_a_connection() {
    let now = Instant::now();
    let mut dialling = Conn::connect(7, 500, now, now, DGRAM);
    drain(&mut dialling, now);
    deliver(
        &mut dialling,
        &peer_packet(PacketType::Reset, 7, 1, 500, None, &[]),
        now,
    );
    assert_eq!(dialling.error(), Some(io::ErrorKind::ConnectionRefused));
    let (mut conn, _) = dialled(now);
    deliver(
        &mut conn,
        &peer_packet(PacketType::Reset, 7, 1, 500, None, &[]),
        now,
    );
    assert_eq!(
        conn.read(&mut [0u8; 4]),
        ReadOutcome::Failed(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(
        conn.write(b"x"),
        WriteOutcome::Failed(io::ErrorKind::ConnectionReset)
    );
    assert!(drain(&mut conn, now).is_empty(), "no RESET answers a RESET");
}

#[test]
fn out_of_order_data_is_held_acknowledged_selectively_and_delivered_in_order() {
    let now = Instant::now();
    let (mut conn, _) = dialled(now);
    // 1000 is the acceptor's first DATA; 1001 and 1003 arrive first.
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1001, 500, None, b"b"),
        now,
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1003, 500, None, b"d"),
        now,
    );
    assert_eq!(conn.read(&mut [0u8; 4]), ReadOutcome::Pending);
    let ack = drain(&mut conn, now);
    assert_eq!(ack.len(), 1, "one ACK for both");
    let packet = Packet::decode(&ack[0]).unwrap();
    assert_eq!(packet.header.ack_nr, 999);
    // Bit 0 is 1001 (ack_nr + 2), bit 2 is 1003.
    assert_eq!(packet.sack, Some(&[0b101, 0, 0, 0][..]));
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1002, 500, None, b"c"),
        now,
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1002, 500, None, b"c"),
        now,
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1000, 500, None, b"a"),
        now,
    );
    let mut buf = [0u8; 8];
    assert_eq!(conn.read(&mut buf), ReadOutcome::Data(4));
    assert_eq!(&buf[..4], b"abcd");
    let ack = drain(&mut conn, now);
    assert_eq!(header(ack.last().unwrap()).ack_nr, 1003);
}

#[test]
fn a_fin_before_missing_data_ends_the_stream_after_that_data() {
    let now = Instant::now();
    let (mut conn, _) = dialled(now);
    deliver(
        &mut conn,
        &peer_packet(PacketType::Fin, 7, 1002, 500, None, &[]),
        now,
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1001, 500, None, b"y"),
        now,
    );
    assert_eq!(conn.read(&mut [0u8; 4]), ReadOutcome::Pending);
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1000, 500, None, b"x"),
        now,
    );
    // Data past the FIN is ignored.
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1003, 500, None, b"z"),
        now,
    );
    let mut buf = [0u8; 4];
    assert_eq!(conn.read(&mut buf), ReadOutcome::Data(2));
    assert_eq!(&buf[..2], b"xy");
    assert_eq!(conn.read(&mut buf), ReadOutcome::Eof);
    let ack = drain(&mut conn, now);
    assert_eq!(
        header(ack.last().unwrap()).ack_nr,
        1002,
        "the FIN is acknowledged"
    );
}

/// A connection with `packets` full data packets in flight.
fn sending(now: Instant, packets: usize) -> (Conn, u16, Vec<Vec<u8>>) {
    let (mut conn, first) = dialled(now);
    conn.cc = Ledbat::new(DGRAM, RECV_WINDOW);
    conn.cc.on_ack(64 * DGRAM, 64 * DGRAM, Duration::ZERO);
    let mss = conn.mss();
    conn.write(&vec![7u8; mss * packets]);
    let sent = drain(&mut conn, now);
    assert_eq!(sent.len(), packets);
    (conn, first, sent)
}

#[test]
fn three_duplicate_acks_resend_the_next_packet_once() {
    let now = Instant::now();
    let (mut conn, first, _) = sending(now, 8);
    // The first ACK of `first` is progress; the three after it are duplicates.
    let dup = peer_packet(PacketType::State, 7, 1000, first, None, &[]);
    for _ in 0..3 {
        deliver(&mut conn, &dup, now + ms(10));
        assert!(drain(&mut conn, now + ms(10)).is_empty());
    }
    deliver(&mut conn, &dup, now + ms(10));
    let resent = drain(&mut conn, now + ms(10));
    assert_eq!(resent.len(), 1);
    assert_eq!(header(&resent[0]).seq_nr, first + 1);
    for _ in 0..5 {
        deliver(&mut conn, &dup, now + ms(20));
    }
    assert!(drain(&mut conn, now + ms(20)).is_empty(), "once only");
    assert_eq!(conn.stats().retransmits, 1);
}

#[test]
fn duplicate_data_packets_are_not_duplicate_acks() {
    let now = Instant::now();
    let (mut conn, first, _) = sending(now, 8);
    for seq in 1000..1004 {
        let data = peer_packet(PacketType::Data, 7, seq, first, None, b"z");
        deliver(&mut conn, &data, now + ms(10));
    }
    let sent = drain(&mut conn, now + ms(10));
    assert!(sent.iter().all(|p| header(p).kind == PacketType::State));
}

/// What a connection with `packets` full packets in flight sends again when the peer
/// acknowledges the first one and, selectively, the packets of `mask` (bit 0: first + 2).
fn resent_after_sack(packets: usize, mask: u8) -> (u16, Vec<u16>) {
    let now = Instant::now();
    let (mut conn, first, _) = sending(now, packets);
    conn.rtt.sample(ms(5));
    let sack = peer_packet(
        PacketType::State,
        7,
        1000,
        first,
        Some(&[mask, 0, 0, 0]),
        &[],
    );
    deliver(&mut conn, &sack, now + ms(10));
    let resent = drain(&mut conn, now + ms(10))
        .iter()
        .map(|p| header(p).seq_nr)
        .collect();
    (first, resent)
}

#[test]
fn a_selective_ack_resends_a_hole_with_three_later_packets_acknowledged() {
    // first + 1 is missing; first + 2 ..= first + 4 arrived.
    let (first, resent) = resent_after_sack(8, 0b111);
    assert_eq!(resent, [first + 1]);
    // Two later packets only: not yet a loss.
    let (_, resent) = resent_after_sack(8, 0b11);
    assert!(resent.is_empty());
}

#[test]
fn timeouts_resend_the_oldest_packet_back_off_and_give_up() {
    let now = Instant::now();
    let (mut conn, first, _) = sending(now, 4);
    let mut at = now;
    let mut waits = Vec::new();
    for _ in 1..MAX_SILENT_TIMEOUTS {
        let deadline = conn.next_deadline().unwrap();
        waits.push((deadline - at).as_millis());
        at = deadline;
        conn.on_tick(at);
        let resent = drain(&mut conn, at);
        assert_eq!(resent.len(), 1, "one packet after a timeout");
        assert_eq!(header(&resent[0]).seq_nr, first);
        assert_eq!(conn.stats().window, DGRAM);
    }
    // The SYN's round trip was instant: the 500 ms floor, doubling.
    assert_eq!(waits, [500, 1000, 2000, 4000, 8000]);
    conn.on_tick(conn.next_deadline().unwrap());
    assert_eq!(conn.error(), Some(io::ErrorKind::TimedOut));
}

#[test]
fn a_peer_that_answers_with_a_closed_window_is_probed_not_given_up() {
    let now = Instant::now();
    let (mut conn, first, _) = sending(now, 4);
    let mut at = now;
    for _ in 0..20 {
        at = conn.next_deadline().unwrap();
        conn.on_tick(at);
        assert!(!drain(&mut conn, at).is_empty(), "a probe");
        // The peer reads nothing: it answers, with no room.
        let mut full = peer_packet(PacketType::State, 7, 1000, first.wrapping_sub(1), None, &[]);
        full[12..16].copy_from_slice(&0u32.to_be_bytes());
        deliver(&mut conn, &full, at + ms(1));
    }
    assert_eq!(conn.error(), None, "{:?} later, still connected", at - now);
}

#[test]
fn the_packet_that_fills_a_hole_is_taken_past_the_memory_limit() {
    let now = Instant::now();
    let (mut conn, _) = dialled(now);
    conn.set_memory_limit(MIN_WINDOW);
    let chunk = vec![3u8; 1300];
    // 1000 is missing; 1001.. fill the reorder buffer up to the limit.
    let mut seq = 1001u16;
    while conn.buffered() + chunk.len() <= MIN_WINDOW {
        deliver(
            &mut conn,
            &peer_packet(PacketType::Data, 7, seq, 500, None, &chunk),
            now,
        );
        seq += 1;
    }
    deliver(
        &mut conn,
        &peer_packet(PacketType::Data, 7, 1000, 500, None, &chunk),
        now,
    );
    let ack = drain(&mut conn, now);
    assert_eq!(
        header(ack.last().unwrap()).ack_nr,
        seq - 1,
        "everything moved on"
    );
}

#[test]
fn an_acknowledgement_half_the_sequence_space_away_is_ignored() {
    let now = Instant::now();
    let (mut conn, first) = dialled(now);
    conn.write(b"x");
    conn.close();
    drain(&mut conn, now);
    let bogus = first.wrapping_add(1).wrapping_add(0x8000);
    deliver(
        &mut conn,
        &peer_packet(PacketType::State, 7, 1000, bogus, None, &[]),
        now,
    );
    assert!(!conn.is_flushed(), "the FIN is not acknowledged by that");
}

#[test]
fn a_selective_ack_resends_the_oldest_holes_first() {
    // Holes at first + 1 and first + 3; first + 2 and first + 4 ..= first + 8 arrived.
    let (first, resent) = resent_after_sack(12, 0b0111_1101);
    assert_eq!(resent[..2], [first + 1, first + 3]);
}

#[test]
fn a_fin_never_acknowledged_before_the_peer_finished_is_an_error() {
    let now = Instant::now();
    let (mut conn, _) = dialled(now);
    conn.close();
    drain(&mut conn, now);
    while !conn.is_closed() {
        let at = conn.next_deadline().unwrap();
        conn.on_tick(at);
        drain(&mut conn, at);
    }
    assert_eq!(conn.error(), Some(io::ErrorKind::TimedOut));
    assert_eq!(
        conn.read(&mut [0u8; 4]),
        ReadOutcome::Failed(io::ErrorKind::TimedOut)
    );
}

#[test]
fn data_beyond_the_receive_window_is_dropped_unacknowledged() {
    let now = Instant::now();
    let (mut conn, _) = dialled(now);
    let chunk = vec![1u8; 1300];
    let mut seq = 1000u16;
    let mut accepted = 0;
    for _ in 0..(RECV_WINDOW / 1300 + 10) {
        deliver(
            &mut conn,
            &peer_packet(PacketType::Data, 7, seq, 500, None, &chunk),
            now,
        );
        let acks = drain(&mut conn, now);
        if header(acks.last().unwrap()).ack_nr == seq {
            accepted += 1;
            seq = seq.wrapping_add(1);
        }
    }
    assert_eq!(accepted, RECV_WINDOW / 1300);
    let acks = drain(&mut conn, now);
    assert!(acks.is_empty());
    // Reading reopens the window, and the peer is told.
    let mut buf = vec![0u8; 64 * 1024];
    assert!(matches!(conn.read(&mut buf), ReadOutcome::Data(_)));
    let update = drain(&mut conn, now);
    assert_eq!(update.len(), 1);
    assert!(header(&update[0]).wnd_size as usize >= 60 * 1024);
}

#[test]
fn a_smaller_memory_share_shrinks_the_windows_and_the_send_buffer() {
    let now = Instant::now();
    let (mut conn, _) = dialled(now);
    conn.set_memory_limit(MIN_WINDOW);
    assert_eq!(
        conn.write(&vec![0u8; RECV_WINDOW]),
        WriteOutcome::Accepted(MIN_WINDOW / 4)
    );
    let chunk = vec![1u8; 1000];
    let mut seq = 1000u16;
    for _ in 0..100 {
        deliver(
            &mut conn,
            &peer_packet(PacketType::Data, 7, seq, 500, None, &chunk),
            now,
        );
        seq = seq.wrapping_add(1);
    }
    assert_eq!(
        conn.unread(),
        MIN_WINDOW / 1000 * 1000,
        "the rest was dropped"
    );
    let ack = drain(&mut conn, now);
    assert!((header(ack.last().unwrap()).wnd_size as usize) < 1000);
    assert!(conn.stats().window <= MIN_WINDOW);
}

#[test]
fn nagle_keeps_one_small_packet_in_flight() {
    let now = Instant::now();
    let (mut conn, first) = dialled(now);
    conn.write(b"a");
    assert_eq!(drain(&mut conn, now).len(), 1);
    conn.write(b"b");
    conn.write(b"c");
    assert!(
        drain(&mut conn, now).is_empty(),
        "waits for the first to be acknowledged"
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::State, 7, 1000, first, None, &[]),
        now + ms(5),
    );
    let sent = drain(&mut conn, now + ms(5));
    assert_eq!(sent.len(), 1);
    assert_eq!(Packet::decode(&sent[0]).unwrap().payload, b"bc");
}

#[test]
fn close_sends_a_fin_after_the_data_and_ends_when_both_sides_are_done() {
    let now = Instant::now();
    let (mut conn, first) = dialled(now);
    conn.write(b"last words");
    conn.close();
    let sent = drain(&mut conn, now);
    let kinds: Vec<_> = sent.iter().map(|p| header(p).kind).collect();
    assert_eq!(kinds, [PacketType::Data, PacketType::Fin]);
    assert_eq!(header(&sent[1]).seq_nr, first + 1);
    assert_eq!(
        conn.write(b"more"),
        WriteOutcome::Failed(io::ErrorKind::BrokenPipe)
    );
    deliver(
        &mut conn,
        &peer_packet(PacketType::State, 7, 1000, first + 1, None, &[]),
        now,
    );
    assert!(conn.is_flushed());
    assert!(!conn.is_closed(), "the peer still sends");
    deliver(
        &mut conn,
        &peer_packet(PacketType::Fin, 7, 1000, first + 1, None, &[]),
        now,
    );
    assert!(conn.is_closed());
    assert_eq!(conn.read(&mut [0u8; 4]), ReadOutcome::Eof);
}

/// A datagram on the virtual wire: arrival, order sent, towards b, bytes.
type InFlight = Reverse<(Instant, u64, bool, Vec<u8>)>;

/// Two connections over a virtual link, in virtual time.
struct Sim {
    now: Instant,
    a: Conn,
    b: Conn,
    wire: BinaryHeap<InFlight>,
    sent: u64,
    rng: StdRng,
    loss: f64,
    delay: Duration,
    jitter: Duration,
}

impl Sim {
    fn new(seed: u64, loss: f64, delay: Duration, jitter: Duration) -> Self {
        let now = Instant::now();
        let mut a = Conn::connect(100, 9, now, now, DGRAM);
        let mut buf = Vec::new();
        assert!(a.poll_transmit(now, &mut buf));
        let b = Conn::accept(&header(&buf), 60000, now, now, DGRAM);
        Self {
            now,
            a,
            b,
            wire: BinaryHeap::new(),
            sent: 0,
            rng: StdRng::seed_from_u64(seed),
            loss,
            delay,
            jitter,
        }
    }

    fn flush(&mut self) {
        let mut buf = Vec::new();
        for to_b in [true, false] {
            let conn = if to_b { &mut self.a } else { &mut self.b };
            while conn.poll_transmit(self.now, &mut buf) {
                self.sent += 1;
                if self.rng.random_bool(self.loss) {
                    continue;
                }
                let jitter = self.jitter.mul_f64(self.rng.random::<f64>());
                let at = self.now + self.delay + jitter;
                self.wire.push(Reverse((at, self.sent, to_b, buf.clone())));
            }
        }
    }

    /// Runs until `done` or `limit` of virtual time; returns the virtual time taken.
    fn run(
        &mut self,
        limit: Duration,
        mut step: impl FnMut(&mut Conn, &mut Conn) -> bool,
    ) -> Duration {
        let start = self.now;
        while self.now - start < limit {
            if step(&mut self.a, &mut self.b) {
                return self.now - start;
            }
            self.flush();
            let next_packet = self.wire.peek().map(|Reverse(p)| p.0);
            let tick = self.now + ms(5);
            let next = [next_packet, Some(tick)]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            self.now = next.max(self.now);
            while let Some(Reverse((at, _, _, _))) = self.wire.peek() {
                if *at > self.now {
                    break;
                }
                let Reverse((_, _, to_b, bytes)) = self.wire.pop().unwrap();
                let conn = if to_b { &mut self.b } else { &mut self.a };
                deliver(conn, &bytes, self.now);
            }
            self.a.on_tick(self.now);
            self.b.on_tick(self.now);
        }
        panic!("not done in {limit:?} of virtual time");
    }
}

/// Sends `data` from a to b; returns what b read and the virtual time it took.
fn transfer(sim: &mut Sim, data: &[u8], limit: Duration) -> (Vec<u8>, Duration) {
    let mut written = 0;
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let took = sim.run(limit, |a, b| {
        if written < data.len()
            && let WriteOutcome::Accepted(n) = a.write(&data[written..])
        {
            written += n;
            if written == data.len() {
                a.close();
            }
        }
        loop {
            match b.read(&mut buf) {
                ReadOutcome::Data(n) => received.extend_from_slice(&buf[..n]),
                ReadOutcome::Eof => return true,
                ReadOutcome::Pending => return false,
                ReadOutcome::Failed(e) => panic!("the receiver failed: {e:?}"),
            }
        }
    });
    (received, took)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn ten_mebibytes_arrive_intact_over_a_lossy_reordering_link() {
    let data = pattern(10 << 20);
    let mut sim = Sim::new(1, 0.02, ms(20), ms(10));
    let (received, took) = transfer(&mut sim, &data, Duration::from_secs(600));
    assert!(received == data, "the bytes differ");
    assert!(sim.a.stats().retransmits > 0);
    eprintln!(
        "10 MiB at 2% loss, 20-30 ms: {took:?} of virtual time, {} retransmits",
        sim.a.stats().retransmits
    );
}

#[test]
fn a_clean_link_fills_its_window_quickly() {
    let data = pattern(4 << 20);
    let mut sim = Sim::new(2, 0.0, ms(10), ms(0));
    let (received, took) = transfer(&mut sim, &data, Duration::from_secs(60));
    assert!(received == data);
    // 4 MiB at 20 ms round trips: slow start reaches the 1 MiB window in a few round trips.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(sim.a.stats().retransmits, 0);
}

#[test]
fn both_directions_at_once_and_a_clean_close() {
    let up = pattern(300_000);
    let down: Vec<u8> = pattern(200_000).into_iter().rev().collect();
    let mut sim = Sim::new(3, 0.01, ms(15), ms(5));
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    let (mut wa, mut wb) = (0, 0);
    let mut buf = vec![0u8; 65536];
    sim.run(Duration::from_secs(120), |a, b| {
        if let WriteOutcome::Accepted(n) = a.write(&up[wa..]) {
            wa += n;
        }
        if let WriteOutcome::Accepted(n) = b.write(&down[wb..]) {
            wb += n;
        }
        if wa == up.len() {
            a.close();
        }
        if wb == down.len() {
            b.close();
        }
        while let ReadOutcome::Data(n) = b.read(&mut buf) {
            at_b.extend_from_slice(&buf[..n]);
        }
        while let ReadOutcome::Data(n) = a.read(&mut buf) {
            at_a.extend_from_slice(&buf[..n]);
        }
        a.is_closed() && b.is_closed()
    });
    assert!(at_b == up && at_a == down);
    assert_eq!((sim.a.error(), sim.b.error()), (None, None));
}
