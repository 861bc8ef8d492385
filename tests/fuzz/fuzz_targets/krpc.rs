//! KRPC (BEP 5): any datagram gives a DHT message or an error, and what is read is written
//! back the same.
#![no_main]

use rivulet::dht::krpc::Message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        assert_eq!(Message::decode(&m.encode()), Ok(m));
    }
});
