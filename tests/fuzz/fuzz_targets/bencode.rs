//! Bencode decoding: any input decodes or errors; what decodes re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = rivulet::bencode::decode(data) {
        assert_eq!(value.encode(), data, "decoded values are canonical");
    }
});
