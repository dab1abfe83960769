//! Serving a converted copy (`f=`, `br=`) through the same HTTP semantics as stored bytes.
//!
//! A cached copy is served like a stored file. Otherwise, after the preconditions (which need
//! only the copy's ETag): a Range on a constant-rate target is converted alone (bytes map to
//! samples); a Range or HEAD on a variable-rate target waits for the one shared conversion; a
//! plain GET follows the conversion as it is produced.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::serve::conditional::{self, Precondition, Validators};
use super::serve::range::{self, Ranges};
use super::serve::{self, Overrides, Representation, Source};
use crate::app::AppState;
use crate::domain::model::FileRecord;
use crate::error::Error;
use crate::service::external;
use crate::store::blob::LocalCopy;
use crate::transcode::{Requested, Variant};

/// Most bytes of a constant-rate copy converted for one Range request without the whole copy;
/// wider ranges wait for the shared whole conversion instead.
pub const MAX_RANGE_WINDOW: u64 = 8 * 1024 * 1024;

/// Bytes of a constant-rate copy converted to answer a HEAD (enough to decode the first packets).
const HEAD_CHECK: u64 = 4096;

/// Answers a GET or HEAD for `file` converted as `req` asks.
pub async fn serve(
    state: &AppState,
    file: &FileRecord,
    req: Requested,
    method: &Method,
    headers: &HeaderMap,
    ov: &Overrides,
) -> Response<Body> {
    match req.variant_of(file) {
        Err(e) => ApiError::from(Error::from(e)).into_response(),
        // The stored file already is what was asked for.
        Ok(None) => match external::store_of_file(state, file).await {
            Ok(store) => {
                let repr = Representation::of_file(file);
                serve::serve(&store.blobs, method, headers, &repr, ov).await
            }
            Err(e) => ApiError::from(e).into_response(),
        },
        Ok(Some(variant)) => serve_variant(state, file, &variant, method, headers, ov).await,
    }
}

/// Answers a GET or HEAD for `variant` of `file` (a converted copy or a waveform).
pub async fn serve_variant(
    state: &AppState,
    file: &FileRecord,
    variant: &Variant,
    method: &Method,
    headers: &HeaderMap,
    ov: &Overrides,
) -> Response<Body> {
    match serve_variant_inner(state, file, variant, method, headers, ov).await {
        Ok(r) => r,
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn serve_variant_inner(
    state: &AppState,
    file: &FileRecord,
    variant: &Variant,
    method: &Method,
    headers: &HeaderMap,
    ov: &Overrides,
) -> Result<Response<Body>, Error> {
    let t = &state.transcoder;
    let repr = |source: Source, len: u64| {
        Representation::new(
            source,
            len,
            variant.etag.clone(),
            file.date_created,
            variant.content_type,
            &variant.filename,
        )
    };
    if let Some(copy) = t.cached(variant) {
        let r = repr(
            Source::Blob {
                key: String::new(),
                open: Some(copy.open.clone()),
            },
            copy.len,
        );
        return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
    }
    // Made by another node (or by this one before a restart) and kept in the shared store.
    if let Some(open) = crate::service::copies::shared(state, variant).await {
        let len = open.len();
        let r = repr(
            Source::Blob {
                key: String::new(),
                open: Some(open),
            },
            len,
        );
        return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
    }

    let validators = Validators {
        etag: &variant.etag,
        last_modified: file.date_created.unix_seconds(),
    };
    if conditional::evaluate(method, headers, validators) != Precondition::Proceed {
        // 304 or 412 need no bytes: let the common path word them, from an empty window.
        let r = repr(Source::Memory(bytes::Bytes::new()), 0);
        return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
    }
    // The source as a local file: in place on local disk, through the node's cache otherwise.
    let local = external::store_of_file(state, file)
        .await?
        .blobs
        .local_copy(&file.blob_key)
        .await?;
    let source = Arc::new(local);
    let range = headers
        .get(header::RANGE)
        .filter(|_| conditional::if_range_allows(headers, validators))
        .and_then(|v| v.to_str().ok());
    let exact = t.exact_len(variant, &source).await?;
    let head = method == Method::HEAD;
    if let (true, Some(len)) = (head, exact) {
        // HEAD answers what GET would: audio that cannot be decoded is the same 422, found by
        // converting the copy's first bytes rather than trusting the headers' length.
        t.range(variant, &source, 0, len.min(HEAD_CHECK)).await?;
    }

    if let (Some(r), Some(len)) = (range, exact) {
        match range::resolve(r, len) {
            Ranges::Satisfiable(parts) => {
                let lo = parts.iter().map(|p| p.start).min().unwrap_or(0);
                let hi = parts.iter().map(|p| p.start + p.len).max().unwrap_or(0);
                if hi - lo <= MAX_RANGE_WINDOW {
                    let bytes = if head {
                        bytes::Bytes::new()
                    } else {
                        t.range(variant, &source, lo, hi - lo).await?
                    };
                    let r = repr(Source::Window { offset: lo, bytes }, len);
                    return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
                }
            }
            Ranges::Unsatisfiable => {
                // Worded by the common path, with the validators a stored file's 416 carries.
                let r = repr(Source::Memory(bytes::Bytes::new()), len);
                return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
            }
            Ranges::Ignored => {}
        }
    }
    if range.is_some() || (head && exact.is_none()) {
        // The whole copy, once, then served with every semantic of a stored file.
        let copy = t.complete(variant, &source).await?;
        let r = repr(
            Source::Blob {
                key: String::new(),
                open: Some(copy.open.clone()),
            },
            copy.len,
        );
        return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
    }
    if head {
        let r = repr(
            Source::Window {
                offset: 0,
                bytes: bytes::Bytes::new(),
            },
            exact.unwrap_or(0),
        );
        return Ok(serve::serve(&state.blobs, method, headers, &r, ov).await);
    }
    live(state, file, variant, source, exact, ov).await
}

/// 200 with the copy's bytes as the conversion produces them.
async fn live(
    state: &AppState,
    file: &FileRecord,
    variant: &Variant,
    source: Arc<LocalCopy>,
    exact: Option<u64>,
    ov: &Overrides,
) -> Result<Response<Body>, Error> {
    let reader = state.transcoder.follow(variant, &source).await?;
    // Undecodable audio is a 422 like on every other path, not a 200 cut short.
    reader.started().await.map_err(|e| variant.media_error(e))?;
    let mut h = HeaderMap::with_capacity(10);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&variant.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) =
        HeaderValue::from_str(&httpdate::fmt_http_date(file.date_created.to_system_time()))
    {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(cc) = &ov.cache_control {
        h.insert(header::CACHE_CONTROL, cc.clone());
    }
    h.insert(
        header::CONTENT_TYPE,
        ov.content_type
            .clone()
            .unwrap_or(HeaderValue::from_static(variant.content_type)),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        ov.content_disposition(&variant.filename),
    );
    if let Some(len) = exact {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let mut resp = Response::new(Body::from_stream(reader.into_stream()));
    *resp.status_mut() = StatusCode::OK;
    *resp.headers_mut() = h;
    Ok(resp)
}
