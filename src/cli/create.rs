//! `rivulet create`: make a .torrent, with a progress bar while hashing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use super::BadInput;
use crate::create::{CreateError, CreateOptions, CreateProgress, create_torrent};
use crate::metainfo::Metainfo;

pub fn run(source: &Path, output: &Path, options: CreateOptions) -> anyhow::Result<u8> {
    let progress = CreateProgress::default();
    let finished = AtomicBool::new(false);
    let bar = indicatif::ProgressBar::new(0);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::Relaxed) {
                bar.set_length(progress.total.load(Ordering::Relaxed));
                bar.set_position(progress.hashed.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = create_torrent(source, &options, &progress);
        finished.store(true, Ordering::Relaxed);
        result
    });
    bar.finish_and_clear();
    let bytes = result.map_err(|e| match e {
        CreateError::Io(..) | CreateError::Cancelled => anyhow::Error::new(e),
        other => BadInput(other.to_string()).into(),
    })?;
    let meta = Metainfo::from_bytes(&bytes).context("the new torrent does not parse back")?;
    crate::engine::write_atomically(output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "created {} ({} pieces, info hash {})",
        output.display(),
        meta.piece_count(),
        meta.info_hash
    );
    Ok(0)
}
