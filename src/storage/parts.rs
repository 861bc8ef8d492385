//! [`PartsFile`]: where the bytes of skipped files go when a wanted piece overlaps them.
//!
//! A piece shared by a wanted file and a skipped one must be downloaded whole to be verified,
//! but the skipped file is never created: its share of the piece is kept in the torrent's
//! parts file (`.<info hash>.parts` in the save folder, as libtorrent does) until the file is
//! wanted again, when it moves into the file, or the torrent is removed.
//!
//! Layout: a header, then one slot of `piece_length` bytes per piece kept. The header is
//! `RVPARTS1`, the piece count and the piece length (u32 and u64, big-endian), then one u32 per
//! piece: its slot plus one, or 0 for none; it is padded to a multiple of 16 KiB. A slot's
//! bytes sit at their offsets inside the piece; only those of skipped files are ever written
//! or read. A slot is written before the header claims it. A file whose header does not fit the
//! torrent is removed; the resume data's stamp of the parts file then no longer matches, so
//! the next start rechecks and the pieces it held are downloaded again.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::files::{read_exact_at, write_all_at};

const MAGIC: &[u8; 8] = b"RVPARTS1";
/// Magic, piece count, piece length.
const FIXED_HEADER: u64 = 8 + 4 + 8;
const HEADER_ALIGN: u64 = 16 * 1024;

/// The parts file of one torrent; its state is loaded from disk at first use.
pub(super) struct PartsFile {
    path: PathBuf,
    piece_count: u32,
    piece_length: u64,
    loaded: Option<Loaded>,
}

struct Loaded {
    /// Open once something was written or found.
    file: Option<File>,
    /// Piece index → slot.
    slots: HashMap<u32, u32>,
    free: BTreeSet<u32>,
    next_slot: u32,
    unsynced: bool,
}

