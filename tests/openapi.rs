//! `/openapi.json` and `/docs`: a valid OpenAPI 3.1 document of every route, and a reference page
//! served from the binary alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{python_with, run_python, Server};
use serde_json::Value;

async fn document(s: &Server) -> Value {
    let resp = s.client.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

const METHODS: [&str; 7] = ["get", "post", "patch", "put", "delete", "head", "options"];

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_passes_an_openapi_validator() {
    let Some(py) = python_with(&["openapi_spec_validator"]) else {
        return;
    };
    let s = Server::start().await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let out = run_python(
        &py,
        "import json, sys\n\
         from openapi_spec_validator import OpenAPIV31SpecValidator, validate\n\
         spec = json.load(sys.stdin)\n\
         validate(spec, cls=OpenAPIV31SpecValidator)\n\
         print('valid', spec['openapi'])",
        doc.to_string().as_bytes(),
    );
    assert!(out.contains("3.1"), "{out}");
}

#[tokio::test]
async fn the_document_has_every_route_of_the_contract() {
    let s = Server::start().await;
    let ops = operations(&document(&s).await);
    for (m, p) in [
        ("POST", "/v1/customers"),
        ("GET", "/v1/customers/{customer_id}"),
        ("PATCH", "/v1/customers/{customer_id}"),
        ("POST", "/v1/customers/{customer_id}/tokens"),
        ("GET", "/v1/account"),
        ("POST", "/v1/containers"),
        ("GET", "/v1/containers"),
        ("GET", "/v1/containers/{container_sid}"),
        ("PATCH", "/v1/containers/{container_sid}"),
        ("DELETE", "/v1/containers/{container_sid}"),
        ("POST", "/v1/files"),
        ("GET", "/v1/files"),
        ("GET", "/v1/files/{file_sid}"),
        ("PATCH", "/v1/files/{file_sid}"),
        ("DELETE", "/v1/files/{file_sid}"),
        ("GET", "/v1/files/{file_sid}/data"),
        ("GET", "/f/{key}"),
        ("OPTIONS", "/f/{key}"),
        ("GET", "/download/{file_sid}"),
        ("OPTIONS", "/download/{file_sid}"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    ] {
        assert!(
            ops.contains(&(m.to_string(), p.to_string())),
            "{m} {p} missing from {ops:?}"
        );
    }
}

/// Every documented path is routed with exactly the documented methods: axum's 405 lists a
/// path's methods in `Allow` (GET implies HEAD).
#[tokio::test]
async fn the_router_serves_exactly_the_documented_methods() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let ops = operations(&doc);
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let resp = s
            .client
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&concrete),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{path}");
        let routed: BTreeSet<String> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        let documented: BTreeSet<String> = ops
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.clone())
            .collect();
        assert_eq!(routed, documented, "{path}");
    }
}

#[tokio::test]
async fn public_reads_document_their_query_parameters_and_headers() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let names = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}",
                    p["in"].as_str().unwrap(),
                    p["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let publish = names("/f/{key}");
    for p in [
        "path:key",
        "query:f",
        "query:br",
        "query:disposition",
        "query:disposition_name",
        "query:content_type",
        "query:cache_headers",
        "query:cache_control",
        "query:waveform",
        "query:samples_per_pixel",
        "query:bits",
        "query:split_channels",
        "header:Range",
        "header:If-Range",
        "header:If-None-Match",
        "header:If-Modified-Since",
        "header:X-Request-Id",
    ] {
        assert!(publish.contains(p), "{p} missing from {publish:?}");
    }
    let download = names("/download/{file_sid}");
    for p in [
        "path:file_sid",
        "query:expires",
        "query:signature",
        "query:f",
    ] {
        assert!(download.contains(p), "{p} missing from {download:?}");
    }
    let range = &doc["paths"]["/f/{key}"]["get"]["responses"]["206"]["headers"];
    assert!(range.get("Content-Range").is_some(), "{range}");
}

#[tokio::test]
async fn the_error_form_and_the_objects_are_schemas() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let schemas = &doc["components"]["schemas"];
    let error = &schemas["ErrorBody"]["properties"];
    for f in ["status", "message", "errors"] {
        assert!(error.get(f).is_some(), "ErrorBody lacks {f}: {error}");
    }
    for name in ["File", "Container", "Customer", "MediaInfo", "FieldError"] {
        assert!(schemas.get(name).is_some(), "no schema {name}");
    }
    let not_found = &doc["paths"]["/v1/files/{file_sid}"]["get"]["responses"]["404"]["content"]
        ["application/json"]["schema"]["$ref"];
    assert_eq!(not_found, "#/components/schemas/ErrorBody");
}

#[tokio::test]
async fn docs_render_with_assets_from_the_binary() {
    let s = Server::start().await;
    let page = s.client.get(s.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Nothing is loaded from elsewhere: every script and stylesheet is a relative path.
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            assert!(
                !target.contains("://") && !target.starts_with("//"),
                "{target} is outside the binary"
            );
        }
    }
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let r = s
            .client
            .get(s.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let init = s.get_text("/docs/swagger-initializer.js").await;
    assert!(init.contains("/openapi.json"), "{init}");
}
