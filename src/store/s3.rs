//! Blobs in an S3-compatible object store (`--blob-url s3://bucket/prefix`), on `object_store`.
//!
//! Layout under the prefix: `<key>` per blob, and `.uploads/<key>` naming the multipart upload
//! of a blob being written, so that what a dead node left can be found and aborted (S3 keeps an
//! incomplete multipart upload, and bills it, until someone aborts it; `object_store` does not
//! list them).
//!
//! Uploads stream: a body smaller than one part is sent with one PUT at commit; a larger one
//! becomes a multipart upload with at most [`PARTS_IN_FLIGHT`] parts being sent while the next
//! fills, so memory per upload stays within a few parts whatever the length. Every error path
//! aborts; a writer dropped mid-way aborts in the background.
//!
//! Reads are ranged GETs streamed as they arrive (hyper's buffers, TCP's window). Hot blobs are
//! made local: a blob that fits a quarter of the node's
//! [`BlobCache`](super::blob_cache::BlobCache) is copied there by its first read — a whole read
//! fills the cache from the same GET that streams to the client, a first read of ranges starts
//! a GET of its own in the background — and reads switch to the local file (the embedded
//! store's fast path) once it is complete. The media pipeline reads through the same cache.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, MultipartId, ObjectStore, ObjectStoreExt, PutPayload};

use super::blob::{
    check_key, stream_by_reads, BlobEntry, BlobError, BlobStore, BlobWriter, ByteStream, LocalCopy,
    OpenBlob,
};
use super::blob_cache::BlobCache;
use super::fs::{LocalFile, CHUNK};

/// Parts of one multipart upload being sent at once.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Where uploads in progress are named.
const UPLOADS: &str = ".uploads";

/// Maps an object store error to ours (a missing object keeps its meaning).
fn remote(key: &str, e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_string()),
        other => BlobError::Remote(other.to_string()),
    }
}

/// An S3-compatible [`BlobStore`].
pub struct S3Blobs {
    store: Arc<AmazonS3>,
    prefix: String,
    part_size: usize,
    cache: Arc<BlobCache>,
    /// Distinguishes this store's blobs in the shared cache.
    cache_scope: String,
}

/// The parts of an `s3://bucket/prefix` URL.
fn parse_url(url: &str) -> Result<(String, String), BlobError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| BlobError::Unsupported(url.to_string()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(BlobError::Config(format!("{url}: no bucket")));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl S3Blobs {
    /// Opens `s3://bucket/prefix`: credentials, region and endpoint from the standard `AWS_*`
    /// variables (`AWS_ENDPOINT_URL` for a self-hosted store; plain `http://` allowed there).
    pub fn from_url(url: &str, part_size: usize, cache: Arc<BlobCache>) -> Result<Self, BlobError> {
        let (bucket, prefix) = parse_url(url)?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok();
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
        {
            builder = builder.with_allow_http(true);
        }
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            // object_store's default; said here so an operator sees where it comes from.
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Config(e.to_string()))?;
        Ok(Self::new(Arc::new(store), &prefix, part_size, cache, url))
    }

    /// A store on an already built client (external containers build theirs from settings).
    pub fn new(
        store: Arc<AmazonS3>,
        prefix: &str,
        part_size: usize,
        cache: Arc<BlobCache>,
        scope: &str,
    ) -> Self {
        S3Blobs {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            // S3 refuses parts under 5 MiB (but the last).
            part_size: part_size.max(5 * 1024 * 1024),
            cache,
            cache_scope: scope.to_string(),
        }
    }

    fn path(&self, key: &str) -> Result<ObjectPath, BlobError> {
        check_key(key)?;
        Ok(self.join(key))
    }

    fn join(&self, rest: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rest)
        } else {
            ObjectPath::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// Opens `key`: its local copy when the cache holds one, else a blob read by GETs (its
    /// length asked with a HEAD unless `known_len` says it).
    async fn open_blob(
        &self,
        key: &str,
        known_len: Option<u64>,
    ) -> Result<Arc<dyn OpenBlob>, BlobError> {
        let path = self.path(key)?;
        let local = Arc::new(OnceLock::new());
        if let Some(copy) = self.cache.cached(&self.cache_scope, key).await {
            let cached = Local::open(copy).await?;
            let len = cached.file.len();
            let _ = local.set(cached);
            return Ok(Arc::new(S3Blob {
                store: Arc::clone(&self.store),
                path,
                key: key.to_string(),
                len,
                local,
                filler: None,
            }));
        }
        let len = match known_len {
            Some(len) => len,
            None => {
                self.store
                    .head(&path)
                    .await
                    .map_err(|e| remote(key, e))?
                    .size
            }
        };
        // A blob that fits a quarter of the cache is made local by its first read; until then
        // (and for bigger blobs always) reads are GETs.
        let filler = (len <= self.cache.capacity() / 4).then(|| {
            Arc::new(Filler {
                cache: Arc::clone(&self.cache),
                scope: self.cache_scope.clone(),
                key: key.to_string(),
                store: Arc::clone(&self.store),
                path: path.clone(),
                len,
                started: AtomicBool::new(false),
                local: Arc::clone(&local),
            })
        });
        Ok(Arc::new(S3Blob {
            store: Arc::clone(&self.store),
            path,
            key: key.to_string(),
            len,
            local,
            filler,
        }))
    }

    fn marker(&self, key: &str) -> ObjectPath {
        self.join(&format!("{UPLOADS}/{key}"))
    }
}

