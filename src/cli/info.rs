//! `rivulet info`: what a .torrent holds.

use std::path::Path;

use crate::units;

pub fn run(path: &Path) -> anyhow::Result<u8> {
    let (_, meta) = super::load_torrent(path)?;
    println!("name: {}", meta.name);
    println!("info hash: {}", meta.info_hash);
    let content = meta.content_length();
    println!("size: {} ({content} bytes)", units::bytes(content));
    if meta.total_length > content {
        println!(
            "padding: {} bytes (BEP 47, never written to disk)",
            meta.total_length - content
        );
    }
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
    println!("files: {}", meta.visible_files().count());
    for f in meta.visible_files() {
        println!("  {} ({})", f.path.display(), units::bytes(f.length));
    }
    Ok(0)
}
