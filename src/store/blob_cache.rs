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

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::blob::{BlobError, ByteStream, LocalCopy};

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
    /// A cache of at most `capacity` bytes in `dir` (emptied now).
    pub fn new(dir: &Path, capacity: u64) -> std::io::Result<Self> {
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
        Ok(BlobCache {
            dir: dir.to_path_buf(),
            entries,
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
        match self.entries.try_get_with(id, fill).await {
            Ok(c) => {
                let path = c.path.clone();
                Ok(LocalCopy::leased(path, c))
            }
            Err(e) => Err(match &*e {
                BlobError::NotFound(k) => BlobError::NotFound(k.clone()),
                other => BlobError::Remote(other.to_string()),
            }),
        }
    }

    /// Drops the copy of a deleted blob (readers holding it finish first).
    pub async fn forget(&self, scope: &str, key: &str) {
        self.entries.invalidate(&entry_id(scope, key)).await;
    }

    async fn fill(&self, mut body: ByteStream) -> Result<Arc<Cached>, BlobError> {
        let path = self.dir.join(uuid::Uuid::new_v4().simple().to_string());
        // From here on, an error or a cancelled fill removes the partial file.
        let mut cached = Cached {
            path: path.clone(),
            len: 0,
        };
        let mut file = tokio::fs::File::create(&path).await?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await?;
            cached.len += chunk.len() as u64;
        }
        file.flush().await?;
        Ok(Arc::new(cached))
    }
}