/// `len` bytes at `offset` of `key`, streamed as they arrive (one ranged GET).
async fn get_ranged(
    store: &AmazonS3,
    path: &ObjectPath,
    key: &str,
    offset: u64,
    len: u64,
) -> Result<ByteStream, BlobError> {
    if len == 0 {
        return Ok(Box::pin(futures_util::stream::empty()));
    }
    let got = store
        .get_opts(
            path,
            GetOptions {
                range: Some(GetRange::Bounded(offset..offset + len)),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| remote(key, e))?;
    Ok(exact_stream(got.into_stream(), len))
}

/// `len` bytes at `offset` of `key`, whole (one ranged GET); fewer is an error.
async fn get_exact(
    store: &AmazonS3,
    path: &ObjectPath,
    key: &str,
    offset: u64,
    len: usize,
) -> Result<Bytes, BlobError> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let b = store
        .get_range(path, offset..offset + len as u64)
        .await
        .map_err(|e| remote(key, e))?;
    if b.len() != len {
        return Err(BlobError::Remote(format!(
            "object store sent {} of {len} bytes",
            b.len()
        )));
    }
    Ok(b)
}

/// The body of a GET as our stream: errors become `io::Error` (so the response aborts), and a
/// body that ends before `len` bytes is an error too, never a short clean end.
fn exact_stream(
    inner: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    len: u64,
) -> ByteStream {
    exact_len(
        Box::pin(inner.map(|r| r.map_err(std::io::Error::other))),
        len,
    )
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

/// The whole object at `path`, streamed.
async fn whole(
    store: Arc<AmazonS3>,
    path: ObjectPath,
    key: String,
) -> Result<ByteStream, BlobError> {
    let got = store
        .get_opts(&path, GetOptions::default())
        .await
        .map_err(|e| remote(&key, e))?;
    let len = got.meta.size;
    Ok(exact_stream(got.into_stream(), len))
}

/// Makes one blob local, once: from the first whole read as it streams to its client (one GET
/// from the store serves both), or, when the first reads are ranges, by a GET of its own in
/// the background.
#[derive(Debug)]
struct Filler {
    cache: Arc<BlobCache>,
    scope: String,
    key: String,
    store: Arc<AmazonS3>,
    path: ObjectPath,
    len: u64,
    started: AtomicBool,
    local: Arc<OnceLock<Local>>,
}

/// Chunks a whole read may run ahead of its copy being written before the copy gives up.
const TEE_QUEUE: usize = 64;

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
            match whole(Arc::clone(&this.store), this.path.clone(), this.key.clone()).await {
                Ok(body) => this.fill_from(body),
                Err(e) => {
                    tracing::debug!(key = this.key, error = %e, "blob not cached");
                    this.started.store(false, Ordering::Release);
                }
            }
        });
    }

    /// `body` (the whole blob, on its way to a client) with a copy of each chunk written to
    /// the cache. A copy that cannot keep up, or a client that goes, abandons the copy (never
    /// the client).
    fn tee(self: &Arc<Self>, body: ByteStream) -> ByteStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(TEE_QUEUE);
        let copy: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (Ok(chunk), rx))
        }));
        self.fill_from(copy);
        let mut tx = Some(tx);
        Box::pin(body.map(move |item| {
            if let (Ok(chunk), Some(sender)) = (&item, tx.as_ref()) {
                if sender.try_send(chunk.clone()).is_err() {
                    tx = None;
                }
            }
            if item.is_err() {
                tx = None;
            }
            item
        }))
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
struct S3Blob {
    store: Arc<AmazonS3>,
    path: ObjectPath,
    key: String,
    len: u64,
    /// Set once the cache holds the whole blob.
    local: Arc<OnceLock<Local>>,
    /// Makes it local, when it fits the cache.
    filler: Option<Arc<Filler>>,
}

