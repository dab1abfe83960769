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
//! Reads are ranged GETs, with hot blobs made local in the node's cache, as for every object
//! store ([`RemoteReads`]).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, MultipartId, ObjectStore, ObjectStoreExt, PutPayload};

use super::blob::{check_key, BlobEntry, BlobError, BlobWriter, ByteStream};
use super::blob_cache::BlobCache;
use super::remote::{ObjectBlobs, ObjectWrites, RangedGet, RemoteReads};

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

/// An S3-compatible [`BlobStore`](super::BlobStore).
pub type S3Blobs = ObjectBlobs<S3Writes>;

/// The uploads, deletes and listings of an S3 store.
pub struct S3Writes {
    store: Arc<AmazonS3>,
    prefix: String,
    part_size: usize,
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

impl ObjectBlobs<S3Writes> {
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
    ) -> S3Blobs {
        let prefix = prefix.trim_matches('/').to_string();
        let objects = Arc::new(S3Objects {
            store: Arc::clone(&store),
            prefix: prefix.clone(),
        });
        let writes = S3Writes {
            store,
            prefix,
            // S3 refuses parts under 5 MiB (but the last).
            part_size: part_size.max(5 * 1024 * 1024),
        };
        ObjectBlobs::from_parts(writes, RemoteReads::new(objects, cache, scope))
    }
}

impl S3Writes {
    fn path(&self, key: &str) -> Result<ObjectPath, BlobError> {
        check_key(key)?;
        Ok(self.join(key))
    }

    fn join(&self, rest: &str) -> ObjectPath {
        join(&self.prefix, rest)
    }

    fn marker(&self, key: &str) -> ObjectPath {
        self.join(&format!("{UPLOADS}/{key}"))
    }
}

/// `rest` under `prefix`.
fn join(prefix: &str, rest: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(rest)
    } else {
        ObjectPath::from(format!("{prefix}/{rest}"))
    }
}

/// The GETs of blobs in S3 (reads go through [`RemoteReads`]).
#[derive(Debug)]
struct S3Objects {
    store: Arc<AmazonS3>,
    prefix: String,
}

impl S3Objects {
    async fn get(
        &self,
        key: &str,
        range: Option<GetRange>,
    ) -> Result<(u64, ByteStream), BlobError> {
        let got = self
            .store
            .get_opts(
                &join(&self.prefix, key),
                GetOptions {
                    range,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| remote(key, e))?;
        let size = got.meta.size;
        let body = got.into_stream().map(|r| r.map_err(std::io::Error::other));
        Ok((size, Box::pin(body)))
    }
}

#[async_trait]
impl RangedGet for S3Objects {
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<ByteStream, BlobError> {
        Ok(self.get(key, Some(GetRange::Bounded(range))).await?.1)
    }

    async fn get_whole(&self, key: &str) -> Result<(u64, ByteStream), BlobError> {
        self.get(key, None).await
    }

    async fn size(&self, key: &str) -> Result<u64, BlobError> {
        let meta = self
            .store
            .head(&join(&self.prefix, key))
            .await
            .map_err(|e| remote(key, e))?;
        Ok(meta.size)
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
impl ObjectWrites for S3Writes {
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

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
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
}
