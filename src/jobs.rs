//! Background work: start-up reconciliation of metadata and bytes, and the periodic cleanup
//! (expiry and `delete_lru`).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::app::AppState;
use crate::domain::{threshold, Timestamp};
use crate::metrics::Cleanup;
use crate::service::files::{self, Removal};
use crate::store::cluster::CleanupClaim;
use crate::store::{BlobError, BlobStore, MetaStore};

/// Files removed per cleanup query; the cleanup loops until nothing is left to do.
const BATCH: i64 = 500;

/// Repairs what a crash between the metadata and the bytes may have left: unfinished uploads
/// and bytes no file refers to are deleted, a file whose bytes are gone is deleted (and
/// reported), and every total is recomputed from the files. On a store other nodes write to,
/// only what is older than `grace` is removed: a recent blob may be an upload in flight.
pub async fn reconcile(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    grace: Duration,
) -> anyhow::Result<()> {
    let grace = if blobs.is_shared() {
        grace
    } else {
        Duration::ZERO
    };
    let swept = blobs.sweep_incomplete(grace).await?;
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    // Blobs first: a file committed after this listing is not in it, and one committed
    // before is in both (bytes are committed before their metadata).
    let stored = blobs.list().await?;
    let files = meta.all_blob_keys().await?;
    let copies = meta.all_copy_keys().await?;
    let known: HashSet<&str> = files
        .iter()
        .map(|(_, k)| k.as_str())
        .chain(copies.iter().map(String::as_str))
        .collect();
    let mut orphans = 0;
    for entry in &stored {
        if !known.contains(entry.key.as_str()) && entry.modified <= cutoff {
            blobs.delete(&entry.key).await?;
            orphans += 1;
        }
    }
    let stored: HashSet<&str> = stored.iter().map(|e| e.key.as_str()).collect();
    for (sid, key) in &files {
        // Not listed may mean committed since the listing (another node): ask for it alone.
        if !stored.contains(key.as_str())
            && matches!(blobs.open(key).await, Err(BlobError::NotFound(_)))
        {
            // Our own ordering never leaves this; someone removed bytes under us.
            tracing::error!(file_sid = %sid, "file without bytes: removing its metadata");
            meta.delete_file(None, sid).await?;
        }
    }
    meta.recompute_totals().await?;
    if orphans + swept > 0 {
        tracing::warn!(
            orphans,
            unfinished = swept,
            "removed bytes without metadata (interrupted uploads or deletes)"
        );
    }
    Ok(())
}

/// Runs the cleanup every `--cleanup-interval` until the server stops.
pub async fn cleanup_loop(state: AppState) {
    let mut tick = tokio::time::interval(state.config.cleanup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = claimed_cleanup(&state).await {
            tracing::error!(error = %e, "cleanup failed");
        }
    }
}

/// One cleanup pass, run by one node of a cluster at a time: the node that claims it (the
/// others skip this tick). A node dying mid-pass loses its claim with its database session;
/// deletes are locked and idempotent, so a pass taken over later never deletes a file twice or
/// below a target.
async fn claimed_cleanup(state: &AppState) -> Result<(), crate::error::Error> {
    let claim = match &state.cluster {
        Some(cluster) => match cluster.claim_cleanup().await? {
            Some(c) => c,
            None => {
                tracing::debug!("cleanup pass run by another node");
                return Ok(());
            }
        },
        None => CleanupClaim::sole(),
    };
    let result = cleanup_once(state, Timestamp::now()).await;
    claim.release().await;
    result.map(|_| ())
}

/// One cleanup pass: expired files, then containers over a `delete_lru` threshold.
pub async fn cleanup_once(
    state: &AppState,
    now: Timestamp,
) -> Result<(usize, usize), crate::error::Error> {
    let mut expired = 0;
    loop {
        let batch = state.meta.expired_files(now, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for f in batch {
            if files::remove_found(state, None, &f, Removal::Cleanup).await? {
                state.metrics.cleanup_deleted(Cleanup::Expired);
                expired += 1;
            }
        }
    }
    let mut evicted = 0;
    for container in state.meta.containers_over_threshold().await? {
        evicted += evict_lru(state, &container.customer_id, &container.container_sid).await?;
    }
    let copies = crate::service::copies::trim(state).await?;
    if expired + evicted + copies > 0 {
        tracing::info!(expired, evicted, copies, "cleanup");
    }
    Ok((expired, evicted))
}

/// Deletes the least recently accessed included files of a container until its targets hold.
async fn evict_lru(
    state: &AppState,
    customer_id: &str,
    container_sid: &str,
) -> Result<usize, crate::error::Error> {
    let mut evicted = 0;
    loop {
        let Some(c) = state.meta.container(customer_id, container_sid).await? else {
            return Ok(evicted);
        };
        let Some((mut bytes, mut files)) = threshold::lru_excess(&c) else {
            return Ok(evicted);
        };
        if bytes <= 0 && files <= 0 {
            return Ok(evicted);
        }
        let candidates = state.meta.lru_files(container_sid, BATCH).await?;
        if candidates.is_empty() {
            return Ok(evicted);
        }
        for f in candidates {
            if bytes <= 0 && files <= 0 {
                break;
            }
            if files::remove_found(state, Some(customer_id), &f, Removal::Cleanup).await? {
                state.metrics.cleanup_deleted(Cleanup::Lru);
                evicted += 1;
                bytes -= f.size;
                files -= 1;
            }
        }
    }
}
