//! `/v1/files`: upload (multipart or raw), list, get, change, delete, and the bytes.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use axum::Json;

use super::List;
use crate::app::AppState;
use crate::domain::input::Fields;
use crate::domain::Timestamp;
use crate::error::Error;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{JsonFields, PathParam, QueryPairs};
use crate::http::openapi::{FileInput, FileListQuery, ReadHeaders, UploadForm};
use crate::http::routes::Uploads;
use crate::http::serve::{self, Overrides, Representation};
use crate::service::files::{self, FileView};
use crate::service::receive::receive;
use crate::service::PageRequest;
use crate::store::meta::FileQuery;

/// Largest `file_object` part accepted.
const MAX_FILE_OBJECT: usize = 64 * 1024;

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// `POST /v1/files`: multipart (`file_object` + `data`) or a raw body with fields in the query.
#[utoipa::path(post, path = "/v1/files", tag = "files", security(("bearer" = [])),
    description = "Streamed to storage. Either `multipart/form-data` (`file_object` JSON + \
        `data`), or the bytes as the body with the file's fields as query parameters.",
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses(
        (status = 201, body = FileView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such container", body = ErrorBody),
        (status = 413, description = "Over `max_file_size`", body = ErrorBody),
        (status = 415, description = "Not audio where audio is needed", body = ErrorBody),
        (status = 422, description = "Classification, unique keys, corrupt audio", body = ErrorBody),
        (status = 429, description = "A quota or threshold would be exceeded, or too many \
            uploads in progress (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "Transcoding capacity full (`Retry-After`)", body = ErrorBody),
    ))]
pub async fn upload(
    Caller(owner): Caller,
    State(state): State<AppState>,
    Extension(Uploads(uploads)): Extension<Uploads>,
    q: QueryPairs,
    req: Request,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    let stored = store_upload(&state, &owner, &uploads, q, req).await;
    match &stored {
        Ok(_) => state.metrics.upload_stored(),
        Err(ApiError {
            refusal: Some(why), ..
        }) => state.metrics.upload_refused(*why),
        Err(_) => {}
    }
    Ok((
        StatusCode::CREATED,
        Json(files::view(&state, stored?, Timestamp::now())),
    ))
}

/// [`upload`]'s work: the stored file, or why not.
async fn store_upload(
    state: &AppState,
    owner: &crate::domain::model::Customer,
    uploads: &std::sync::Arc<crate::fair::PerCustomer>,
    q: QueryPairs,
    req: Request,
) -> Result<crate::domain::model::FileRecord, ApiError> {
    // Held until the answer: one customer's uploads cannot take every connection and worker.
    let limit = state.config.uploads_per_customer;
    let _slot = uploads
        .try_acquire(&owner.id, limit)
        .ok_or(Error::CustomerBusy {
            what: "uploads",
            limit,
        })?;
    if is_multipart(req.headers()) {
        upload_multipart(state, owner, req).await
    } else {
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let changes = files::parse_upload_fields(Fields::from_query(q.0))?;
        let target = files::target(state, owner, &changes).await?;
        files::check_declared_length(&target, declared_len)?;
        let body = req.into_body().into_data_stream();
        let received = receive(&state.blobs, body, &target.limit).await?;
        Ok(files::create(state, owner, changes, target, received, None).await?)
    }
}

async fn upload_multipart(
    state: &AppState,
    owner: &crate::domain::model::Customer,
    req: Request,
) -> Result<crate::domain::model::FileRecord, ApiError> {
    let mut mp = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request("body", format!("invalid multipart body: {e}")))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("body", format!("invalid multipart body: {e}"))
    };
    let mut changes = None;
    let mut seen_file_object = false;
    let mut data = None;
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        match field.name() {
            Some("file_object") => {
                if seen_file_object {
                    return Err(ApiError::bad_request("file_object", "given twice"));
                }
                seen_file_object = true;
                let bytes = field.bytes().await.map_err(bad)?;
                if bytes.len() > MAX_FILE_OBJECT {
                    return Err(ApiError::bad_request("file_object", "is too large"));
                }
                let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::bad_request("file_object", format!("invalid JSON: {e}"))
                })?;
                changes = Some(files::parse_upload_fields(Fields::from_json(value)?)?);
            }
            Some("data") => {
                if data.is_some() {
                    return Err(ApiError::bad_request("data", "given twice"));
                }
                let filename = field.file_name().map(str::to_string);
                // With file_object first, the container and its limits are known now; with data
                // first, only the server's and the customer's limits apply while streaming, and
                // the container's are checked once file_object names it.
                let limit = match &changes {
                    Some(c) => files::target(state, owner, c).await?.limit,
                    None => files::server_limit(state, owner),
                };
                let received = receive(&state.blobs, field, &limit).await?;
                data = Some((received, filename));
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    other,
                    "unknown form part (expected file_object and data)",
                ))
            }
            None => return Err(ApiError::bad_request("body", "a form part has no name")),
        }
    }
    let Some((received, filename)) = data else {
        return Err(ApiError::bad_request("data", "is required"));
    };
    let parsed = match changes {
        Some(c) => c,
        None => files::parse_upload_fields(Fields::from_json(serde_json::json!({}))?)?,
    };
    let target = files::target(state, owner, &parsed).await?;
    Ok(files::create(state, owner, parsed, target, received, filename).await?)
}

