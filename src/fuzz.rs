//! The checks behind the fuzz targets (`fuzz/fuzz_targets/`) and their fixed-seed property tests
//! (`tests/fuzz_props.rs`): each takes arbitrary bytes, drives one parser of the HTTP edge with
//! them, and panics if the parser panics or breaks an invariant its callers rely on. Kept in the
//! library so libFuzzer on nightly and `cargo test` on stable run exactly the same code.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::domain::input::Fields;
use crate::http::extract::QueryPairs;
use crate::http::serve::conditional::{self, Validators};
use crate::http::serve::range::{self, Ranges};
use crate::http::serve::Overrides;
use crate::transcode::Requested;

/// Splits fuzz input into a number and the rest.
fn split_u64(data: &[u8]) -> (u64, &[u8]) {
    let (head, rest) = data.split_at(data.len().min(8));
    let mut n = [0u8; 8];
    n[..head.len()].copy_from_slice(head);
    (u64::from_le_bytes(n), rest)
}

/// `Range` against a representation of any length: satisfiable ranges lie inside it, are
/// non-empty, disjoint and few; a zero-length representation is never partially satisfiable.
pub fn range_header(data: &[u8]) {
    let (n, rest) = split_u64(data);
    // Small lengths exercise the edges; big ones overflow checks.
    let len = if n & 1 == 0 { n >> 1 & 0xffff } else { n >> 1 };
    let header = String::from_utf8_lossy(rest);
    if let Ranges::Satisfiable(parts) = range::resolve(&header, len) {
        assert!(!parts.is_empty() && parts.len() <= range::MAX_RANGES);
        let mut sorted = parts.clone();
        sorted.sort_by_key(|p| p.start);
        for w in sorted.windows(2) {
            assert!(w[0].start + w[0].len < w[1].start, "{header:?}: {parts:?}");
        }
        for p in &parts {
            assert!(p.len > 0 && p.start < len, "{header:?} on {len}: {p:?}");
            assert!(p.start.checked_add(p.len).is_some_and(|end| end <= len));
            assert!(p.content_range(len).starts_with("bytes "));
        }
    }
}

/// The conditional headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
/// If-Range) with arbitrary values: evaluation never panics, and an `If-None-Match` naming the
/// current ETag alone is always a 304 on GET when no If-Match or If-Unmodified-Since fails first.
pub fn conditional_headers(data: &[u8]) {
    const NAMES: [&str; 5] = [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
    ];
    let (n, rest) = split_u64(data);
    let mut headers = HeaderMap::new();
    for (i, value) in rest.split(|&b| b == b'\n').enumerate().take(8) {
        let name = HeaderName::from_static(NAMES[(n as usize).wrapping_add(i) % NAMES.len()]);
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    let v = Validators {
        etag: "\"abc-1\"",
        last_modified: (n >> 16) as i64 % 4_000_000_000,
    };
    for m in [Method::GET, Method::HEAD, Method::POST] {
        let _ = conditional::evaluate(&m, &headers, v);
    }
    let _ = conditional::if_range_allows(&headers, v);
    for value in headers.values() {
        if let Ok(s) = value.to_str() {
            let _ = conditional::http_date_secs(s);
        }
    }
    let mut only = HeaderMap::new();
    only.insert("if-none-match", HeaderValue::from_static("\"abc-1\""));
    if let Some(ims) = headers.get("if-modified-since") {
        only.insert("if-modified-since", ims.clone());
    }
    assert_eq!(
        conditional::evaluate(&Method::GET, &only, v),
        conditional::Precondition::NotModified
    );
}

/// A publish URI's query string: the overrides and `f`/`br` parse to values or to a 400, and a
/// parsed override always makes a valid header.
pub fn query_overrides(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let q = QueryPairs::parse(Some(&raw));
    if let Ok(ov) = Overrides::parse(&q) {
        let cd = ov.content_disposition("stored name.wav");
        assert!(cd.to_str().is_ok(), "{raw:?}: {cd:?}");
    }
    let _ = Requested::parse(q.get("f"), q.get("br"), q.get("norm"));
}

/// A `file_object` part: any JSON (or not) is a checked set of file fields or a 400, and the
/// same fields given as query parameters are too.
pub fn file_object(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(fields) = Fields::from_json(value) {
            let _ = crate::service::files::parse_upload_fields(fields);
        }
    }
    let raw = String::from_utf8_lossy(data);
    let q = QueryPairs::parse(Some(&raw));
    let _ = crate::service::files::parse_upload_fields(Fields::from_query(q.0));
}

/// A multipart upload body as the upload handler reads it (axum's `Multipart`, every part to
/// its end, `file_object` parsed as above), under an arbitrary boundary: errors, never panics.
pub fn multipart_body(data: &[u8]) {
    use axum::extract::{FromRequest, Multipart};
    let (n, rest) = split_u64(data);
    let boundaries = ["X", "----b0undary", "a b", "\"q\""];
    let boundary = boundaries[n as usize % boundaries.len()];
    let req = match axum::http::Request::builder()
        .method("POST")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(axum::body::Body::from(rest.to_vec()))
    {
        Ok(r) => r,
        Err(_) => return,
    };
    let run = async move {
        let Ok(mut mp) = Multipart::from_request(req, &()).await else {
            return;
        };
        while let Ok(Some(field)) = mp.next_field().await {
            let name = field.name().map(str::to_string);
            let _ = field.file_name().map(str::to_string);
            match field.bytes().await {
                Ok(bytes) if name.as_deref() == Some("file_object") => file_object(&bytes),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    };
    RUNTIME.with(|rt| rt.block_on(run));
}

thread_local! {
    /// One small runtime per fuzzing thread: the multipart parser is async but does no I/O.
    static RUNTIME: tokio::runtime::Runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("a current-thread runtime: {e}"),
    };
}
