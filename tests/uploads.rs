//! Uploads that lose nothing: both forms, quotas under racing uploads, cut-off bodies, size
//! limits, restarts, and the admin token's first start.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{bytes, Server, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_backends! {
async fn both_upload_forms_store_the_exact_bytes_and_checksum(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let data = bytes(300_000, 1);
    let sum = hex::encode(Sha256::digest(&data));
    let (st, raw) = s
        .upload_raw(&c.token, &[("name", "raw.bin")], data.clone())
        .await;
    assert_eq!(st, 201);
    let (st, mp) = s
        .upload_multipart(
            &c.token,
            json!({"tag": "mp"}),
            "from-filename.bin",
            data.clone(),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(
        mp["name"], "from-filename.bin",
        "the data part's filename names the file"
    );
    for f in [&raw, &mp] {
        assert_eq!(f["size"], 300_000);
        assert_eq!(f["checksum_sha256"], sum.as_str());
        let sid = f["file_sid"].as_str().unwrap();
        let got = s
            .client
            .get(s.url(&format!("/v1/files/{sid}/data")))
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());
    }
    assert_eq!(s.totals(&c.token).await, (2, 600_000));
}
}

on_both_backends! {
async fn content_is_detected_from_the_bytes_first(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let mut wav = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\0\0\0\0".to_vec();
    wav.extend_from_slice(&[0; 16]);
    let (_, f) = s.upload_raw(&c.token, &[("name", "noext")], wav).await;
    assert_eq!(
        (
            f["content_format"].as_str(),
            f["mime_type"].as_str(),
            f["content_classification"].as_str()
        ),
        (Some("wav"), Some("audio/x-wav"), Some("media"))
    );
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "song.wav"), ("content_classification", "media")],
            b"\x7fELF\x02\x01\x01\0".to_vec(),
        )
        .await;
    assert_eq!(
        f["content_classification"], "executable",
        "executable bytes stay executable"
    );
    let (_, f) = s
        .upload_raw(&c.token, &[("name", "call.g722")], vec![0x5a; 64])
        .await;
    assert_eq!(
        (f["content_format"].as_str(), f["mime_type"].as_str()),
        (Some("g722"), Some("audio/G722"))
    );
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "blob"), ("content_format", "alaw")],
            vec![0xd5; 64],
        )
        .await;
    assert_eq!(f["content_format"], "alaw");
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "doc"), ("mime_type", "application/pdf")],
            b"%PDF-1.4 ...".to_vec(),
        )
        .await;
    assert_eq!(f["content_classification"], "document");
}
}

on_both_backends! {
async fn racing_uploads_never_exceed_the_container_quota(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, cont) = s
        .call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"quota_bytes": 10_000})),
        )
        .await;
    let csid = cont["container_sid"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, url, token, csid) = (
            s.client.clone(),
            s.url("/v1/files"),
            c.token.clone(),
            csid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .query(&[("container_sid", csid)])
                .body(bytes(1000, i))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 201).count(), 10, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 14, "{codes:?}");
    let (_, cont) = s
        .call(
            Method::GET,
            &format!("/v1/containers/{csid}"),
            &c.token,
            None,
        )
        .await;
    assert_eq!(
        (cont["total_bytes"].as_i64(), cont["total_files"].as_i64()),
        (Some(10_000), Some(10))
    );
    assert_eq!(s.totals(&c.token).await, (10, 10_000));
    assert_eq!(s.stored_blobs().await, 10, "refused uploads left no bytes");
}
}

on_both_backends! {
async fn racing_uploads_never_exceed_the_customer_quota(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s
        .customer(json!({"name": "tiny", "quota_bytes": 5_000}))
        .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, url, token) = (s.client.clone(), s.url("/v1/files"), c.token.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .body(bytes(1000, i))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let code = t.await.unwrap();
        assert!(code == 201 || code == 429, "{code}");
        ok += usize::from(code == 201);
    }
    assert_eq!(ok, 5);
    assert_eq!(s.totals(&c.token).await, (5, 5_000));
    assert_eq!(s.stored_blobs().await, 5);
}
}

