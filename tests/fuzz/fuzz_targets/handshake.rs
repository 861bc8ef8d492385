//! Handshake parsing: any 68 bytes give a handshake or an error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..68).and_then(|b| <&[u8; 68]>::try_from(b).ok()) {
        if let Ok(hs) = rivulet::wire::Handshake::decode(bytes) {
            assert_eq!(hs.info_hash.0, bytes[28..48]);
        }
    }
});
