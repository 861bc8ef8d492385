//! `rivulet scrape`: each tracker's count of seeders, leechers and completed downloads.

use std::path::Path;

use crate::tracker::{TrackerClient, TrackerError};

/// Exit code 0 if at least one tracker answered, 1 otherwise.
pub fn run(path: &Path) -> anyhow::Result<u8> {
    let (_, meta) = super::load_torrent(path)?;
    let urls: Vec<String> = meta.trackers().into_iter().flatten().collect();
    if urls.is_empty() {
        println!("{} has no trackers", path.display());
        return Ok(1);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = TrackerClient::new()?;
    let mut answered = 0;
    for url in urls {
        let result = if TrackerClient::can_scrape(&url) {
            runtime.block_on(client.scrape(&url, &[meta.info_hash]))
        } else {
            Err(TrackerError::UnsupportedUrl(url.clone()))
        };
        match result.as_deref() {
            Ok([counts, ..]) => {
                answered += 1;
                println!(
                    "{url}: {} seeders, {} leechers, {} completed",
                    counts.complete, counts.incomplete, counts.downloaded
                );
            }
            Ok([]) => println!("{url}: no answer for this torrent"),
            Err(e) => println!("{url}: {e}"),
        }
    }
    Ok(if answered > 0 { 0 } else { 1 })
}