impl S3Blob {
    /// Starts making the blob local in the background (a read of a part of it).
    fn fill_later(&self) {
        if let Some(f) = self.filler.as_ref().filter(|f| f.claim()) {
            f.fill_in_background();
        }
    }
}

#[async_trait]
impl OpenBlob for S3Blob {
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
        get_exact(&self.store, &self.path, &self.key, offset, len).await
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
            get_ranged(&self.store, &self.path, &self.key, offset, len)
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

/// A multipart upload under way.
struct Multipart {
    id: MultipartId,
    sending: VecDeque<tokio::task::JoinHandle<object_store::Result<PartId>>>,
    done: Vec<PartId>,
}

/// An upload into S3: buffered up to one part, multipart beyond.
struct S3Writer {
    store: Arc<AmazonS3>,
    path: ObjectPath,
    marker: ObjectPath,
    key: String,
    part_size: usize,
    buffer: Vec<Bytes>,
    buffered: usize,
    multipart: Option<Multipart>,
    finished: bool,
}

impl S3Writer {
    async fn start_multipart(&mut self) -> Result<(), BlobError> {
        let id = self
            .store
            .create_multipart(&self.path)
            .await
            .map_err(|e| remote(&self.key, e))?;
        // Named before any part is sent, so a crash from here on can be swept.
        if let Err(e) = self
            .store
            .put(&self.marker, PutPayload::from(id.clone().into_bytes()))
            .await
        {
            let _ = self.store.abort_multipart(&self.path, &id).await;
            return Err(remote(&self.key, e));
        }
        self.multipart = Some(Multipart {
            id,
            sending: VecDeque::new(),
            done: Vec::new(),
        });
        Ok(())
    }

    /// Sends the buffered bytes as the next part, waiting while too many are in flight.
    async fn send_part(&mut self) -> Result<(), BlobError> {
        if self.multipart.is_none() {
            self.start_multipart().await?;
        }
        let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
        self.buffered = 0;
        let key = self.key.clone();
        let Some(mp) = self.multipart.as_mut() else {
            return Err(BlobError::Remote("multipart upload not started".into()));
        };
        while mp.sending.len() >= PARTS_IN_FLIGHT {
            if let Some(h) = mp.sending.pop_front() {
                mp.done.push(joined(&key, h.await)?);
            }
        }
        let idx = mp.done.len() + mp.sending.len();
        let (store, path, id) = (Arc::clone(&self.store), self.path.clone(), mp.id.clone());
        mp.sending.push_back(tokio::spawn(async move {
            store.put_part(&path, &id, idx, payload).await
        }));
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BlobError> {
        if self.multipart.is_none() {
            let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
            self.store
                .put(&self.path, payload)
                .await
                .map_err(|e| remote(&self.key, e))?;
            return Ok(());
        }
        if self.buffered > 0 {
            self.send_part().await?;
        }
        let key = self.key.clone();
        let Some(mp) = self.multipart.as_mut() else {
            return Ok(());
        };
        while let Some(h) = mp.sending.pop_front() {
            mp.done.push(joined(&key, h.await)?);
        }
        let parts = std::mem::take(&mut mp.done);
        self.store
            .complete_multipart(&self.path, &mp.id, parts)
            .await
            .map_err(|e| remote(&key, e))?;
        if let Err(e) = self.store.delete(&self.marker).await {
            // Harmless: the sweep finds the upload complete and removes the name.
            tracing::warn!(key, error = %e, "upload marker left behind");
        }
        Ok(())
    }

    /// Stops the parts in flight and aborts the multipart upload, if any.
    fn cleanup(&mut self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let mp = self.multipart.take()?;
        for h in &mp.sending {
            h.abort();
        }
        let (store, path, marker, key) = (
            Arc::clone(&self.store),
            self.path.clone(),
            self.marker.clone(),
            self.key.clone(),
        );
        Some(async move {
            match store.abort_multipart(&path, &mp.id).await {
                Ok(()) => {
                    let _ = store.delete(&marker).await;
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "multipart upload not aborted; swept at next start")
                }
            }
        })
    }
}

fn joined(
    key: &str,
    r: Result<object_store::Result<PartId>, tokio::task::JoinError>,
) -> Result<PartId, BlobError> {
    match r {
        Ok(Ok(part)) => Ok(part),
        Ok(Err(e)) => Err(remote(key, e)),
        Err(e) => Err(BlobError::Remote(format!("part upload stopped: {e}"))),
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(abort) = self.cleanup() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(abort);
                }
                Err(_) => {
                    tracing::warn!(key = %self.key, "upload dropped outside the runtime; swept at next start")
                }
            }
        }
    }
}

