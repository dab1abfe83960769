//! The publish URI and signed links over HTTP: ranges, conditionals, query overrides, CORS, and
//! that a deleted or unpublished file stops being served at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::Server;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Larger than the server's one-read threshold, so whole-file answers are streamed.
const SIZE: usize = 300_000;

struct Published {
    server: Server,
    token: String,
    sid: String,
    /// Absolute publish URI.
    uri: String,
    /// Absolute signed link.
    download: String,
    bytes: Vec<u8>,
}

async fn published_with(server: Server, name: &str) -> Published {
    let customer = server.acme().await;
    let bytes = common::bytes(SIZE, 7);
    let (status, file) = server
        .upload_raw(
            &customer.token,
            &[("name", name), ("publish", "file_sid")],
            bytes.clone(),
        )
        .await;
    assert_eq!(status, 201, "{file}");
    Published {
        sid: file["file_sid"].as_str().unwrap().to_string(),
        uri: file["publish_uri"].as_str().unwrap().to_string(),
        download: file["uri_download"].as_str().unwrap().to_string(),
        token: customer.token,
        server,
        bytes,
    }
}

async fn published_on(backend: &common::Backend) -> Published {
    published_with(Server::start_on(backend).await, "recording.g722").await
}

impl Published {
    async fn get(&self, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.request(Method::GET, &self.uri, headers).await
    }

