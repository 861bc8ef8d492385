//! What a user wants of a torrent: a priority for each file (skip, low, normal, high) and the
//! order pieces come in (sequential, first and last pieces first), and what that means for
//! each piece.
//!
//! Files are numbered as users see them: the torrent's files without BEP 47 padding files and
//! symbolic links, in the order of the info dictionary (`rivulet info` prints these numbers).
//! BEP 53's `so` numbers the info dictionary's list itself, padding included, as libtorrent
//! does: [`DownloadPlan::selected`] takes those.

use std::ops::RangeInclusive;

use crate::metainfo::Metainfo;

/// How much a file is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FilePriority {
    /// Not downloaded; the file is never created.
    Skip,
    Low,
    #[default]
    Normal,
    High,
}

impl FilePriority {
    pub const ALL: [FilePriority; 4] = [
        FilePriority::High,
        FilePriority::Normal,
        FilePriority::Low,
        FilePriority::Skip,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FilePriority::Skip => "Skip",
            FilePriority::Low => "Low",
            FilePriority::Normal => "Normal",
            FilePriority::High => "High",
        }
    }

    /// As the resume file records it.
    pub fn code(self) -> u8 {
        match self {
            FilePriority::Skip => 0,
            FilePriority::Low => 1,
            FilePriority::Normal => 2,
            FilePriority::High => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// The piece priority of a wanted file's first and last pieces when they come first.
const FIRST_LAST_PRIORITY: u8 = 4;
/// The share of a file its "first and last pieces" cover (at least one piece each), as
/// qBittorrent does for previews.
const FIRST_LAST_SHARE: f64 = 0.01;

/// What to download of a torrent, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadPlan {
    /// One per file a user sees, in order; files past the end (or all, when empty) are
    /// `Normal`.
    pub priorities: Vec<FilePriority>,
    /// Pieces in order (rarest first within a small window), for playing while downloading.
    pub sequential: bool,
    /// The first and last pieces of each wanted file before the rest (previews).
    pub first_last_first: bool,
}

impl DownloadPlan {
    /// Only the files whose numbers (as users see them) are in `ranges` (`download --only`).
    pub fn only(file_count: usize, ranges: &[RangeInclusive<u32>]) -> Self {
        Self::choosing(0..file_count, ranges)
    }

    /// The files a user sees, each wanted if its number (`numbers`, one per file) is in
    /// `ranges`, else skipped.
    fn choosing(numbers: impl Iterator<Item = usize>, ranges: &[RangeInclusive<u32>]) -> Self {
        let priorities = numbers
            .map(|n| {
                if u32::try_from(n).is_ok_and(|n| ranges.iter().any(|r| r.contains(&n))) {
                    FilePriority::Normal
                } else {
                    FilePriority::Skip
                }
            })
            .collect();
        Self {
            priorities,
            ..Self::default()
        }
    }

    pub fn priority(&self, file: usize) -> FilePriority {
        self.priorities.get(file).copied().unwrap_or_default()
    }

    /// Sets the priority of the files numbered in `files` (numbers past the torrent's files
    /// are ignored).
    pub fn set_priority(&mut self, file_count: usize, files: &[usize], priority: FilePriority) {
        if self.priorities.len() < file_count {
            self.priorities.resize(file_count, FilePriority::Normal);
        }
        for &i in files {
            if let Some(p) = self.priorities.get_mut(i) {
                *p = priority;
            }
        }
    }

    /// Whether every file is wanted (nothing skipped).
    pub fn wants_everything(&self) -> bool {
        !self.priorities.contains(&FilePriority::Skip)
    }

    /// Only the files BEP 53's `so` names, by their place in the info dictionary's file list
    /// (padding files and links count, as in libtorrent).
    pub fn selected(meta: &Metainfo, ranges: &[RangeInclusive<u32>]) -> Self {
        let numbers = meta
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_on_disk());
        Self::choosing(numbers.map(|(i, _)| i), ranges)
    }

    /// For each of the torrent's files (padding and links included), whether it is skipped.
    pub(crate) fn skipped_files(&self, meta: &Metainfo) -> Vec<bool> {
        let mut visible = 0;
        meta.files
            .iter()
            .map(|f| {
                if !f.is_on_disk() {
                    return false;
                }
                visible += 1;
                self.priority(visible - 1) == FilePriority::Skip
            })
            .collect()
    }

    /// Each piece's priority: 0 for pieces no wanted file touches, else the highest of the
    /// wanted files it holds bytes of (1 low, 2 normal, 3 high), and [`FIRST_LAST_PRIORITY`]
    /// for the first and last pieces of wanted files when they come first.
    pub(crate) fn piece_priorities(&self, meta: &Metainfo) -> Vec<u8> {
        let mut pieces = vec![0u8; meta.piece_count() as usize];
        let piece_length = meta.piece_length.max(1);
        for (i, f) in meta.visible_files().enumerate() {
            let priority = self.priority(i);
            if priority == FilePriority::Skip || f.length == 0 {
                continue;
            }
            let first = (f.offset / piece_length) as usize;
            let last = ((f.offset + f.length - 1) / piece_length) as usize;
            for p in pieces.iter_mut().take(last + 1).skip(first) {
                *p = (*p).max(priority.code());
            }
            if self.first_last_first {
                let span = last - first + 1;
                let edge = ((span as f64 * FIRST_LAST_SHARE).ceil() as usize).max(1);
                let edges = (first..first + edge).chain(last + 1 - edge.min(span)..=last);
                for p in edges {
                    if let Some(p) = pieces.get_mut(p) {
                        *p = FIRST_LAST_PRIORITY;
                    }
                }
            }
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::tests::with_attrs;

    fn meta() -> Metainfo {
        // Pieces of 16 KiB: a.bin 0–1, pad, b.bin 2–5 (ends inside piece 5), c.bin 5–9.
        Metainfo::from_bytes(&with_attrs(&[
            (&["a.bin"], 20_000, ""),
            (&[".pad", "12768"], 12_768, "p"),
            (&["b.bin"], 60_000, ""),
            (&["c.bin"], 80_000, ""),
        ]))
        .unwrap()
    }

    #[test]
    fn a_skipped_file_leaves_its_own_pieces_out_and_keeps_the_ones_it_shares() {
        let meta = meta();
        assert_eq!(meta.piece_count(), 11);
        let plan = DownloadPlan {
            priorities: vec![FilePriority::High, FilePriority::Skip, FilePriority::Low],
            ..Default::default()
        };
        assert_eq!(
            plan.piece_priorities(&meta),
            vec![3, 3, 0, 0, 0, 1, 1, 1, 1, 1, 1]
        );
        assert_eq!(plan.skipped_files(&meta), vec![false, false, true, false]);
        // `so` counts the padding file: 2 is b.bin, 3 c.bin.
        let so = DownloadPlan::selected(&meta, &[3..=3]);
        assert_eq!(
            so.priorities,
            vec![FilePriority::Skip, FilePriority::Skip, FilePriority::Normal]
        );
        assert!(!plan.wants_everything());
        assert!(DownloadPlan::default().wants_everything());
        assert_eq!(DownloadPlan::default().piece_priorities(&meta), vec![2; 11]);
    }

    #[test]
    fn first_and_last_pieces_of_wanted_files_come_first() {
        let meta = meta();
        let plan = DownloadPlan {
            priorities: vec![FilePriority::Normal, FilePriority::Skip],
            first_last_first: true,
            ..Default::default()
        };
        assert_eq!(
            plan.piece_priorities(&meta),
            vec![4, 4, 0, 0, 0, 4, 2, 2, 2, 2, 4]
        );
    }

    #[test]
    fn only_selects_by_number_and_set_priority_ignores_numbers_past_the_end() {
        let mut plan = DownloadPlan::only(4, &[1..=1, 3..=9]);
        assert_eq!(
            plan.priorities,
            vec![
                FilePriority::Skip,
                FilePriority::Normal,
                FilePriority::Skip,
                FilePriority::Normal
            ]
        );
        plan.set_priority(4, &[0, 7], FilePriority::High);
        assert_eq!(plan.priority(0), FilePriority::High);
        assert_eq!(plan.priority(9), FilePriority::Normal);
        for p in FilePriority::ALL {
            assert_eq!(FilePriority::from_code(p.code()), Some(p));
        }
        assert_eq!(FilePriority::from_code(9), None);
    }
}
