//! MSE (message stream encryption): any bytes from a peer, to either side of the handshake,
//! end it with a result or an error: no panic, no unbounded read.
#![no_main]

use rivulet::ids::InfoHash;
use rivulet::mse::handshake::{initiate, respond};
use rivulet::mse::{PLAINTEXT, RC4};
use tokio::io::AsyncWriteExt;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&side, bytes)) = data.split_first() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        // As the engine does, the receiver gets the first 20 bytes already read.
        let split = if side % 2 == 0 { bytes.len().min(20) } else { 0 };
        let (first, rest) = bytes.split_at(split);
        let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let _ = theirs.write_all(rest).await;
        drop(theirs.shutdown().await);
        let torrent = InfoHash([7; 20]);
        if side % 2 == 0 {
            let _ = respond(&mut ours, first, |_| Some(torrent), RC4 | PLAINTEXT).await;
        } else {
            let _ = initiate(&mut ours, &torrent, RC4 | PLAINTEXT).await;
        }
    });
});
