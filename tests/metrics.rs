//! `/metrics`: who may read it, and that each counter moves by exactly the traffic sent, read
//! with the official Prometheus client's text parser.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{python_with, run_python, Server, ADMIN};
use serde_json::{json, Value};

/// Parses the exposition with `prometheus_client.parser` into one JSON object per sample.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([
    {"name": s.name, "labels": s.labels, "value": s.value, "type": f.type}
    for f in text_string_to_metric_families(sys.stdin.read())
    for s in f.samples
]))
"#;

/// One scrape, parsed: sample value by name and labels.
struct Scrape {
    values: BTreeMap<(String, BTreeMap<String, String>), f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.values
            .get(&(name.to_string(), labels))
            .copied()
            .unwrap_or(0.0)
    }
}

/// `GET /metrics`, with `token` if any.
async fn get_metrics(s: &Server, token: Option<&str>) -> reqwest::Response {
    let mut req = s.client.get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn scrape(s: &Server, python: &Path) -> Scrape {
    let resp = get_metrics(s, Some(ADMIN)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let parsed: Vec<Value> =
        serde_json::from_str(&run_python(python, PARSE, text.as_bytes())).unwrap();
    let mut values = BTreeMap::new();
    let mut types = BTreeMap::new();
    for sample in parsed {
        let name = sample["name"].as_str().unwrap().to_string();
        let labels = sample["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        types.insert(name.clone(), sample["type"].as_str().unwrap().to_string());
        values.insert((name, labels), sample["value"].as_f64().unwrap());
    }
    Scrape { values, types }
}

const REFUSALS: &str = "mediastore_upload_refusals_total";
const CONVERSIONS: &str = "mediastore_conversion_duration_seconds_count";
const HITS: &str = "mediastore_cache_hits_total";
const MISSES: &str = "mediastore_cache_misses_total";

/// Expected moves of counters: `(name, labels, by)`.
type Moves<'a> = Vec<(&'a str, Vec<(&'a str, &'a str)>, f64)>;

/// `name{label="value"}` moves by `by`.
fn by<'a>(
    name: &'a str,
    labels: &[(&'a str, &'a str)],
    by: f64,
) -> (&'a str, Vec<(&'a str, &'a str)>, f64) {
    (name, labels.to_vec(), by)
}

/// Waits until every counter of `moves` has moved by its amount since `before` (the last
/// request's record is written when its answer is finished, which may trail the client by a
/// moment), then checks each moved by exactly that.
async fn assert_moved(s: &Server, python: &Path, before: &Scrape, moves: &Moves<'_>) {
    let delta = |after: &Scrape, (name, labels, _): &(&str, Vec<(&str, &str)>, f64)| {
        after.get(name, labels) - before.get(name, labels)
    };
    let mut settled = false;
    let mut after = scrape(s, python).await;
    for _ in 0..60 {
        if moves.iter().all(|m| delta(&after, m) >= m.2) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = scrape(s, python).await;
    }
    for m in moves {
        assert_eq!(
            delta(&after, m),
            m.2,
            "{} {:?} moved by {} (settled: {settled})",
            m.0,
            m.1,
            delta(&after, m)
        );
    }
}

fn tools() -> Option<PathBuf> {
    python_with(&["prometheus_client"])
}

#[tokio::test]
async fn metrics_answer_the_admin_token_only() {
    let s = Server::start().await;
    let c = s.acme().await;
    assert_eq!(get_metrics(&s, None).await.status(), 401);
    assert_eq!(get_metrics(&s, Some(&c.token)).await.status(), 401);
    let admin = get_metrics(&s, Some(ADMIN)).await;
    assert_eq!(admin.status(), 200);
    let ct = admin.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(admin
        .text()
        .await
        .unwrap()
        .contains("mediastore_http_requests_total"));
}

#[tokio::test]
async fn metrics_public_answers_anyone() {
    let s = Server::start_with_flags(&["--metrics-public"]).await;
    assert_eq!(get_metrics(&s, None).await.status(), 200);
}

#[tokio::test]
async fn requests_bytes_latency_uploads_and_the_publish_cache_move_by_the_traffic() {
    let Some(py) = tools() else { return };
    // One HTTP thread: the publish cache is per thread, so hits are predictable.
    let s = Server::start_with_flags(&["--http-threads", "1"]).await;
    let c = s.acme().await;
    let before = scrape(&s, &py).await;

    let sid = s.published(&c.token, common::bytes(1000, 7)).await;
    for _ in 0..3 {
        let r = s
            .client
            .get(s.url(&format!("/f/{sid}")))
            .header("range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().len(), 100);
    }
    let patch = json!({"tag": "x"}).to_string();
    let r = s
        .client
        .patch(s.url(&format!("/v1/files/{sid}")))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body(patch.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let missing = s.client.get(s.url("/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let moves: Moves<'_> = vec![
        by(
            "mediastore_http_requests_total",
            &[("route", "upload"), ("status", "201")],
            1.0,
        ),
        by(
            "mediastore_http_requests_total",
            &[("route", "publish"), ("status", "206")],
            3.0,
        ),
        by(
            "mediastore_http_requests_total",
            &[("route", "files"), ("status", "200")],
            1.0,
        ),
        by(
            "mediastore_http_requests_total",
            &[("route", "other"), ("status", "404")],
            1.0,
        ),
        by(
            "mediastore_http_request_duration_seconds_count",
            &[("route", "publish")],
            3.0,
        ),
        by(
            "mediastore_http_request_duration_seconds_bucket",
            &[("route", "publish"), ("le", "+Inf")],
            3.0,
        ),
        by(
            "mediastore_http_response_body_bytes_total",
            &[("route", "publish")],
            300.0,
        ),
        by(
            "mediastore_http_request_body_bytes_total",
            &[("route", "upload")],
            1000.0,
        ),
        by(
            "mediastore_http_request_body_bytes_total",
            &[("route", "files")],
            patch.len() as f64,
        ),
        by("mediastore_uploads_total", &[], 1.0),
        by(
            "mediastore_cache_misses_total",
            &[("cache", "publish")],
            1.0,
        ),
        by(HITS, &[("cache", "publish")], 2.0),
    ];
    assert_moved(&s, &py, &before, &moves).await;
    let after = scrape(&s, &py).await;
    assert_eq!(
        after.types["mediastore_http_request_duration_seconds_bucket"],
        "histogram"
    );
    assert!(
        after.get(
            "mediastore_http_request_duration_seconds_sum",
            &[("route", "publish")]
        ) > 0.0
    );
}

#[tokio::test]
async fn refused_uploads_count_under_their_reason() {
    let Some(py) = tools() else { return };
    let s = Server::start().await;
    let c = s
        .customer(json!({"name": "acme", "max_containers": 4}))
        .await;
    let quota = s.container(&c.token, json!({"quota_bytes": 500})).await;
    let size = s.container(&c.token, json!({"max_file_size": 10})).await;
    let class = s
        .container(&c.token, json!({"blocked_classifications": ["executable"]}))
        .await;
    let threshold = s
        .container(
            &c.token,
            json!({"threshold_action": "reject", "threshold_bytes": 100}),
        )
        .await;
    let before = scrape(&s, &py).await;
    let upload = |container: &str, bytes: Vec<u8>| {
        let container = container.to_string();
        let s = &s;
        let token = c.token.clone();
        async move {
            s.upload_raw(&token, &[("container_sid", &container)], bytes)
                .await
                .0
        }
    };
    assert_eq!(upload(&quota, vec![1; 600]).await, 429);
    assert_eq!(upload(&size, vec![1; 11]).await, 413);
    assert_eq!(upload(&class, b"\x7fELF\x02\x01\x01\0".to_vec()).await, 422);
    assert_eq!(upload(&threshold, vec![1; 100]).await, 201);
    assert_eq!(upload(&threshold, vec![1; 1]).await, 429);
    let mut moves: Moves<'_> = ["quota", "size", "classification", "threshold"]
        .into_iter()
        .map(|reason| by(REFUSALS, &[("reason", reason)], 1.0))
        .collect();
    moves.push(by("mediastore_uploads_total", &[], 1.0));
    assert_moved(&s, &py, &before, &moves).await;
}

#[tokio::test]
async fn conversions_and_the_converted_copy_cache_are_counted() {
    let Some(py) = tools() else { return };
    let s = Server::start().await;
    let c = s.acme().await;
    let sid = s.published(&c.token, common::tone_wav(1)).await;
    let before = scrape(&s, &py).await;
    for _ in 0..2 {
        let r = s
            .client
            .get(s.url(&format!("/f/{sid}?f=mp3")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let converted = [("cache", "converted")];
    let moves: Moves<'_> = vec![
        by(CONVERSIONS, &[("format", "mp3")], 1.0),
        by(MISSES, &converted, 1.0),
        by(HITS, &converted, 1.0),
        by("mediastore_conversions_refused_total", &[], 0.0),
    ];
    assert_moved(&s, &py, &before, &moves).await;
    let after = scrape(&s, &py).await;
    assert_eq!(after.get("mediastore_conversions_running", &[]), 0.0);
    assert_eq!(after.get("mediastore_conversions_queued", &[]), 0.0);
}

#[tokio::test]
async fn cleanup_deletions_and_storage_totals_are_shown() {
    let Some(py) = tools() else { return };
    let s = Server::start_with_flags(&["--test-clock", "--cleanup-interval", "150ms"]).await;
    let c = s.acme().await;
    let at = (chrono::Utc::now() + chrono::Duration::minutes(61)).to_rfc3339();
    let (st, _) = s
        .upload_raw(&c.token, &[("expires_at", at.as_str())], vec![5; 500])
        .await;
    assert_eq!(st, 201);
    let (st, _) = s.upload_raw(&c.token, &[], vec![6; 10]).await;
    assert_eq!(st, 201);
    let before = scrape(&s, &py).await;
    assert_eq!(before.get("mediastore_stored_files", &[]), 2.0);
    assert_eq!(before.get("mediastore_stored_bytes", &[]), 510.0);
    assert_eq!(before.get("mediastore_customers", &[]), 1.0);
    assert_eq!(
        before.get(
            "mediastore_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    s.advance(62 * 60).await;
    let moves: Moves<'_> = vec![by(
        "mediastore_cleanup_deletions_total",
        &[("cause", "expired")],
        1.0,
    )];
    assert_moved(&s, &py, &before, &moves).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = scrape(&s, &py).await;
    assert_eq!(after.get("mediastore_stored_files", &[]), 1.0);
    assert_eq!(after.get("mediastore_stored_bytes", &[]), 10.0);
    assert_eq!(
        after.get("mediastore_cleanup_deletions_total", &[("cause", "lru")]),
        0.0
    );
}

#[tokio::test]
async fn no_label_names_a_file_or_a_customer() {
    let Some(py) = tools() else { return };
    let s = Server::start().await;
    let c = s.acme().await;
    let sid = s.published(&c.token, vec![1; 10]).await;
    s.client
        .get(s.url(&format!("/f/{sid}")))
        .send()
        .await
        .unwrap();
    let after = scrape(&s, &py).await;
    for (name, labels) in after.values.keys() {
        for v in labels.values() {
            assert!(*v != sid && *v != c.id, "{name} {labels:?}");
        }
        assert!(name.starts_with("mediastore_"), "{name}");
    }
}
