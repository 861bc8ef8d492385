//! Peer wire frames: a stream of any bytes decodes message by message or stops with an error;
//! every message decoded encodes back to the bytes it came from (but for messages of ids we do
//! not speak, which are skipped with their payload).
#![no_main]

use bytes::BytesMut;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&cap, stream)) = data.split_first() else {
        return;
    };
    let max = (cap as usize) << 8;
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.clone();
        match rivulet::wire::decode_frame(&mut buf, max) {
            Ok(Some(rivulet::wire::Message::Unknown(_))) => {}
            Ok(Some(message)) => {
                let mut again = BytesMut::new();
                message.encode(&mut again);
                assert_eq!(&again[..], &before[..before.len() - buf.len()]);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
