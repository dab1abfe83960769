//! Blobs in an object store (S3, Google Cloud Storage), whatever its protocol: each store says
//! how to upload, delete and list ([`ObjectWrites`]) and how to GET a range, the whole object
//! and its length ([`RangedGet`]); [`ObjectBlobs`] makes that a [`BlobStore`] the same way for
//! all (keys checked before they reach a URL, reads through [`RemoteReads`]).
//!
//! Reads are ranged GETs streamed as they arrive (hyper's buffers, TCP's window); a body that
//! ends short or fails mid-way is an error, never a short clean end. Hot blobs are made local: a
//! blob that fits a quarter of the node's [`BlobCache`] is copied there by its first read — a
//! whole read fills the cache from the same GET that streams to the client (written once the
//! client has it, [`tee`]), a first read of ranges starts a GET of its own in the background —
//! and reads switch to the local file (the embedded store's fast path) once it is complete.
//! The media pipeline reads through the same cache.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};

use super::blob::{
    check_key, stream_by_reads, BlobEntry, BlobError, BlobStore, BlobWriter, ByteStream, LocalCopy,
    OpenBlob,
};
use super::blob_cache::BlobCache;
use super::fs::{LocalFile, CHUNK};
use super::tee;

/// What an object store does besides reads; keys come checked.
#[async_trait]
pub trait ObjectWrites: Send + Sync + 'static {
    /// Starts an upload of `key` (see [`BlobStore::begin`]).
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError>;
    /// Removes `key`; a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Every blob of the store.
    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError>;
    /// See [`BlobStore::sweep_incomplete`].
    async fn sweep_incomplete(&self, grace: Duration) -> Result<usize, BlobError>;
}

/// A [`BlobStore`] on an object store: its writes `W`, and reads through [`RemoteReads`].
pub struct ObjectBlobs<W> {
    writes: W,
    reads: RemoteReads,
}

impl<W> ObjectBlobs<W> {
    /// The store of `writes` and `reads` (on the same objects).
    pub fn from_parts(writes: W, reads: RemoteReads) -> Self {
        ObjectBlobs { writes, reads }
    }

    /// The store's writes (and what they know of the store).
    pub fn writes(&self) -> &W {
        &self.writes
    }
}

#[async_trait]
impl<W: ObjectWrites> BlobStore for ObjectBlobs<W> {
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        check_key(key)?;
        self.writes.begin(key).await
    }

    async fn open(&self, key: &str) -> Result<Arc<dyn OpenBlob>, BlobError> {
        check_key(key)?;
        self.reads.open(key, None).await
    }

    async fn open_sized(&self, key: &str, len: u64) -> Result<Arc<dyn OpenBlob>, BlobError> {
        check_key(key)?;
        self.reads.open(key, Some(len)).await
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        check_key(key)?;
        get_ranged(&*self.reads.source, key, offset, len).await
    }

    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        check_key(key)?;
        get_exact(&*self.reads.source, key, offset, len).await
    }

    async fn local_copy(&self, key: &str) -> Result<LocalCopy, BlobError> {
        check_key(key)?;
        self.reads.local_copy(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        self.reads.forget(key).await;
        self.writes.delete(key).await
    }

    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError> {
        let mut listed = self.writes.list().await?;
        listed.retain(|e| check_key(&e.key).is_ok());
        Ok(listed)
    }

    async fn sweep_incomplete(&self, grace: Duration) -> Result<usize, BlobError> {
        self.writes.sweep_incomplete(grace).await
    }

    /// Other nodes write to the same bucket.
    fn is_shared(&self) -> bool {
        true
    }
}

/// The GETs of one object store, by blob key (the store maps a key to its object).
#[async_trait]
pub trait RangedGet: Send + Sync + std::fmt::Debug + 'static {
    /// The bytes `range` (not empty) of `key` as they arrive; [`RemoteReads`] checks their
    /// count.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<ByteStream, BlobError>;
    /// The whole of `key`: its length and its bytes as they arrive.
    async fn get_whole(&self, key: &str) -> Result<(u64, ByteStream), BlobError>;
    /// The length of `key`.
    async fn size(&self, key: &str) -> Result<u64, BlobError>;
}

/// The reads of one remote store: ranged GETs, and its hot blobs made local in the node's
/// cache.
#[derive(Clone)]
pub struct RemoteReads {
    source: Arc<dyn RangedGet>,
    cache: Arc<BlobCache>,
    /// Distinguishes this store's blobs in the shared cache.
    scope: String,
}

impl RemoteReads {
    /// Reads through `source`, caching in `cache` under `scope` (unique per store).
    pub fn new(source: Arc<dyn RangedGet>, cache: Arc<BlobCache>, scope: &str) -> Self {
        RemoteReads {
            source,
            cache,
            scope: scope.to_string(),
        }
    }

