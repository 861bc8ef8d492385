//! Moving a torrent's data to another folder ("set location"), blocking code for the blocking
//! pool. On one file system every file is renamed; across file systems each is copied, and
//! the originals are deleted only once every copy is complete. A failure puts back what was
//! done, so the data is whole in one place or the other. Files already at the destination
//! are never overwritten: the move is refused before anything changes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StorageError;

/// Bytes moved of the total, for a progress bar.
#[derive(Debug, Default)]
pub struct MoveProgress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

impl MoveProgress {
    pub fn fraction(&self) -> f32 {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        self.done.load(Ordering::Relaxed) as f32 / total as f32
    }
}

fn io_error(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Moves `files` (paths relative to `from`, each an existing file) to the same places under
/// `to`, then removes the folders they leave empty under `from`.
pub fn move_files(
    files: &[PathBuf],
    from: &Path,
    to: &Path,
    progress: &MoveProgress,
) -> Result<(), StorageError> {
    fs::create_dir_all(to).map_err(|e| io_error(to, e))?;
    let real_to = fs::canonicalize(to).map_err(|e| io_error(to, e))?;
    if fs::canonicalize(from).is_ok_and(|real_from| real_from == real_to) {
        return Ok(());
    }
    let mut total = 0;
    for rel in files {
        let target = to.join(rel);
        if fs::symlink_metadata(&target).is_ok() {
            return Err(io_error(
                &target,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "already exists in the new folder",
                ),
            ));
        }
        total += fs::metadata(from.join(rel)).map_or(0, |m| m.len());
    }
    progress.total.store(total, Ordering::Relaxed);
    let same_device = same_device(from, to);
    let mut done: Vec<&PathBuf> = Vec::new();
    for rel in files {
        let (source, target) = (from.join(rel), to.join(rel));
        let moved = prepare_parent(&target, &real_to).and_then(|()| {
            if same_device {
                let len = fs::metadata(&source).map_or(0, |m| m.len());
                fs::rename(&source, &target).map_err(|e| io_error(&source, e))?;
                progress.done.fetch_add(len, Ordering::Relaxed);
                Ok(())
            } else {
                copy_with_progress(&source, &target, progress).inspect_err(|_| {
                    let _ = fs::remove_file(&target);
                })
            }
        });
        if let Err(e) = moved {
            undo(&done, from, to, same_device);
            return Err(e);
        }
        done.push(rel);
    }
    if !same_device {
        // Every copy is whole and synced: the move is done; an original that cannot be
        // deleted is only left behind.
        for rel in files {
            if let Err(e) = fs::remove_file(from.join(rel)) {
                tracing::warn!(path = %from.join(rel).display(), error = %e, "moved, but the original could not be deleted");
            }
        }
    }
    for rel in files {
        remove_empty_parents(&from.join(rel), from);
    }
    Ok(())
}

/// Puts back the files already moved (renamed back, or their copies deleted).
fn undo(done: &[&PathBuf], from: &Path, to: &Path, same_device: bool) {
    for rel in done {
        let (source, target) = (from.join(rel), to.join(rel));
        if same_device {
            let _ = fs::rename(&target, &source);
        } else {
            let _ = fs::remove_file(&target);
        }
        remove_empty_parents(&target, to);
    }
}

/// Creates the target's folders and checks they resolve inside the destination.
fn prepare_parent(target: &Path, real_to: &Path) -> Result<(), StorageError> {
    let parent = target.parent().unwrap_or(real_to);
    fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    let real_parent = fs::canonicalize(parent).map_err(|e| io_error(parent, e))?;
    if !real_parent.starts_with(real_to) {
        return Err(StorageError::OutsideSaveFolder(target.to_path_buf()));
    }
    Ok(())
}

fn copy_with_progress(
    source: &Path,
    target: &Path,
    progress: &MoveProgress,
) -> Result<(), StorageError> {
    use std::io::{Read, Write};
    let mut input = fs::File::open(source).map_err(|e| io_error(source, e))?;
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(|e| io_error(target, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf).map_err(|e| io_error(source, e))?;
        if n == 0 {
            break;
        }
        output
            .write_all(&buf[..n])
            .map_err(|e| io_error(target, e))?;
        progress.done.fetch_add(n as u64, Ordering::Relaxed);
    }
    output.sync_all().map_err(|e| io_error(target, e))?;
    if let Ok(permissions) = fs::metadata(source).map(|m| m.permissions()) {
        let _ = fs::set_permissions(target, permissions);
    }
    Ok(())
}

#[cfg(unix)]
fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    matches!((fs::metadata(a), fs::metadata(b)), (Ok(a), Ok(b)) if a.dev() == b.dev())
}

#[cfg(not(unix))]
fn same_device(_a: &Path, _b: &Path) -> bool {
    false
}

/// Removes the folders above `path` that are left empty, up to (not including) `root`.
pub(super) fn remove_empty_parents(path: &Path, root: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> Vec<PathBuf> {
        let files = vec![PathBuf::from("t/a.bin"), PathBuf::from("t/sub/b.bin")];
        for (i, f) in files.iter().enumerate() {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), vec![i as u8; 1000 * (i + 1)]).unwrap();
        }
        files
    }

    fn moves_and_cleans_up(from: &Path, to: &Path) {
        let files = tree(from);
        let progress = MoveProgress::default();
        move_files(&files, from, &to.join("new"), &progress).unwrap();
        assert_eq!(
            fs::read(to.join("new/t/sub/b.bin")).unwrap(),
            vec![1u8; 2000]
        );
        assert_eq!(fs::read(to.join("new/t/a.bin")).unwrap(), vec![0u8; 1000]);
        assert!(!from.join("t").exists(), "the old folders are gone");
        assert_eq!(progress.fraction(), 1.0);
    }

    #[test]
    fn renames_on_one_file_system() {
        let dir = tempfile::tempdir().unwrap();
        moves_and_cleans_up(&dir.path().join("old"), dir.path());
    }

    #[test]
    fn copies_across_file_systems() {
        let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("skipped: no /dev/shm to move across file systems");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(!same_device(dir.path(), shm.path()) || cfg!(not(unix)));
        moves_and_cleans_up(&dir.path().join("old"), shm.path());
    }

    #[test]
    fn refuses_to_overwrite_and_leaves_everything_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("old"), dir.path().join("new"));
        let files = tree(&from);
        fs::create_dir_all(to.join("t/sub")).unwrap();
        fs::write(to.join("t/sub/b.bin"), b"mine").unwrap();
        let err = move_files(&files, &from, &to, &MoveProgress::default()).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(fs::read(to.join("t/sub/b.bin")).unwrap(), b"mine");
        assert!(from.join("t/a.bin").exists() && !to.join("t/a.bin").exists());
    }
}
