//! `/v1/customers` (admin).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::domain::model::Customer;
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{JsonFields, PathParam};
use crate::http::openapi::{ClockInput, CustomerInput};
use crate::service::customers;

/// A new customer and its first token (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewCustomer {
    customer: Customer,
    token: String,
}

/// A further token of a customer (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewToken {
    customer_id: String,
    token: String,
}

/// `POST /v1/customers` → 201 `{"customer", "token"}`.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", security(("bearer" = [])),
    request_body = CustomerInput,
    responses(
        (status = 201, body = NewCustomer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonFields(f): JsonFields,
) -> Result<(StatusCode, Json<NewCustomer>), ApiError> {
    let (customer, token) = customers::create(&state, f).await?;
    Ok((StatusCode::CREATED, Json(NewCustomer { customer, token })))
}

/// `GET /v1/customers/{customer_id}`.
#[utoipa::path(get, path = "/v1/customers/{customer_id}", tag = "customers",
    security(("bearer" = [])), params(("customer_id" = String, Path)),
    responses(
        (status = 200, body = Customer),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Customer>, ApiError> {
    match state
        .meta
        .customer(&id)
        .await
        .map_err(crate::error::Error::from)?
    {
        Some(c) => Ok(Json(c)),
        None => Err(ApiError::not_found()),
    }
}

/// `PATCH /v1/customers/{customer_id}`: `quota_bytes`, `max_containers`.
#[utoipa::path(patch, path = "/v1/customers/{customer_id}", tag = "customers",
    security(("bearer" = [])), params(("customer_id" = String, Path)),
    request_body = CustomerInput,
    responses(
        (status = 200, body = Customer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonFields(f): JsonFields,
) -> Result<Json<Customer>, ApiError> {
    Ok(Json(customers::update(&state, &id, f).await?))
}

/// `POST /v1/customers/{customer_id}/tokens` → 201 `{"token"}`.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/tokens", tag = "customers",
    security(("bearer" = [])), params(("customer_id" = String, Path)),
    responses(
        (status = 201, body = NewToken),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn add_token(
    _: Admin,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    let token = customers::add_token(&state, &id).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            customer_id: id,
            token,
        }),
    ))
}

/// `POST /v1/admin/clock {"advance_seconds": N}`: moves the clock forward (only with
/// `--test-clock`; 404 otherwise). The next cleanup pass sees the new time.
#[utoipa::path(post, path = "/v1/admin/clock", tag = "customers", security(("bearer" = [])),
    description = "Testing aid: moves the server's clock forward. Only with the hidden \
        `--test-clock` flag; 404 otherwise.",
    request_body = ClockInput,
    responses(
        (status = 200, description = "`{\"now\": <time>}`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
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