impl PartsFile {
    pub fn new(path: PathBuf, piece_count: u32, piece_length: u64) -> Self {
        Self {
            path,
            piece_count,
            piece_length,
            loaded: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn header_len(&self) -> u64 {
        (FIXED_HEADER + 4 * self.piece_count as u64).next_multiple_of(HEADER_ALIGN)
    }

    fn entry_offset(piece: u32) -> u64 {
        FIXED_HEADER + 4 * piece as u64
    }

    fn slot_offset(&self, slot: u32) -> u64 {
        self.header_len() + slot as u64 * self.piece_length
    }

    fn state(&mut self) -> io::Result<&mut Loaded> {
        if self.loaded.is_none() {
            let loaded = self.load()?;
            self.loaded = Some(loaded);
        }
        self.loaded
            .as_mut()
            .ok_or_else(|| io::Error::other("parts file state"))
    }

    /// Reads the header, if the file exists; a header that does not fit the torrent is
    /// ignored (said in the log) and the file started afresh.
    fn load(&self) -> io::Result<Loaded> {
        let mut loaded = Loaded {
            file: None,
            slots: HashMap::new(),
            free: BTreeSet::new(),
            next_slot: 0,
            unsynced: false,
        };
        let file = match options().open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(loaded),
            Err(e) => return Err(e),
        };
        match self.read_header(&file)? {
            Ok(slots) if !slots.is_empty() => {
                let mut used: BTreeSet<u32> = slots.values().copied().collect();
                loaded.next_slot = used.last().map_or(0, |&s| s + 1);
                loaded.free = (0..loaded.next_slot).filter(|s| !used.remove(s)).collect();
                loaded.slots = slots;
                loaded.file = Some(file);
            }
            // Nothing kept: the file is made afresh (header first) at the next write.
            Ok(_) => remove_if_present(&self.path)?,
            Err(reason) => {
                tracing::warn!(path = %self.path.display(), reason, "ignoring a damaged parts file");
                remove_if_present(&self.path)?;
            }
        }
        Ok(loaded)
    }

    /// The slots the header names, or why the file does not fit the torrent; an error reading
    /// it is an error of the disk, not of the file.
    fn read_header(&self, file: &File) -> io::Result<Result<HashMap<u32, u32>, String>> {
        let len = file.metadata()?.len();
        let header_len = (FIXED_HEADER + 4 * self.piece_count as u64) as usize;
        if (len as usize) < header_len {
            return Ok(Err(format!("{len} bytes, shorter than its header")));
        }
        let mut header = vec![0u8; header_len];
        read_exact_at(file, &mut header, 0)?;
        Ok(self.parse_header(&header, len))
    }

    fn parse_header(&self, header: &[u8], len: u64) -> Result<HashMap<u32, u32>, String> {
        let (fixed, entries) = header.split_at(FIXED_HEADER as usize);
        if fixed != self.fixed_header().as_slice() {
            return Err("made for another torrent".into());
        }
        let max_slots = len.saturating_sub(self.header_len()) / self.piece_length.max(1);
        let mut slots = HashMap::new();
        let mut seen = BTreeSet::new();
        for (piece, entry) in entries.chunks_exact(4).enumerate() {
            let value = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
            if value == 0 {
                continue;
            }
            let slot = value - 1;
            if slot as u64 >= max_slots || !seen.insert(slot) {
                return Err(format!("piece {piece} names slot {slot}, not in the file"));
            }
            slots.insert(piece as u32, slot);
        }
        Ok(slots)
    }

    /// Whether the bytes of `piece` kept here are present.
    pub fn has(&mut self, piece: u32) -> io::Result<bool> {
        Ok(self.state()?.slots.contains_key(&piece))
    }

    /// Writes `data` at `within` bytes into `piece`'s slot, taking a slot if it has none.
    pub fn write(&mut self, piece: u32, within: u64, data: &[u8]) -> io::Result<()> {
        let header_len = self.header_len();
        let fixed = self.fixed_header();
        let (path, piece_length) = (self.path.clone(), self.piece_length);
        let state = self.state()?;
        if state.file.is_none() {
            let file = options().create(true).open(&path)?;
            file.set_len(0)?;
            write_all_at(&file, &fixed, 0)?;
            file.set_len(header_len)?;
            state.file = Some(file);
        }
        let file = state
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("parts file not open"))?;
        let Some(&slot) = state.slots.get(&piece) else {
            let slot = state.free.pop_first().unwrap_or_else(|| {
                state.next_slot += 1;
                state.next_slot - 1
            });
            // The slot takes its full length at once, so the header never names a slot past
            // the file's end; its bytes are written before the header claims it.
            let end = header_len + (slot as u64 + 1) * piece_length;
            if file.metadata()?.len() < end {
                file.set_len(end)?;
            }
            write_all_at(file, data, header_len + slot as u64 * piece_length + within)?;
            write_all_at(file, &(slot + 1).to_be_bytes(), Self::entry_offset(piece))?;
            state.slots.insert(piece, slot);
            state.unsynced = true;
            return Ok(());
        };
        write_all_at(file, data, header_len + slot as u64 * piece_length + within)?;
        state.unsynced = true;
        Ok(())
    }

    fn fixed_header(&self) -> Vec<u8> {
        [
            &MAGIC[..],
            &self.piece_count.to_be_bytes(),
            &self.piece_length.to_be_bytes(),
        ]
        .concat()
    }

