//! .torrent parsing: any input parses or errors, and what parses has safe relative paths.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = rivulet::metainfo::Metainfo::from_bytes(data) {
        for file in &meta.files {
            assert!(file.path.is_relative());
            assert!(
                file.path
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
            );
        }
        let _ = meta.piece_len(meta.piece_count().saturating_sub(1));
    }
});
