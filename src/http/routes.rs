//! The router: every path of the contract. The connection layer (`server`) logs each request and
//! sends the publish URI's common case past the router.
//!
//! Routes are listed once, with `utoipa_axum::routes!`, which adds each handler to the router
//! and its `#[utoipa::path]` to the OpenAPI document: a route cannot go undocumented.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use super::api::{account, containers, customers, files};
use super::console;
use super::error::ApiError;
use super::openapi::{ApiDoc, Conventions};
use super::{metrics, publish};
use crate::app::AppState;
use crate::fair::PerCustomer;

/// Uploads in progress per customer (`--uploads-per-customer`).
#[derive(Clone)]
pub struct Uploads(pub Arc<PerCustomer>);

/// `GET /healthz`: 200 once the server is ready.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Ready", body = String, example = "ok")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The documented routes, and the OpenAPI document built from the same list.
pub fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (upload_schemas, upload_paths, upload_router) = routes!(files::upload, files::list);
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(customers::create))
        .routes(routes!(customers::get, customers::update))
        .routes(routes!(customers::add_token))
        .routes(routes!(customers::advance_clock))
        .routes(routes!(account::get))
        .routes(routes!(containers::create, containers::list))
        .routes(routes!(
            containers::get,
            containers::update,
            containers::delete
        ))
        // Uploads stream to disk under their own limits, not the default body limit, and take
        // one of the customer's upload slots (the only routes that read them).
        .routes((
            upload_schemas,
            upload_paths,
            upload_router
                .layer::<_, Infallible>(DefaultBodyLimit::disable())
                .layer(Extension(Uploads(PerCustomer::new()))),
        ))
        .routes(routes!(files::get, files::update, files::delete))
        .routes(routes!(files::data))
        // `get` answers HEAD too (same headers, no body); OPTIONS is the CORS preflight.
        .routes(routes!(publish::publish_uri, publish::preflight_publish))
        .routes(routes!(publish::download_link, publish::preflight_download))
        .routes(routes!(healthz))
        .routes(routes!(metrics::metrics))
        .split_for_parts();
    Conventions.modify(&mut doc);
    (router, doc)
}

/// Builds the application.
pub fn router(state: AppState) -> Router {
    unbound(&state.public_url).with_state(state)
}

/// The application before it is given its state.
fn unbound(public_url: &str) -> Router<AppState> {
    let (api, doc) = documented();
    api
        // Serves the document at /openapi.json and renders it at /docs, from assets built in.
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        // The web console: static pages calling the documented API.
        .merge(console::routes(public_url))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            // axum adds `Allow` with the path's methods.
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            )
            .field("method", "not allowed on this path (see Allow)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::openapi::UNDOCUMENTED;

    /// The router's paths, as axum lists them in its `Debug` form (`RouteId(n): "/path"` in
    /// `path_router`, before `fallback_router`): the router has no other way to list them.
    fn routed_paths(router: &Router<AppState>) -> Vec<String> {
        let text = format!("{router:?}");
        // The routes proper, not the fallback's own router.
        let routes = text.split("fallback_router").next().unwrap_or_default();
        routes
            .split("RouteId(")
            .skip(1)
            .filter_map(|s| {
                let (_, rest) = s.split_once("): \"")?;
                Some(rest.split('"').next()?.to_string())
            })
            .collect()
    }

    #[test]
    fn every_routed_path_is_in_the_document_or_deliberately_not() {
        let (_, doc) = documented();
        let paths = routed_paths(&unbound("http://127.0.0.1:8080"));
        assert!(
            paths.iter().any(|p| p == "/v1/files/{file_sid}"),
            "{paths:?}"
        );
        for p in &paths {
            assert!(
                doc.paths.paths.contains_key(p) || UNDOCUMENTED.contains(&p.as_str()),
                "{p} is routed but not in the OpenAPI document"
            );
        }
    }

    #[test]
    fn a_route_added_outside_the_list_is_caught() {
        let extra = unbound("http://127.0.0.1:8080")
            .route("/v1/secret", axum::routing::get(|| async { "" }));
        let (_, doc) = documented();
        assert!(routed_paths(&extra)
            .iter()
            .any(|p| !doc.paths.paths.contains_key(p) && !UNDOCUMENTED.contains(&p.as_str())));
    }
}
