//! Property tests (proptest): what Rivulet encodes it decodes back unchanged, and any bytes at
//! all given to a parser of untrusted input give a value or an error, never a panic. The
//! coverage-guided fuzz targets in `tests/fuzz` push the same parsers much further.

use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use proptest::prelude::*;
use rivulet::bencode::{self, Value};
use rivulet::ids::InfoHash;
use rivulet::metainfo::Metainfo;
use rivulet::tracker::server::{
    Access, ConnectionIds, Limits, Swarms, answer_http_request, answer_udp_datagram,
};
use rivulet::tracker::{
    parse_announce_response, parse_scrape_response, parse_udp_announce_response,
};
use rivulet::wire::{BlockRef, Handshake, Message, decode_frame};

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..12),
                inner,
                0..8
            )
            .prop_map(Value::Dict),
        ]
    })
}

fn message() -> impl Strategy<Value = Message> {
    let block =
        (any::<u32>(), any::<u32>(), 1u32..=16384).prop_map(|(index, begin, length)| BlockRef {
            index,
            begin,
            length,
        });
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        any::<u32>().prop_map(Message::Have),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(|b| Message::Bitfield(b.into())),
        block.clone().prop_map(Message::Request),
        block.prop_map(Message::Cancel),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..2048)
        )
            .prop_map(|(index, begin, data)| Message::Piece {
                index,
                begin,
                data: data.into(),
            }),
    ]
}

fn swarms() -> Swarms {
    Swarms::new(
        Limits {
            interval: std::time::Duration::from_secs(60),
            max_torrents: 100,
            max_peers_per_torrent: 100,
        },
        Access::Open,
    )
}