on_both_backends! {
async fn quota_files_counts_files(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, cont) = s
        .call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"quota_files": 2})),
        )
        .await;
    let csid = cont["container_sid"].as_str().unwrap();
    for expect in [201, 201, 429] {
        let (st, v) = s
            .upload_raw(&c.token, &[("container_sid", csid)], vec![1; 3])
            .await;
        assert_eq!(st, expect, "{v}");
        if st == 429 {
            assert_eq!(v["errors"][0]["field"], "quota_files");
        }
    }
}
}

on_both_backends! {
async fn an_upload_cut_off_mid_body_leaves_nothing(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        sock,
        "POST /v1/files?name=cut.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n",
        c.token
    )
    .unwrap();
    sock.write_all(&bytes(200_000, 3)).unwrap();
    sock.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(sock);
    // Give the server a moment to notice the cut and clean up.
    for _ in 0..50 {
        if s.unfinished_uploads().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.unfinished_uploads().await, 0, "no unfinished upload left");
    assert_eq!(s.stored_blobs().await, 0);
    assert_eq!(s.totals(&c.token).await, (0, 0));
    let (_, list) = s.call(Method::GET, "/v1/files", &c.token, None).await;
    assert_eq!(list["pagination"]["total_records"], 0);
}
}

on_both_backends! {
async fn max_file_size_refuses_with_413_and_stores_nothing(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, cont) = s
        .call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"max_file_size": 1000})),
        )
        .await;
    let csid = cont["container_sid"].as_str().unwrap();
    // Known from Content-Length.
    let (st, v) = s
        .upload_raw(&c.token, &[("container_sid", csid)], vec![1; 1001])
        .await;
    assert_eq!(st, 413);
    assert_eq!(v["errors"][0]["field"], "max_file_size");
    // Found while streaming (multipart: the part's length is not declared).
    let (st, _) = s
        .upload_multipart(
            &c.token,
            json!({"container_sid": csid}),
            "big.bin",
            vec![1; 5000],
        )
        .await;
    assert_eq!(st, 413);
    let (st, _) = s
        .upload_raw(&c.token, &[("container_sid", csid)], vec![1; 1000])
        .await;
    assert_eq!(st, 201);
    assert_eq!(s.totals(&c.token).await, (1, 1000));
    assert_eq!(s.stored_blobs().await, 1);
}
}

on_both_backends! {
async fn a_restart_keeps_every_file_and_total(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let data = bytes(50_000, 9);
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "keep.bin"), ("publish", "file_sid")],
            data.clone(),
        )
        .await;
    s.upload_raw(&c.token, &[("name", "two.bin")], vec![1; 10])
        .await;
    let before = s.totals(&c.token).await;
    let data_dir = s.stop();
    // A stray unfinished upload and orphan bytes, as a crash would leave them.
    let orphan = "ffffffffffffffffffffffffffffffff";
    common::leave_crash_leftovers(&backend, data_dir.path(), orphan).await;
    assert_eq!(backend.unfinished_uploads(data_dir.path()).await, 1);
    // On a shared store only leftovers older than the grace period go; here, all of them.
    let s = Server::start_with(
        data_dir,
        &["--admin-token", ADMIN, "--upload-grace", "0s"],
        &backend,
    )
    .await;
    assert_eq!(s.totals(&c.token).await, before);
    let sid = f["file_sid"].as_str().unwrap();
    let got = s
        .client
        .get(s.url(&format!("/f/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());
    assert_eq!(s.stored_blobs().await, 2, "orphan bytes were removed at start");
    assert_eq!(s.unfinished_uploads().await, 0, "unfinished uploads were swept");
}
}

on_both_backends! {
async fn a_file_whose_bytes_vanished_is_removed_at_start_with_its_totals(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, gone) = s
        .upload_raw(&c.token, &[("name", "gone.bin")], vec![1; 700])
        .await;
    s.upload_raw(&c.token, &[("name", "kept.bin")], vec![2; 30])
        .await;
    // Remove the blob holding the 700 bytes, as an operator's mistake would.
    let key = s
        .blob_with_checksum(gone["checksum_sha256"].as_str().unwrap())
        .await;
    s.remove_blob(&key).await;
    let data_dir = s.stop();
    let s = Server::restart(data_dir, &backend).await;
    assert_eq!(s.totals(&c.token).await, (1, 30));
    let sid = gone["file_sid"].as_str().unwrap();
    assert_eq!(
        s.call(Method::GET, &format!("/v1/files/{sid}"), &c.token, None)
            .await
            .0,
        404
    );
}
}