#[async_trait]
impl BlobWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.buffered += chunk.len();
        self.buffer.push(chunk);
        if self.buffered >= self.part_size {
            if let Err(e) = self.send_part().await {
                if let Some(abort) = self.cleanup() {
                    abort.await;
                }
                self.finished = true;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), BlobError> {
        let result = self.finish().await;
        if result.is_err() {
            if let Some(abort) = self.cleanup() {
                abort.await;
            }
        }
        self.finished = true;
        result
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(abort) = self.cleanup() {
            abort.await;
        }
        self.finished = true;
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(S3Writer {
            store: Arc::clone(&self.store),
            path: self.path(key)?,
            marker: self.marker(key),
            key: key.to_string(),
            part_size: self.part_size,
            buffer: Vec::new(),
            buffered: 0,
            multipart: None,
            finished: false,
        }))
    }

    async fn open(&self, key: &str) -> Result<Arc<dyn OpenBlob>, BlobError> {
        self.open_blob(key, None).await
    }

    async fn open_sized(&self, key: &str, len: u64) -> Result<Arc<dyn OpenBlob>, BlobError> {
        self.open_blob(key, Some(len)).await
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        get_ranged(&self.store, &self.path(key)?, key, offset, len).await
    }

    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        get_exact(&self.store, &self.path(key)?, key, offset, len).await
    }

    async fn local_copy(&self, key: &str) -> Result<LocalCopy, BlobError> {
        let path = self.path(key)?;
        let store = Arc::clone(&self.store);
        let owned = key.to_string();
        self.cache
            .local(&self.cache_scope, key, move || whole(store, path, owned))
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        self.cache.forget(&self.cache_scope, key).await;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(key, e)),
        }
    }

    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let listed: Vec<_> = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(|e| remote("", e))?
            .objects;
        Ok(listed
            .into_iter()
            .filter_map(|o| {
                let key = o.location.filename()?.to_string();
                check_key(&key).ok()?;
                Some(BlobEntry {
                    key,
                    modified: o.last_modified.into(),
                })
            })
            .collect())
    }

    async fn sweep_incomplete(&self, grace: Duration) -> Result<usize, BlobError> {
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let markers: Vec<_> = self
            .store
            .list(Some(&self.join(UPLOADS)))
            .try_collect()
            .await
            .map_err(|e| remote("", e))?;
        let mut swept = 0;
        for m in markers {
            if SystemTime::from(m.last_modified) > cutoff {
                continue;
            }
            let Some(key) = m.location.filename().map(str::to_string) else {
                continue;
            };
            let id = match self.store.get(&m.location).await {
                Ok(got) => got.bytes().await.map_err(|e| remote(&key, e))?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(remote(&key, e)),
            };
            let id = String::from_utf8_lossy(&id).into_owned();
            match self.store.abort_multipart(&self.path(&key)?, &id).await {
                // Already completed or aborted: only the name is left.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(key, error = %e, "cannot abort a stale multipart upload"),
            }
            let _ = self.store.delete(&m.location).await;
            swept += 1;
        }
        Ok(swept)
    }

    fn is_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://media/prod/blobs/").ok(),
            Some(("media".to_string(), "prod/blobs".to_string()))
        );
        assert_eq!(
            parse_url("s3://media").ok(),
            Some(("media".to_string(), String::new()))
        );
        assert!(matches!(parse_url("s3:///x"), Err(BlobError::Config(_))));
        assert!(matches!(
            parse_url("gs://media"),
            Err(BlobError::Unsupported(_))
        ));
    }

    fn body(
        items: Vec<object_store::Result<Bytes>>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<Bytes>> {
        Box::pin(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn a_body_that_ends_short_or_fails_is_an_error_never_a_clean_end() {
        let whole: Vec<_> = exact_stream(body(vec![Ok(Bytes::from_static(b"abc"))]), 3)
            .collect()
            .await;
        assert!(whole.iter().all(Result::is_ok) && whole.len() == 1);

        let short: Vec<_> = exact_stream(body(vec![Ok(Bytes::from_static(b"ab"))]), 3)
            .collect()
            .await;
        assert_eq!(short.len(), 2);
        assert_eq!(
            short[1].as_ref().map_err(std::io::Error::kind).err(),
            Some(std::io::ErrorKind::UnexpectedEof)
        );

        let failed: Vec<_> = exact_stream(
            body(vec![
                Ok(Bytes::from_static(b"a")),
                Err(object_store::Error::Generic {
                    store: "S3",
                    source: "connection reset".into(),
                }),
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