    /// Opens `key` (a checked blob key) for reads; its length is asked of the store unless
    /// `known_len` says it (the file's metadata does: one request less before a cold read).
    pub async fn open(
        &self,
        key: &str,
        known_len: Option<u64>,
    ) -> Result<Arc<dyn OpenBlob>, BlobError> {
        let local = Arc::new(OnceLock::new());
        if let Some(copy) = self.cache.cached(&self.scope, key).await {
            let cached = Local::open(copy).await?;
            let len = cached.file.len();
            let _ = local.set(cached);
            return Ok(Arc::new(RemoteBlob {
                source: Arc::clone(&self.source),
                key: key.to_string(),
                len,
                local,
                filler: None,
            }));
        }
        let len = match known_len {
            Some(len) => len,
            None => self.source.size(key).await?,
        };
        // A blob that fits a quarter of the cache is made local by its first read; until then
        // (and for bigger blobs always) reads are GETs.
        let filler = (len <= self.cache.capacity() / 4).then(|| {
            Arc::new(Filler {
                cache: Arc::clone(&self.cache),
                scope: self.scope.clone(),
                key: key.to_string(),
                source: Arc::clone(&self.source),
                len,
                started: AtomicBool::new(false),
                local: Arc::clone(&local),
            })
        });
        Ok(Arc::new(RemoteBlob {
            source: Arc::clone(&self.source),
            key: key.to_string(),
            len,
            local,
            filler,
        }))
    }

    /// `key` as a local file in the node's cache.
    pub async fn local_copy(&self, key: &str) -> Result<LocalCopy, BlobError> {
        let source = Arc::clone(&self.source);
        let owned = key.to_string();
        self.cache
            .local(&self.scope, key, move || whole(source, owned))
            .await
    }

    /// Drops the cached copy of a deleted blob.
    pub async fn forget(&self, key: &str) {
        self.cache.forget(&self.scope, key).await;
    }
}

/// `len` bytes at `offset` of `key`, streamed as they arrive (one ranged GET).
async fn get_ranged(
    source: &dyn RangedGet,
    key: &str,
    offset: u64,
    len: u64,
) -> Result<ByteStream, BlobError> {
    if len == 0 {
        return Ok(Box::pin(futures_util::stream::empty()));
    }
    let body = source.get_range(key, offset..offset + len).await?;
    Ok(exact_len(body, len))
}

/// `len` bytes at `offset` of `key`, whole (one ranged GET); fewer is an error.
async fn get_exact(
    source: &dyn RangedGet,
    key: &str,
    offset: u64,
    len: usize,
) -> Result<Bytes, BlobError> {
    let mut body = get_ranged(source, key, offset, len as u64).await?;
    let mut buf = BytesMut::with_capacity(len);
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
    }
    Ok(buf.freeze())
}

/// The whole object of `key`, streamed.
async fn whole(source: Arc<dyn RangedGet>, key: String) -> Result<ByteStream, BlobError> {
    let (len, body) = source.get_whole(&key).await?;
    Ok(exact_len(body, len))
}

/// `inner`, failing if it ends before `len` bytes (and ending at its first error).
fn exact_len(inner: ByteStream, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        (inner, 0u64, false),
        move |(mut inner, seen, failed)| async move {
            if failed {
                return None;
            }
            match inner.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    Some((Ok(chunk), (inner, seen, false)))
                }
                Some(Err(e)) => Some((Err(e), (inner, seen, true))),
                None if seen == len => None,
                None => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("object store sent {seen} of {len} bytes"),
                    )),
                    (inner, seen, true),
                )),
            }
        },
    ))
}

/// Makes one blob local, once: from the first whole read as it streams to its client (one GET
/// from the store serves both), or, when the first reads are ranges, by a GET of its own in
/// the background.
#[derive(Debug)]
struct Filler {
    cache: Arc<BlobCache>,
    scope: String,
    key: String,
    source: Arc<dyn RangedGet>,
    len: u64,
    started: AtomicBool,
    local: Arc<OnceLock<Local>>,
}

impl Filler {
    /// Claims the fill; false when it is under way or done.
    fn claim(&self) -> bool {
        !self.started.swap(true, Ordering::AcqRel)
    }

