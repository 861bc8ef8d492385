//! What went wrong, or how things stand, as the engine reports it to front ends: typed values
//! that front ends format (`Display`) or match on, never text to compare.

use std::path::PathBuf;

use crate::create::CreateError;
use crate::metainfo::TorrentFileError;
use crate::storage::StorageError;
use crate::tracker::TrackerError;

/// Why a torrent stopped with an error. It stays stopped until the user resumes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TorrentError {
    #[error("no space left on device ({})", .0.display())]
    DiskFull(PathBuf),
    /// A file or folder of the torrent could not be created, written or read.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{} would lie outside the save folder", .0.display())]
    OutsideSaveFolder(PathBuf),
    /// A saved torrent could not be restored at start.
    #[error("resume data is missing or damaged; add the torrent again")]
    ResumeDamaged,
}

impl From<&StorageError> for TorrentError {
    fn from(e: &StorageError) -> Self {
        match e {
            StorageError::Io { path, source } if source.raw_os_error() == Some(libc::ENOSPC) => {
                TorrentError::DiskFull(path.clone())
            }
            StorageError::Io { path, source } => TorrentError::Io {
                path: path.clone(),
                message: source.to_string(),
            },
            StorageError::OutsideSaveFolder(path) => TorrentError::OutsideSaveFolder(path.clone()),
            StorageError::Moved(path) => TorrentError::Io {
                path: path.clone(),
                message: "the data is being moved to another folder".into(),
            },
        }
    }
}

/// Why a torrent could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    TorrentFile(#[from] TorrentFileError),
    #[error(transparent)]
    Magnet(#[from] crate::magnet::MagnetError),
    /// The engine stopped while the torrent was being read.
    #[error("the engine stopped before the torrent was read")]
    Interrupted,
}

/// Why a torrent could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateFailure {
    /// The user cancelled it: nothing to report.
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

impl From<CreateError> for CreateFailure {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Cancelled => CreateFailure::Cancelled,
            other => CreateFailure::Failed(other.to_string()),
        }
    }
}

/// Where one tracker stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrackerStatus {
    #[default]
    NotContacted,
    /// An announce is on its way.
    Updating,
    /// The last announce was answered.
    Working {
        warning: Option<String>,
    },
    Failed(TrackerError),
    /// The torrent stopped before the tracker answered.
    CutShort,
}

impl TrackerStatus {
    pub fn is_working(&self) -> bool {
        matches!(self, TrackerStatus::Working { .. })
    }
}

impl std::fmt::Display for TrackerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackerStatus::NotContacted => f.write_str("not contacted yet"),
            TrackerStatus::Updating => f.write_str("updating"),
            TrackerStatus::Working { warning: None } => f.write_str("working"),
            TrackerStatus::Working { warning: Some(w) } => write!(f, "working (warning: {w})"),
            TrackerStatus::Failed(e) => write!(f, "{e}"),
            TrackerStatus::CutShort => f.write_str("no answer before the torrent stopped"),
        }
    }
}

/// A torrent's trackers in one line: the first working one, or why none works.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrackersSummary {
    #[default]
    NoTrackers,
    /// The status of the tracker that matters most: a working one, else the latest answer.
    Tracker(TrackerStatus),
    /// Every tracker was tried and none works; the latest failure.
    NoneWorks(TrackerStatus),
}

impl std::fmt::Display for TrackersSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackersSummary::NoTrackers => f.write_str("no trackers"),
            TrackersSummary::Tracker(status) => write!(f, "{status}"),
            TrackersSummary::NoneWorks(status) => write!(f, "no tracker works ({status})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_as_such() {
        let full = StorageError::Io {
            path: "/data/a".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert_eq!(
            TorrentError::from(&full),
            TorrentError::DiskFull("/data/a".into())
        );
        assert_eq!(
            TorrentError::from(&full).to_string(),
            "no space left on device (/data/a)"
        );
    }

    #[test]
    fn statuses_read_as_before() {
        let failed = TrackerStatus::Failed(TrackerError::HttpStatus(500));
        assert_eq!(failed.to_string(), "tracker answered HTTP 500");
        assert_eq!(
            TrackersSummary::NoneWorks(failed).to_string(),
            "no tracker works (tracker answered HTTP 500)"
        );
        assert_eq!(
            TrackerStatus::Working {
                warning: Some("slow".into())
            }
            .to_string(),
            "working (warning: slow)"
        );
        assert!(!TrackerStatus::Updating.is_working());
    }

    #[test]
    fn cancelling_a_creation_is_recognised_without_text() {
        assert_eq!(
            CreateFailure::from(CreateError::Cancelled),
            CreateFailure::Cancelled
        );
        assert!(matches!(
            CreateFailure::from(CreateError::Empty("/x".into())),
            CreateFailure::Failed(_)
        ));
    }
}
