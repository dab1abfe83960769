//! `/v1/customers` (admin).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::extract::{JsonFields, PathParam};
use crate::service::customers;

/// `POST /v1/customers` → 201 `{"customer", "token"}`.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonFields(f): JsonFields,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (customer, token) = customers::create(&state, f).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"customer": customer, "token": token})),
    ))
}

/// `GET /v1/customers/{customer_id}`.
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    match state
        .meta
        .customer(&id)
        .await
        .map_err(crate::error::Error::from)?
    {
        Some(c) => Ok(Json(json!(c))),
        None => Err(ApiError::not_found()),
    }
}

/// `PATCH /v1/customers/{customer_id}`: `quota_bytes`, `max_containers`.
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonFields(f): JsonFields,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(customers::update(&state, &id, f).await?)))
}

/// `POST /v1/customers/{customer_id}/tokens` → 201 `{"token"}`.
pub async fn add_token(
    _: Admin,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let token = customers::add_token(&state, &id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"customer_id": id, "token": token})),
    ))
}

/// `POST /v1/admin/clock {"advance_seconds": N}`: moves the clock forward (only with
/// `--test-clock`; 404 otherwise). The next cleanup pass sees the new time.
pub async fn advance_clock(
    _: Admin,
    State(state): State<AppState>,
    JsonFields(mut f): JsonFields,
) -> Result<Json<Value>, ApiError> {
    if !state.config.test_clock {
        return Err(ApiError::not_found());
    }
    let secs = f
        .int("advance_seconds", 0, 10 * 365 * 86_400)?
        .value()
        .unwrap_or(0);
    f.finish()?;
    crate::domain::time::advance_clock(secs * 1000);
    let now = crate::domain::Timestamp::now();
    Ok(Json(json!({"now": now})))
}
