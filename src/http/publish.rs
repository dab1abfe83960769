//! `/f/{file_sid | file_access_name}` and `/download/{file_sid}`: check the link, parse the query
//! overrides, resolve the file (through a small cache), then serve. Every answer, errors
//! included, carries the CORS headers, so a browser page can read it.
//!
//! Lookups go through the publish cache (`publish_cache`), which hears every file change the
//! service layer raises (on any node), so an unpublished or deleted file stops being served at
//! once.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorBody};
use super::extract::{PathParam, QueryPairs};
use super::openapi::{LinkQuery, ReadHeaders, ServeQuery};
use super::publish_cache::Lookup;
use super::serve::{self, Overrides, Representation, Source};
use super::transcoded;
use crate::app::AppState;
use crate::domain::model::FileRecord;

use crate::error::Error;
use crate::service::{external, files};
use crate::transcode::{waveform, Requested};

/// Response headers of a GET or HEAD answer that a browser script may read (RFC 9110 names
/// beyond the CORS-safelisted ones; `Access-Control-Allow-Origin` as the seed lists it). The
/// preflight-only headers are not here: they never appear on these answers.
const EXPOSE_HEADERS: &str = "Accept-Ranges, Content-Range, Content-Length, Content-Disposition, Content-Type, ETag, Last-Modified, Retry-After, Access-Control-Allow-Origin";
const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";
const ALLOW_HEADERS: &str =
    "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since";

