//! Converted copies shared by the nodes of a cluster: when the blob store is shared, a copy a
//! node finishes is also stored there (`<blob>-<format>-<kbps>`) and recorded in the metadata,
//! so every node serves it, across restarts, without converting again. Copies go with their
//! file, and their sum stays within `--shared-copies` (the oldest go first, at each cleanup).
//!
//! Two nodes asked for the same missing copy at the same moment may both convert it (at most
//! once per node: each node's conversions are single-flight): a cluster-wide claim would make
//! every first request wait on a database round trip and on another node's liveness, for
//! conversions that take a fraction of the file's duration. The second upload writes the same
//! bytes under the same key, and the record is kept once.

use std::sync::Arc;

use futures_util::StreamExt;

use crate::app::AppState;
use crate::domain::Timestamp;
use crate::store::blob::OpenBlob;
use crate::store::upload::Upload;
use crate::store::{BlobStore, MetaStore};
use crate::transcode::{ConvertedCopy, OnKept, Variant, VariantKey};

/// The blob key of a shared copy.
pub fn copy_key(key: &VariantKey) -> String {
    match &key.waveform {
        Some(w) => format!(
            "{}-waveform-{}-{}-{}-{}",
            key.blob_key,
            w.format.name(),
            w.samples_per_pixel,
            w.bits,
            if w.split_channels { "split" } else { "mixed" }
        ),
        None => {
            let mut k = format!(
                "{}-{}-{}",
                key.blob_key,
                key.format.name(),
                key.bitrate_kbps.unwrap_or(0)
            );
            if let Some(n) = key.norm {
                k.push_str(&format!("-norm{n}"));
            }
            k
        }
    }
}

/// What the transcoder calls with each finished copy when the blob store is shared: the copy is
/// uploaded and recorded in the background, on `rt`.
pub fn sharer(
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetaStore>,
    rt: tokio::runtime::Handle,
) -> OnKept {
    Arc::new(move |variant: &Variant, copy: &Arc<ConvertedCopy>| {
        let (blobs, meta) = (Arc::clone(&blobs), Arc::clone(&meta));
        let (key, blob_key, copy) = (
            copy_key(&variant.key),
            variant.key.blob_key.clone(),
            Arc::clone(copy),
        );
        rt.spawn(async move {
            match upload(blobs.as_ref(), &key, &copy).await {
                Ok(()) => {
                    let recorded = meta
                        .record_copy(&key, &blob_key, copy.len as i64, Timestamp::now())
                        .await;
                    if let Err(e) = recorded {
                        tracing::warn!(key, error = %e, "shared copy not recorded; removed by a later cleanup");
                    }
                }
                Err(e) => tracing::warn!(key, error = %e, "converted copy not shared"),
            }
        });
    })
}

/// Streams a local copy into the blob store under `key` (read through its open handle, so an
/// eviction of the local file meanwhile does not matter).
async fn upload(
    blobs: &dyn BlobStore,
    key: &str,
    copy: &ConvertedCopy,
) -> Result<(), crate::store::BlobError> {
    let mut body = Arc::clone(&copy.open).stream(0, copy.len);
    let mut up = Upload::begin(blobs, key).await?;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if let Err(e) = up.write(c).await {
                    up.abort().await;
                    return Err(e);
                }
            }
            Err(e) => {
                up.abort().await;
                return Err(e.into());
            }
        }
    }
    up.commit().await.map(|_| ())
}

/// The shared copy of `variant`, if another node (or this one before a restart) made it.
pub async fn shared(state: &AppState, variant: &Variant) -> Option<Arc<dyn OpenBlob>> {
    if !state.blobs.is_shared() {
        return None;
    }
    let key = copy_key(&variant.key);
    match state.blobs.open(&key).await {
        Ok(open) => {
            tracing::info!(
                target = variant.key.format.name(),
                bitrate_kbps = variant.key.bitrate_kbps,
                bytes = open.len(),
                "shared copy"
            );
            Some(open)
        }
        Err(crate::store::BlobError::NotFound(_)) => None,
        Err(e) => {
            tracing::warn!(key, error = %e, "shared copy unreadable; converting");
            None
        }
    }
}

/// Deletes the shared copies of a file's blob (the file is gone).
pub async fn drop_copies(state: &AppState, blob_key: &str) -> crate::error::Result<()> {
    if !state.blobs.is_shared() {
        return Ok(());
    }
    for key in state.meta.take_copies(blob_key).await? {
        if let Err(e) = state.blobs.delete(&key).await {
            tracing::warn!(key, error = %e, "shared copy left behind");
        }
    }
    Ok(())
}

/// Keeps the shared copies within `--shared-copies`: those of files that are gone, then the
/// oldest. Returns how many went.
pub async fn trim(state: &AppState) -> crate::error::Result<usize> {
    if !state.blobs.is_shared() {
        return Ok(0);
    }
    let limit = i64::try_from(state.config.shared_copies_bytes).unwrap_or(i64::MAX);
    let gone = state.meta.trim_copies(limit).await?;
    for key in &gone {
        if let Err(e) = state.blobs.delete(key).await {
            tracing::warn!(key, error = %e, "shared copy left behind");
        }
    }
    Ok(gone.len())
}
