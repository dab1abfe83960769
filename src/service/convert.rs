//! Upload-time conversion: `"type": "audio"` with `desired_format` and/or `desired_bitrate`
//! stores the converted file instead of the bytes sent.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use mediastore_media::{AudioFormat, MediaError, TranscodeOptions};
use sha2::{Digest, Sha256};

use super::spool::Spooled;
use crate::app::AppState;
use crate::domain::detect::SNIFF_LEN;
use crate::domain::DomainError;
use crate::error::{Error, Result};

/// What the client asked the stored file to become.
#[derive(Debug, Clone, Copy)]
pub struct Desired {
    pub format: Option<AudioFormat>,
    pub bitrate_kbps: Option<u32>,
}

/// Writes the conversion into a new spool file, hashing and counting as it goes.
struct HashingFile {
    file: std::fs::File,
    hasher: Sha256,
    head: Vec<u8>,
    size: u64,
}

impl Write for HashingFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(data)?;
        self.hasher.update(data);
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        self.size += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn undecodable(field: &str, e: &MediaError) -> Error {
    DomainError::validation(field, format!("the audio cannot be converted: {e}")).into()
}

/// Converts `spooled` (detected as `content_format`) as `desired` asks, returning the converted
/// spool, or `None` when the upload already is what was asked for. Audio that cannot be decoded
/// answers 422 naming the problem; nothing is stored.
pub async fn convert_upload(
    state: &AppState,
    spooled: &Spooled,
    content_format: &str,
    desired: Desired,
) -> Result<Option<Spooled>> {
    let field = if desired.format.is_some() {
        "desired_format"
    } else {
        "desired_bitrate"
    };
    let src = spooled.path.clone();
    let hint = content_format.to_string();
    let info = tokio::task::spawn_blocking(move || mediastore_media::probe(&src, Some(&hint)))
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| undecodable(field, &e))?;
    let target = desired.format.unwrap_or(info.format);
    let bitrate = desired
        .bitrate_kbps
        .filter(|&b| target.is_lossy() && u64::from(b) * 1000 < u64::from(info.bitrate));
    if target == info.format && bitrate.is_none() {
        return Ok(None);
    }
    let permit = state.transcoder.permit().await?;
    let out_path: PathBuf = state
        .blobs
        .spool_dir()
        .join(format!("{}.part", uuid::Uuid::new_v4().simple()));
    // The guard removes the output on any failure below.
    let mut converted = Spooled {
        path: out_path.clone(),
        size: 0,
        sha256: String::new(),
        head: Vec::new(),
    };
    let src = spooled.path.clone();
    let hint = content_format.to_string();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || -> std::result::Result<(HashingFile, mediastore_media::TranscodeStats), MediaError> {
        let _permit = permit;
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&out_path)?;
        let mut w = HashingFile { file, hasher: Sha256::new(), head: Vec::new(), size: 0 };
        let opts = TranscodeOptions { format: target, bitrate_kbps: bitrate };
        let stats = mediastore_media::transcode(&src, Some(&hint), &opts, &mut w, &AtomicBool::new(false))?;
        w.file.sync_all()?;
        Ok((w, stats))
    })
    .await
    .map_err(std::io::Error::other)?;
    let (w, stats) = match result {
        Ok(r) => r,
        Err(e) if e.is_client_fault() => return Err(undecodable(field, &e)),
        Err(e) => return Err(Error::Io(std::io::Error::other(e.to_string()))),
    };
    tracing::info!(
        source = content_format,
        target = target.name(),
        bitrate_kbps = bitrate,
        audio_ms = stats.input_frames * 1000 / u64::from(stats.input_rate.max(1)),
        took_ms = started.elapsed().as_secs_f64() * 1000.0,
        bytes = w.size,
        from_cache = false,
        "upload conversion"
    );
    converted.size = w.size;
    converted.sha256 = hex::encode(w.hasher.finalize());
    converted.head = w.head;
    Ok(Some(converted))
}
