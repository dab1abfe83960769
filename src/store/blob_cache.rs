//! A node-local, size-bounded read-through cache of remote blobs on disk (`--blob-cache`), for
//! readers that need a local file (the media pipeline converting a blob kept on S3).
//!
//! Blob keys never change content (a new upload is a new key), so a cached copy is never stale;
//! a deleted blob's copy is dropped from the index at once. Eviction is by recency within the
//! byte limit. A copy being read stays on disk until its last reader is done (the reader holds
//! a lease, the file goes with the last reference), so concurrent readers, fills and evictions
//! are safe, and a cache smaller than one blob still serves it (kept only while read). One fill
//! per blob at a time: concurrent readers of a missing blob wait for the same download. The
//! cache starts empty at every start: it is an accelerator, not a store.
//!
//! The same cache makes hot blobs local for serving: an S3 store opening a blob that fits
//! serves it by ranged GETs at once and fills the cache in the background; reads switch to the
//! local copy as soon as it is complete (see `remote.rs`).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::blob::{BlobError, ByteStream, LocalCopy};

/// Chunks queued for a fill's writer.
const FILL_QUEUE: usize = 16;

/// A blob's copy on local disk, removed when the last reference goes.
#[derive(Debug)]
struct Cached {
    path: PathBuf,
    len: u64,
}

impl Drop for Cached {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The cache shared by every remote store of the node.
pub struct BlobCache {
    dir: PathBuf,
    entries: moka::future::Cache<String, Arc<Cached>>,
    /// Bytes of first reads kept in memory until their client has them (see `tee.rs`).
    keep: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for BlobCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobCache").field("dir", &self.dir).finish()
    }
}

fn entry_id(scope: &str, key: &str) -> String {
    format!("{scope}\n{key}")
}

