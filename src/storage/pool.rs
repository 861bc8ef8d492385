//! [`FilePool`]: the files open across a whole session, at most a set number at once (512 by
//! default), the least recently used closed first. Without it, a torrent of thousands of files
//! or a few hundred seeding torrents would exhaust the process's descriptors ("Too many open
//! files"), and every later read would fail.
//!
//! [`raise_open_file_limit`] lifts the process's soft `RLIMIT_NOFILE` to its hard limit at
//! start-up; the pool's size is then kept well under what the limit allows.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::MutexExt;

/// Files open at once, by default.
pub const DEFAULT_OPEN_FILES: usize = 512;
/// Descriptors left for sockets and everything else when the limit is low.
const RESERVED_DESCRIPTORS: u64 = 128;

/// Which file: the storage it belongs to, and its index there.
type Key = (u64, usize);

struct Entry {
    file: Arc<File>,
    writable: bool,
    last_used: u64,
}

#[derive(Default)]
struct Open {
    clock: u64,
    files: HashMap<Key, Entry>,
}

impl Open {
    /// Closes the least recently used files until at most `keep` stay open.
    fn shrink_to(&mut self, keep: usize) {
        while self.files.len() > keep {
            let Some(oldest) = self
                .files
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                return;
            };
            self.files.remove(&oldest);
        }
    }
}

pub struct FilePool {
    capacity: AtomicUsize,
    open: Mutex<Open>,
    next_owner: AtomicU64,
}

impl Default for FilePool {
    fn default() -> Self {
        Self::new(DEFAULT_OPEN_FILES)
    }
}

impl FilePool {
    /// A pool of `capacity` files, lowered to fit the process's open-file limit.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: AtomicUsize::new(fitted(capacity)),
            open: Mutex::new(Open::default()),
            next_owner: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Changes how many files may be open (lowered to fit the limit); closes the least
    /// recently used ones beyond it.
    pub fn set_capacity(&self, capacity: usize) {
        let capacity = fitted(capacity);
        self.capacity.store(capacity, Ordering::Relaxed);
        self.open.locked().shrink_to(capacity);
    }

    /// A number of its own for each storage that shares the pool.
    pub(super) fn owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// File `index` of `owner`, open for writing if `write`: the open one if it will do, else
    /// opened by `open` (room made first). When the system is out of descriptors (`EMFILE`,
    /// `ENFILE`), half the pool is closed and the open tried once more, so that a full table
    /// is never mistaken for missing data.
    pub(super) fn get(
        &self,
        owner: u64,
        index: usize,
        write: bool,
        open: impl Fn() -> io::Result<File>,
    ) -> io::Result<Arc<File>> {
        let mut pool = self.open.locked();
        pool.clock += 1;
        let now = pool.clock;
        if let Some(entry) = pool.files.get_mut(&(owner, index))
            && (entry.writable || !write)
        {
            entry.last_used = now;
            return Ok(entry.file.clone());
        }
        pool.files.remove(&(owner, index));
        let capacity = self.capacity();
        pool.shrink_to(capacity - 1);
        let file = match open() {
            Err(e) if is_out_of_descriptors(&e) => {
                pool.shrink_to(capacity / 2);
                open()?
            }
            opened => opened?,
        };
        let file = Arc::new(file);
        pool.files.insert(
            (owner, index),
            Entry {
                file: file.clone(),
                writable: write,
                last_used: now,
            },
        );
        Ok(file)
    }

    /// Closes every file of `owner`.
    pub(super) fn close_all(&self, owner: u64) {
        self.open.locked().files.retain(|(o, _), _| *o != owner);
    }

    pub fn open_count(&self) -> usize {
        self.open.locked().files.len()
    }
}

/// `capacity`, at least 1 and at most what the process's open-file limit allows (half of
/// what is left after [`RESERVED_DESCRIPTORS`], at least 8).
fn fitted(capacity: usize) -> usize {
    let allowed = open_file_limit()
        .map_or(u64::MAX, |limit| {
            limit.saturating_sub(RESERVED_DESCRIPTORS) / 2
        })
        .max(8);
    capacity.clamp(1, usize::try_from(allowed).unwrap_or(usize::MAX))
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// The process's soft limit on open files.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes a plain struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write a plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_of(capacity: usize) -> FilePool {
        FilePool {
            capacity: AtomicUsize::new(capacity),
            open: Mutex::new(Open::default()),
            next_owner: AtomicU64::new(0),
        }
    }

    #[test]
    fn the_least_recently_used_file_is_closed_first() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool_of(3);
        let owner = pool.owner();
        let path = |i: usize| dir.path().join(format!("f{i}"));
        let open = |i: usize| move || File::create(path(i));
        for i in 0..3 {
            pool.get(owner, i, true, open(i)).unwrap();
        }
        // File 0 used again: file 1 is now the oldest and goes when file 3 comes.
        let zero = pool
            .get(owner, 0, false, || panic!("file 0 is open"))
            .unwrap();
        pool.get(owner, 3, true, open(3)).unwrap();
        assert_eq!(pool.open_count(), 3);
        let reopened = std::cell::Cell::new(false);
        pool.get(owner, 1, false, || {
            reopened.set(true);
            File::open(path(1))
        })
        .unwrap();
        assert!(reopened.get(), "file 1 was closed");
        assert!(Arc::ptr_eq(
            &zero,
            &pool
                .get(owner, 0, false, || panic!("file 0 is open"))
                .unwrap()
        ));

        // A smaller pool, set while it runs, closes the least recently used at once.
        pool.set_capacity(1);
        assert_eq!((pool.capacity(), pool.open_count()), (1, 1));
        pool.get(owner, 0, false, || panic!("file 0, the newest, is open"))
            .unwrap();
    }

    #[test]
    fn a_read_handle_is_reopened_for_writing_and_owners_are_apart() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool_of(8);
        let (a, b) = (pool.owner(), pool.owner());
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        pool.get(a, 0, false, || File::open(&path)).unwrap();
        let reopened = std::cell::Cell::new(false);
        pool.get(a, 0, true, || {
            reopened.set(true);
            std::fs::OpenOptions::new().write(true).open(&path)
        })
        .unwrap();
        assert!(reopened.get());
        pool.get(b, 0, false, || File::open(&path)).unwrap();
        pool.close_all(a);
        assert_eq!(pool.open_count(), 1, "only the other owner's file is left");
    }

    #[test]
    fn out_of_descriptors_closes_half_and_tries_again() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool_of(4);
        let owner = pool.owner();
        for i in 0..4 {
            pool.get(owner, i, true, || {
                File::create(dir.path().join(format!("f{i}")))
            })
            .unwrap();
        }
        let tries = std::cell::Cell::new(0);
        pool.get(owner, 9, true, || {
            tries.set(tries.get() + 1);
            if tries.get() == 1 {
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            } else {
                File::create(dir.path().join("f9"))
            }
        })
        .unwrap();
        assert_eq!(tries.get(), 2);
        assert!(pool.open_count() <= 3, "half the pool was closed");
    }
}
