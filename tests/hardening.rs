//! Hardening through HTTP: every error in the contract's form (rejections before a handler
//! included), CORS headers split between preflights and actual answers, one 422 for stored audio
//! that cannot be converted whatever the path.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, Server};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Status, headers and body of one request.
async fn send(
    s: &Server,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = s.client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, h) = (resp.status(), resp.headers().clone());
    (status, h, resp.bytes().await.unwrap().to_vec())
}

/// Checks a body is the contract's error form for `status` and returns its first field.
fn contract_error(status: StatusCode, h: &HeaderMap, body: &[u8]) -> String {
    assert_eq!(
        h.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "{status}: {}",
        String::from_utf8_lossy(body)
    );
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["status"], status.as_u16(), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{v}");
    errors[0]["field"].as_str().unwrap_or_default().to_string()
}

/// Reads a raw connection's answer to its end (the server closes it).
async fn read_answer(tcp: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tcp.read_to_end(&mut out),
    )
    .await
    .expect("the server closed the connection")
    .unwrap();
    out
}

/// One raw HTTP/1.1 exchange (for what reqwest will not send); the answer's head and body.
async fn raw(s: &Server, request: &[u8]) -> (String, Vec<u8>) {
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let out = read_answer(&mut tcp).await;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&out[..split]).to_string(),
        out[split + 4..].to_vec(),
    )
}

// --- item 2: every error in the contract's form ---

on_both_backends! {
async fn a_path_parameter_that_is_not_utf8_is_a_contract_400_naming_it(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    for (path, field) in [
        ("/v1/containers/%FF", "container_sid"),
        ("/v1/files/%C3%28", "file_sid"),
        ("/v1/files/%FF/data", "file_sid"),
    ] {
        let (st, h, body) = send(
            &s,
            Method::GET,
            &s.url(path),
            &[("authorization", &format!("Bearer {}", c.token))],
        )
        .await;
        assert_eq!(st, 400, "{path}");
        assert_eq!(contract_error(st, &h, &body), field, "{path}");
    }
    let (st, h, body) = send(&s, Method::GET, &s.url("/f/%FF"), &[]).await;
    assert_eq!(st, 400);
    contract_error(st, &h, &body);
    // A public answer keeps its CORS header even when refused before the handler's work.
    assert_eq!(h["access-control-allow-origin"], "*");
}
}

#[tokio::test]
async fn unknown_routes_answer_a_contract_404() {
    let s = Server::start().await;
    for path in [
        "/nope",
        "/v1/nope",
        "/v1/files/a/b/c",
        "/f/",
        "/f/a/b",
        "/download/",
    ] {
        let (st, h, body) = send(&s, Method::GET, &s.url(path), &[]).await;
        assert_eq!(st, 404, "{path}");
        contract_error(st, &h, &body);
    }
}

#[tokio::test]
async fn wrong_methods_answer_a_contract_405_with_allow() {
    let s = Server::start().await;
    for (method, path, allowed) in [
        (Method::DELETE, "/v1/account", &["GET"][..]),
        (Method::PUT, "/v1/files", &["GET", "POST"][..]),
        (Method::POST, "/f/abc", &["GET", "HEAD", "OPTIONS"][..]),
        (
            Method::DELETE,
            "/download/abc",
            &["GET", "HEAD", "OPTIONS"][..],
        ),
        (Method::POST, "/healthz", &["GET"][..]),
    ] {
        let (st, h, body) = send(&s, method.clone(), &s.url(path), &[]).await;
        assert_eq!(st, 405, "{method} {path}");
        contract_error(st, &h, &body);
        let allow = h.get("allow").map(|v| v.to_str().unwrap()).unwrap_or("");
        for m in allowed {
            assert!(
                allow.contains(m),
                "{method} {path}: Allow {allow:?} lacks {m}"
            );
        }
    }
}

#[tokio::test]
async fn oversized_headers_and_targets_answer_in_the_contract_form() {
    let s = Server::start().await;
    let big = "x".repeat(40 * 1024);
    let (st, h, body) = send(&s, Method::GET, &s.url("/healthz"), &[("x-big", &big)]).await;
    assert_eq!(st, 431);
    assert_eq!(contract_error(st, &h, &body), "headers");
    // Too many fields, each small.
    let mut req = s.client.get(s.url("/v1/account"));
    for i in 0..150 {
        req = req.header(format!("x-h{i}"), "1");
    }
    let resp = req.send().await.unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    assert_eq!(st, 431);
    contract_error(st, &h, &resp.bytes().await.unwrap());
    let long = format!("/f/{}", "a".repeat(9000));
    let (st, h, body) = send(&s, Method::GET, &s.url(&long), &[]).await;
    assert_eq!(st, 414);
    assert_eq!(contract_error(st, &h, &body), "path");
    // The server still answers normally afterwards.
    assert_eq!(send(&s, Method::GET, &s.url("/healthz"), &[]).await.0, 200);
}

