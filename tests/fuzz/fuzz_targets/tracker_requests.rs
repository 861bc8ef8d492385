//! Rivulet's tracker: any HTTP request head gets a bencoded dictionary back, any datagram an
//! answer or silence; one tracker state lives across inputs, as it does in a real run. A
//! quarter of the inputs get a valid connection id in front, so UDP announce and scrape
//! parsing is reached.
#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

use rivulet::tracker::server::{
    Access, ConnectionIds, Limits, Swarms, answer_http_request, answer_udp_datagram,
};

static SWARMS: LazyLock<Swarms> = LazyLock::new(|| {
    Swarms::new(
        Limits {
            interval: Duration::from_secs(60),
            max_torrents: 1000,
            max_peers_per_torrent: 100,
        },
        Access::Open,
    )
});
static IDS: LazyLock<ConnectionIds> = LazyLock::new(ConnectionIds::default);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let from = SocketAddr::new(IpAddr::from([127, 0, 0, kind]), 6881);
    if kind % 2 == 0 {
        let head = String::from_utf8_lossy(rest);
        let (_, body) = answer_http_request(&head, from.ip(), &SWARMS);
        let value = rivulet::bencode::decode(&body).expect("the tracker answers in bencode");
        assert!(value.as_dict().is_some());
    } else if kind % 4 == 1 {
        let _ = answer_udp_datagram(rest, from, &SWARMS, &IDS);
    } else {
        // With a connection id the tracker accepts (got by a connect, as a client does), so
        // the input reaches announce and scrape parsing.
        let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        let id = answer_udp_datagram(&connect, from, &SWARMS, &IDS).expect("connect answered");
        let mut packet = id[8..16].to_vec();
        packet.extend_from_slice(rest);
        let _ = answer_udp_datagram(&packet, from, &SWARMS, &IDS);
    }
});
