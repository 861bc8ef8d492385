//! uTP: any datagram decodes or errors, and what decodes re-encodes to a packet that decodes
//! the same; then the input, cut into datagrams, is fed to a connection (accepted from a SYN,
//! or dialling) with time moving on, which must never panic nor send without end.
#![no_main]

use std::time::{Duration, Instant};

use rivulet::utp::conn::{Conn, ReadOutcome};
use rivulet::utp::packet::{Header, Packet, PacketType, encode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(data) {
        let mut again = Vec::new();
        encode(&packet.header, packet.sack, packet.payload, &mut again);
        let decoded = Packet::decode(&again).expect("an encoded packet decodes");
        assert_eq!(decoded.header, packet.header);
        assert_eq!(decoded.payload, packet.payload);
        assert_eq!(decoded.sack, packet.sack.filter(|s| !s.is_empty()));
    }
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let epoch = Instant::now();
    let mut now = epoch;
    let mut conn = if first & 1 == 0 {
        let syn = Header {
            kind: PacketType::Syn,
            conn_id: 1000,
            timestamp_us: 0,
            timestamp_diff_us: 0,
            wnd_size: 0,
            seq_nr: 500,
            ack_nr: 0,
        };
        Conn::accept(&syn, 9000, now, epoch, 1400)
    } else {
        Conn::connect(1000, 9000, now, epoch, 1400)
    };
    let _ = conn.write(&[7u8; 5000]);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Each datagram: a length byte, then that many bytes.
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(packet) = Packet::decode(datagram) {
            conn.on_packet(&packet, now);
        }
        let mut sent = 0;
        while conn.poll_transmit(now, &mut out) {
            sent += 1;
            assert!(sent < 10_000, "a connection that never stops sending");
            assert!(out.len() <= 1400, "a datagram over the size limit");
        }
        while let ReadOutcome::Data(n) = conn.read(&mut buf) {
            assert!(n > 0);
        }
        now += Duration::from_millis(u64::from(first >> 1) * 10);
        conn.on_tick(now);
    }
});
