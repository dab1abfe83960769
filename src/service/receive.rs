//! Receiving an upload's body straight into the blob store, under a limit: hashed and counted
//! by the store's [`Upload`] while it streams, memory bounded by a few chunks whatever the
//! length. A body error, a client that goes away, or a body over the limit leaves nothing; a
//! received blob that is not kept (a rule refused the file afterwards, the request was
//! cancelled) is deleted by its guard.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::domain::DomainError;
use crate::error::{Error, Result};
use crate::store::upload::{Stored, Upload};
use crate::store::BlobStore;

/// The most bytes an upload may have, and the error to give past it.
#[derive(Debug, Clone)]
pub struct Limit {
    pub max_bytes: u64,
    pub exceeded: DomainError,
}

/// A committed blob that no file describes yet. Dropped without [`keep`](Received::keep), its
/// bytes are deleted.
pub struct Received {
    pub stored: Stored,
    blobs: Arc<dyn BlobStore>,
    kept: bool,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("stored", &self.stored)
            .field("kept", &self.kept)
            .finish()
    }
}

impl Received {
    /// Guards a blob just committed in `blobs`.
    pub fn new(blobs: &Arc<dyn BlobStore>, stored: Stored) -> Self {
        Received {
            stored,
            blobs: Arc::clone(blobs),
            kept: false,
        }
    }

    /// The store the blob was received into.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Whether the blob is in `blobs` (compared by identity).
    pub fn is_in(&self, blobs: &Arc<dyn BlobStore>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.blobs), Arc::as_ptr(blobs))
    }

    /// The blob copied into `to` (a multipart upload whose bytes came before the fields naming
    /// an external container), this one removed; on failure neither copy stays.
    /// Past `limit` nothing is copied.
    pub async fn relocate(self, to: &Arc<dyn BlobStore>, limit: &Limit) -> Result<Received> {
        if self.stored.size > limit.max_bytes {
            self.discard().await;
            return Err(limit.exceeded.clone().into());
        }
        let body = match self
            .blobs
            .read_range(&self.stored.key, 0, self.stored.size)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                self.discard().await;
                return Err(e.into());
            }
        };
        let moved = receive(to, body, limit).await;
        self.discard().await;
        moved
    }

    /// The blob now belongs to a file: the guard lets go.
    pub fn keep(mut self) -> Stored {
        self.kept = true;
        self.stored.clone()
    }

    /// Deletes the blob now (rather than in the background on drop).
    pub async fn discard(mut self) {
        self.kept = true;
        if let Err(e) = self.blobs.delete(&self.stored.key).await {
            tracing::warn!(key = %self.stored.key, error = %e, "bytes of a refused upload left behind; removed at a later start");
        }
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let (blobs, key) = (Arc::clone(&self.blobs), self.stored.key.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = blobs.delete(&key).await {
                        tracing::warn!(key, error = %e, "bytes of a cancelled upload left behind; removed at a later start");
                    }
                });
            }
            Err(_) => tracing::warn!(key, "bytes of a cancelled upload left behind"),
        }
    }
}

/// A fresh blob key.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Streams `body` into a new blob of `blobs`, refusing it past `limit`.
pub async fn receive<S, E>(blobs: &Arc<dyn BlobStore>, body: S, limit: &Limit) -> Result<Received>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let mut upload = Upload::begin(blobs.as_ref(), &new_key()).await?;
    let mut body = std::pin::pin!(body);
    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::Body(e.to_string()))?;
            if upload.size() + chunk.len() as u64 > limit.max_bytes {
                return Err(limit.exceeded.clone().into());
            }
            upload.write(chunk).await?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(Received::new(blobs, upload.commit().await?)),
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::FsBlobs;
    use futures_util::stream;

    fn limit(max: u64) -> Limit {
        Limit {
            max_bytes: max,
            exceeded: DomainError::TooLarge {
                field: "max_file_size".into(),
                message: "too big".into(),
            },
        }
    }

    #[tokio::test]
    async fn hashes_counts_and_deletes_what_is_not_kept(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobs::open(dir.path())?);
        let body = stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        let r = receive(&blobs, body, &limit(100)).await?;
        assert_eq!(r.stored.size, 11);
        assert_eq!(r.stored.head, b"hello world");
        assert_eq!(
            r.stored.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(&blobs.read_small(&r.stored.key, 6, 5).await?[..], b"world");
        r.discard().await;
        assert!(blobs.list().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn over_limit_or_broken_leaves_nothing(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobs::open(dir.path())?);
        let body =
            stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 64]))));
        assert!(receive(&blobs, body, &limit(100)).await.is_err());
        let body = stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("cut")),
        ]);
        assert!(receive(&blobs, body, &limit(100)).await.is_err());
        assert!(blobs.list().await?.is_empty());
        assert_eq!(std::fs::read_dir(dir.path().join(".spool"))?.count(), 0);
        Ok(())
    }
}
