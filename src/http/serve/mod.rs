//! The one serving path for stored bytes: `/v1/files/{sid}/data`, the publish URI and signed
//! links. Preconditions (RFC 9110 §13.2.2), then If-Range, then Range, decided before any byte is
//! read; 200, 206 (single or `multipart/byteranges`), 304, 412 and 416 are all built here.

pub mod body;
pub mod conditional;
pub mod overrides;
pub mod range;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use self::body::Segment;
use self::conditional::{Precondition, Validators};
use self::range::{ByteRange, Ranges};
use super::error::ApiError;
use crate::domain::model::FileRecord;
use crate::domain::Timestamp;
use crate::store::blob::OpenBlob;
use crate::store::{BlobError, BlobStore};

pub use self::overrides::{Disposition, Overrides};

/// Where a representation's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A blob in the store. `open` is the blob already opened when the caller keeps it (the
    /// publish cache, converted copies); without it every read goes through the [`BlobStore`].
    Blob {
        key: String,
        open: Option<Arc<dyn OpenBlob>>,
    },
    /// Bytes in memory, e.g. a cached transcoded copy.
    Memory(Bytes),
    /// Only the bytes at `offset..offset + bytes.len()` of the representation, prepared for
    /// the ranges of one request (a converted copy's ranges, converted alone).
    Window { offset: u64, bytes: Bytes },
}

/// What is served: where its bytes are and the metadata that describes them.
#[derive(Debug, Clone)]
pub struct Representation {
    pub source: Source,
    pub len: u64,
    /// Strong ETag, quoted.
    pub etag: String,
    pub last_modified: Timestamp,
    /// Its header values, made once: a cached representation answers many requests.
    headers: Prepared,
}

#[derive(Debug, Clone)]
struct Prepared {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    content_type: HeaderValue,
    /// `Content-Disposition` under the representation's own name, inline and attachment.
    inline: HeaderValue,
    attachment: HeaderValue,
}

impl Representation {
    /// `len` bytes from `source`, described by the rest. `filename` is the name in
    /// `Content-Disposition` when the query gives none.
    pub fn new(
        source: Source,
        len: u64,
        etag: String,
        last_modified: Timestamp,
        content_type: &str,
        filename: &str,
    ) -> Self {
        let lm = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(last_modified.unix_seconds().max(0) as u64);
        let headers = Prepared {
            etag: HeaderValue::from_str(&etag).ok(),
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(lm)).ok(),
            content_type: HeaderValue::from_str(content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            inline: overrides::content_disposition(Disposition::Inline, filename),
            attachment: overrides::content_disposition(Disposition::Attachment, filename),
        };
        Representation {
            source,
            len,
            etag,
            last_modified,
            headers,
        }
    }

    /// A stored file as it is.
    pub fn of_file(f: &FileRecord) -> Self {
        Representation::new(
            Source::Blob {
                key: f.blob_key.clone(),
                open: None,
            },
            f.size.max(0) as u64,
            f.etag(),
            // Stored bytes never change after upload; PATCH changes only metadata.
            f.date_created,
            &f.mime_type,
            &f.name,
        )
    }

    /// `Content-Disposition` as the query asks: its name if it gives one, else ours.
    fn disposition(&self, ov: &Overrides) -> HeaderValue {
        match (&ov.disposition_name, ov.disposition) {
            (Some(name), d) => overrides::content_disposition(d, name),
            (None, Disposition::Inline) => self.headers.inline.clone(),
            (None, Disposition::Attachment) => self.headers.attachment.clone(),
        }
    }
}

/// Answers a GET or HEAD for `repr`. HEAD gets exactly the headers GET would, and no body.
pub async fn serve(
    blobs: &Arc<dyn BlobStore>,
    method: &Method,
    headers: &HeaderMap,
    repr: &Representation,
    ov: &Overrides,
) -> Response<Body> {
    let lm = repr.last_modified.unix_seconds();
    let v = Validators {
        etag: &repr.etag,
        last_modified: lm,
    };
    // Room for every header of a 206 plus the three CORS headers, so the map never grows.
    let mut common = HeaderMap::with_capacity(16);
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(etag) = &repr.headers.etag {
        common.insert(header::ETAG, etag.clone());
    }
    if let Some(date) = &repr.headers.last_modified {
        common.insert(header::LAST_MODIFIED, date.clone());
    }
    if let Some(cc) = &ov.cache_control {
        common.insert(header::CACHE_CONTROL, cc.clone());
    }

    match conditional::evaluate(method, headers, v) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            return respond(StatusCode::NOT_MODIFIED, common, Body::empty())
        }
        Precondition::Failed => {
            // If-Match is evaluated first and If-Unmodified-Since only without it (§13.2.2).
            let field = if headers.contains_key(header::IF_MATCH) {
                "If-Match"
            } else {
                "If-Unmodified-Since"
            };
            let e = ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition failed")
                .field(field, "the precondition does not hold for the current file");
            return with_headers(e.into_response(), common);
        }
    }

    let content_type = ov
        .content_type
        .clone()
        .unwrap_or_else(|| repr.headers.content_type.clone());
    let ranges = match headers.get(header::RANGE) {
        // Range is defined for GET; HEAD answers what GET would.
        Some(r)
            if (method == Method::GET || method == Method::HEAD)
                && conditional::if_range_allows(headers, v) =>
        {
            r.to_str()
                .map_or(Ranges::Ignored, |s| range::resolve(s, repr.len))
        }
        _ => Ranges::Ignored,
    };
    let head = method == Method::HEAD;
    match ranges {
        Ranges::Unsatisfiable => {
            with_headers(ApiError::unsatisfiable(repr.len).into_response(), common)
        }
        Ranges::Satisfiable(parts) if parts.len() == 1 => {
            let r = parts[0];
            common.insert(header::CONTENT_TYPE, content_type);
            common.insert(header::CONTENT_DISPOSITION, repr.disposition(ov));
            if let Ok(cr) = HeaderValue::try_from(r.content_range(repr.len)) {
                common.insert(header::CONTENT_RANGE, cr);
            }
            single(blobs, repr, StatusCode::PARTIAL_CONTENT, common, r, head).await
        }
        Ranges::Satisfiable(parts) => {
            let mp = Multipart::new(&parts, &content_type, repr.len);
            common.insert(header::CONTENT_DISPOSITION, repr.disposition(ov));
            // Part headers can outweigh many tiny parts; never send more than the whole file.
            if mp.body_len > repr.len {
                common.insert(header::CONTENT_TYPE, content_type);
                return whole(blobs, repr, common, head).await;
            }
            common.insert(header::CONTENT_TYPE, mp.content_type());
            common.insert(header::CONTENT_LENGTH, HeaderValue::from(mp.body_len));
            let b = if head {
                Body::empty()
            } else {
                Body::from_stream(body::stream_segments(blobs, &repr.source, mp.segments))
            };
            respond(StatusCode::PARTIAL_CONTENT, common, b)
        }
        Ranges::Ignored => {
            common.insert(header::CONTENT_TYPE, content_type);
            common.insert(header::CONTENT_DISPOSITION, repr.disposition(ov));
            whole(blobs, repr, common, head).await
        }
    }
}

