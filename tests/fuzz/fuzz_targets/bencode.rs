//! Bencode decoding: any input decodes or errors; what decodes re-encodes to bytes that
//! decode to the same value, of the same length (only key order may change).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = rivulet::bencode::decode(data) {
        let encoded = value.encode();
        assert_eq!(encoded.len(), data.len());
        assert_eq!(rivulet::bencode::decode(&encoded).as_ref(), Ok(&value));
    }
});