#[tokio::test]
async fn a_raw_request_with_bad_percent_encoding_in_the_query_is_not_a_plain_text_error() {
    let s = Server::start().await;
    // Invalid UTF-8 once decoded, in a query the publish URI parses: the file lookup answers.
    let (head, body) = raw(
        &s,
        b"GET /f/nothing?disposition=%FF HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 4"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"][0]["field"].is_string(), "{v}");
}

// --- item 1: CORS ---

const PREFLIGHT_ONLY: [&str; 3] = [
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

on_both_backends! {
async fn cors_preflight_headers_only_on_preflights(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (st, f) = s
        .upload_raw(
            &c.token,
            &[("name", "a.bin"), ("publish", "file_sid")],
            common::bytes(5000, 3),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    let uri = f["publish_uri"].as_str().unwrap().to_string();
    let link = f["uri_download"].as_str().unwrap().to_string();
    for url in [uri.clone(), link.clone(), s.url("/f/no-such-file")] {
        for (method, range) in [
            (Method::GET, None),
            (Method::HEAD, None),
            (Method::GET, Some("bytes=0-9")),
            (Method::GET, Some("bytes=99999-")),
        ] {
            let mut headers = vec![("origin", "https://example.com")];
            if let Some(r) = range {
                headers.push(("range", r));
            }
            let (st, h, _) = send(&s, method.clone(), &url, &headers).await;
            let what = format!("{method} {url} {range:?} -> {st}");
            assert_eq!(h["access-control-allow-origin"], "*", "{what}");
            let expose = h["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .to_ascii_lowercase();
            for name in ["content-range", "content-length", "accept-ranges", "content-disposition", "etag", "last-modified"] {
                assert!(expose.contains(name), "{what}: {name} not in {expose}");
            }
            for name in PREFLIGHT_ONLY {
                assert!(h.get(name).is_none(), "{what}: {name} on an actual answer");
                assert!(!expose.contains(name), "{what}: {name} exposed");
            }
        }
    }
    for url in [uri, link] {
        let (st, h, _) = send(
            &s,
            Method::OPTIONS,
            &url,
            &[
                ("origin", "https://example.com"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
        assert_eq!(st, 204);
        assert_eq!(h["access-control-allow-origin"], "*");
        for name in PREFLIGHT_ONLY {
            assert!(h.get(name).is_some(), "{name} missing on the preflight");
        }
        assert!(h.get("access-control-expose-headers").is_none());
    }
}
}

// --- item 5: bad media, one answer ---

/// Overwrites a stored blob behind the server's back (a disk or bucket gone bad), then restarts
/// the server so no cache of it holds the good bytes.
async fn corrupt_blob(s: Server, sha256: &str, bytes: Vec<u8>) -> Server {
    let key = s.blob_with_checksum(sha256).await;
    match &s.backend {
        Backend::Embedded => std::fs::write(
            s.data.path().join("store/blobs").join(&key[..2]).join(&key),
            &bytes,
        )
        .unwrap(),
        Backend::Distributed { blob_url, env, .. } => {
            common::garage::put(blob_url, env, &key, bytes).await
        }
    }
    let backend = s.backend.clone();
    Server::restart(s.stop(), &backend).await
}

on_both_backends! {
async fn corrupt_stored_audio_is_the_same_422_on_every_path(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let good = std::fs::read(format!(
        "{}/fixtures/media/music.flac",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let len = good.len();
    let (st, f) = s
        .upload_raw(&c.token, &[("name", "broken.flac"), ("publish", "file_sid")], good)
        .await;
    assert_eq!(st, 201, "{f}");
    assert!(f["media"].is_object(), "taken as audio: {f}");
    let s = corrupt_blob(s, f["checksum_sha256"].as_str().unwrap(), vec![0; len]).await;
    // The restarted server listens on another port: the links' paths, on its address.
    let on_s = |u: &str| s.url(&format!("/{}", u.splitn(4, '/').nth(3).unwrap()));
    let uri = on_s(f["publish_uri"].as_str().unwrap());
    let link = on_s(f["uri_download"].as_str().unwrap());
    // Constant-rate (ranges converted alone, exact length) and variable-rate targets.
    for target in ["wav", "ul", "mp3", "ogg"] {
        for base in [format!("{uri}?f={target}"), format!("{link}&f={target}")] {
            for (method, range) in [
                (Method::GET, None),
                (Method::GET, Some("bytes=0-99")),
                (Method::GET, Some("bytes=1000-1999")),
                (Method::HEAD, None),
                (Method::HEAD, Some("bytes=0-99")),
            ] {
                let headers: Vec<(&str, &str)> = range.iter().map(|r| ("range", *r)).collect();
                let (st, h, body) = send(&s, method.clone(), &base, &headers).await;
                let what = format!("{method} {base} {range:?}");
                assert_eq!(st, 422, "{what}: {}", String::from_utf8_lossy(&body));
                if method == Method::GET {
                    assert_eq!(contract_error(st, &h, &body), "f", "{what}");
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let msg = v["errors"][0]["message"].as_str().unwrap();
                    assert!(
                        msg.contains("malformed") || msg.contains("unsupported"),
                        "{what}: names the problem: {msg}"
                    );
                }
            }
        }
    }
    // Nothing about it is a server fault.
    assert!(!s.log().contains("status=500"), "{}", s.log());
}
}

// --- item 3: stalled uploads ---

async fn start_with(backend: &Backend, flags: &[&str]) -> Server {
    let mut args = vec!["--admin-token", common::ADMIN];
    args.extend_from_slice(flags);
    Server::start_with(tempfile::tempdir().unwrap(), &args, backend).await
}

/// Opens a raw upload of `len` bytes and sends its head; the caller sends the body.
async fn open_upload(s: &Server, token: &str, len: usize) -> tokio::net::TcpStream {
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/files?name=up.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

/// Reads the answer to the end; its status line.
async fn answer(mut tcp: tokio::net::TcpStream) -> String {
    let out = read_answer(&mut tcp).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

on_both_backends! {
async fn a_stalled_upload_is_dropped_after_the_idle_timeout(backend: Backend) {
    let s = start_with(&backend, &["--idle-timeout", "1s"]).await;
    let c = s.acme().await;
    let mut tcp = open_upload(&s, &c.token, 1_000_000).await;
    tcp.write_all(&common::bytes(64 * 1024, 1)).await.unwrap();
    let started = std::time::Instant::now();
    // Then nothing: the server closes the connection within two idle periods.
    let mut out = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(6), tcp.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the stalled upload kept its connection");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert!(out.is_empty(), "no answer to a cut request: {}", String::from_utf8_lossy(&out));
    assert!(common::eventually(|| async { s.unfinished_uploads().await == 0 }).await, "spool left");
    assert_eq!(s.stored_blobs().await, 0);
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["total_file_count"], 0);
    assert_eq!(acct["total_file_size"], 0);
}
}

on_both_backends! {
async fn a_slow_but_moving_upload_is_not_cut(backend: Backend) {
    let s = start_with(&backend, &["--idle-timeout", "1s"]).await;
    let c = s.acme().await;
    let (chunks, size) = (12usize, 100usize);
    let mut tcp = open_upload(&s, &c.token, chunks * size).await;
    // 12 pieces 400 ms apart: almost five seconds, far past two idle periods.
    for i in 0..chunks {
        tcp.write_all(&common::bytes(size, i as u64)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    assert_eq!(answer(tcp).await, "HTTP/1.1 201 Created");
}
}

on_both_backends! {
async fn a_long_conversion_is_not_cut(backend: Backend) {
    let s = start_with(&backend, &["--idle-timeout", "100ms"]).await;
    let c = s.acme().await;
    let wav = common::tone_wav(1800);
    // A connection of its own: with so short a timeout, a pooled keep-alive connection may be
    // closed as idle just as a request is put on it.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let started = std::time::Instant::now();
    let resp = client
        .post(s.url("/v1/files?name=long.wav&type=audio&desired_format=ogg"))
        .bearer_auth(&c.token)
        .body(wav)
        .send()
        .await
        .unwrap();
    let st = resp.status();
    let f: Value = resp.json().await.unwrap();
    assert_eq!(st, 201, "{f}");
    assert_eq!(f["content_format"], "ogg");
    // The upload-time conversion alone outlasted two idle periods with nothing on the wire.
    let log = s.log();
    let took_ms: f64 = log
        .lines()
        .find(|l| l.contains("upload conversion"))
        .and_then(|l| l.split("took_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no conversion logged: {log}"));
    assert!(took_ms > 200.0, "the conversion took only {took_ms} ms: {:?}", started.elapsed());
}
}

// --- item 4: a fair share under load ---

/// GETs `url` to the end; status, Retry-After and how long it took.
async fn timed_get(
    client: reqwest::Client,
    url: String,
) -> (u16, Option<String>, std::time::Duration) {
    let started = std::time::Instant::now();
    let resp = client.get(&url).send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.bytes().await.unwrap();
    if status == 429 {
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["field"], "conversions", "{v}");
    }
    (status, retry, started.elapsed())
}

on_both_backends! {
async fn one_customers_flood_of_conversions_does_not_starve_another(backend: Backend) {
    let s = start_with(
        &backend,
        &["--transcode-workers", "2", "--conversions-per-customer", "1"],
    )
    .await;
    let (a, b) = (s.acme().await, s.customer(serde_json::json!({"name": "b"})).await);
    let audio = common::tone_wav(600);
    let publish = |token: String, name: &'static str| {
        let (s, audio) = (&s, audio.clone());
        async move {
            let (st, f) = s
                .upload_raw(&token, &[("name", name), ("publish", "file_sid")], audio)
                .await;
            assert_eq!(st, 201, "{f}");
            f["publish_uri"].as_str().unwrap().to_string()
        }
    };
    let a_uri = publish(a.token.clone(), "a.wav").await;
    let b_uri = publish(b.token.clone(), "b.wav").await;
    // One worker's wait: B converting alone.
    let (st, _, solo) = timed_get(s.client.clone(), format!("{b_uri}?f=mp3&br=32")).await;
    assert_eq!(st, 200);
    // A asks for eight different copies at once; B asks for one just after.
    let flood: Vec<_> = [8, 16, 24, 40, 48, 64, 80, 96]
        .iter()
        .map(|br| tokio::spawn(timed_get(s.client.clone(), format!("{a_uri}?f=mp3&br={br}"))))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (st, _, waited) = timed_get(s.client.clone(), format!("{b_uri}?f=mp3&br=24")).await;
    assert_eq!(st, 200, "B was refused");
    let mut statuses = Vec::new();
    for h in flood {
        let (st, retry, _) = h.await.unwrap();
        if st == 429 {
            assert_eq!(retry.as_deref(), Some("1"));
        }
        statuses.push(st);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&429), "A took more than its share: {statuses:?}");
    assert!(statuses.iter().all(|s| [200, 429].contains(s)), "{statuses:?}");
    assert!(
        waited < solo * 2 + std::time::Duration::from_millis(500),
        "B waited {waited:?}, alone {solo:?}"
    );
}
}

on_both_backends! {
async fn one_customer_cannot_take_every_upload_slot(backend: Backend) {
    let s = start_with(&backend, &["--uploads-per-customer", "1"]).await;
    let (a, b) = (s.acme().await, s.customer(serde_json::json!({"name": "b"})).await);
    let mut held = open_upload(&s, &a.token, 1000).await;
    held.write_all(&[1; 10]).await.unwrap();
    // The held upload is in progress once its handler runs, which nothing outside shows: give
    // it time to start before another of A's competes for the slot.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (st, v) = s.upload_raw(&a.token, &[("name", "second.bin")], vec![2; 10]).await;
    assert_eq!(st, 429, "a second upload of A's was taken: {v}");
    let resp = s
        .client
        .post(s.url("/v1/files?name=x.bin"))
        .bearer_auth(&a.token)
        .body(vec![3; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["field"], "uploads");
    assert_eq!(s.upload_raw(&b.token, &[("name", "b.bin")], vec![4; 10]).await.0, 201);
    held.write_all(&[1; 990]).await.unwrap();
    assert_eq!(answer(held).await, "HTTP/1.1 201 Created");
    assert_eq!(s.upload_raw(&a.token, &[("name", "third.bin")], vec![5; 10]).await.0, 201);
}
}

// --- item 7: a converted copy's 416 is worded like a stored file's ---

on_both_backends! {
async fn a_converted_copys_416_carries_etag_and_accept_ranges(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (st, f) = s
        .upload_raw(
            &c.token,
            &[("name", "t.wav"), ("publish", "file_sid")],
            common::tone_wav(2),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    let uri = f["publish_uri"].as_str().unwrap();
    let far = [("range", "bytes=999999999-")];
    let (st, stored, _) = send(&s, Method::GET, uri, &far).await;
    assert_eq!(st, 416);
    // A constant-rate copy (its length known without converting) and a variable-rate one.
    for q in ["f=ulaw", "f=mp3"] {
        let (st, h, body) = send(&s, Method::GET, &format!("{uri}?{q}"), &far).await;
        assert_eq!(st, 416, "{q}");
        contract_error(st, &h, &body);
        for name in ["etag", "accept-ranges", "content-range", "last-modified"] {
            assert!(h.get(name).is_some(), "{q}: 416 without {name}");
            assert!(stored.get(name).is_some(), "stored 416 without {name}");
        }
        assert_ne!(h["etag"], stored["etag"], "{q}: the copy's own ETag");
        assert!(h["content-range"].to_str().unwrap().starts_with("bytes */"));
    }
}
}
