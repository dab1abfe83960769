//! Uploads into GCS: a body smaller than one chunk is one `uploadType=media` request at commit;
//! a larger one is a resumable upload, sent a chunk at a time while the next fills (GCS takes a
//! session's chunks in order, so one is in flight at most), the last chunk naming the total.
//! Nothing is visible under the name before that last chunk; every error path, an abort and a
//! writer dropped mid-way cancel the session (a DELETE on its URI), so nothing is left. A
//! session nobody cancels (a node that died) expires on GCS's side after a week and never
//! becomes an object.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use reqwest::{Method, StatusCode, Url};

use super::api::{unreachable, Bucket};
use crate::store::blob::{BlobError, BlobWriter};

/// GCS takes a resumable upload's chunks (but the last) in multiples of this.
pub const CHUNK_QUANTUM: usize = 256 * 1024;

/// The chunk size to use for a wanted `size`: a whole number of quanta, at least one.
pub fn chunk_size(size: usize) -> usize {
    (size / CHUNK_QUANTUM).max(1) * CHUNK_QUANTUM
}

/// The `Content-Range` of a chunk of `len` bytes at `offset`, and of the total when it is the
/// last (an empty last chunk names the total alone).
pub fn content_range(offset: u64, len: usize, total: Option<u64>) -> String {
    let total = total.map_or_else(|| "*".to_string(), |t| t.to_string());
    if len == 0 {
        return format!("bytes */{total}");
    }
    format!("bytes {offset}-{}/{total}", offset + len as u64 - 1)
}

/// How many bytes a `308` answer says the session holds (its `Range: bytes=0-N`; none without).
fn persisted(answer: &reqwest::Response) -> Result<u64, BlobError> {
    let Some(range) = answer.headers().get(reqwest::header::RANGE) else {
        return Ok(0);
    };
    range
        .to_str()
        .ok()
        .and_then(|r| r.strip_prefix("bytes=0-"))
        .and_then(|end| end.parse::<u64>().ok())
        .map(|end| end + 1)
        .ok_or_else(|| BlobError::Remote(format!("google cloud storage sent Range {range:?}")))
}

/// A resumable upload session.
#[derive(Clone)]
struct Session {
    bucket: Arc<Bucket>,
    uri: Url,
    key: String,
}

impl Session {
    async fn start(bucket: Arc<Bucket>, key: &str) -> Result<Session, BlobError> {
        let url = bucket.upload_url(key, "resumable")?;
        let request = bucket
            .request(Method::POST, url)
            .await?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}");
        let answer = bucket.send(request).await?;
        if !answer.status().is_success() {
            return Err(bucket.bucket_error(&answer, "the start of an upload"));
        }
        let uri = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Url::parse(l).ok())
            .filter(|u| bucket.is_ours(u))
            .ok_or_else(|| {
                BlobError::Remote("google cloud storage sent no usable upload session".into())
            })?;
        Ok(Session {
            bucket,
            uri,
            key: key.to_string(),
        })
    }

    /// Sends `chunk` at `offset` (the last one when `total` is given), again from where GCS
    /// stopped when it kept only part of it.
    async fn put(&self, offset: u64, chunk: Bytes, total: Option<u64>) -> Result<(), BlobError> {
        let end = offset + chunk.len() as u64;
        let mut at = offset;
        loop {
            let rest = chunk.slice((at - offset) as usize..);
            let request = self
                .bucket
                .request(Method::PUT, self.uri.clone())
                .await?
                .header(
                    reqwest::header::CONTENT_RANGE,
                    content_range(at, rest.len(), total),
                )
                .body(rest);
            let answer = self.bucket.send(request).await?;
            match answer.status() {
                s if s.is_success() && total.is_some() => return Ok(()),
                StatusCode::PERMANENT_REDIRECT if total.is_none() => {
                    let kept = persisted(&answer)?;
                    if kept == end {
                        return Ok(());
                    }
                    if kept <= at || kept > end {
                        return Err(BlobError::Remote(format!(
                            "google cloud storage kept {kept} bytes of an upload at {end}"
                        )));
                    }
                    at = kept;
                }
                s => {
                    return Err(BlobError::Remote(format!(
                        "google cloud storage answered a chunk of {} with {s}",
                        self.key
                    )))
                }
            }
        }
    }

    /// Cancels the session: nothing of it will become an object.
    async fn cancel(self) {
        let sent = match self.bucket.request(Method::DELETE, self.uri.clone()).await {
            Ok(request) => request.send().await.map_err(unreachable),
            Err(e) => Err(e),
        };
        match sent {
            // GCS answers a cancelled session with 499; one already gone is as good.
            Ok(a) if a.status().is_success() || matches!(a.status().as_u16(), 499 | 404 | 410) => {}
            Ok(a) => {
                tracing::warn!(key = self.key, status = %a.status(), "upload session not cancelled; it expires unfinished")
            }
            Err(e) => {
                tracing::warn!(key = self.key, error = %e, "upload session not cancelled; it expires unfinished")
            }
        }
    }
}

