//! Reading a representation's bytes into a response body with bounded buffers: a small range in
//! one read (one buffer), anything larger streamed in [`CHUNK`] pieces. Bytes in the page cache
//! are read on the runtime thread without blocking; a read that would wait for the disk runs on
//! the blocking pool, so a slow disk never stalls a runtime worker.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt, TryStreamExt};

use super::Source;
use crate::store::blob::ByteStream;
use crate::store::{BlobError, BlobStore};

/// Ranges up to this size are read whole before the headers go out, so a read error is still a
/// proper error response, and the body leaves in the same write as the headers.
pub const SMALL_READ: u64 = 64 * 1024;

/// Size of each read when streaming: large enough for few syscalls and few hand-offs to the
/// blocking pool, small enough to bound memory per connection (hyper holds about two).
pub const CHUNK: usize = 512 * 1024;

/// A piece of a multipart body: literal part headers, or bytes of the representation.
#[derive(Debug, Clone)]
pub enum Segment {
    Literal(Bytes),
    Range { offset: u64, len: u64 },
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// `len` bytes at `offset` of an open file by `pread` (no shared seek position, so one handle
/// serves concurrent requests). What the page cache holds is read right here without blocking
/// (`preadv2(RWF_NOWAIT)`); only the rest goes to the blocking pool. A hand-off to that pool
/// costs two thread wake-ups, which for a 4 KiB range is most of the work.
async fn pread(file: &Arc<std::fs::File>, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    let done = read_cached(file, offset, &mut buf);
    if done == len {
        return Ok(buf.freeze());
    }
    let file = Arc::clone(file);
    blocking(move || {
        read_exact_at(&file, &mut buf[done..], offset + done as u64)?;
        Ok(buf.freeze())
    })
    .await
}

/// Fills `buf` from what the page cache already holds, never waiting for the disk; returns how
/// many bytes it read (0 on a cache miss, at EOF, or where `RWF_NOWAIT` is not supported).
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> usize {
    use rustix::io::{preadv2, ReadWriteFlags};
    let mut done = 0;
    while done < buf.len() {
        let mut slices = [std::io::IoSliceMut::new(&mut buf[done..])];
        match preadv2(
            file,
            &mut slices,
            offset + done as u64,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(n) if n > 0 => done += n,
            // EOF, EAGAIN (not cached), EOPNOTSUPP: the blocking read finishes or reports it.
            _ => break,
        }
    }
    done
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: u64, _: &mut [u8]) -> usize {
    0
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(_: &std::fs::File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "open blob handles are only used on unix",
    ))
}

/// Reads `len` bytes at `offset` whole. With an open handle: one `pread` on the blocking pool;
/// otherwise [`BlobStore::read_small`] (open + read, also one blocking call).
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
            file: Some(file), ..
        } => Ok(pread(file, offset, len).await?),
        Source::Blob { key, file: None } => blobs.read_small(key, offset, len).await,
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
            file: Some(file), ..
        } => {
            let state = (Arc::clone(file), offset, len);
            Ok(Box::pin(stream::try_unfold(
                state,
                |(file, pos, left)| async move {
                    if left == 0 {
                        return Ok(None);
                    }
                    let n = left.min(CHUNK as u64) as usize;
                    let chunk = pread(&file, pos, n).await?;
                    Ok(Some((chunk, (file, pos + n as u64, left - n as u64))))
                },
            )))
        }
        Source::Blob { key, file: None } => blobs.read_range(key, offset, len).await,
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
