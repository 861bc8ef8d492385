//! Torrent creation for front ends: hashing runs on the blocking pool, its progress shows in
//! the session snapshot, it can be cancelled, and the finished .torrent is written atomically.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::UnboundedSender;

use super::outcome::CreateFailure;
use crate::create::{CreateOptions, CreateProgress, create_torrent};
use crate::metainfo::Metainfo;

/// A request to make a .torrent from `source` and save it at `output`.
#[derive(Debug, Clone)]
pub struct CreateTorrent {
    /// Chosen by the front end, to match progress and results to its dialog.
    pub job: u64,
    pub source: PathBuf,
    pub output: PathBuf,
    pub options: CreateOptions,
    /// Start seeding it (from `source`'s folder) once created.
    pub seed: bool,
}

/// A creation in progress, as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationSnapshot {
    pub job: u64,
    pub source: PathBuf,
    pub hashed: u64,
    /// 0 until the files have been listed.
    pub total: u64,
}

/// How a creation ended: the .torrent's bytes and the folder its data is in (to seed from).
pub(crate) struct Created {
    pub request: CreateTorrent,
    pub result: Result<(Vec<u8>, PathBuf), CreateFailure>,
}

/// The creations running now.
#[derive(Default)]
pub(crate) struct Creations {
    jobs: HashMap<u64, (CreateTorrent, Arc<CreateProgress>)>,
}

impl Creations {
    /// Starts hashing on the blocking pool; the outcome arrives on `done`.
    pub fn start(&mut self, request: CreateTorrent, done: UnboundedSender<Created>) {
        let progress = Arc::new(CreateProgress::default());
        self.jobs
            .insert(request.job, (request.clone(), progress.clone()));
        tokio::task::spawn_blocking(move || {
            let result = create_and_save(&request, &progress);
            let _ = done.send(Created { request, result });
        });
    }

    pub fn cancel(&self, job: u64) {
        if let Some((_, progress)) = self.jobs.get(&job) {
            progress.cancel.store(true, Ordering::Relaxed);
        }
    }

    pub fn finish(&mut self, job: u64) {
        self.jobs.remove(&job);
    }

    pub fn snapshots(&self) -> Vec<CreationSnapshot> {
        let mut list: Vec<_> = self
            .jobs
            .values()
            .map(|(request, progress)| CreationSnapshot {
                job: request.job,
                source: request.source.clone(),
                hashed: progress.hashed.load(Ordering::Relaxed),
                total: progress.total.load(Ordering::Relaxed),
            })
            .collect();
        list.sort_by_key(|c| c.job);
        list
    }
}

fn create_and_save(
    request: &CreateTorrent,
    progress: &CreateProgress,
) -> Result<(Vec<u8>, PathBuf), CreateFailure> {
    let failed = CreateFailure::Failed;
    let source = std::fs::canonicalize(&request.source)
        .map_err(|e| failed(format!("{}: {e}", request.source.display())))?;
    let parent = source
        .parent()
        .ok_or_else(|| {
            failed(format!(
                "{} has no folder to seed it from",
                source.display()
            ))
        })?
        .to_path_buf();
    let bytes = create_torrent(&source, &request.options, progress)?;
    Metainfo::from_bytes(&bytes)
        .map_err(|e| failed(format!("the new torrent does not parse back: {e}")))?;
    super::write_atomically(&request.output, &bytes)
        .map_err(|e| failed(format!("cannot write {}: {e}", request.output.display())))?;
    Ok((bytes, parent))
}