    async fn get_query(&self, query: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.request(Method::GET, &format!("{}?{query}", self.uri), &[])
            .await
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = self.server.client.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    fn slice(&self, first: usize, last: usize) -> &[u8] {
        &self.bytes[first..=last]
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

fn error_field(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["field"].clone()
}

/// Splits a `multipart/byteranges` body into (Content-Range, bytes) parts.
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip to the first delimiter.
    let start = find(rest, delimiter.as_bytes()).unwrap();
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n").unwrap();
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&rest[..head_end]).unwrap();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .unwrap()
            .to_string();
        rest = &rest[head_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes()).unwrap();
        parts.push((range, rest[..end].to_vec()));
        rest = &rest[end + 2 + delimiter.len()..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// --- whole file and validators ---

on_both_backends! {
async fn whole_file_has_validators_and_exact_bytes(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, p.bytes);
    assert_eq!(header(&h, "accept-ranges"), "bytes");
    assert_eq!(header(&h, "content-length"), SIZE.to_string());
    assert!(header(&h, "etag").starts_with('"') && header(&h, "etag").len() > 2);
    assert!(httpdate::parse_http_date(header(&h, "last-modified")).is_ok());
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename*=UTF-8''recording.g722; filename=\"recording.g722\""
    );
    assert!(h.get("cache-control").is_none());
    assert!(h.get("content-range").is_none());
}
}

on_both_backends! {
async fn every_answer_has_cors_headers(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    assert_eq!(header(&h, "access-control-allow-origin"), "*");
    let expose = header(&h, "access-control-expose-headers").to_ascii_lowercase();
    for name in [
        "content-range",
        "content-length",
        "accept-ranges",
        "content-disposition",
        "etag",
        "last-modified",
    ] {
        assert!(expose.contains(name), "{name} not in {expose}");
    }
    let (status, h, _) = p
        .request(Method::GET, &p.server.url("/f/no-such-file"), &[])
        .await;
    assert_eq!(status, 404);
    assert_eq!(header(&h, "access-control-allow-origin"), "*");
}
}

on_both_backends! {
async fn preflight_answers_204_with_allowed_methods_and_headers(backend: Backend) {
    let p = published_on(&backend).await;
    for url in [p.uri.clone(), p.download.clone()] {
        let (status, h, body) = p
            .request(
                Method::OPTIONS,
                &url,
                &[
                    ("origin", "https://example.com"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "range"),
                ],
            )
            .await;
        assert_eq!(status, 204);
        assert!(body.is_empty());
        assert_eq!(header(&h, "access-control-allow-origin"), "*");
        let methods = header(&h, "access-control-allow-methods");
        for m in ["GET", "HEAD", "OPTIONS"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = header(&h, "access-control-allow-headers").to_ascii_lowercase();
        for name in [
            "range",
            "if-range",
            "if-none-match",
            "if-modified-since",
            "if-match",
            "if-unmodified-since",
        ] {
            assert!(
                allowed.split(", ").any(|a| a == name),
                "{name} not in {allowed}"
            );
        }
    }
}
}

// --- ranges ---

on_both_backends! {
async fn range_first_last_returns_exact_slice(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=20-499")]).await;
    assert_eq!(status, 206);
    assert_eq!(header(&h, "content-range"), format!("bytes 20-499/{SIZE}"));
    assert_eq!(header(&h, "content-length"), "480");
    assert_eq!(body, p.slice(20, 499));
}
}

on_both_backends! {
async fn range_open_ended_returns_the_rest(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=100000-")]).await;
    assert_eq!(status, 206);
    assert_eq!(
        header(&h, "content-range"),
        format!("bytes 100000-{}/{SIZE}", SIZE - 1)
    );
    assert_eq!(body, p.slice(100_000, SIZE - 1));
}
}

on_both_backends! {
async fn range_suffix_returns_the_last_bytes(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=-1000")]).await;
    assert_eq!(status, 206);
    assert_eq!(
        header(&h, "content-range"),
        format!("bytes {}-{}/{SIZE}", SIZE - 1000, SIZE - 1)
    );
    assert_eq!(body, p.slice(SIZE - 1000, SIZE - 1));
}
}

on_both_backends! {
async fn range_past_the_end_is_clamped(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=299990-999999")]).await;
    assert_eq!(status, 206);
    assert_eq!(
        header(&h, "content-range"),
        format!("bytes 299990-{}/{SIZE}", SIZE - 1)
    );
    assert_eq!(body, p.slice(299_990, SIZE - 1));
}
}

on_both_backends! {
async fn several_ranges_answer_multipart_byteranges(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=200000-200099, 0-9, -5")]).await;
    assert_eq!(status, 206);
    let ct = header(&h, "content-type");
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    assert_eq!(header(&h, "content-length"), body.len().to_string());
    let parts = multipart_parts(ct, &body);
    assert_eq!(
        parts,
        vec![
            (
                format!("bytes 200000-200099/{SIZE}"),
                p.slice(200_000, 200_099).to_vec()
            ),
            (format!("bytes 0-9/{SIZE}"), p.slice(0, 9).to_vec()),
            (
                format!("bytes {}-{}/{SIZE}", SIZE - 5, SIZE - 1),
                p.slice(SIZE - 5, SIZE - 1).to_vec()
            ),
        ]
    );
}
}

on_both_backends! {
async fn multipart_parts_carry_the_content_type(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, body) = p
        .request(
            Method::GET,
            &format!("{}?content_type=audio/G722", p.uri),
            &[("range", "bytes=0-0,10-10")],
        )
        .await;
    let boundary = header(&h, "content-type")
        .split("boundary=")
        .nth(1)
        .unwrap()
        .to_string();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(
        text.matches("Content-Type: audio/G722\r\n").count(),
        2,
        "{text}"
    );
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
}
}

on_both_backends! {
async fn overlapping_ranges_are_coalesced(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=0-99,50-149,150-199")]).await;
    assert_eq!(status, 206);
    assert_eq!(header(&h, "content-range"), format!("bytes 0-199/{SIZE}"));
    assert_eq!(body, p.slice(0, 199));
}
}

on_both_backends! {
async fn many_tiny_ranges_never_send_more_than_the_file(backend: Backend) {
    let server = Server::start_on(&backend).await;
    let customer = server.acme().await;
    let bytes = common::bytes(200, 3);
    let (status, file) = server
        .upload_raw(
            &customer.token,
            &[("name", "tiny.bin"), ("publish", "file_sid")],
            bytes.clone(),
        )
        .await;
    assert_eq!(status, 201);
    let ranges: Vec<String> = (0..20).map(|i| format!("{}-{}", i * 10, i * 10)).collect();
    let resp = server
        .client
        .get(file["publish_uri"].as_str().unwrap())
        .header("range", format!("bytes={}", ranges.join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
}
}

on_both_backends! {
async fn unsatisfiable_range_answers_416_with_content_range(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get(&[("range", "bytes=300000-")]).await;
    assert_eq!(status, 416);
    assert_eq!(header(&h, "content-range"), format!("bytes */{SIZE}"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], 416);
}
}

on_both_backends! {
async fn malformed_range_is_ignored(backend: Backend) {
    let p = published_on(&backend).await;
    for range in [
        "bytes=abc",
        "bytes=5-2",
        "bytes=1-2-3",
        "bytes 0-10",
        "bytes=-",
    ] {
        let (status, h, body) = p.get(&[("range", range)]).await;
        assert_eq!(status, 200, "{range}");
        assert!(h.get("content-range").is_none());
        assert_eq!(body.len(), SIZE, "{range}");
    }
}
}

on_both_backends! {
async fn non_bytes_range_unit_is_ignored(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, _, body) = p.get(&[("range", "items=0-10")]).await;
    assert_eq!(status, 200);
    assert_eq!(body, p.bytes);
}
}

// --- If-Range ---

on_both_backends! {
async fn if_range_with_current_etag_answers_206(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let etag = header(&h, "etag").to_string();
    let (status, _, body) = p.get(&[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(status, 206);
    assert_eq!(body, p.slice(0, 9));
}
}

on_both_backends! {
async fn if_range_with_other_etag_answers_whole_file(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p
        .get(&[("range", "bytes=0-9"), ("if-range", "\"something-else\"")])
        .await;
    assert_eq!(status, 200);
    assert!(h.get("content-range").is_none());
    assert_eq!(body, p.bytes);
}
}

on_both_backends! {
async fn if_range_with_weak_etag_answers_whole_file(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let weak = format!("W/{}", header(&h, "etag"));
    let (status, _, body) = p.get(&[("range", "bytes=0-9"), ("if-range", &weak)]).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), SIZE);
}
}

on_both_backends! {
async fn if_range_with_last_modified_date_answers_206(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let lm = header(&h, "last-modified").to_string();
    let (status, h, body) = p.get(&[("range", "bytes=20-499"), ("if-range", &lm)]).await;
    assert_eq!(status, 206);
    assert_eq!(header(&h, "content-range"), format!("bytes 20-499/{SIZE}"));
    assert_eq!(body, p.slice(20, 499));
}
}

on_both_backends! {
async fn if_range_with_older_date_answers_whole_file(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let lm = httpdate::parse_http_date(header(&h, "last-modified")).unwrap();
    let older = httpdate::fmt_http_date(lm - Duration::from_secs(86_400));
    let (status, h, body) = p
        .get(&[("range", "bytes=20-499"), ("if-range", &older)])
        .await;
    assert_eq!(status, 200);
    assert!(h.get("content-range").is_none());
    assert_eq!(body, p.bytes);
}
}

on_both_backends! {
async fn if_range_with_later_date_answers_whole_file(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let lm = httpdate::parse_http_date(header(&h, "last-modified")).unwrap();
    let later = httpdate::fmt_http_date(lm + Duration::from_secs(1));
    let (status, _, body) = p
        .get(&[("range", "bytes=20-499"), ("if-range", &later)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), SIZE);
}
}

// --- 304 and 412 ---

on_both_backends! {
async fn if_none_match_with_current_etag_answers_304(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let etag = header(&h, "etag").to_string();
    for value in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".to_string(),
    ] {
        let (status, h, body) = p.get(&[("if-none-match", &value)]).await;
        assert_eq!(status, 304, "{value}");
        assert!(body.is_empty());
        assert_eq!(header(&h, "etag"), etag);
        assert!(h.get("last-modified").is_some());
    }
}
}

on_both_backends! {
async fn if_none_match_with_other_etag_answers_200(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, _, body) = p.get(&[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), SIZE);
}
}

