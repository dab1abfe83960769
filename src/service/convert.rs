//! Upload-time conversion: `"type": "audio"` with `desired_format`, `desired_bitrate` and/or
//! `desired_loudness` stores the converted file instead of the bytes sent (normalised: the
//! upload is measured, then converted with the gain and limiter, as `norm=` does).

use std::io::Write;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use mediastore_media::{loudness, AudioFormat, MediaError, Normalization, TranscodeOptions};
use tokio::sync::mpsc;

use super::receive::{new_key, Received};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::store::upload::{Stored, Upload};
use crate::store::BlobStore;
use crate::transcode::variant::conversion;
use std::sync::Arc;

/// What the client asked the stored file to become.
#[derive(Debug, Clone, Copy)]
pub struct Desired {
    pub format: Option<AudioFormat>,
    pub bitrate_kbps: Option<u32>,
    /// Target loudness, tenths of a LUFS.
    pub loudness: Option<i16>,
}

/// Bytes the encoder hands to the upload at once.
const CHUNK: usize = 256 * 1024;

/// The encoder's output, sent in chunks from the blocking worker to the task that writes the
/// new blob (a bounded channel: the encoder waits for the store, memory stays at a few chunks).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the upload of the converted file stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Converts `customer_id`'s received blob `source` (detected as `content_format`) as `desired`
/// asks, in `blobs` (the container's store), returning the converted blob, or `None` when the upload already is what was asked for.
/// Audio that cannot be decoded answers 422 naming the problem; nothing is stored.
pub async fn convert_upload(
    state: &AppState,
    blobs: &Arc<dyn BlobStore>,
    customer_id: &str,
    source: &Stored,
    content_format: &str,
    desired: Desired,
) -> Result<Option<Received>> {
    let field = if desired.format.is_some() {
        "desired_format"
    } else if desired.bitrate_kbps.is_some() {
        "desired_bitrate"
    } else {
        "desired_loudness"
    };
    let local = blobs.local_copy(&source.key).await?;
    let src = local.path().to_path_buf();
    let hint = content_format.to_string();
    let info = tokio::task::spawn_blocking(move || mediastore_media::probe(&src, Some(&hint)))
        .await
        .map_err(std::io::Error::other)?
        .map_err(|source| Error::Media { field, source })?;
    let target = desired.format.unwrap_or(info.format);
    let bitrate = match conversion(
        Some(info.format),
        info.bitrate,
        target,
        desired.bitrate_kbps,
    ) {
        Some(b) => b,
        // Normalising converts even to the format and bitrate sent.
        None if desired.loudness.is_some() => None,
        None => return Ok(None),
    };
    let permit = state.transcoder.permit(customer_id).await?;
    let mut upload = Upload::begin(blobs.as_ref(), &new_key()).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let hint = content_format.to_string();
    let started = std::time::Instant::now();
    let encoder = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let opts = TranscodeOptions {
            format: target,
            bitrate_kbps: bitrate,
        };
        let cancel = AtomicBool::new(false);
        let stats = match desired.loudness {
            Some(tenths) => {
                let norm = Normalization {
                    target_lufs: f64::from(tenths) / 10.0,
                    measured: loudness::measure(local.path(), Some(&hint), &cancel)?,
                };
                mediastore_media::transcode_normalized(
                    local.path(),
                    Some(&hint),
                    &opts,
                    &norm,
                    &mut w,
                    &cancel,
                )?
            }
            None => mediastore_media::transcode(local.path(), Some(&hint), &opts, &mut w, &cancel)?,
        };
        w.flush()?;
        Ok::<_, MediaError>(stats)
    });
    let mut write_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = upload.write(chunk).await {
            // Dropping the receiver stops the encoder at its next chunk.
            write_error = Some(e);
            break;
        }
    }
    drop(rx);
    let result = encoder.await.map_err(std::io::Error::other)?;
    if let Some(e) = write_error {
        upload.abort().await;
        return Err(e.into());
    }
    let stats = match result {
        Ok(stats) => stats,
        Err(e) => {
            upload.abort().await;
            return Err(Error::Media { field, source: e });
        }
    };
    let stored = upload.commit().await?;
    tracing::info!(
        source = content_format,
        target = target.name(),
        bitrate_kbps = bitrate,
        norm_lufs = desired.loudness.map(|t| f64::from(t) / 10.0),
        audio_ms = stats.input_frames * 1000 / u64::from(stats.input_rate.max(1)),
        took_ms = started.elapsed().as_secs_f64() * 1000.0,
        bytes = stored.size,
        from_cache = false,
        "upload conversion"
    );
    Ok(Some(Received::new(blobs, stored)))
}