/// A connection id the tracker accepts from `from`, got as a client gets it: by a connect
/// request. Without one, random datagrams never reach announce or scrape parsing.
fn connection_id(ids: &ConnectionIds, swarms: &Swarms, from: SocketAddr) -> [u8; 8] {
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    let reply = answer_udp_datagram(&connect, from, swarms, ids).expect("a connect is answered");
    reply[8..16].try_into().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bencode_round_trips(v in value()) {
        prop_assert_eq!(bencode::decode(&v.encode()), Ok(v));
    }

    #[test]
    fn bencode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = bencode::decode(&bytes) {
            // Re-encoding may only sort dictionary keys.
            let encoded = v.encode();
            prop_assert_eq!(encoded.len(), bytes.len());
            prop_assert_eq!(bencode::decode(&encoded), Ok(v));
        }
    }

    #[test]
    fn any_datagram_is_a_krpc_message_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = rivulet::dht::krpc::Message::decode(&bytes) {
            prop_assert_eq!(rivulet::dht::krpc::Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn krpc_dictionaries_are_read_or_refused(t in proptest::collection::vec(any::<u8>(), 0..20), y in "[qre]", q in "(ping|find_node|get_peers|announce_peer|x)", id in proptest::collection::vec(any::<u8>(), 18..22), port in any::<i64>()) {
        use rivulet::bencode::Value;
        let args = Value::dict([
            ("id", Value::Bytes(id.clone())),
            ("target", Value::Bytes(id.clone())),
            ("info_hash", Value::Bytes(id.clone())),
            ("port", Value::Int(port)),
            ("token", Value::Bytes(b"tok".to_vec())),
        ]);
        let datagram = Value::dict([
            ("t", Value::Bytes(t)),
            ("y", Value::Bytes(y.into_bytes())),
            ("q", Value::Bytes(q.into_bytes())),
            ("a", args.clone()),
            ("r", args),
        ])
        .encode();
        if let Ok(m) = rivulet::dht::krpc::Message::decode(&datagram) {
            prop_assert_eq!(rivulet::dht::krpc::Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn any_string_is_a_magnet_link_or_an_error(text in "(magnet:\\?)?[a-zA-Z0-9%:&=.+\\[\\]/-]{0,200}") {
        if let Ok(link) = rivulet::magnet::MagnetLink::parse(&text) {
            // What was read is written back and reads the same.
            prop_assert_eq!(rivulet::magnet::MagnetLink::parse(&link.to_string()), Ok(link));
        }
    }

    #[test]
    fn magnet_links_round_trip(hash in any::<[u8; 20]>(), name in "\\PC{0,40}", trackers in proptest::collection::vec("[a-z]{1,8}://[a-z0-9.:/?&=%+]{1,30}", 0..4)) {
        let link = rivulet::magnet::MagnetLink {
            info_hash: rivulet::ids::InfoHash(hash),
            name: Some(name).filter(|n| !n.is_empty()),
            trackers: trackers.into_iter().fold(Vec::new(), |mut all, t| {
                if !all.contains(&t) { all.push(t) }
                all
            }),
            peers: Vec::new(),
            select_only: None,
            exact_length: None,
        };
        prop_assert_eq!(rivulet::magnet::MagnetLink::parse(&link.to_string()), Ok(link));
    }

    #[test]
    fn metainfo_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metainfo::from_bytes(&bytes);
    }

    #[test]
    fn metainfo_of_any_bencoded_value_never_panics(v in value()) {
        let _ = Metainfo::from_bytes(&Value::dict([("info", v)]).encode());
    }

    #[test]
    fn wire_messages_round_trip(m in message()) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        prop_assert_eq!(decode_frame(&mut buf, 1 << 20).unwrap(), Some(m));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn wire_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..4096) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode_frame(&mut buf, max) {}
        if let Ok(hs) = <[u8; 68]>::try_from(&bytes[..bytes.len().min(68)]) {
            let _ = Handshake::decode(&hs);
        }
    }

    #[test]
    fn tracker_responses_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), ipv6: bool) {
        let _ = parse_announce_response(&bytes);
        let _ = parse_scrape_response(&bytes, &[InfoHash([1; 20])]);
        let _ = parse_udp_announce_response(&bytes, ipv6);
    }

    #[test]
    fn tracker_http_requests_always_get_a_bencoded_answer(head in "\\PC{0,200}") {
        let (_, body) = answer_http_request(&head, IpAddr::from([127, 0, 0, 1]), &swarms());
        prop_assert!(bencode::decode(&body).is_ok_and(|v| v.as_dict().is_some()));
    }

    #[test]
    fn tracker_announce_queries_never_panic(query in "[a-z_=&%0-9A-F]{0,300}") {
        let head = format!("GET /announce?{query} HTTP/1.1");
        let (_, body) = answer_http_request(&head, IpAddr::from([127, 0, 0, 1]), &swarms());
        prop_assert!(bencode::decode(&body).is_ok());
    }

    #[test]
    fn tracker_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let _ = answer_udp_datagram(&bytes, from, &swarms(), &ConnectionIds::default());
    }

    /// Announces and scrapes with a valid connection id and anything after it: parsed to an
    /// answer (or an error reply), never a panic. Announce packets are 98 bytes and scrapes
    /// 16 + 20n, so lengths around both are generated.
    #[test]
    fn tracker_announce_and_scrape_datagrams_never_panic(
        action in 0u32..4,
        transaction in any::<u32>(),
        tail in proptest::collection::vec(any::<u8>(), 0..130),
    ) {
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let (ids, swarms) = (ConnectionIds::default(), swarms());
        let mut packet = connection_id(&ids, &swarms, from).to_vec();
        packet.extend_from_slice(&action.to_be_bytes());
        packet.extend_from_slice(&transaction.to_be_bytes());
        packet.extend_from_slice(&tail);
        let reply = answer_udp_datagram(&packet, from, &swarms, &ids);
        prop_assert!(reply.is_some(), "every request with a valid id is answered");
        let reply = reply.unwrap_or_default();
        prop_assert_eq!(&reply[4..8], &transaction.to_be_bytes()[..]);
        // The id passed: the parser of the action itself decided.
        prop_assert!(!String::from_utf8_lossy(&reply[8..]).contains("connection id"));
    }
}