on_both_backends! {
async fn if_modified_since_not_older_answers_304(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let lm = header(&h, "last-modified").to_string();
    let (status, _, body) = p.get(&[("if-modified-since", &lm)]).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    let older =
        httpdate::fmt_http_date(httpdate::parse_http_date(&lm).unwrap() - Duration::from_secs(1));
    let (status, _, _) = p.get(&[("if-modified-since", &older)]).await;
    assert_eq!(status, 200);
}
}

on_both_backends! {
async fn if_none_match_takes_precedence_over_if_modified_since(backend: Backend) {
    let p = published_on(&backend).await;
    let now = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
    let (status, _, _) = p
        .get(&[("if-none-match", "\"other\""), ("if-modified-since", &now)])
        .await;
    assert_eq!(status, 200);
}
}

on_both_backends! {
async fn if_match_with_other_etag_answers_412(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, _) = p.get(&[("if-match", "\"other\"")]).await;
    assert_eq!(status, 412);
    assert!(h.get("etag").is_some());
    let (_, h, _) = p.get(&[]).await;
    let etag = header(&h, "etag").to_string();
    let (status, _, _) = p.get(&[("if-match", &etag)]).await;
    assert_eq!(status, 200);
}
}

on_both_backends! {
async fn if_unmodified_since_older_answers_412(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let lm = httpdate::parse_http_date(header(&h, "last-modified")).unwrap();
    let older = httpdate::fmt_http_date(lm - Duration::from_secs(1));
    let (status, _, _) = p.get(&[("if-unmodified-since", &older)]).await;
    assert_eq!(status, 412);
    let (status, _, _) = p
        .get(&[("if-unmodified-since", &httpdate::fmt_http_date(lm))])
        .await;
    assert_eq!(status, 200);
}
}