/// A resumable upload under way.
struct Resumable {
    session: Session,
    /// The chunk being sent.
    sending: Option<tokio::task::JoinHandle<Result<(), BlobError>>>,
}

/// An upload into GCS: buffered up to one chunk, resumable beyond.
pub struct GcsWriter {
    bucket: Arc<Bucket>,
    key: String,
    chunk: usize,
    buffer: BytesMut,
    /// Bytes handed to the session so far.
    sent: u64,
    resumable: Option<Resumable>,
    finished: bool,
}

impl GcsWriter {
    /// A writer of `key` sending chunks of `chunk` bytes (see [`chunk_size`]).
    pub fn new(bucket: Arc<Bucket>, key: &str, chunk: usize) -> Self {
        GcsWriter {
            bucket,
            key: key.to_string(),
            chunk: chunk_size(chunk),
            buffer: BytesMut::new(),
            sent: 0,
            resumable: None,
            finished: false,
        }
    }

    /// Waits for the chunk in flight.
    async fn settle(&mut self) -> Result<(), BlobError> {
        let Some(handle) = self.resumable.as_mut().and_then(|r| r.sending.take()) else {
            return Ok(());
        };
        match handle.await {
            Ok(result) => result,
            Err(e) => Err(BlobError::Remote(format!("chunk upload stopped: {e}"))),
        }
    }

    /// Sends the next whole chunk of the buffer once the previous one is through.
    async fn send_chunk(&mut self) -> Result<(), BlobError> {
        if self.resumable.is_none() {
            let session = Session::start(Arc::clone(&self.bucket), &self.key).await?;
            self.resumable = Some(Resumable {
                session,
                sending: None,
            });
        }
        self.settle().await?;
        let chunk = self.buffer.split_to(self.chunk).freeze();
        let offset = self.sent;
        self.sent += chunk.len() as u64;
        if let Some(r) = self.resumable.as_mut() {
            let session = r.session.clone();
            r.sending = Some(tokio::spawn(async move {
                session.put(offset, chunk, None).await
            }));
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BlobError> {
        let rest = self.buffer.split().freeze();
        if self.resumable.is_none() {
            return self.put_whole(rest).await;
        }
        self.settle().await?;
        let total = self.sent + rest.len() as u64;
        match self.resumable.as_ref() {
            Some(r) => r.session.put(self.sent, rest, Some(total)).await,
            None => Ok(()),
        }
    }

    /// A body under one chunk: one request, visible once whole.
    async fn put_whole(&self, body: Bytes) -> Result<(), BlobError> {
        let url = self.bucket.upload_url(&self.key, "media")?;
        let request = self
            .bucket
            .request(Method::POST, url)
            .await?
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let answer = self.bucket.send(request).await?;
        if !answer.status().is_success() {
            return Err(self.bucket.bucket_error(&answer, "an upload"));
        }
        Ok(())
    }

    /// Stops the chunk in flight and cancels the session, if any.
    fn cleanup(&mut self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let r = self.resumable.take()?;
        if let Some(h) = &r.sending {
            h.abort();
        }
        Some(r.session.cancel())
    }

    /// Ends a failed writer: the session cancelled before the error is returned.
    async fn fail(&mut self, e: BlobError) -> BlobError {
        if let Some(cancel) = self.cleanup() {
            cancel.await;
        }
        self.finished = true;
        e
    }
}

impl Drop for GcsWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(cancel) = self.cleanup() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(cancel);
                }
                Err(_) => {
                    tracing::warn!(key = %self.key, "upload dropped outside the runtime; its session expires unfinished")
                }
            }
        }
    }
}

#[async_trait]
impl BlobWriter for GcsWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.buffer.extend_from_slice(&chunk);
        // Strictly more than a chunk: the last chunk is sent at commit, with the total.
        while self.buffer.len() > self.chunk {
            if let Err(e) = self.send_chunk().await {
                return Err(self.fail(e).await);
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), BlobError> {
        match self.finish().await {
            Ok(()) => {
                // The session is complete: nothing to cancel.
                self.resumable = None;
                self.finished = true;
                Ok(())
            }
            Err(e) => Err(self.fail(e).await),
        }
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(cancel) = self.cleanup() {
            cancel.await;
        }
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_quanta_of_256_kib() {
        assert_eq!(chunk_size(8 * 1024 * 1024), 8 * 1024 * 1024);
        assert_eq!(chunk_size(1), CHUNK_QUANTUM);
        assert_eq!(chunk_size(0), CHUNK_QUANTUM);
        assert_eq!(chunk_size(CHUNK_QUANTUM * 3 + 5), CHUNK_QUANTUM * 3);
    }

    #[test]
    fn content_ranges_name_the_total_only_on_the_last_chunk() {
        assert_eq!(content_range(0, 262_144, None), "bytes 0-262143/*");
        assert_eq!(
            content_range(262_144, 10, Some(262_154)),
            "bytes 262144-262153/262154"
        );
        assert_eq!(content_range(524_288, 0, Some(524_288)), "bytes */524288");
    }
}
