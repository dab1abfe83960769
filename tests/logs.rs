//! Logs for people and for log shippers (`--log-format json`), and the request id
//! (`X-Request-Id`) in every answer and every log line of a request.

mod common;

use common::{eventually, Server};
use serde_json::Value;

fn is_made_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn get_with_id(s: &Server, path: &str, id: Option<&str>) -> reqwest::Response {
    let mut req = s.client.get(s.url(path));
    if let Some(id) = id {
        req = req.header("x-request-id", id);
    }
    req.send().await.unwrap()
}

fn answer_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_on_every_path() {
    let s = Server::start().await;
    let c = s.acme().await;
    let sid = s.published(&c.token, vec![1; 10]).await;
    for path in [
        format!("/f/{sid}"),
        "/v1/account".to_string(),
        "/healthz".to_string(),
        "/nothing".to_string(),
    ] {
        let resp = get_with_id(&s, &path, Some("abc-123_x.y")).await;
        assert_eq!(answer_id(&resp), "abc-123_x.y", "{path}");
    }
}

#[tokio::test]
async fn a_missing_or_unsafe_request_id_is_replaced_by_a_new_one() {
    let s = Server::start().await;
    let a = answer_id(&get_with_id(&s, "/healthz", None).await);
    let b = answer_id(&get_with_id(&s, "/healthz", None).await);
    assert!(is_made_id(&a) && is_made_id(&b), "{a} {b}");
    assert_ne!(a, b);
    let long = "x".repeat(65);
    for bad in ["has space", "quote\"d", long.as_str()] {
        let id = answer_id(&get_with_id(&s, "/f/nothing", Some(bad)).await);
        assert!(is_made_id(&id), "{bad:?} -> {id}");
    }
}

#[tokio::test]
async fn text_access_lines_carry_the_request_id() {
    let s = Server::start().await;
    get_with_id(&s, "/healthz", Some("text-line-1")).await;
    assert!(
        eventually(|| async {
            s.log().lines().any(|l| {
                l.contains("request method=GET path=/healthz")
                    && l.ends_with("request_id=text-line-1")
            })
        })
        .await,
        "{}",
        s.log()
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let s = Server::start_with_flags(&["--log-format", "json"]).await;
    let c = s.acme().await;
    let sid = s.published(&c.token, common::tone_wav(1)).await;
    get_with_id(&s, &format!("/f/{sid}"), Some("fast-path-1")).await;
    // The second conversion request is a cache hit, logged on the request's own thread.
    for id in ["conv-1", "conv-2"] {
        let r = get_with_id(&s, &format!("/f/{sid}?f=mp3"), Some(id)).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let has = |lines: &[Value], message: &str, id: &str| {
        lines
            .iter()
            .any(|l| l["fields"]["message"] == message && l["request_id"] == id)
    };
    let parse = |log: String| -> Vec<Value> {
        log.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
            })
            .collect()
    };
    let mut lines = parse(s.log());
    let mut found = false;
    for _ in 0..60 {
        if has(&lines, "request", "fast-path-1") && has(&lines, "conversion", "conv-2") {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        lines = parse(s.log());
    }
    assert!(found, "{}", s.log());
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["target"].is_string(), "{l}");
    }
    let access = lines
        .iter()
        .find(|l| l["request_id"] == "fast-path-1")
        .unwrap();
    assert_eq!(access["fields"]["path"], format!("/f/{sid}"));
    assert_eq!(access["fields"]["status"], 200);
    assert_eq!(access["fields"]["bytes"], 16044);
    // Lines outside any request (start-up) carry none.
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "listening" && l.get("request_id").is_none()));
}