async fn whole(
    blobs: &Arc<dyn BlobStore>,
    repr: &Representation,
    common: HeaderMap,
    head: bool,
) -> Response<Body> {
    if repr.len == 0 {
        let mut common = common;
        common.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
        return respond(StatusCode::OK, common, Body::empty());
    }
    single(
        blobs,
        repr,
        StatusCode::OK,
        common,
        ByteRange {
            start: 0,
            len: repr.len,
        },
        head,
    )
    .await
}

/// One contiguous body: read whole when small, streamed otherwise.
async fn single(
    blobs: &Arc<dyn BlobStore>,
    repr: &Representation,
    status: StatusCode,
    mut common: HeaderMap,
    r: ByteRange,
    head: bool,
) -> Response<Body> {
    common.insert(header::CONTENT_LENGTH, HeaderValue::from(r.len));
    if head {
        return respond(status, common, Body::empty());
    }
    let body = if r.len <= body::SMALL_READ {
        match body::read_whole(blobs.as_ref(), &repr.source, r.start, r.len as usize).await {
            Ok(bytes) => Body::from(bytes),
            Err(e) => return read_failed(e),
        }
    } else {
        match body::stream_range(blobs, &repr.source, r.start, r.len).await {
            Ok(s) => Body::from_stream(s),
            Err(e) => return read_failed(e),
        }
    };
    respond(status, common, body)
}

fn read_failed(e: BlobError) -> Response<Body> {
    ApiError::from(crate::error::Error::from(e)).into_response()
}

fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Adds the validators (and Cache-Control) to an error response, keeping its own Content-Type.
fn with_headers(mut resp: Response<Body>, common: HeaderMap) -> Response<Body> {
    for (k, v) in common {
        if let Some(k) = k {
            resp.headers_mut().entry(k).or_insert(v);
        }
    }
    resp
}

/// A `multipart/byteranges` body laid out ahead of time, so its exact length is known.
struct Multipart {
    boundary: String,
    segments: Vec<Segment>,
    body_len: u64,
}

impl Multipart {
    fn new(parts: &[ByteRange], content_type: &HeaderValue, total: u64) -> Self {
        // 64 random bits: a boundary that occurs in the content by chance is not a concern.
        let boundary = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let ct = content_type.to_str().unwrap_or("application/octet-stream");
        let mut segments = Vec::with_capacity(parts.len() * 2 + 1);
        let mut body_len = 0u64;
        for (i, r) in parts.iter().enumerate() {
            // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
            let head = format!(
                "{}--{boundary}\r\nContent-Type: {ct}\r\nContent-Range: {}\r\n\r\n",
                if i == 0 { "" } else { "\r\n" },
                r.content_range(total)
            );
            body_len += head.len() as u64 + r.len;
            segments.push(Segment::Literal(Bytes::from(head)));
            segments.push(Segment::Range {
                offset: r.start,
                len: r.len,
            });
        }
        let close = format!("\r\n--{boundary}--\r\n");
        body_len += close.len() as u64;
        segments.push(Segment::Literal(Bytes::from(close)));
        Multipart {
            boundary,
            segments,
            body_len,
        }
    }

    fn content_type(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("multipart/byteranges; boundary={}", self.boundary))
            .unwrap_or(HeaderValue::from_static("multipart/byteranges"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_length_is_exact() {
        let parts = [
            ByteRange { start: 0, len: 10 },
            ByteRange { start: 100, len: 5 },
        ];
        let mp = Multipart::new(&parts, &HeaderValue::from_static("audio/mpeg"), 1000);
        let literal: u64 = mp
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(b) => b.len() as u64,
                Segment::Range { len, .. } => *len,
            })
            .sum();
        assert_eq!(literal, mp.body_len);
        let Segment::Literal(first) = &mp.segments[0] else {
            panic!("literal first")
        };
        assert!(first.starts_with(
            format!(
                "--{}\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 0-9/1000\r\n\r\n",
                mp.boundary
            )
            .as_bytes()
        ));
    }
}
