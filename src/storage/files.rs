//! [`Storage`]: one torrent's files under its save folder, addressed by offset in the torrent's
//! byte stream, opened on demand through the session's [`FilePool`].

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

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
            })
            .collect();
        Self {
            root: save_dir.to_path_buf(),
            files,
            owner: pool.owner(),
            pool,
            total_length: meta.total_length,
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
        let mut done = 0usize;
        for (i, file_offset, len) in self.spans(offset, data.len() as u64) {
            if !self.files[i].on_disk {
                done += len as usize;
                continue;
            }
            let file = self.open(i, true)?;
            let chunk = &data[done..done + len as usize];
            write_all_at(&file, chunk, file_offset).map_err(|e| self.io_error(i, e))?;
            self.unsynced.locked().insert(i);
            done += len as usize;
        }
        Ok(())
    }

    /// Makes every byte written so far durable (`fdatasync` of each file written since the
    /// last call), so that resume data saved afterwards never claims a piece a power cut could
    /// take back. A file that fails stays listed for the next call.
    pub fn sync_written(&self) -> Result<(), StorageError> {
        let files = std::mem::take(&mut *self.unsynced.locked());
        let mut failed = None;
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
            let file = self.open(i, false)?;
            read_exact_at(&file, chunk, file_offset).map_err(|e| self.io_error(i, e))?;
        }
        Ok(())
    }

    /// Creates the folders and the zero-length files, which no piece write ever touches.
    pub fn create_empty_files(&self) -> Result<(), StorageError> {
        for (i, f) in self.files_on_disk() {
            if f.length == 0 {
                self.open(i, true)?;
            }
        }
        Ok(())
    }

    /// Whether any of the torrent's files exists with data in it.
    pub fn any_data_on_disk(&self) -> bool {
        self.files_on_disk()
            .any(|(_, f)| fs::metadata(&f.path).is_ok_and(|m| m.len() > 0))
    }

    /// Whether every byte of `offset..offset+len` lies in files that are long enough.
    pub fn range_present(&self, offset: u64, len: u64) -> bool {
        self.spans(offset, len).all(|(i, file_offset, span)| {
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
            .filter(|f| f.on_disk)
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

    /// Size and mtime of each file (None where a file is missing).
    pub fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.files
            .iter()
            .map(|f| {
                if !f.on_disk {
                    return None;
                }
                let m = fs::metadata(&f.path).ok()?;
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
            })
            .collect()
    }

    /// Closes every file (so a later read sees a file replaced or truncated underneath).
    pub fn close_all(&self) {
        self.pool.close_all(self.owner);
    }

    /// Deletes the torrent's files and the folders it created that are left empty.
    pub fn delete_files(&self) {
        self.close_all();
        for (_, f) in self.files_on_disk() {
            let _ = fs::remove_file(&f.path);
            let mut dir = f.path.parent();
            while let Some(d) = dir {
                if d == self.root || !d.starts_with(&self.root) || fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
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
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
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
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
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
                };
                offset += length;
                f
            })
            .collect::<Vec<_>>();
        let pool = Arc::new(FilePool::default());
        Storage {
            root: dir.to_path_buf(),
            files,
            owner: pool.owner(),
            pool,
            total_length: offset,
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
