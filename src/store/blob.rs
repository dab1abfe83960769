//! The blob store: a file's bytes by key. Small and byte-oriented so an S3-compatible backend
//! can answer `read_range` with a ranged GET.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under this key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The key is not one this store made.
    #[error("invalid blob key {0:?}")]
    BadKey(String),
    /// The storage failed.
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
    /// The blob URL names a backend this build does not have.
    #[error("unsupported blob url: {0}")]
    Unsupported(String),
}

/// A stream of a blob's bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Stores and reads file bytes.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A directory on the same filesystem where uploads are spooled before `put_file`, so the
    /// final move is a rename.
    fn spool_dir(&self) -> &Path;
    /// Moves a complete, synced file from the spool into the store under `key`.
    async fn put_file(&self, key: &str, spooled: &Path) -> Result<(), BlobError>;
    /// Streams `len` bytes of `key` from `offset`.
    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError>;
    /// Reads a small range whole (one request, one buffer): the fast path for short Ranges.
    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Every key in the store (start-up reconciliation).
    async fn list_keys(&self) -> Result<Vec<String>, BlobError>;
    /// A local path to the blob when the backend keeps one (the media pipeline reads it in place).
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}