/// `GET`/`HEAD /f/{key}` as an axum handler (keys that need percent-decoding come this way; the
/// connection layer sends the others straight to [`publish`]).
#[utoipa::path(get, path = "/f/{key}", tag = "public",
    summary = "The publish URI",
    description = "A published file, by its `file_sid` or `file_access_name` as its `publish` \
        allows; 404 otherwise. HEAD answers the same headers. Range (several ranges: \
        `multipart/byteranges`), If-Range and the conditionals as RFC 9110 says; converts on the \
        fly with `f`/`br`; peaks with `waveform`. Every answer carries the CORS headers.",
    params(("key" = String, Path, description = "`file_sid` or `file_access_name`"), ServeQuery, ReadHeaders),
    responses(
        (status = 200, description = "The file (or its conversion)", body = Vec<u8>,
            content_type = "application/octet-stream", headers(
            ("Accept-Ranges" = String), ("ETag" = String), ("Last-Modified" = String),
            ("Content-Disposition" = String), ("Cache-Control" = String),
            ("Access-Control-Allow-Origin" = String))),
        (status = 206, description = "The asked ranges", headers(("Content-Range" = String))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 412, description = "A precondition failed"),
        (status = 415, description = "`f`, `br` or `waveform` on a file that is not audio", body = ErrorBody),
        (status = 416, description = "No range overlaps", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */<len>`"))),
        (status = 422, description = "The audio cannot be converted", body = ErrorBody),
        (status = 503, description = "Transcoding capacity full (`Retry-After`)", body = ErrorBody),
    ))]
pub async fn publish_uri(
    State(state): State<AppState>,
    key: Result<PathParam, ApiError>,
    req: Request,
) -> Response<Body> {
    match key {
        Ok(PathParam(key)) => {
            publish(&state, &key, req.method(), req.headers(), req.uri().query()).await
        }
        // Refused before the lookup, still readable by a page.
        Err(e) => with_cors(e.into_response()),
    }
}

/// `GET`/`HEAD /f/{key}`: open to anyone while the file's `publish` allows that way in.
///
/// Takes the request's parts by reference: extractors clone them, and on a 4 KiB range the
/// clones are a visible share of the work.
pub async fn publish(
    state: &AppState,
    key: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response<Body> {
    let q = QueryPairs::parse(query);
    let resp = match Overrides::parse(&q) {
        Err(e) => e.into_response(),
        // `f=` / `br=` / `norm=`: a converted copy (parsed before any store access).
        // `waveform=`: the audio's peaks (parsed before any store access).
        Ok(ov) if q.get("waveform").is_some() => match waveform::parse(|k| q.get(k)) {
            Err(e) => ApiError::from(e).into_response(),
            Ok(opts) => match files::published(state, key).await {
                Ok(file) => serve_waveform(state, &file, opts, method, headers, &ov).await,
                Err(e) => ApiError::from(e).into_response(),
            },
        },
        Ok(ov) if ["f", "br", "norm"].iter().any(|k| q.get(k).is_some()) => {
            match Requested::parse(q.get("f"), q.get("br"), q.get("norm")) {
                Err(e) => ApiError::from(e).into_response(),
                Ok(want) => match files::published(state, key).await {
                    Ok(file) => {
                        let want = want.unwrap_or_default();
                        transcoded::serve(state, &file, want, method, headers, &ov).await
                    }
                    Err(e) => ApiError::from(e).into_response(),
                },
            }
        }
        Ok(ov) => match cached(state, Lookup::Published(key), files::published(state, key)).await {
            Ok(repr) => serve::serve(&state.blobs, method, headers, &repr, &ov).await,
            Err(e) => e.into_response(),
        },
    };
    with_cors(resp)
}

/// `GET`/`HEAD /download/{file_sid}` as an axum handler (see [`publish_uri`]).
#[utoipa::path(get, path = "/download/{file_sid}", tag = "public",
    summary = "A signed link (`uri_download`)",
    description = "Serves exactly like the publish URI while `expires` is ahead and \
        `signature` matches (403 otherwise), published or not.",
    params(("file_sid" = String, Path), LinkQuery, ServeQuery, ReadHeaders),
    responses(
        (status = 200, description = "The file (or its conversion)", body = Vec<u8>,
            content_type = "application/octet-stream"),
        (status = 206, description = "The asked ranges", headers(("Content-Range" = String))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 403, description = "Expired link or bad signature", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 412, description = "A precondition failed"),
        (status = 415, body = ErrorBody),
        (status = 416, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn download_link(
    State(state): State<AppState>,
    sid: Result<PathParam, ApiError>,
    req: Request,
) -> Response<Body> {
    match sid {
        Ok(PathParam(sid)) => {
            download(&state, &sid, req.method(), req.headers(), req.uri().query()).await
        }
        Err(e) => with_cors(e.into_response()),
    }
}

/// `GET`/`HEAD /download/{file_sid}?expires=&signature=`: expiry and HMAC are checked first
/// (403), then the overrides (400), then the file (404); then it serves like the publish URI.
pub async fn download(
    state: &AppState,
    sid: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response<Body> {
    let q = QueryPairs::parse(query);
    with_cors(
        match download_inner(state, sid, method, headers, &q).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    )
}

async fn download_inner(
    state: &AppState,
    sid: &str,
    method: &Method,
    headers: &HeaderMap,
    q: &QueryPairs,
) -> Result<Response<Body>, ApiError> {
    files::check_link(state, sid, q.get("expires"), q.get("signature"))
        .map_err(ApiError::forbidden)?;
    let ov = Overrides::parse(q)?;
    if q.get("waveform").is_some() {
        let opts = waveform::parse(|k| q.get(k))?;
        let file = files::by_sid(state, sid).await?;
        return Ok(serve_waveform(state, &file, opts, method, headers, &ov).await);
    }
    if let Some(want) = Requested::parse(q.get("f"), q.get("br"), q.get("norm"))? {
        let file = files::by_sid(state, sid).await?;
        return Ok(transcoded::serve(state, &file, want, method, headers, &ov).await);
    }
    let fetch = files::by_sid(state, sid);
    let repr = cached(state, Lookup::Sid(sid), fetch).await?;
    Ok(serve::serve(&state.blobs, method, headers, &repr, &ov).await)
}

/// The waveform `opts` asks for (`None` cannot happen: callers saw `waveform`) of `file`.
async fn serve_waveform(
    state: &AppState,
    file: &FileRecord,
    opts: Option<mediastore_media::WaveformOptions>,
    method: &Method,
    headers: &HeaderMap,
    ov: &Overrides,
) -> Response<Body> {
    let variant = opts
        .ok_or_else(|| crate::domain::DomainError::invalid("waveform", "missing"))
        .and_then(|o| waveform::variant_of(file, o));
    match variant {
        Ok(v) => transcoded::serve_variant(state, file, &v, method, headers, ov).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `OPTIONS` on `/f/{key}` and `/download/{sid}`: the CORS preflight. It touches no store, so it
/// tells nothing about whether the file exists. Only here the methods, request headers and
/// max age a browser may use (the Fetch standard reads them from preflights alone).
pub async fn preflight() -> Response<Body> {
    preflight_answer()
}

/// [`preflight`] on the publish URI.
#[utoipa::path(options, path = "/f/{key}", tag = "public", summary = "CORS preflight",
    params(("key" = String, Path)),
    responses((status = 204, description = "Allowed methods and headers")))]
pub async fn preflight_publish() -> Response<Body> {
    preflight_answer()
}

/// [`preflight`] on signed links.
#[utoipa::path(options, path = "/download/{file_sid}", tag = "public", summary = "CORS preflight",
    params(("file_sid" = String, Path)),
    responses((status = 204, description = "Allowed methods and headers")))]
pub async fn preflight_download() -> Response<Body> {
    preflight_answer()
}

fn preflight_answer() -> Response<Body> {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    allow_any_origin(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    h.insert(header::ALLOW, HeaderValue::from_static(ALLOW_METHODS));
    resp
}

/// Published files are public: any page may read them.
fn allow_any_origin(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// The CORS headers of an actual (GET or HEAD) answer, errors included.
fn with_cors(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    allow_any_origin(h);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    resp
}

/// The representation for `lookup`, from the cache or from `fetch` (which is not polled on a hit).
async fn cached(
    state: &AppState,
    lookup: Lookup<'_>,
    fetch: impl Future<Output = crate::error::Result<FileRecord>>,
) -> Result<Arc<Representation>, ApiError> {
    let miss = match state.publish_cache.get(lookup) {
        Ok(repr) => return Ok(repr),
        Err(miss) => miss,
    };
    let file = fetch.await?;
    let store = external::store_of_file(state, &file)
        .await
        .map_err(ApiError::from)?;
    let mut repr = Representation::of_file(&file);
    // The length is the file's: a remote store is not asked for it (no HEAD before a cold read).
    let open_blob = |key: &str| {
        let blobs = Arc::clone(&store.blobs);
        let key = key.to_string();
        let size = u64::try_from(file.size).ok();
        async move {
            match size {
                Some(len) => blobs.open_sized(&key, len).await,
                None => blobs.open(&key).await,
            }
        }
    };
    let open = if store.external {
        // A customer's bucket that fails answers 502 now; an entry is cached only open, so a
        // hit never reads through our own store.
        Some(
            open_blob(&file.blob_key)
                .await
                .map_err(|e| ApiError::from(Error::from(e)))?,
        )
    } else {
        // Opened once for every request the cache answers; if it cannot be opened now, reads
        // go through the store, which reports the problem properly.
        open_blob(&file.blob_key).await.ok()
    };
    repr.source = Source::Blob {
        key: file.blob_key.clone(),
        open,
    };
    let repr = Arc::new(repr);
    state.publish_cache.insert(lookup, &repr, miss);
    Ok(repr)
}