/// `GET /v1/files?container_sid=&tag=&reference_type=&reference_id=&owner_id=&name=&page=&limit=`.
#[utoipa::path(get, path = "/v1/files", tag = "files", security(("bearer" = [])),
    params(FileListQuery),
    responses(
        (status = 200, body = List<FileView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ))]
pub async fn list(
    Caller(owner): Caller,
    State(state): State<AppState>,
    q: QueryPairs,
) -> Result<Json<List<FileView>>, ApiError> {
    let page = PageRequest::parse(q.get("page"), q.get("limit"))?;
    for (k, _) in &q.0 {
        if !matches!(
            k.as_str(),
            "container_sid"
                | "tag"
                | "reference_type"
                | "reference_id"
                | "owner_id"
                | "name"
                | "page"
                | "limit"
        ) {
            return Err(ApiError::bad_request(k, "unknown filter"));
        }
    }
    let s = |k: &str| q.get(k).map(str::to_string);
    let query = FileQuery {
        container_sid: s("container_sid"),
        tag: s("tag"),
        reference_type: s("reference_type"),
        reference_id: s("reference_id"),
        owner_id: s("owner_id"),
        name: s("name"),
        ..Default::default()
    };
    let found = files::list(&state, &owner, query, page).await?;
    let now = Timestamp::now();
    Ok(Json(List::new(found, page, |f| {
        files::view(&state, f, now)
    })))
}

/// `GET /v1/files/{file_sid}`.
#[utoipa::path(get, path = "/v1/files/{file_sid}", tag = "files", security(("bearer" = [])),
    params(("file_sid" = String, Path)),
    responses(
        (status = 200, body = FileView),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn get(
    Caller(owner): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
) -> Result<Json<FileView>, ApiError> {
    let f = files::get(&state, &owner, &sid).await?;
    Ok(Json(files::view(&state, f, Timestamp::now())))
}

/// `PATCH /v1/files/{file_sid}`.
#[utoipa::path(patch, path = "/v1/files/{file_sid}", tag = "files", security(("bearer" = [])),
    params(("file_sid" = String, Path)), request_body = FileInput,
    responses(
        (status = 200, body = FileView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn update(
    Caller(owner): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
    JsonFields(f): JsonFields,
) -> Result<Json<FileView>, ApiError> {
    let f = files::update(&state, &owner, &sid, f).await?;
    Ok(Json(files::view(&state, f, Timestamp::now())))
}

/// `DELETE /v1/files/{file_sid}` → 204.
#[utoipa::path(delete, path = "/v1/files/{file_sid}", tag = "files", security(("bearer" = [])),
    params(("file_sid" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn delete(
    Caller(owner): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
) -> Result<StatusCode, ApiError> {
    files::delete(&state, &owner, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/files/{file_sid}/data`: the bytes, through the same serving path as the publish URI.
#[utoipa::path(get, path = "/v1/files/{file_sid}/data", tag = "files", security(("bearer" = [])),
    description = "The stored bytes, with Range and conditionals as on the publish URI; the \
        only read that updates `date_last_accessed`. HEAD answers the same headers.",
    params(("file_sid" = String, Path), ReadHeaders),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The asked ranges"),
        (status = 304, description = "Not modified"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 412, description = "A precondition failed"),
        (status = 416, description = "No range overlaps (`Content-Range: bytes */len`)", body = ErrorBody),
    ))]
pub async fn data(
    Caller(owner): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
    method: Method,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let file = files::for_download(&state, &owner, &sid).await?;
    let repr = Representation::of_file(&file);
    Ok(serve::serve(
        &state.blobs,
        &method,
        &headers,
        &repr,
        &Overrides::default(),
    )
    .await)
}
