//! `/console`: the web console, a single page whose HTML, JS and CSS are built into the binary
//! (`src/http/console/`). No asset comes from outside the binary, and the Content-Security-Policy
//! says so to the browser: scripts, styles and images from this server only, API calls and media
//! from this server or its public URL (where publish URIs and signed links point).
//!
//! Assets are answered with a strong ETag and `Cache-Control: no-cache`: a browser keeps its copy
//! and revalidates it (a 304), so a new binary's console is picked up at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::AppState;

/// One embedded file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    etag: HeaderValue,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        (
            $name,
            $type,
            include_bytes!(concat!("console/", $name)) as &[u8],
        )
    };
}

/// Every file of the console; `index.html` is the page itself (`/console`).
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    const JS: &str = "text/javascript; charset=utf-8";
    [
        asset!("index.html", "text/html; charset=utf-8"),
        asset!("style.css", "text/css; charset=utf-8"),
        asset!("icon.svg", "image/svg+xml"),
        asset!("app.js", JS),
        asset!("api.js", JS),
        asset!("ui.js", JS),
        asset!("account.js", JS),
        asset!("containers.js", JS),
        asset!("files.js", JS),
        asset!("upload.js", JS),
        asset!("player.js", JS),
        asset!("admin.js", JS),
    ]
    .into_iter()
    .map(|(name, content_type, bytes)| Asset {
        name,
        content_type,
        bytes,
        etag: etag(bytes),
    })
    .collect()
});

/// A strong ETag from the content: the same bytes keep it across restarts and nodes.
fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .unwrap_or_else(|_| HeaderValue::from_static("\"console\""))
}

/// The console's routes: `/console` (and `/console/`) the page, `/console/{asset}` its files.
pub fn routes(public_url: &str) -> Router<AppState> {
    let csp = policy(public_url);
    let page = {
        let csp = csp.clone();
        move |headers: HeaderMap| {
            let csp = csp.clone();
            async move { serve("index.html", &headers, &csp) }
        }
    };
    let file = move |Path(name): Path<String>, headers: HeaderMap| {
        let csp = csp.clone();
        async move { serve(&name, &headers, &csp) }
    };
    Router::new()
        .route("/console", get(page.clone()))
        .route("/console/", get(page))
        .route("/console/{asset}", get(file))
}

/// The Content-Security-Policy of every console answer: nothing runs or loads unless it comes
/// from this server; media and API calls may also go to the public URL (a proxy's name for it).
fn policy(public_url: &str) -> HeaderValue {
    let public = origin(public_url).unwrap_or_default();
    let value = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         media-src 'self' {public}; connect-src 'self' {public}; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        )
    })
}

/// `scheme://host[:port]` of a URL, or `None` when it has no such form.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains([' ', ';', '\'', ',']) {
        return None;
    }
    Some(&url[..scheme.len() + 3 + end])
}

fn serve(name: &str, headers: &HeaderMap, csp: &HeaderValue) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::not_found().into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/") == asset.etag)
        });
    let common = [
        (header::ETAG, asset.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, csp.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_a_public_url() {
        assert_eq!(
            origin("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://media.example.com/base/"),
            Some("https://media.example.com")
        );
        assert_eq!(origin("ftp://x"), None);
        assert_eq!(origin("https://a b"), None);
    }

    #[test]
    fn every_asset_is_embedded() {
        assert!(ASSETS.iter().all(|a| !a.bytes.is_empty()));
    }
}
