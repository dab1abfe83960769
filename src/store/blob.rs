//! The blob store: a file's bytes by key, whatever keeps them (local disk, an S3-compatible
//! service). Small and byte-oriented: an upload is a writer that commits under its key or
//! leaves nothing, reads are by offset and length (a ranged GET on S3), and a blob opened once
//! can be read many times (the publish cache keeps open blobs).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{stream, Stream};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under this key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The key is not one this store made.
    #[error("invalid blob key {0:?}")]
    BadKey(String),
    /// The local storage failed.
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
    /// The object store answered with an error or could not be reached.
    #[error("object store: {0}")]
    Remote(String),
    /// The object store refused our credentials (a revoked key, a missing permission).
    #[error("object store refused the credentials: {0}")]
    Denied(String),
    /// The bucket does not exist (deleted, or misnamed).
    #[error("bucket {0} not found")]
    NoBucket(String),
    /// A customer's own bucket (an external container) failed; `reason` is safe to show.
    #[error("the external bucket of container {container_sid} failed: {reason}")]
    External {
        container_sid: String,
        reason: String,
    },
    /// The blob URL or its settings are not usable.
    #[error("blob store settings: {0}")]
    Config(String),
    /// The blob URL names a backend this build does not have.
    #[error("unsupported blob url: {0}")]
    Unsupported(String),
}

impl From<BlobError> for std::io::Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Io(e) => e,
            BlobError::NotFound(_) => std::io::Error::new(std::io::ErrorKind::NotFound, e),
            other => std::io::Error::other(other),
        }
    }
}

/// A stream of a blob's bytes. A failure mid-way is an `Err` item, never a short clean end.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A stored blob as a listing shows it.
#[derive(Debug, Clone)]
pub struct BlobEntry {
    pub key: String,
    /// When it was written: start-up repair leaves recent orphans of other nodes alone.
    pub modified: SystemTime,
}

/// A blob opened for reads: its length and its bytes at any offset, read by many requests at
/// once (no shared position).
#[async_trait]
pub trait OpenBlob: Send + Sync + std::fmt::Debug + 'static {
    /// The blob's length in bytes.
    fn len(&self) -> u64;

    /// True when the blob is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset` when they can be had right now without waiting (a local file's
    /// page cache): the fast path of short Ranges, taken on the runtime thread. `None` means
    /// "ask [`read_at`](Self::read_at)".
    fn read_now(&self, _offset: u64, _len: usize) -> Option<Bytes> {
        None
    }

    /// `len` bytes at `offset`, whole (the blob must hold them).
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, BlobError>;

    /// Streams `len` bytes from `offset` with bounded buffers.
    fn stream(self: Arc<Self>, offset: u64, len: u64) -> ByteStream;
}

/// Streams `len` bytes of `blob` from `offset` in `chunk`-sized whole reads, each tried on the
/// fast path first: the stream of stores whose reads are positioned (local files).
pub fn stream_by_reads(blob: Arc<dyn OpenBlob>, offset: u64, len: u64, chunk: usize) -> ByteStream {
    Box::pin(stream::try_unfold(
        (blob, offset, len),
        move |(blob, pos, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let n = left.min(chunk as u64) as usize;
            let bytes = match blob.read_now(pos, n) {
                Some(b) => b,
                None => blob.read_at(pos, n).await?,
            };
            Ok(Some((bytes, (blob, pos + n as u64, left - n as u64))))
        },
    ))
}

/// The receiving end of an upload. Nothing is visible under the key before [`commit`]; a
/// writer dropped without `commit` or `abort` cleans up after itself (in the background where
/// that needs a request).
///
/// [`commit`]: BlobWriter::commit
#[async_trait]
pub trait BlobWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError>;
    /// Makes the blob durable and visible under its key.
    async fn commit(self: Box<Self>) -> Result<(), BlobError>;
    /// Discards everything written, leaving nothing behind.
    async fn abort(self: Box<Self>);
}

/// A blob's bytes as a local file for readers that need a path (the media pipeline). The file
/// stays readable while this value lives, whatever a cache evicts meanwhile.
#[derive(Debug)]
pub struct LocalCopy {
    path: PathBuf,
    /// Keeps a cached copy from being removed while it is read.
    _lease: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl LocalCopy {
    /// The blob itself, kept by the store on local disk.
    pub fn in_place(path: PathBuf) -> Self {
        LocalCopy { path, _lease: None }
    }

    /// A copy held by a cache; `lease` keeps it on disk.
    pub fn leased(path: PathBuf, lease: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        LocalCopy {
            path,
            _lease: Some(lease),
        }
    }

    /// Where the bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Stores and reads blobs.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts a new blob under `key` (a fresh key: blobs never change once committed).
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError>;
    /// Opens `key` for reads.
    async fn open(&self, key: &str) -> Result<Arc<dyn OpenBlob>, BlobError>;
    /// Opens `key`, whose length the caller knows from the file's metadata: a remote store
    /// need not ask for it (one request less before a cold read's first byte).
    async fn open_sized(&self, key: &str, len: u64) -> Result<Arc<dyn OpenBlob>, BlobError> {
        let _ = len;
        self.open(key).await
    }
    /// Streams `len` bytes of `key` from `offset`.
    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError>;
    /// Reads a small range whole (one request, one buffer): the path of short Ranges.
    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError>;
    /// The blob as a local file (see [`LocalCopy`]).
    async fn local_copy(&self, key: &str) -> Result<LocalCopy, BlobError>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Every committed blob (start-up reconciliation).
    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError>;
    /// Removes what interrupted uploads left (a spooled file, an incomplete multipart upload)
    /// when older than `grace`; returns how many.
    async fn sweep_incomplete(&self, grace: Duration) -> Result<usize, BlobError>;
    /// Whether other processes may write to this store at the same time (an object store
    /// shared by a cluster): start-up repair then spares recent blobs another node may be
    /// about to describe.
    fn is_shared(&self) -> bool;
}

/// Blob keys are ours (UUID hex); anything else is refused before it reaches a path or a URL.
pub fn check_key(key: &str) -> Result<(), BlobError> {
    if key.len() < 3
        || key.len() > 128
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(BlobError::BadKey(key.to_string()));
    }
    Ok(())
}
