//! `rivulet info`: what a .torrent or a magnet link holds.

use std::path::Path;

use super::BadInput;
use crate::magnet::{MagnetLink, PeerAddress, selection_text};
use crate::units;

pub fn run(path: &Path) -> anyhow::Result<u8> {
    if let Some(text) = path.to_str().filter(|t| {
        t.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
    }) {
        return magnet(text);
    }
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
    // Numbered for `download --only` (and BEP 53's `so`).
    for (i, f) in meta.visible_files().enumerate() {
        println!("  {i}: {} ({})", f.path.display(), units::bytes(f.length));
    }
    Ok(0)
}

/// What a magnet link holds, without fetching anything.
fn magnet(text: &str) -> anyhow::Result<u8> {
    let link = MagnetLink::parse(text).map_err(|e| BadInput(format!("magnet link: {e}")))?;
    println!("name: {}", link.display_name());
    println!("info hash: {}", link.info_hash);
    if let Some(length) = link.exact_length {
        println!("size: {} ({length} bytes)", units::bytes(length));
    }
    for (i, tracker) in link.trackers.iter().enumerate() {
        println!("tracker tier {}: {tracker}", i + 1);
    }
    for peer in &link.peers {
        match peer {
            PeerAddress::Ip(addr) => println!("peer: {addr}"),
            PeerAddress::Host { name, port } => println!("peer: {name}:{port}"),
        }
    }
    if let Some(ranges) = &link.select_only {
        println!("files chosen: {}", selection_text(ranges));
    }
    println!("files: unknown until the metadata is fetched from peers");
    Ok(0)
}
