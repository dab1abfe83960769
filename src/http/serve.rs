//! The one serving path for stored bytes: `/v1/files/{sid}/data`, the publish URI and signed
//! links. Validators, overrides and the body stream are decided here.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::domain::model::FileRecord;
use crate::domain::Timestamp;
use crate::store::BlobStore;

/// What is served: a blob and the headers that describe it.
#[derive(Debug, Clone)]
pub struct Representation {
    pub blob_key: String,
    pub len: u64,
    /// Strong ETag, quoted.
    pub etag: String,
    pub last_modified: Timestamp,
    pub content_type: String,
    pub filename: String,
}

impl Representation {
    /// A stored file as it is.
    pub fn of_file(f: &FileRecord) -> Self {
        Representation {
            blob_key: f.blob_key.clone(),
            len: f.size.max(0) as u64,
            etag: f.etag(),
            last_modified: f.date_created,
            content_type: f.mime_type.clone(),
            filename: f.name.clone(),
        }
    }
}

/// Header overrides from the query (`disposition`, `content_type`, cache parameters).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub attachment: bool,
    pub disposition_name: Option<String>,
    pub content_type: Option<HeaderValue>,
    pub cache_control: Option<HeaderValue>,
}

/// Answers a GET or HEAD for `repr`.
pub async fn serve(blobs: &dyn BlobStore, method: &Method, _headers: &HeaderMap, repr: Representation, ov: &Overrides) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, repr.len)
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(repr.last_modified.to_system_time()));
    if let Ok(v) = HeaderValue::from_str(&repr.etag) {
        builder = builder.header(header::ETAG, v);
    }
    builder = builder.header(
        header::CONTENT_TYPE,
        ov.content_type.clone().unwrap_or_else(|| {
            HeaderValue::from_str(&repr.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"))
        }),
    );
    if let Some(cc) = &ov.cache_control {
        builder = builder.header(header::CACHE_CONTROL, cc.clone());
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        match blobs.read_range(&repr.blob_key, 0, repr.len).await {
            Ok(stream) => Body::from_stream(stream),
            Err(e) => return ApiError::from(crate::error::Error::from(e)).into_response(),
        }
    };
    builder.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
