//! `GET /v1/account`.

use axum::Json;

use crate::domain::model::Customer;
use crate::http::auth::Caller;
use crate::http::error::ErrorBody;

/// The caller's totals and quota.
#[utoipa::path(get, path = "/v1/account", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody)))]
pub async fn get(Caller(c): Caller) -> Json<Customer> {
    Json(c)
}