impl BlobCache {
    /// A cache of at most `capacity` bytes in `dir` (emptied now), whose fills from reads on
    /// their way to a client keep at most `keep` bytes in memory until the client has them.
    pub fn new(dir: &Path, capacity: u64, keep: u64) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        // Weighed in KiB so a blob over 4 GiB still weighs what it is.
        let entries = moka::future::Cache::builder()
            .max_capacity(capacity / 1024)
            .weigher(|_: &String, c: &Arc<Cached>| {
                u32::try_from(c.len.div_ceil(1024)).unwrap_or(u32::MAX)
            })
            .build();
        let keep = usize::try_from(keep)
            .unwrap_or(usize::MAX)
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Ok(BlobCache {
            dir: dir.to_path_buf(),
            entries,
            keep: Arc::new(tokio::sync::Semaphore::new(keep)),
        })
    }

    /// The blob `key` of the store `scope` as a local file, downloaded through `fetch` (a stream
    /// of its whole bytes) when not cached.
    pub async fn local<F, Fut>(
        &self,
        scope: &str,
        key: &str,
        fetch: F,
    ) -> Result<LocalCopy, BlobError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ByteStream, BlobError>>,
    {
        let id = entry_id(scope, key);
        let fill = async {
            let body = fetch().await?;
            self.fill(body).await
        };
        let got = self.entries.try_get_with(id, fill).await;
        // Evictions are applied now rather than at moka's next housekeeping, so the files of
        // evicted copies (or of one too big to keep) go as soon as their readers are done.
        self.entries.run_pending_tasks().await;
        match got {
            Ok(c) => {
                let path = c.path.clone();
                Ok(LocalCopy::leased(path, c))
            }
            Err(e) => Err(match &*e {
                BlobError::NotFound(k) => BlobError::NotFound(k.clone()),
                BlobError::Denied(m) => BlobError::Denied(m.clone()),
                BlobError::NoBucket(b) => BlobError::NoBucket(b.clone()),
                other => BlobError::Remote(other.to_string()),
            }),
        }
    }

    /// The most bytes the cache keeps.
    pub fn capacity(&self) -> u64 {
        self.entries
            .policy()
            .max_capacity()
            .unwrap_or(0)
            .saturating_mul(1024)
    }

    /// The bytes the node may keep of fills on their way to a client (one permit a byte).
    pub fn keep_budget(&self) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(&self.keep)
    }

    /// The blob `key` of the store `scope`, if a copy is cached now (no download).
    pub async fn cached(&self, scope: &str, key: &str) -> Option<LocalCopy> {
        let c = self.entries.get(&entry_id(scope, key)).await?;
        let path = c.path.clone();
        Some(LocalCopy::leased(path, c))
    }

    /// Drops the copy of a deleted blob (readers holding it finish first).
    pub async fn forget(&self, scope: &str, key: &str) {
        self.entries.invalidate(&entry_id(scope, key)).await;
        self.entries.run_pending_tasks().await;
    }

    async fn fill(&self, mut body: ByteStream) -> Result<Arc<Cached>, BlobError> {
        let path = self.dir.join(uuid::Uuid::new_v4().simple().to_string());
        // From here on, an error or a cancelled fill removes the partial file (created before
        // the guard is armed, so a cancelled fill cannot create it after the removal).
        let file = tokio::fs::File::create(&path).await?.into_std().await;
        let mut cached = Cached {
            path: path.clone(),
            len: 0,
        };
        // One blocking writer for the whole fill, fed the chunks as they come: no copy into an
        // async file's buffer and no hand-off to the blocking pool per chunk, which on a cold
        // read through the S3 store (this fill runs beside the client's download) cost CPU and
        // context switches on the serving path.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(FILL_QUEUE);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut file = file;
            while let Some(chunk) = rx.blocking_recv() {
                file.write_all(&chunk)?;
            }
            Ok(())
        });
        let mut failed = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    cached.len += chunk.len() as u64;
                    if tx.send(chunk).await.is_err() {
                        // The writer stopped: its error is reported below.
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        writer.await.map_err(std::io::Error::other)??;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(Arc::new(cached))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn blob(data: &'static [u8]) -> ByteStream {
        Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(
            data,
        ))]))
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_fill_and_forgotten_copies_go_with_their_last_reader(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let cache = BlobCache::new(dir.path(), 1 << 20, 0)?;
        let fills = AtomicUsize::new(0);
        let fetch = || async {
            fills.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(blob(b"hello"))
        };
        let (a, b) = tokio::join!(cache.local("s", "k1", fetch), cache.local("s", "k1", fetch));
        let (a, b) = (a?, b?);
        assert_eq!(fills.load(Ordering::SeqCst), 1, "one download for both");
        assert_eq!(a.path(), b.path());
        assert_eq!(std::fs::read(a.path())?, b"hello");
        cache.forget("s", "k1").await;
        cache.entries.run_pending_tasks().await;
        assert!(a.path().exists(), "still read: kept");
        let path = a.path().to_path_buf();
        drop((a, b));
        assert!(!path.exists(), "gone with its last reader");
        Ok(())
    }

    #[tokio::test]
    async fn a_cache_smaller_than_the_blob_still_serves_it(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        // 1 KiB of room for a 4 KiB blob.
        let cache = BlobCache::new(dir.path(), 1024, 0)?;
        static BIG: [u8; 4096] = [7; 4096];
        let copy = cache.local("s", "big", || async { Ok(blob(&BIG)) }).await?;
        cache.entries.run_pending_tasks().await;
        assert_eq!(std::fs::read(copy.path())?, BIG);
        let path = copy.path().to_path_buf();
        drop(copy);
        cache.entries.run_pending_tasks().await;
        assert!(!path.exists(), "not kept beyond its reader");
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_fill_leaves_no_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let cache = BlobCache::new(dir.path(), 1 << 20, 0)?;
        let broken = || async {
            let s: ByteStream = Box::pin(futures_util::stream::iter(vec![
                Ok(Bytes::from_static(b"par")),
                Err(std::io::Error::other("cut")),
            ]));
            Ok(s)
        };
        assert!(cache.local("s", "k", broken).await.is_err());
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }
}
