//! An upload into any blob store, hashed (SHA-256), counted and its first bytes kept for content
//! detection while it is written. The hashing runs on a blocking thread fed through a bounded
//! channel, so neither the runtime thread nor memory pays for the body's length.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::blob::{BlobError, BlobStore, BlobWriter};

/// How many leading bytes an upload keeps for content detection.
pub const HEAD_LEN: usize = crate::domain::detect::SNIFF_LEN;

/// Chunks in flight between the network and the hasher.
const QUEUE: usize = 8;

/// A blob that was committed, with what was learnt while writing it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// The first [`HEAD_LEN`] bytes.
    pub head: Vec<u8>,
}

/// An upload in progress. Dropped without [`commit`](Upload::commit), it leaves nothing (the
/// backend's writer cleans up on drop).
pub struct Upload {
    key: String,
    writer: Box<dyn BlobWriter>,
    hash_tx: mpsc::Sender<Bytes>,
    hasher: tokio::task::JoinHandle<String>,
    size: u64,
    head: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("key", &self.key)
            .field("size", &self.size)
            .finish()
    }
}

fn hash_all(mut rx: mpsc::Receiver<Bytes>) -> String {
    let mut hasher = Sha256::new();
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
    }
    hex::encode(hasher.finalize())
}

impl Upload {
    /// Starts an upload of a new blob under `key` in `store`.
    pub async fn begin(store: &dyn BlobStore, key: &str) -> Result<Upload, BlobError> {
        let writer = store.begin(key).await?;
        let (hash_tx, rx) = mpsc::channel(QUEUE);
        Ok(Upload {
            key: key.to_string(),
            writer,
            hash_tx,
            hasher: tokio::task::spawn_blocking(move || hash_all(rx)),
            size: 0,
            head: Vec::with_capacity(HEAD_LEN),
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `chunk`.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.size += chunk.len() as u64;
        self.hash_tx
            .send(chunk.clone())
            .await
            .map_err(|_| BlobError::Io(std::io::Error::other("upload hasher stopped")))?;
        self.writer.write(chunk).await
    }

    /// Commits the blob: durable and visible under its key.
    pub async fn commit(self) -> Result<Stored, BlobError> {
        let Upload {
            key,
            writer,
            hash_tx,
            hasher,
            size,
            head,
        } = self;
        drop(hash_tx);
        let sha256 = match hasher.await {
            Ok(h) => h,
            Err(e) => {
                writer.abort().await;
                return Err(BlobError::Io(std::io::Error::other(e)));
            }
        };
        writer.commit().await?;
        Ok(Stored {
            key,
            size,
            sha256,
            head,
        })
    }

    /// Discards the upload, leaving nothing behind.
    pub async fn abort(self) {
        drop(self.hash_tx);
        self.writer.abort().await;
    }
}
