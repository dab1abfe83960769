//! The router: every path of the contract. The connection layer (`server`) logs each request and
//! sends the publish URI's common case past the router.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::api::{account, containers, customers, files};
use super::console;
use super::error::ApiError;
use super::publish;
use crate::app::AppState;
use crate::fair::PerCustomer;

/// Uploads in progress per customer (`--uploads-per-customer`).
#[derive(Clone)]
pub struct Uploads(pub Arc<PerCustomer>);

/// Builds the application.
pub fn router(state: AppState) -> Router {
    let uploads = Uploads(PerCustomer::new());
    let api = Router::new()
        .route("/v1/customers", post(customers::create))
        .route(
            "/v1/customers/{customer_id}",
            get(customers::get).patch(customers::update),
        )
        .route(
            "/v1/customers/{customer_id}/tokens",
            post(customers::add_token),
        )
        .route("/v1/admin/clock", post(customers::advance_clock))
        .route("/v1/account", get(account::get))
        .route(
            "/v1/containers",
            post(containers::create).get(containers::list),
        )
        .route(
            "/v1/containers/{container_sid}",
            get(containers::get)
                .patch(containers::update)
                .delete(containers::delete),
        )
        // Uploads stream to disk under their own limits, not the default body limit.
        .route(
            "/v1/files",
            post(files::upload)
                .layer(DefaultBodyLimit::disable())
                .get(files::list),
        )
        .route(
            "/v1/files/{file_sid}",
            get(files::get).patch(files::update).delete(files::delete),
        )
        .route("/v1/files/{file_sid}/data", get(files::data))
        .layer(Extension(uploads));
    let public = Router::new()
        // `get` answers HEAD too (same headers, no body); OPTIONS is the CORS preflight.
        .route(
            "/f/{key}",
            get(publish::publish_uri).options(publish::preflight),
        )
        .route(
            "/download/{file_sid}",
            get(publish::download_link).options(publish::preflight),
        );
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .merge(public)
        .merge(console::routes(&state.public_url))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            // axum adds `Allow` with the path's methods.
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            )
            .field("method", "not allowed on this path (see Allow)")
        })
        .with_state(state)
}