on_both_backends! {
async fn failed_if_match_wins_over_if_none_match(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let etag = header(&h, "etag").to_string();
    let (status, _, _) = p
        .get(&[("if-match", "\"other\""), ("if-none-match", &etag)])
        .await;
    assert_eq!(status, 412);
}
}

// --- HEAD ---

on_both_backends! {
async fn head_answers_the_headers_of_get_without_body(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, get_h, _) = p.get(&[]).await;
    let (status, h, body) = p.request(Method::HEAD, &p.uri, &[]).await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    for name in [
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
        "content-type",
        "content-disposition",
    ] {
        assert_eq!(header(&h, name), header(&get_h, name), "{name}");
    }
}
}

on_both_backends! {
async fn head_with_range_answers_206_headers(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p
        .request(Method::HEAD, &p.uri, &[("range", "bytes=10-19")])
        .await;
    assert_eq!(status, 206);
    assert!(body.is_empty());
    assert_eq!(header(&h, "content-range"), format!("bytes 10-19/{SIZE}"));
    assert_eq!(header(&h, "content-length"), "10");
}
}

// --- overrides ---

on_both_backends! {
async fn disposition_attachment_with_name(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, _) = p
        .get_query("disposition=attachment&disposition_name=my_file.wav")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename*=UTF-8''my_file.wav; filename=\"my_file.wav\""
    );
}
}

on_both_backends! {
async fn disposition_without_name_uses_the_files_name(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get_query("disposition=attachment").await;
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename*=UTF-8''recording.g722; filename=\"recording.g722\""
    );
}
}

on_both_backends! {
async fn disposition_name_with_crlf_cannot_add_a_header(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, _) = p
        .get_query("disposition_name=a%0D%0ASet-Cookie:%20x=1.wav")
        .await;
    assert_eq!(status, 200);
    assert!(h.get("set-cookie").is_none());
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1.wav; filename=\"a__Set-Cookie: x=1.wav\""
    );
}
}

on_both_backends! {
async fn disposition_name_with_quotes_stays_inside_the_value(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p
        .get_query("disposition_name=a%22%3B%20filename%3D%22evil.exe")
        .await;
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename*=UTF-8''a%22%3B%20filename%3D%22evil.exe; filename=\"a_; filename=_evil.exe\""
    );
}
}

on_both_backends! {
async fn disposition_name_non_ascii_is_percent_encoded(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p
        .get_query("disposition_name=%C3%A9t%C3%A9%20%E2%82%AC.mp3")
        .await;
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename*=UTF-8''%C3%A9t%C3%A9%20%E2%82%AC.mp3; filename=\"_t_ _.mp3\""
    );
}
}

