//! Tracker responses: HTTP announce and scrape bodies and UDP announce replies parse or error.
#![no_main]

use rivulet::ids::InfoHash;
use rivulet::tracker::{parse_announce_response, parse_scrape_response, parse_udp_announce_response};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(response) = parse_announce_response(data) {
        assert!(response.peers.iter().all(|p| p.port() != 0));
    }
    let _ = parse_scrape_response(data, &[InfoHash([1; 20]), InfoHash([2; 20])]);
    let _ = parse_udp_announce_response(data, false);
    let _ = parse_udp_announce_response(data, true);
});
