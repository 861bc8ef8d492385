//! [`Storage`]: one torrent's files under its save folder, addressed by offset in the torrent's
//! byte stream, opened on demand through the session's [`FilePool`].

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use super::parts::PartsFile;
use super::pool::FilePool;
use crate::metainfo::Metainfo;
use crate::sync::MutexExt;

/// A disk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0} would lie outside the save folder")]
    OutsideSaveFolder(PathBuf),
    /// The data was moved to another folder: this storage writes no more.
    #[error("{0}: the data is being moved to another folder")]
    Moved(PathBuf),
}

impl StorageError {
    /// The data is not there (a file gone, or shorter than a read needed), as opposed to a
    /// passing failure of the disk or the system.
    pub fn is_missing_data(&self) -> bool {
        matches!(self, StorageError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof))
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// Size and modification time of a file when the resume data was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub length: u64,
    pub mtime_ns: u128,
}

struct StorageFile {
    path: PathBuf,
    length: u64,
    offset: u64,
    /// False for padding files (read as zeros, never written) and symbolic links (BEP 47).
    on_disk: bool,
    executable: bool,
    /// Skipped and not on disk: its share of the pieces it has in common with wanted files
    /// lives in the parts file, and the file itself is never created.
    parked: AtomicBool,
}

impl StorageFile {
    fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Relaxed)
    }
}

/// Makes one file's written data durable: `File::sync_data` (`fdatasync`), or a test's stand-in.
pub type Syncer = Arc<dyn Fn(&Path, &File) -> io::Result<()> + Send + Sync>;

/// One torrent's files, opened when needed and kept open while the session's pool has room.
pub struct Storage {
    root: PathBuf,
    files: Vec<StorageFile>,
    pool: Arc<FilePool>,
    /// This storage's number in the pool.
    owner: u64,
    total_length: u64,
    piece_length: u64,
    parts: Mutex<PartsFile>,
    parts_path: PathBuf,
    /// The data moved away: no more writes.
    retired: AtomicBool,
    /// One piece write at a time: concurrent writes to one file only fight over its inode lock.
    write_lock: Mutex<()>,
    /// Files written since they were last made durable.
    unsynced: Mutex<BTreeSet<usize>>,
    syncer: Syncer,
}

impl Storage {
    pub fn new(meta: &Metainfo, save_dir: &Path, pool: Arc<FilePool>) -> Self {
        let files: Vec<StorageFile> = meta
            .files
            .iter()
            .map(|f| StorageFile {
                path: save_dir.join(&f.path),
                length: f.length,
                offset: f.offset,
                on_disk: f.is_on_disk(),
                executable: f.attr.executable,
                parked: AtomicBool::new(false),
            })
            .collect();
        let parts = PartsFile::new(
            save_dir.join(format!(".{}.parts", meta.info_hash.to_hex())),
            meta.piece_count(),
            meta.piece_length,
        );
        Self {
            root: save_dir.to_path_buf(),
            files,
            owner: pool.owner(),
            pool,
            total_length: meta.total_length,
            piece_length: meta.piece_length,
            parts_path: parts.path().to_path_buf(),
            parts: Mutex::new(parts),
            retired: AtomicBool::new(false),
            write_lock: Mutex::new(()),
            unsynced: Mutex::default(),
            syncer: Arc::new(|_, file| file.sync_data()),
        }
    }

