//! Reading the committed ffmpeg reference vectors (`fixtures/codecs/`).

use std::path::PathBuf;

/// The bytes of `fixtures/codecs/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/codecs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `fixtures/codecs/<name>` as little-endian 16-bit samples.
pub fn pcm(name: &str) -> Vec<i16> {
    fixture(name)
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}
