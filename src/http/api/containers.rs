//! `/v1/containers`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::List;
use crate::app::AppState;
use crate::domain::model::Container;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{JsonFields, PathParam, QueryPairs};
use crate::http::openapi::{ContainerInput, PageQuery};
use crate::service::{containers, PageRequest};

/// `POST /v1/containers` → 201.
#[utoipa::path(post, path = "/v1/containers", tag = "containers", security(("bearer" = [])),
    request_body = ContainerInput,
    responses(
        (status = 201, body = Container),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, description = "Container limit reached", body = ErrorBody),
    ))]
pub async fn create(
    Caller(c): Caller,
    State(state): State<AppState>,
    JsonFields(f): JsonFields,
) -> Result<(StatusCode, Json<Container>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(containers::create(&state, &c, f).await?),
    ))
}

/// `GET /v1/containers?page=&limit=`.
#[utoipa::path(get, path = "/v1/containers", tag = "containers", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = List<Container>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ))]
pub async fn list(
    Caller(c): Caller,
    State(state): State<AppState>,
    q: QueryPairs,
) -> Result<Json<List<Container>>, ApiError> {
    let page = PageRequest::parse(q.get("page"), q.get("limit"))?;
    let items = containers::list(&state, &c, page).await?;
    Ok(Json(List::new(items, page, |c| c)))
}

/// `GET /v1/containers/{container_sid}`.
#[utoipa::path(get, path = "/v1/containers/{container_sid}", tag = "containers",
    security(("bearer" = [])), params(("container_sid" = String, Path)),
    responses(
        (status = 200, body = Container),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn get(
    Caller(c): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
) -> Result<Json<Container>, ApiError> {
    Ok(Json(containers::get(&state, &c, &sid).await?))
}

/// `PATCH /v1/containers/{container_sid}`.
#[utoipa::path(patch, path = "/v1/containers/{container_sid}", tag = "containers",
    security(("bearer" = [])), params(("container_sid" = String, Path)),
    request_body = ContainerInput,
    responses(
        (status = 200, body = Container),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub async fn update(
    Caller(c): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
    JsonFields(f): JsonFields,
) -> Result<Json<Container>, ApiError> {
    Ok(Json(containers::update(&state, &c, &sid, f).await?))
}

/// `DELETE /v1/containers/{container_sid}` → 204 (409 while it holds files).
#[utoipa::path(delete, path = "/v1/containers/{container_sid}", tag = "containers",
    security(("bearer" = [])), params(("container_sid" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The container holds files", body = ErrorBody),
    ))]
pub async fn delete(
    Caller(c): Caller,
    State(state): State<AppState>,
    PathParam(sid): PathParam,
) -> Result<StatusCode, ApiError> {
    containers::delete(&state, &c, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}
