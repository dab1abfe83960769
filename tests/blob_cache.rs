//! The node's cache of S3 blobs: a hot blob is served from local disk once cached, a deleted
//! file's cached bytes are never served (and go), and a cache smaller than one file still
//! serves it correctly. Runs on PostgreSQL + Garage; skipped when they are missing, unless
//! MEDIASTORE_REQUIRE_TOOLS=1.
#![allow(clippy::unwrap_used)]

mod common;

use common::{bytes, eventually, Backend, Server};
use reqwest::Method;

/// Files in the node's blob cache.
fn cached(s: &Server) -> usize {
    std::fs::read_dir(s.data.path().join("store/blob-cache"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_hot_blob_is_cached_and_a_deleted_files_cached_bytes_are_never_served() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let s = Server::node(&backend, &[]).await;
    let c = s.acme().await;
    let data = bytes(200_000, 3);
    let (_, f) = s
        .upload_raw(&c.token, &[("publish", "file_sid")], data.clone())
        .await;
    let url = f["publish_uri"].as_str().unwrap().to_string();
    let got = s
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == data.as_slice(), "first read, from S3");
    assert!(
        eventually(|| async { cached(&s) == 1 }).await,
        "filled in the background"
    );
    for range in ["bytes=0-99", "bytes=150000-150099", "bytes=-10"] {
        let r = s
            .client
            .get(&url)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        let (start, end) = match range {
            "bytes=0-99" => (0, 100),
            "bytes=150000-150099" => (150_000, 150_100),
            _ => (199_990, 200_000),
        };
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            &data[start..end],
            "{range}"
        );
    }
    let sid = f["file_sid"].as_str().unwrap();
    let (st, _) = s
        .call(Method::DELETE, &format!("/v1/files/{sid}"), &c.token, None)
        .await;
    assert_eq!(st, 204);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 404);
    assert!(
        eventually(|| async { cached(&s) == 0 }).await,
        "the cached copy goes with its file"
    );
}

#[tokio::test]
async fn a_blob_first_read_by_ranges_is_cached_too() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let s = Server::node(&backend, &[]).await;
    let c = s.acme().await;
    let data = bytes(100_000, 4);
    let (_, f) = s
        .upload_raw(&c.token, &[("publish", "file_sid")], data.clone())
        .await;
    let url = f["publish_uri"].as_str().unwrap().to_string();
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    assert!(
        eventually(|| async { cached(&s) == 1 }).await,
        "filled by a GET of its own"
    );
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[99_995..]);
}

#[tokio::test]
async fn a_cache_smaller_than_one_file_still_serves_and_converts_it() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let s = Server::node(&backend, &["--blob-cache", "4KiB"]).await;
    let c = s.acme().await;
    let wav = common::tone_wav(2);
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "tone.wav"), ("publish", "file_sid")],
            wav.clone(),
        )
        .await;
    let url = f["publish_uri"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let got = s
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(got.as_ref() == wav.as_slice());
    }
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &wav[1000..2000]);
    // A conversion reads the whole source through the cache, which cannot keep it.
    let mp3 = s.client.get(format!("{url}?f=mp3")).send().await.unwrap();
    assert_eq!(mp3.status(), 200);
    assert!(mp3.bytes().await.unwrap().len() > 1000);
    assert!(
        eventually(|| async { cached(&s) == 0 }).await,
        "nothing kept beyond its reader"
    );
}
