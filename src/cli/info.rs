//! `rivulet info`: what a .torrent holds.

use std::path::Path;

use crate::units;

pub fn run(path: &Path) -> anyhow::Result<u8> {
    let (_, meta) = super::load_torrent(path)?;
    println!("name: {}", meta.name);
    println!("info hash: {}", meta.info_hash);
    println!(
        "size: {} ({} bytes)",
        units::bytes(meta.total_length),
        meta.total_length
    );
    println!(
        "pieces: {} x {}",
        meta.piece_count(),
        units::bytes(meta.piece_length)
    );
    println!("private: {}", if meta.private { "yes" } else { "no" });
    for (i, tier) in meta.trackers().iter().enumerate() {
        println!("tracker tier {}: {}", i + 1, tier.join(" "));
    }
    if let Some(comment) = &meta.comment {
        println!("comment: {comment}");
    }
    if let Some(by) = &meta.created_by {
        println!("created by: {by}");
    }
    println!("files: {}", meta.files.len());
    for f in &meta.files {
        println!("  {} ({})", f.path.display(), units::bytes(f.length));
    }
    Ok(0)
}
