//! Reading a representation's bytes into a response body with bounded buffers: a small range in
//! one read (one buffer), anything larger streamed by the store. How a store reads fast (a
//! local file's page cache on the runtime thread, a ranged GET) is the store's business.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::Source;
use crate::store::blob::ByteStream;
use crate::store::{BlobError, BlobStore};

/// Ranges up to this size are read whole before the headers go out, so a read error is still a
/// proper error response, and the body leaves in the same write as the headers.
pub const SMALL_READ: u64 = 64 * 1024;

/// A piece of a multipart body: literal part headers, or bytes of the representation.
#[derive(Debug, Clone)]
pub enum Segment {
    Literal(Bytes),
    Range { offset: u64, len: u64 },
}

/// Reads `len` bytes at `offset` whole. With an open blob: all of them right here when the
/// store has them at once (a local file's page cache), else one read of them all; without one,
/// [`BlobStore::read_small`].
pub async fn read_whole(
    blobs: &dyn BlobStore,
    src: &Source,
    offset: u64,
    len: usize,
) -> Result<Bytes, BlobError> {
    match src {
        Source::Memory(b) => slice(b, offset, len as u64),
        Source::Window {
            offset: base,
            bytes,
        } => slice(bytes, window_offset(*base, offset)?, len as u64),
        Source::Blob {
            open: Some(blob), ..
        } => match blob.read_now(offset, len) {
            Some(b) => Ok(b),
            None => blob.read_at(offset, len).await,
        },
        Source::Blob { key, open: None } => blobs.read_small(key, offset, len).await,
    }
}

/// Where `offset` of the representation falls in a window that starts at `base`.
fn window_offset(base: u64, offset: u64) -> Result<u64, BlobError> {
    offset
        .checked_sub(base)
        .ok_or_else(|| std::io::Error::other("read before the prepared window").into())
}

fn slice(b: &Bytes, offset: u64, len: u64) -> Result<Bytes, BlobError> {
    let start = usize::try_from(offset).map_err(std::io::Error::other)?;
    let end = usize::try_from(offset + len).map_err(std::io::Error::other)?;
    if end > b.len() {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(b.slice(start..end))
}

/// Streams `len` bytes at `offset`. A read failure mid-way ends the stream with an error, so
/// hyper aborts the connection instead of ending a body that looks complete.
pub async fn stream_range(
    blobs: &Arc<dyn BlobStore>,
    src: &Source,
    offset: u64,
    len: u64,
) -> Result<ByteStream, BlobError> {
    match src {
        Source::Memory(b) => {
            let b = slice(b, offset, len)?;
            Ok(Box::pin(stream::once(async move { Ok(b) })))
        }
        Source::Window {
            offset: base,
            bytes,
        } => {
            let b = slice(bytes, window_offset(*base, offset)?, len)?;
            Ok(Box::pin(stream::once(async move { Ok(b) })))
        }
        Source::Blob {
            open: Some(blob), ..
        } => Ok(Arc::clone(blob).stream(offset, len)),
        Source::Blob { key, open: None } => blobs.read_range(key, offset, len).await,
    }
}

/// Streams a multipart body: literal part headers and ranges, in order. Each range is opened
/// only when the stream reaches it.
pub fn stream_segments(
    blobs: &Arc<dyn BlobStore>,
    src: &Source,
    segments: Vec<Segment>,
) -> ByteStream {
    let blobs = Arc::clone(blobs);
    let src = src.clone();
    let s = stream::iter(segments)
        .then(move |seg| {
            let blobs = Arc::clone(&blobs);
            let src = src.clone();
            async move {
                match seg {
                    Segment::Literal(b) => Ok::<ByteStream, std::io::Error>(Box::pin(
                        stream::once(async move { Ok(b) }),
                    )),
                    Segment::Range { offset, len } => stream_range(&blobs, &src, offset, len)
                        .await
                        .map_err(std::io::Error::other),
                }
            }
        })
        .try_flatten();
    Box::pin(s)
}