    /// Replaces how written data is made durable (a test's model of the page cache).
    pub fn with_syncer(mut self, syncer: Syncer) -> Self {
        self.syncer = syncer;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The files that exist on disk, with their indices.
    fn files_on_disk(&self) -> impl Iterator<Item = (usize, &StorageFile)> {
        self.files.iter().enumerate().filter(|(_, f)| f.on_disk)
    }

    /// Splits `len` bytes at torrent offset `offset` into (file index, offset in file, length).
    fn spans(&self, offset: u64, len: u64) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= offset);
        let end = (offset + len).min(self.total_length);
        self.files[first.min(self.files.len())..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < end)
            .filter(|(_, f)| f.length > 0)
            .map(move |(i, f)| {
                let start = offset.max(f.offset);
                let stop = end.min(f.offset + f.length);
                (first + i, start - f.offset, stop - start)
            })
    }

    /// Writes `data` at torrent offset `offset`, across as many files as it spans.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let _one_writer = self.write_lock.locked();
        if self.retired.load(Ordering::Relaxed) {
            return Err(StorageError::Moved(self.root.clone()));
        }
        let mut done = 0usize;
        for (i, file_offset, len) in self.spans(offset, data.len() as u64) {
            if !self.files[i].on_disk {
                done += len as usize;
                continue;
            }
            let chunk = &data[done..done + len as usize];
            if self.files[i].is_parked() {
                self.write_parts(self.files[i].offset + file_offset, chunk)?;
            } else {
                let file = self.open(i, true)?;
                write_all_at(&file, chunk, file_offset).map_err(|e| self.io_error(i, e))?;
                self.unsynced.locked().insert(i);
            }
            done += len as usize;
        }
        Ok(())
    }

    /// Makes every byte written so far durable (`fdatasync` of each file written since the
    /// last call), so that resume data saved afterwards never claims a piece a power cut could
    /// take back. A file that fails stays listed for the next call.
    pub fn sync_written(&self) -> Result<(), StorageError> {
        let files = std::mem::take(&mut *self.unsynced.locked());
        let mut failed = self
            .parts
            .locked()
            .sync()
            .err()
            .map(|e| self.parts_error(e));
        for &i in &files {
            let synced = self.open(i, false).and_then(|file| {
                (self.syncer)(&self.files[i].path, &file).map_err(|e| self.io_error(i, e))
            });
            if let Err(e) = synced {
                self.unsynced.locked().insert(i);
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Fills `buf` from torrent offset `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut done = 0usize;
        for (i, file_offset, len) in self.spans(offset, buf.len() as u64) {
            let chunk = &mut buf[done..done + len as usize];
            done += len as usize;
            if !self.files[i].on_disk {
                chunk.fill(0);
                continue;
            }
            if self.files[i].is_parked() {
                self.read_parts(self.files[i].offset + file_offset, chunk)?;
                continue;
            }
            let file = self.open(i, false)?;
            read_exact_at(&file, chunk, file_offset).map_err(|e| self.io_error(i, e))?;
        }
        Ok(())
    }

    /// Creates the folders and the zero-length files, which no piece write ever touches.
    pub fn create_empty_files(&self) -> Result<(), StorageError> {
        for (i, f) in self.files_on_disk() {
            if f.length == 0 && !f.is_parked() {
                self.open(i, true)?;
            }
        }
        Ok(())
    }

    /// Whether any of the torrent's files exists with data in it.
    pub fn any_data_on_disk(&self) -> bool {
        self.parts_path.exists()
            || self
                .files_on_disk()
                .any(|(_, f)| fs::metadata(&f.path).is_ok_and(|m| m.len() > 0))
    }

    /// Whether every byte of `offset..offset+len` lies in files that are long enough.
    pub fn range_present(&self, offset: u64, len: u64) -> bool {
        self.spans(offset, len).all(|(i, file_offset, span)| {
            let f = &self.files[i];
            if f.is_parked() {
                let start = f.offset + file_offset;
                let mut parts = self.parts.locked();
                return pieces_of(start, span, self.piece_length)
                    .all(|(piece, _, _)| parts.has(piece).unwrap_or(false));
            }
            !self.files[i].on_disk
                || fs::metadata(&self.files[i].path).is_ok_and(|m| m.len() >= file_offset + span)
        })
    }

    /// The first of files `range` that is missing or shorter than the torrent says, for a
    /// complete torrent (whose every file must be whole).
    pub fn missing_or_short(&self, range: std::ops::Range<usize>) -> Option<String> {
        let files = self.files.get(range).unwrap_or_default();
        files
            .iter()
            .filter(|f| f.on_disk && !f.is_parked())
            .find_map(|f| match fs::metadata(&f.path) {
                Err(e) if f.length > 0 && e.kind() == io::ErrorKind::NotFound => {
                    Some(format!("{} is missing", f.path.display()))
                }
                Ok(m) if m.len() < f.length => Some(format!(
                    "{} is shorter than the torrent says ({} of {} bytes)",
                    f.path.display(),
                    m.len(),
                    f.length
                )),
                _ => None,
            })
    }

    /// Size and mtime of each file (None where a file is missing), then of the parts file
    /// while there is one (so resume data that counts on it is not trusted without it).
    pub fn stamps(&self) -> Vec<Option<FileStamp>> {
        let mut stamps: Vec<Option<FileStamp>> = self
            .files
            .iter()
            .map(|f| {
                if !f.on_disk || f.is_parked() {
                    return None;
                }
                stamp(&f.path)
            })
            .collect();
        if let Some(parts) = stamp(&self.parts_path) {
            stamps.push(Some(parts));
        }
        stamps
    }

    /// From now on every write fails ([`StorageError::Moved`]): the data is moving to another
    /// folder. Waits for a write in progress.
    pub fn retire(&self) {
        let _one_writer = self.write_lock.locked();
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Closes every file (so a later read sees a file replaced or truncated underneath).
    pub fn close_all(&self) {
        self.pool.close_all(self.owner);
    }

    /// Deletes the torrent's files and the folders it created that are left empty.
    pub fn delete_files(&self) {
        self.close_all();
        self.parts.locked().delete();
        for (_, f) in self.files_on_disk() {
            let _ = fs::remove_file(&f.path);
            super::relocate::remove_empty_parents(&f.path, &self.root);
        }
    }

    /// The torrent's files that exist (and the parts file, if any), relative to the save
    /// folder: what a move takes along. Closes every file first.
    pub fn existing_files(&self) -> Vec<PathBuf> {
        self.close_all();
        self.files_on_disk()
            .map(|(_, f)| f.path.as_path())
            .chain(std::iter::once(self.parts_path.as_path()))
            .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
            .filter_map(|p| p.strip_prefix(&self.root).ok().map(Path::to_path_buf))
            .collect()
    }

    /// Says which files are skipped (by index in the torrent's file list, padding included).
    /// A skipped file not on disk is parked: its share of wanted pieces goes to the parts
    /// file and it is never created; one already on disk keeps its data. A parked file wanted
    /// again takes its bytes back from the parts file. Slots no parked file needs are freed.
    pub fn set_skipped(&self, skipped: &[bool]) -> Result<(), StorageError> {
        let _one_writer = self.write_lock.locked();
        let kept = self
            .parts
            .locked()
            .pieces()
            .map_err(|e| self.parts_error(e))?;
        for (i, f) in self.files.iter().enumerate() {
            let skip = skipped.get(i).copied().unwrap_or(false);
            let missing = f.on_disk && fs::symlink_metadata(&f.path).is_err();
            if skip && !f.is_parked() && missing {
                f.parked.store(true, Ordering::Relaxed);
            } else if !skip && (f.is_parked() || (missing && self.has_parts_of(i, &kept))) {
                // Wanted again, or wanted all along with its bytes still in the parts file
                // (a change of plan cut short): the bytes go to the file.
                self.unpark(i)?;
                f.parked.store(false, Ordering::Relaxed);
            }
        }
        let mut parts = self.parts.locked();
        for piece in parts.pieces().map_err(|e| self.parts_error(e))? {
            let start = piece as u64 * self.piece_length;
            let needed = self
                .spans(start, self.piece_length)
                .any(|(i, _, _)| self.files[i].is_parked());
            if !needed {
                parts.release(piece).map_err(|e| self.parts_error(e))?;
            }
        }
        Ok(())
    }

    /// Whether any of the pieces in the parts file holds bytes of file `i`.
    fn has_parts_of(&self, i: usize, kept: &[u32]) -> bool {
        let f = &self.files[i];
        f.length > 0
            && kept.iter().any(|&piece| {
                let start = piece as u64 * self.piece_length;
                start < f.offset + f.length && f.offset < start + self.piece_length
            })
    }

    /// Moves file `i`'s bytes from the parts file into the file.
    fn unpark(&self, i: usize) -> Result<(), StorageError> {
        let f = &self.files[i];
        let kept = self
            .parts
            .locked()
            .pieces()
            .map_err(|e| self.parts_error(e))?;
        let mut buf = Vec::new();
        for piece in kept {
            let piece_start = piece as u64 * self.piece_length;
            let start = piece_start.max(f.offset);
            let end = (piece_start + self.piece_length).min(f.offset + f.length);
            if start >= end {
                continue;
            }
            buf.resize((end - start) as usize, 0);
            self.read_parts(start, &mut buf)?;
            let file = self.open(i, true)?;
            write_all_at(&file, &buf, start - f.offset).map_err(|e| self.io_error(i, e))?;
            self.unsynced.locked().insert(i);
        }
        Ok(())
    }

    fn write_parts(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut parts = self.parts.locked();
        if !self.parts_path.exists() {
            fs::create_dir_all(&self.root).map_err(|e| self.parts_error(e))?;
        }
        for (piece, within, range) in pieces_of(offset, data.len() as u64, self.piece_length) {
            parts
                .write(piece, within, &data[range])
                .map_err(|e| self.parts_error(e))?;
        }
        Ok(())
    }

    fn read_parts(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut parts = self.parts.locked();
        for (piece, within, range) in pieces_of(offset, buf.len() as u64, self.piece_length) {
            parts
                .read(piece, within, &mut buf[range])
                .map_err(|e| self.parts_error(e))?;
        }
        Ok(())
    }

    fn parts_error(&self, source: io::Error) -> StorageError {
        StorageError::Io {
            path: self.parts_path.clone(),
            source,
        }
    }

    fn io_error(&self, i: usize, source: io::Error) -> StorageError {
        StorageError::Io {
            path: self.files[i].path.clone(),
            source,
        }
    }

    fn open(&self, i: usize, write: bool) -> Result<Arc<File>, StorageError> {
        let file = &self.files[i];
        // The pool's opener speaks io::Error; a folder outside the save folder is kept aside.
        let outside = std::cell::Cell::new(None);
        let opened = self.pool.get(self.owner, i, write, || {
            if !write {
                return open_options(false, false).open(&file.path);
            }
            if let Err(e) = self.ensure_parent_inside_root(&file.path) {
                let message = e.to_string();
                outside.set(Some(e));
                return Err(io::Error::other(message));
            }
            let opened = open_options(true, file.executable).open(&file.path)?;
            preallocate(&opened, file.length);
            Ok(opened)
        });
        opened.map_err(|e| outside.take().unwrap_or_else(|| self.io_error(i, e)))
    }

    /// Creates the parent folders of `path` and checks that, with every symlink resolved, they
    /// still lie inside the save folder.
    fn ensure_parent_inside_root(&self, path: &Path) -> Result<(), StorageError> {
        let parent = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent).map_err(|source| StorageError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
        let real_root = fs::canonicalize(&self.root).map_err(|source| StorageError::Io {
            path: self.root.clone(),
            source,
        })?;
        let real_parent = fs::canonicalize(parent).map_err(|source| StorageError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
        if !real_parent.starts_with(&real_root) {
            return Err(StorageError::OutsideSaveFolder(path.to_path_buf()));
        }
        Ok(())
    }
}

/// A file's size and mtime, if it exists.
fn stamp(path: &Path) -> Option<FileStamp> {
    let m = fs::metadata(path).ok()?;
    let mtime_ns = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(FileStamp {
        length: m.len(),
        mtime_ns,
    })
}

/// Splits `len` bytes at torrent offset `offset` by piece: (piece, offset in the piece, the
/// range of the bytes).
fn pieces_of(
    offset: u64,
    len: u64,
    piece_length: u64,
) -> impl Iterator<Item = (u32, u64, std::ops::Range<usize>)> {
    let piece_length = piece_length.max(1);
    let mut done = 0u64;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = offset + done;
        let within = at % piece_length;
        let n = (piece_length - within).min(len - done);
        let range = done as usize..(done + n) as usize;
        done += n;
        Some(((at / piece_length) as u32, within, range))
    })
}

/// Reserves the file's blocks up front (without changing its size), so writes land in
/// allocated extents: less file-system work per write and no fragmentation. Best effort.
#[cfg(target_os = "linux")]
fn preallocate(file: &File, length: u64) {
    use std::os::fd::AsRawFd;
    let Ok(length) = libc::off_t::try_from(length) else {
        return;
    };
    if length == 0 || file.metadata().is_ok_and(|m| m.len() >= length as u64) {
        return;
    }
    // SAFETY: the descriptor is open for writing for the duration of the call.
    let _ = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, length) };
}

#[cfg(not(target_os = "linux"))]
fn preallocate(_file: &File, _length: u64) {}

/// How a torrent's file is opened; `executable` files are created with the executable bits
/// (the umask still applies).
fn open_options(write: bool, executable: bool) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true);
    if write {
        options.write(true).create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A symlink planted where a torrent's file goes is never followed.
        options.custom_flags(libc::O_NOFOLLOW);
        if executable {
            options.mode(0o777);
        }
    }
    #[cfg(not(unix))]
    let _ = executable;
    options
}

#[cfg(unix)]
pub(super) fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(super) fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
pub(super) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(dir: &Path, lengths: &[u64]) -> Storage {
        let mut offset = 0;
        let files = lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| {
                let f = StorageFile {
                    path: dir.join(format!("t/f{i}")),
                    length,
                    offset,
                    on_disk: true,
                    executable: false,
                    parked: AtomicBool::new(false),
                };
                offset += length;
                f
            })
            .collect::<Vec<_>>();
        let pool = Arc::new(FilePool::default());
        let parts = PartsFile::new(dir.join(".t.parts"), offset.div_ceil(4) as u32, 4);
        Storage {
            root: dir.to_path_buf(),
            files,
            owner: pool.owner(),
            pool,
            total_length: offset,
            piece_length: 4,
            parts_path: parts.path().to_path_buf(),
            parts: Mutex::new(parts),
            retired: AtomicBool::new(false),
            write_lock: Mutex::new(()),
            unsynced: Mutex::default(),
            syncer: Arc::new(|_, file| file.sync_data()),
        }
    }

    #[test]
    fn writes_and_reads_across_file_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path(), &[3, 0, 5, 2]);
        s.create_empty_files().unwrap();
        s.write(0, b"abcdefghij").unwrap();
        assert_eq!(fs::read(dir.path().join("t/f0")).unwrap(), b"abc");
        assert_eq!(fs::read(dir.path().join("t/f1")).unwrap(), b"");
        assert_eq!(fs::read(dir.path().join("t/f2")).unwrap(), b"defgh");
        let mut buf = [0u8; 4];
        s.read(2, &mut buf).unwrap();
        assert_eq!(&buf, b"cdef");
        assert!(s.range_present(0, 10));
    }

    #[test]
    fn a_skipped_file_is_never_created_its_share_is_kept_in_the_parts_file_until_wanted() {
        let dir = tempfile::tempdir().unwrap();
        // Pieces of 4 bytes over files of 3, 6 and 3: pieces 0 and 2 are shared with f1.
        let s = storage(dir.path(), &[3, 6, 3]);
        s.set_skipped(&[false, true, false]).unwrap();
        s.write(0, b"abcd").unwrap();
        s.write(8, b"ijkl").unwrap();
        assert!(
            !dir.path().join("t/f1").exists(),
            "the skipped file is never created"
        );
        assert_eq!(fs::read(dir.path().join("t/f0")).unwrap(), b"abc");
        assert_eq!(fs::read(dir.path().join("t/f2")).unwrap(), b"jkl");
        assert!(dir.path().join(".t.parts").exists());
        let mut buf = [0u8; 4];
        s.read(8, &mut buf).unwrap();
        assert_eq!(&buf, b"ijkl", "a shared piece reads back whole");
        assert!(s.range_present(0, 4) && s.range_present(8, 4));
        assert!(
            !s.range_present(4, 4),
            "piece 1 lies in the skipped file alone"
        );
        assert!(s.read(4, &mut buf).unwrap_err().is_missing_data());
        assert_eq!(s.stamps()[1], None);
        assert_eq!(s.missing_or_short(0..3), None);

        // Wanted again: its bytes move into the file, and the parts file goes.
        s.set_skipped(&[false, false, false]).unwrap();
        s.write(4, b"efgh").unwrap();
        assert_eq!(fs::read(dir.path().join("t/f1")).unwrap(), b"defghi");
        assert!(!dir.path().join(".t.parts").exists());
        let mut all = [0u8; 12];
        s.read(0, &mut all).unwrap();
        assert_eq!(&all, b"abcdefghijkl");

        // A file wanted all along whose bytes were left in the parts file (a change of plan
        // cut short) gets them back.
        s.set_skipped(&[false, true, false]).unwrap();
        fs::remove_file(dir.path().join("t/f1")).unwrap();
        s.set_skipped(&[false, true, false]).unwrap();
        s.write(8, b"IJKL").unwrap();
        let fresh = storage(dir.path(), &[3, 6, 3]);
        fresh.set_skipped(&[false, false, false]).unwrap();
        assert_eq!(fs::read(dir.path().join("t/f1")).unwrap(), b"\0\0\0\0\0I");
        assert!(!dir.path().join(".t.parts").exists());

        // A retired storage (its data moving away) writes no more.
        fresh.retire();
        assert!(matches!(
            fresh.write(0, b"abcd"),
            Err(StorageError::Moved(_))
        ));

        // A skipped file already on disk keeps its data where it is.
        s.set_skipped(&[true, false, false]).unwrap();
        s.write(0, b"ABCD").unwrap();
        assert_eq!(fs::read(dir.path().join("t/f0")).unwrap(), b"ABC");
        assert!(!dir.path().join(".t.parts").exists());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_to_follow_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("t")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), dir.path().join("t/f0")).unwrap();
        let s = storage(dir.path(), &[3]);
        assert!(s.write(0, b"abc").is_err());
        assert!(!outside.path().join("victim").exists());

        let dir2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir2.path().join("t")).unwrap();
        let s = storage(dir2.path(), &[3]);
        assert!(matches!(
            s.write(0, b"abc"),
            Err(StorageError::OutsideSaveFolder(_))
        ));
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn padding_reads_as_zeros_and_is_never_created() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Metainfo::from_bytes(&crate::metainfo::tests::with_attrs(&[
            (&["a.bin"], 10, ""),
            (&[".pad", "16374"], 16374, "p"),
            (&["run.sh"], 6, "x"),
        ]))
        .unwrap();
        let s = Storage::new(&meta, dir.path(), Arc::default());
        let mut piece = vec![7u8; 16384];
        piece[..10].copy_from_slice(b"0123456789");
        s.write(0, &piece).unwrap();
        s.write(16384, b"#!/bin").unwrap();
        assert!(!dir.path().join("top/.pad").exists(), "no padding on disk");
        let mut back = vec![1u8; 16384];
        s.read(0, &mut back).unwrap();
        assert_eq!(&back[..10], b"0123456789");
        assert!(back[10..].iter().all(|&b| b == 0), "padding reads as zeros");
        assert!(s.range_present(0, 16390));
        assert_eq!(s.missing_or_short(0..3), None);
        assert_eq!(s.stamps()[1], None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                fs::metadata(dir.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
            };
            assert_ne!(mode("top/run.sh") & 0o100, 0, "`x` files are executable");
            assert_eq!(mode("top/a.bin") & 0o111, 0);
        }
        s.delete_files();
        assert!(!dir.path().join("top").exists());
    }
}
