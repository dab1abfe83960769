//! `GET /metrics`, and which route class (`route` label) a request counts under.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use super::auth::is_admin;
use super::error::ApiError;
use crate::app::AppState;
use crate::metrics::{Route, CONTENT_TYPE};

/// The route class of `method path`, from the path's first segments (no allocation: it runs for
/// every request).
pub fn route_of(method: &Method, path: &str) -> Route {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some("f"), Some(_)) => Route::Publish,
        (Some("download"), Some(_)) => Route::Download,
        (Some("v1"), Some("files")) if *method == Method::POST && segments.next().is_none() => {
            Route::Upload
        }
        (Some("v1"), Some("files")) => Route::Files,
        (Some("v1"), Some("containers")) => Route::Containers,
        (Some("v1"), Some("account")) => Route::Account,
        (Some("v1"), Some("customers" | "admin")) => Route::Admin,
        (Some("metrics" | "openapi.json" | "docs" | "healthz"), _) => Route::Operations,
        (Some("console"), _) => Route::Console,
        _ => Route::Other,
    }
}

/// `GET /metrics`: the Prometheus text exposition, to the admin token (or to anyone with
/// `--metrics-public`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Prometheus text exposition (format 0.0.4), names prefixed `mediastore_`. \
        Answers the admin token, or anyone when the server runs with `--metrics-public`.",
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "No admin token (and not `--metrics-public`)", body = crate::http::error::ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.metrics_public && !is_admin(&headers, &state) {
        return ApiError::unauthorized().into_response();
    }
    let totals = match state.meta.storage_totals().await {
        Ok(t) => t,
        Err(e) => return ApiError::from(crate::error::Error::from(e)).into_response(),
    };
    let text = state.metrics.encode(totals);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_under_their_route_class() {
        for (m, p, r) in [
            (Method::GET, "/f/abc", Route::Publish),
            (Method::HEAD, "/download/abc", Route::Download),
            (Method::POST, "/v1/files", Route::Upload),
            (Method::GET, "/v1/files", Route::Files),
            (Method::POST, "/v1/files/x", Route::Files),
            (Method::GET, "/v1/files/x/data", Route::Files),
            (Method::PATCH, "/v1/containers/c", Route::Containers),
            (Method::GET, "/v1/account", Route::Account),
            (Method::POST, "/v1/customers", Route::Admin),
            (Method::POST, "/v1/admin/clock", Route::Admin),
            (Method::GET, "/metrics", Route::Operations),
            (Method::GET, "/docs/", Route::Operations),
            (Method::GET, "/console", Route::Console),
            (Method::GET, "/f", Route::Other),
            (Method::GET, "/", Route::Other),
            (Method::GET, "/nothing/here", Route::Other),
        ] {
            assert_eq!(route_of(&m, p), r, "{m} {p}");
        }
    }
}
