//! Checking data already on disk against the piece hashes, on all cores.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sha1::{Digest, Sha1};

use super::Storage;
use crate::bitfield::Bitfield;
use crate::metainfo::Metainfo;
use crate::sync::MutexExt;

/// Hashes every piece whose bytes are all present on disk and returns the pieces that match.
/// `progress` counts pieces looked at; `cancel` stops early (returning what was found so far).
pub fn check_existing(
    meta: &Metainfo,
    storage: &Storage,
    progress: &AtomicU32,
    cancel: &AtomicBool,
) -> Bitfield {
    let found = Mutex::new(Bitfield::new(meta.piece_count()));
    if !storage.any_data_on_disk() {
        progress.store(meta.piece_count(), Ordering::Relaxed);
        return Bitfield::new(meta.piece_count());
    }
    let next = AtomicU32::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let piece = next.fetch_add(1, Ordering::Relaxed);
                    if piece >= meta.piece_count() || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let offset = piece as u64 * meta.piece_length;
                    let len = meta.piece_len(piece);
                    let matches = storage.range_present(offset, len) && {
                        buf.resize(len as usize, 0);
                        storage.read(offset, &mut buf).is_ok()
                            && meta.piece_hash(piece) == Some(Sha1::digest(&buf).into())
                    };
                    if matches && let Ok(mut f) = found.lock() {
                        f.set(piece);
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    storage.close_all();
    found.into_data()
}