#[tokio::test]
async fn the_admin_token_is_generated_once_printed_once_and_kept_private() {
    let data = tempfile::tempdir().unwrap();
    let s = Server::start_in(data, &[]).await;
    let printed: Vec<&String> = s
        .stdout_lines
        .iter()
        .filter(|l| l.starts_with("admin token"))
        .collect();
    assert_eq!(printed.len(), 1);
    let path = s.data.path().join("store/admin_token");
    let token = std::fs::read_to_string(&path).unwrap();
    assert!(printed[0].ends_with(token.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/customers",
            token.trim(),
            Some(json!({"name": "a"})),
        )
        .await;
    assert_eq!(st, 201);
    assert!(
        !s.log().contains(token.trim()),
        "the token never reaches the log"
    );
    let data = s.stop();
    let s = Server::start_in(data, &[]).await;
    assert!(
        s.stdout_lines.iter().all(|l| !l.starts_with("admin token")),
        "printed only on first start"
    );
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/customers",
            token.trim(),
            Some(json!({"name": "b"})),
        )
        .await;
    assert_eq!(st, 201);
}

#[tokio::test]
async fn a_restart_keeps_the_generated_admin_token_and_old_signed_links() {
    let s = Server::start_in(tempfile::tempdir().unwrap(), &[]).await;
    let token = s.admin.clone();
    assert!(!token.is_empty());
    let c = s.customer(json!({"name": "a"})).await;
    let (_, f) = s.upload_raw(&c.token, &[], vec![3; 30]).await;
    let link = f["uri_download"].as_str().unwrap().to_string();
    let path = link.split_once("/download/").unwrap().1.to_string();
    let data = s.stop();
    let s = Server::start_in(data, &[]).await;
    assert!(s.stdout_lines.iter().all(|l| !l.starts_with("admin token")));
    assert_eq!(s.admin, token, "the kept token file is unchanged");
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/customers",
            &token,
            Some(json!({"name": "b"})),
        )
        .await;
    assert_eq!(st, 201, "the generated token still works");
    let r = s
        .client
        .get(s.url(&format!("/download/{path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a link signed before the restart still works"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[3; 30]);
}

#[tokio::test]
async fn a_data_dir_from_before_the_secrets_table_keeps_its_token_and_key() {
    // What an earlier version left: the token and the key as files, no secrets in the database.
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("admin_token"), "old-admin-token-0123456789\n").unwrap();
    let key = bytes(32, 77);
    std::fs::write(store.join("signing_key"), &key).unwrap();
    let s = Server::start_in(data, &[]).await;
    assert!(s.stdout_lines.iter().all(|l| !l.starts_with("admin token")));
    let c = s
        .call(
            Method::POST,
            "/v1/customers",
            "old-admin-token-0123456789",
            Some(json!({"name": "a"})),
        )
        .await;
    assert_eq!(c.0, 201, "{}", c.1);
    let token = c.1["token"].as_str().unwrap().to_string();
    let (_, f) = s.upload_raw(&token, &[], vec![4; 20]).await;
    let sid = f["file_sid"].as_str().unwrap();
    let expires = chrono::Utc::now().timestamp() + 600;
    let signature = mediastore::domain::signing::LinkSigner::new(key).sign(sid, expires);
    let r = s
        .client
        .get(s.url(&format!(
            "/download/{sid}?expires={expires}&signature={signature}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a link signed with the old key file works");
}

#[tokio::test]
async fn every_request_is_logged_once_without_its_token() {
    let s = Server::start().await;
    let c = s.acme().await;
    s.call(Method::GET, "/v1/account", &c.token, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("path=/v1/account"))
        .expect("request line");
    for field in ["method=GET", "status=200", "bytes=", "duration_us="] {
        assert!(line.contains(field), "{line}");
    }
    assert!(!log.contains(&c.token));
    assert!(!log.contains(ADMIN));
}

on_both_backends! {
async fn sigterm_lets_an_in_flight_upload_finish(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let req = s
        .client
        .post(s.url("/v1/files"))
        .bearer_auth(&c.token)
        .query(&[("name", "slow.bin")])
        .body(body)
        .send();
    let task = tokio::spawn(req);
    tx.send(Ok(vec![1; 1000])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SIGTERM while the upload is in flight.
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(s.pid().to_string())
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send(Ok(vec![2; 1000])).await.unwrap();
    drop(tx);
    let resp = task.await.unwrap().unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["size"], 2000);
}
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

on_both_backends! {
async fn multipart_parts_in_either_order_follow_the_named_container(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    // The default (first) container only takes tiny files; the second takes anything.
    let (_, small) = s
        .call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"max_file_size": 10})),
        )
        .await;
    let (_, big) = s
        .call(Method::POST, "/v1/containers", &c.token, Some(json!({})))
        .await;
    let big_sid = big["container_sid"].as_str().unwrap();
    let form = reqwest::multipart::Form::new()
        .part(
            "data",
            reqwest::multipart::Part::bytes(vec![7u8; 5000]).file_name("late.bin"),
        )
        .text("file_object", json!({"container_sid": big_sid}).to_string());
    let r = s
        .client
        .post(s.url("/v1/files"))
        .bearer_auth(&c.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let f: Value = r.json().await.unwrap();
    assert_eq!(f["container_sid"], big_sid);
    // data first into the small container: its limit still applies once it is named.
    let form = reqwest::multipart::Form::new()
        .part(
            "data",
            reqwest::multipart::Part::bytes(vec![7u8; 5000]).file_name("x.bin"),
        )
        .text(
            "file_object",
            json!({"container_sid": small["container_sid"]}).to_string(),
        );
    let r = s
        .client
        .post(s.url("/v1/files"))
        .bearer_auth(&c.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A second file_object is refused, before or after the data.
    let form = reqwest::multipart::Form::new()
        .text("file_object", json!({"name": "first.bin"}).to_string())
        .part(
            "data",
            reqwest::multipart::Part::bytes(vec![1u8; 5]).file_name("x.bin"),
        )
        .text("file_object", json!({"name": "second.bin"}).to_string());
    let r = s
        .client
        .post(s.url("/v1/files"))
        .bearer_auth(&c.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.totals(&c.token).await, (1, 5000));
    assert_eq!(s.stored_blobs().await, 1);
}
}

/// Bigger than two S3 parts (8 MiB each by default), so it is sent as a multipart upload.
const LARGE: usize = 20 << 20;

on_both_backends! {
async fn a_large_upload_streams_through_and_reads_back_exactly(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let data = bytes(LARGE, 21);
    let (st, f) = s
        .upload_raw(&c.token, &[("name", "large.bin"), ("publish", "file_sid")], data.clone())
        .await;
    assert_eq!(st, 201, "{f}");
    assert_eq!(f["checksum_sha256"], hex::encode(Sha256::digest(&data)).as_str());
    let uri = f["publish_uri"].as_str().unwrap();
    let whole = s.client.get(uri).send().await.unwrap().bytes().await.unwrap();
    assert!(whole.as_ref() == data.as_slice(), "whole file differs");
    // A range across the boundary of the first two parts.
    let part = s
        .client
        .get(uri)
        .header("range", "bytes=8388000-8389000")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data[8388000..=8389000]);
    assert_eq!(s.stored_blobs().await, 1);
    assert_eq!(s.unfinished_uploads().await, 0);
}
}

on_both_backends! {
async fn a_large_upload_cut_off_mid_body_leaves_no_unfinished_upload(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let token = c.token.clone();
    // Two parts' worth sent of a body announced twice as long, then the client is gone.
    tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            sock,
            "POST /v1/files?name=cut.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            2 * LARGE
        )
        .unwrap();
        sock.write_all(&bytes(LARGE, 22)).unwrap();
        sock.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    })
    .await
    .unwrap();
    for _ in 0..100 {
        if s.unfinished_uploads().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.unfinished_uploads().await, 0, "the multipart upload was aborted");
    assert_eq!(s.stored_blobs().await, 0);
    assert_eq!(s.totals(&c.token).await, (0, 0));
}
}
