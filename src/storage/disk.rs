//! [`Disk`]: the one way the async engine touches files.
//!
//! Each operation runs on tokio's blocking pool. Writes are admitted against a byte budget, so
//! a slow disk makes peers wait (they stop reading their sockets) instead of filling memory;
//! reads are bounded the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha1::{Digest, Sha1};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Storage, StorageError};

/// Budget unit: one 16 KiB block.
const UNIT: u64 = 16 * 1024;

/// What happened to a finished piece handed to [`Disk::verify_and_write`].
#[derive(Debug)]
pub enum PieceOutcome {
    /// The hash matched and the data is on disk.
    Written,
    /// The hash did not match; nothing was written.
    HashMismatch,
    /// The hash matched but the write failed.
    WriteFailed(StorageError),
}

#[derive(Clone)]
pub struct Disk {
    write_budget: Arc<Semaphore>,
    write_units: u64,
    read_slots: Arc<Semaphore>,
    waits: Arc<WriteWaits>,
}

/// How long pieces waited for room in the write budget lately: a moving average (weight
/// 1/8 per piece), forgotten after [`WriteWaits::FORGET`] without a piece.
struct WriteWaits {
    average_us: AtomicU64,
    /// When the last piece was admitted, in milliseconds after `created`.
    last_ms: AtomicU64,
    created: Instant,
}

impl WriteWaits {
    const FORGET: Duration = Duration::from_secs(5);

    fn record(&self, waited: Duration) {
        let sample = waited.as_micros() as u64;
        let old = self.average_us.load(Ordering::Relaxed);
        self.average_us
            .store(old - old / 8 + sample / 8, Ordering::Relaxed);
        self.last_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn recent(&self) -> Duration {
        let idle = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_ms.load(Ordering::Relaxed));
        if idle > Self::FORGET.as_millis() as u64 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.average_us.load(Ordering::Relaxed))
    }
}

/// A reservation of write budget for one piece.
pub struct WriteSlot(Option<OwnedSemaphorePermit>);

impl Disk {
    /// `write_budget` bytes may wait to be hashed and written at once; `reads` reads may run
    /// at once.
    pub fn new(write_budget: u64, reads: usize) -> Self {
        let write_units = (write_budget / UNIT).max(1);
        Self {
            write_budget: Arc::new(Semaphore::new(write_units as usize)),
            write_units,
            read_slots: Arc::new(Semaphore::new(reads.max(1))),
            waits: Arc::new(WriteWaits {
                average_us: AtomicU64::new(0),
                last_ms: AtomicU64::new(0),
                created: Instant::now(),
            }),
        }
    }

    /// How long a piece has waited for room to be written, on average, lately (zero when
    /// nothing was written for a few seconds): what a disk slower than the peers shows.
    pub fn write_wait(&self) -> Duration {
        self.waits.recent()
    }

    /// Waits until `len` bytes of write budget are free.
    pub async fn reserve_write(&self, len: u64) -> WriteSlot {
        let units = len.div_ceil(UNIT).clamp(1, self.write_units) as u32;
        let asked = Instant::now();
        // The semaphore is never closed; were it, writes would go on without back-pressure.
        let permit = self
            .write_budget
            .clone()
            .acquire_many_owned(units)
            .await
            .ok();
        self.waits.record(asked.elapsed());
        WriteSlot(permit)
    }

    /// Hashes `data` (piece bytes at torrent offset `offset`), writes it if the hash matches,
    /// then calls `done` with the outcome and the buffer (for reuse). Returns at once; the work
    /// runs on the blocking pool.
    pub fn verify_and_write(
        &self,
        slot: WriteSlot,
        storage: Arc<Storage>,
        offset: u64,
        data: Vec<u8>,
        expected: [u8; 20],
        done: impl FnOnce(PieceOutcome, Vec<u8>) + Send + 'static,
    ) {
        tokio::task::spawn_blocking(move || {
            let outcome = if <[u8; 20]>::from(Sha1::digest(&data)) != expected {
                PieceOutcome::HashMismatch
            } else {
                match storage.write(offset, &data) {
                    Ok(()) => PieceOutcome::Written,
                    Err(e) => PieceOutcome::WriteFailed(e),
                }
            };
            drop(slot.0);
            done(outcome, data);
        });
    }

    /// Reads `len` bytes at torrent offset `offset`.
    pub async fn read(
        &self,
        storage: Arc<Storage>,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StorageError> {
        let _slot = self.read_slots.acquire().await;
        let joined = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            storage.read(offset, &mut buf).map(|()| Bytes::from(buf))
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(StorageError::Io {
                path: Default::default(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_piece_that_waits_for_room_is_measured() {
        let disk = Disk::new(UNIT, 1);
        let first = disk.reserve_write(UNIT).await;
        assert_eq!(
            disk.write_wait(),
            Duration::ZERO,
            "the first piece had room"
        );
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            drop(first);
        });
        let _second = disk.reserve_write(UNIT).await;
        release.await.unwrap();
        // One sample of ~400 ms weighs an eighth of the average.
        let wait = disk.write_wait();
        assert!(
            wait >= Duration::from_millis(45) && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
    }
}