    /// Fills `buf` from `within` bytes into `piece`'s slot; NotFound if the piece is not kept.
    pub fn read(&mut self, piece: u32, within: u64, buf: &mut [u8]) -> io::Result<()> {
        let offset = {
            let slot =
                *self.state()?.slots.get(&piece).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "not in the parts file")
                })?;
            self.slot_offset(slot) + within
        };
        let file = self
            .state()?
            .file
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no parts file"))?;
        read_exact_at(file, buf, offset)
    }

    /// Forgets `piece`'s slot (its bytes moved to their file, or no skipped file needs it);
    /// the file is deleted once it keeps nothing.
    pub fn release(&mut self, piece: u32) -> io::Result<()> {
        let path = self.path.clone();
        let state = self.state()?;
        let Some(slot) = state.slots.remove(&piece) else {
            return Ok(());
        };
        state.free.insert(slot);
        if state.slots.is_empty() {
            state.file = None;
            state.free.clear();
            state.next_slot = 0;
            state.unsynced = false;
            return remove_if_present(&path);
        }
        if let Some(file) = &state.file {
            write_all_at(file, &0u32.to_be_bytes(), Self::entry_offset(piece))?;
        }
        Ok(())
    }

    /// Pieces kept, in no order.
    pub fn pieces(&mut self) -> io::Result<Vec<u32>> {
        Ok(self.state()?.slots.keys().copied().collect())
    }

    /// Makes what was written durable.
    pub fn sync(&mut self) -> io::Result<()> {
        let Some(state) = self.loaded.as_mut() else {
            return Ok(());
        };
        if let (true, Some(file)) = (state.unsynced, &state.file) {
            file.sync_data()?;
            state.unsynced = false;
        }
        Ok(())
    }

    /// Deletes the file (with the torrent's data).
    pub fn delete(&mut self) {
        self.loaded = None;
        let _ = remove_if_present(&self.path);
    }
}

fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(dir: &Path) -> PartsFile {
        PartsFile::new(dir.join(".x.parts"), 10, 32)
    }

    #[test]
    fn keeps_pieces_across_reopening_and_deletes_itself_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = parts(dir.path());
        assert!(!p.has(3).unwrap());
        p.write(3, 4, b"abcd").unwrap();
        p.write(7, 0, b"xyz").unwrap();
        p.write(3, 30, b"ef").unwrap();
        p.sync().unwrap();
        let len = fs::metadata(p.path()).unwrap().len();
        assert_eq!(len, HEADER_ALIGN + 2 * 32, "two slots after the header");

        let mut p = parts(dir.path());
        assert!(p.has(3).unwrap() && p.has(7).unwrap() && !p.has(0).unwrap());
        let mut buf = [0u8; 4];
        p.read(3, 4, &mut buf).unwrap();
        assert_eq!(&buf, b"abcd");
        p.read(3, 30, &mut buf[..2]).unwrap();
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(
            p.read(0, 0, &mut buf).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );

        p.release(3).unwrap();
        p.write(9, 0, b"reused").unwrap();
        assert_eq!(
            fs::metadata(p.path()).unwrap().len(),
            len,
            "the freed slot is reused"
        );
        p.release(7).unwrap();
        p.release(9).unwrap();
        assert!(!p.path().exists(), "an empty parts file is deleted");
    }

    #[test]
    fn a_header_from_another_torrent_or_naming_slots_past_the_end_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = parts(dir.path());
        p.write(1, 0, b"data").unwrap();
        drop(p);
        let mut other = PartsFile::new(dir.path().join(".x.parts"), 11, 32);
        assert!(!other.has(1).unwrap(), "another piece count: nothing kept");

        let mut p = parts(dir.path());
        p.write(1, 0, b"data").unwrap();
        drop(p);
        let file = options().open(dir.path().join(".x.parts")).unwrap();
        write_all_at(&file, &99u32.to_be_bytes(), PartsFile::entry_offset(2)).unwrap();
        let mut p = parts(dir.path());
        assert!(
            p.pieces().unwrap().is_empty(),
            "a slot past the end: nothing kept"
        );
        assert!(
            !dir.path().join(".x.parts").exists(),
            "and the damaged file is gone"
        );

        // An empty file (a crash before its header) is made afresh at the next write.
        fs::write(dir.path().join(".x.parts"), b"").unwrap();
        let mut p = parts(dir.path());
        p.write(4, 0, b"kept").unwrap();
        drop(p);
        let mut p = parts(dir.path());
        assert_eq!(p.pieces().unwrap(), vec![4]);
    }
}