    /// Fills from `body` (the whole blob), then points reads at the local copy; a failed fill
    /// can be tried again by a later read.
    fn fill_from(self: &Arc<Self>, body: ByteStream) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let body = exact_len(body, this.len);
            let filled = match this
                .cache
                .local(&this.scope, &this.key, || async { Ok(body) })
                .await
            {
                Ok(copy) => Local::open(copy).await,
                Err(e) => Err(e),
            };
            match filled {
                Ok(l) => {
                    let _ = this.local.set(l);
                }
                Err(e) => {
                    tracing::debug!(key = this.key, error = %e, "blob not cached");
                    this.started.store(false, Ordering::Release);
                }
            }
        });
    }

    /// Fills by a GET of its own, in the background.
    fn fill_in_background(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match whole(Arc::clone(&this.source), this.key.clone()).await {
                Ok(body) => this.fill_from(body),
                Err(e) => {
                    tracing::debug!(key = this.key, error = %e, "blob not cached");
                    this.started.store(false, Ordering::Release);
                }
            }
        });
    }

    /// `body` (the whole blob, on its way to a client), copied to the cache once the client
    /// has it (see [`tee`]). A failed read, or a client that goes, leaves the blob for a later
    /// read to fill.
    fn tee(self: &Arc<Self>, body: ByteStream) -> ByteStream {
        let this = Arc::clone(self);
        let start: tee::Start = Box::new(move |copy| match copy {
            Some(copy) => this.fill_from(copy),
            None => this.started.store(false, Ordering::Release),
        });
        tee::tee(body, self.len, self.cache.keep_budget(), start)
    }
}

/// A blob's copy in the node's cache, opened: reads go through the local-file fast path.
#[derive(Debug)]
struct Local {
    file: LocalFile,
    /// Keeps the cached copy on disk while this handle lives.
    _copy: LocalCopy,
}

impl Local {
    async fn open(copy: LocalCopy) -> Result<Self, BlobError> {
        let path = copy.path().to_path_buf();
        let file = tokio::task::spawn_blocking(move || LocalFile::open(&path))
            .await
            .map_err(std::io::Error::other)??;
        Ok(Local { file, _copy: copy })
    }
}

/// A blob opened for reads: ranged GETs until the node's cache holds it, then local reads.
#[derive(Debug)]
struct RemoteBlob {
    source: Arc<dyn RangedGet>,
    key: String,
    len: u64,
    /// Set once the cache holds the whole blob.
    local: Arc<OnceLock<Local>>,
    /// Makes it local, when it fits the cache.
    filler: Option<Arc<Filler>>,
}

impl RemoteBlob {
    /// Starts making the blob local in the background (a read of a part of it).
    fn fill_later(&self) {
        if let Some(f) = self.filler.as_ref().filter(|f| f.claim()) {
            f.fill_in_background();
        }
    }
}

#[async_trait]
impl OpenBlob for RemoteBlob {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_now(&self, offset: u64, len: usize) -> Option<Bytes> {
        self.local.get()?.file.read_now(offset, len)
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        if let Some(local) = self.local.get() {
            return local.file.read_at(offset, len).await;
        }
        self.fill_later();
        get_exact(&*self.source, &self.key, offset, len).await
    }

    fn stream(self: Arc<Self>, offset: u64, len: u64) -> ByteStream {
        if len == 0 {
            return Box::pin(futures_util::stream::empty());
        }
        if self.local.get().is_some() {
            return stream_by_reads(self, offset, len, CHUNK);
        }
        // The whole blob, for the first time: the one GET also fills the cache.
        let tee = (offset == 0 && len == self.len)
            .then(|| self.filler.clone())
            .flatten()
            .filter(|f| f.claim());
        if tee.is_none() {
            self.fill_later();
        }
        let opened = async move {
            get_ranged(&*self.source, &self.key, offset, len)
                .await
                .map_err(std::io::Error::from)
        };
        let body: ByteStream = Box::pin(futures_util::stream::once(opened).try_flatten());
        match tee {
            Some(f) => f.tee(body),
            None => body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(items: Vec<std::io::Result<Bytes>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn a_body_that_ends_short_or_fails_is_an_error_never_a_clean_end() {
        let whole: Vec<_> = exact_len(body(vec![Ok(Bytes::from_static(b"abc"))]), 3)
            .collect()
            .await;
        assert!(whole.iter().all(Result::is_ok) && whole.len() == 1);

        let short: Vec<_> = exact_len(body(vec![Ok(Bytes::from_static(b"ab"))]), 3)
            .collect()
            .await;
        assert_eq!(short.len(), 2);
        assert_eq!(
            short[1].as_ref().map_err(std::io::Error::kind).err(),
            Some(std::io::ErrorKind::UnexpectedEof)
        );

        let failed: Vec<_> = exact_len(
            body(vec![
                Ok(Bytes::from_static(b"a")),
                Err(std::io::Error::other("connection reset")),
                Ok(Bytes::from_static(b"bc")),
            ]),
            3,
        )
        .collect()
        .await;
        assert_eq!(failed.len(), 2, "nothing after the error");
        assert!(failed[1].is_err());
    }
}
