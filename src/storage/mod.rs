//! Where a torrent's bytes live: the mapping of pieces onto files, positioned reads and writes,
//! and the checking of data already on disk.
//!
//! All of it is blocking code. The engine reaches it only through [`disk::Disk`], which runs it
//! on tokio's blocking pool behind bounded permits, never on the async workers.

pub mod check;
pub mod disk;
mod files;
mod parts;
mod pool;
pub mod relocate;

pub use files::{FileStamp, Storage, StorageError, Syncer};
pub use pool::{DEFAULT_OPEN_FILES, FilePool, raise_open_file_limit};