on_both_backends! {
async fn bad_disposition_answers_400_naming_it(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, body) = p.get_query("disposition=download").await;
    assert_eq!(status, 400);
    assert_eq!(error_field(&body), "disposition");
    assert_eq!(header(&h, "access-control-allow-origin"), "*");
}
}

on_both_backends! {
async fn content_type_overrides_the_stored_type(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, h, _) = p.get_query("content_type=audio/G722").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "audio/G722");
}
}

on_both_backends! {
async fn bad_content_type_answers_400_naming_it(backend: Backend) {
    let p = published_on(&backend).await;
    for bad in ["nonsense", "audio/mpeg%0D%0AX-Evil:%201", "%C3%A9/x"] {
        let (status, h, body) = p.get_query(&format!("content_type={bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(error_field(&body), "content_type");
        assert!(h.get("x-evil").is_none());
    }
}
}

on_both_backends! {
async fn cache_headers_no_sets_no_cache(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get_query("cache_headers=no").await;
    assert_eq!(header(&h, "cache-control"), "no-cache");
}
}

on_both_backends! {
async fn cache_headers_seconds_sets_public_max_age(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get_query("cache_headers=3600").await;
    assert_eq!(header(&h, "cache-control"), "public, max-age=3600");
}
}

on_both_backends! {
async fn cache_control_passes_a_seed_directive(backend: Backend) {
    let p = published_on(&backend).await;
    for d in [
        "max-age=60",
        "max-stale",
        "max-stale=30",
        "min-fresh=3600",
        "no-cache",
        "no-store",
        "no-transform",
        "only-if-cached",
    ] {
        let (status, h, _) = p.get_query(&format!("cache_control={d}")).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(header(&h, "cache-control"), d);
    }
}
}

on_both_backends! {
async fn cache_headers_win_over_cache_control(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get_query("cache_control=no-store&cache_headers=60").await;
    assert_eq!(header(&h, "cache-control"), "public, max-age=60");
}
}

on_both_backends! {
async fn bad_cache_parameters_answer_400_naming_them(backend: Backend) {
    let p = published_on(&backend).await;
    for (query, field) in [
        ("cache_headers=soon", "cache_headers"),
        ("cache_headers=-5", "cache_headers"),
        ("cache_control=public", "cache_control"),
        ("cache_control=no-store%0D%0AX-Evil:%201", "cache_control"),
    ] {
        let (status, _, body) = p.get_query(query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error_field(&body), field, "{query}");
    }
}
}

on_both_backends! {
async fn cache_control_appears_on_304(backend: Backend) {
    let p = published_on(&backend).await;
    let (_, h, _) = p.get(&[]).await;
    let etag = header(&h, "etag").to_string();
    let (status, h, _) = p
        .request(
            Method::GET,
            &format!("{}?cache_headers=60", p.uri),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(status, 304);
    assert_eq!(header(&h, "cache-control"), "public, max-age=60");
}
}

// --- signed links ---

on_both_backends! {
async fn signed_link_serves_like_the_publish_uri(backend: Backend) {
    let p = published_on(&backend).await;
    let url = format!("{}&disposition=attachment&cache_headers=no", p.download);
    let (status, h, body) = p
        .request(Method::GET, &url, &[("range", "bytes=5-14")])
        .await;
    assert_eq!(status, 206);
    assert_eq!(body, p.slice(5, 14));
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert!(header(&h, "content-disposition")
        .starts_with("attachment; filename*=UTF-8''recording.g722"));
    assert_eq!(header(&h, "access-control-allow-origin"), "*");
    let (status, _, body) = p.request(Method::GET, &p.download, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, p.bytes);
}
}

on_both_backends! {
async fn signed_link_works_for_an_unpublished_file(backend: Backend) {
    let p = published_on(&backend).await;
    let (status, _) = p
        .server
        .call(
            Method::PATCH,
            &format!("/v1/files/{}", p.sid),
            &p.token,
            Some(json!({"publish": "no"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = p.request(Method::GET, &p.download, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), SIZE);
}
}

on_both_backends! {
async fn tampered_signed_link_answers_403(backend: Backend) {
    let p = published_on(&backend).await;
    let (base, sig) = p.download.rsplit_once("signature=").unwrap();
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' {
                    '1'
                } else {
                    '0'
                }
            } else {
                c
            }
        })
        .collect();
    let (status, h, _) = p
        .request(Method::GET, &format!("{base}signature={flipped}"), &[])
        .await;
    assert_eq!(status, 403);
    assert_eq!(header(&h, "access-control-allow-origin"), "*");
    // A later expiry with the old signature is a changed link too.
    let (path, _) = p.download.split_once("?expires=").unwrap();
    let (status, _, _) = p
        .request(
            Method::GET,
            &format!("{path}?expires=9999999999&signature={sig}"),
            &[],
        )
        .await;
    assert_eq!(status, 403);
}
}

on_both_backends! {
async fn signature_is_checked_before_the_query_overrides(backend: Backend) {
    let p = published_on(&backend).await;
    let (path, _) = p.download.split_once('?').unwrap();
    let (status, _, _) = p
        .request(
            Method::GET,
            &format!("{path}?expires=1&signature=00&disposition=bogus"),
            &[],
        )
        .await;
    assert_eq!(status, 403);
}
}

#[tokio::test]
async fn expired_signed_link_answers_403() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir,
        &[
            "--admin-token",
            common::ADMIN,
            "--download-link-ttl",
            "1s",
            "--test-clock",
        ],
    )
    .await;
    let p = published_with(server, "short.bin").await;
    // The server's test clock, not a wait: links expire by the clock that signs them.
    p.server.advance(2).await;
    let (status, _, body) = p.request(Method::GET, &p.download, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(error_field(&body), "signature");
}

// --- the file going away ---

on_both_backends! {
async fn deleted_file_answers_404_at_once(backend: Backend) {
    let p = published_on(&backend).await;
    // Warm every path, so a cached lookup would show.
    assert_eq!(p.get(&[("range", "bytes=0-9")]).await.0, 206);
    assert_eq!(p.request(Method::GET, &p.download, &[]).await.0, 200);
    let (status, _) = p
        .server
        .call(
            Method::DELETE,
            &format!("/v1/files/{}", p.sid),
            &p.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(p.get(&[]).await.0, 404);
    assert_eq!(p.get(&[("range", "bytes=0-9")]).await.0, 404);
    assert_eq!(p.request(Method::GET, &p.download, &[]).await.0, 404);
}
}

on_both_backends! {
async fn unpublished_file_answers_404_at_once(backend: Backend) {
    let p = published_on(&backend).await;
    assert_eq!(p.get(&[]).await.0, 200);
    let (status, _) = p
        .server
        .call(
            Method::PATCH,
            &format!("/v1/files/{}", p.sid),
            &p.token,
            Some(json!({"publish": "no"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(p.get(&[]).await.0, 404);
}
}

on_both_backends! {
async fn access_name_publish_follows_a_patch_at_once(backend: Backend) {
    let p = published_on(&backend).await;
    assert_eq!(p.get(&[]).await.0, 200);
    let (status, file) = p
        .server
        .call(
            Method::PATCH,
            &format!("/v1/files/{}", p.sid),
            &p.token,
            Some(json!({"publish": "file_access_name"})),
        )
        .await;
    assert_eq!(status, 200, "{file}");
    // Published by access name now: the sid URI is gone, the new one serves.
    assert_eq!(p.get(&[]).await.0, 404);
    let uri = file["publish_uri"].as_str().unwrap();
    let (status, _, body) = p.request(Method::GET, uri, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, p.bytes);
}
}

on_both_backends! {
async fn data_endpoint_honours_ranges(backend: Backend) {
    let p = published_on(&backend).await;
    let resp = p
        .server
        .client
        .get(p.server.url(&format!("/v1/files/{}/data", p.sid)))
        .bearer_auth(&p.token)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.bytes().await.unwrap().to_vec(),
        p.slice(SIZE - 10, SIZE - 1)
    );
}
}
