//! The metadata rules on PostgreSQL under concurrency, restarts and several nodes: each test
//! runs real servers against a fresh database of a throwaway cluster (skipped when PostgreSQL
//! is not installed, unless MEDIASTORE_REQUIRE_TOOLS=1).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::postgres::fresh_database;
use common::{bytes, eventually, Customer, Server, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

/// A server on database `url` with the test clock and a fast cleanup, plus `extra` flags.
async fn pg_server(url: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--metadata-url",
        url,
        "--test-clock",
        "--cleanup-interval",
        "150ms",
    ];
    args.extend_from_slice(extra);
    Server::start_with_flags(&args).await
}

/// (files, bytes) of the caller's account.
async fn account(s: &Server, token: &str) -> (i64, i64) {
    let (_, a) = s.call(Method::GET, "/v1/account", token, None).await;
    (
        a["total_file_count"].as_i64().unwrap(),
        a["total_file_size"].as_i64().unwrap(),
    )
}

/// Uploads `n` files of `size` bytes at once, spread over `nodes` and `containers` in turn;
/// returns the statuses.
async fn race(
    nodes: &[&Server],
    token: &str,
    containers: &[&str],
    n: usize,
    size: usize,
) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = nodes[i % nodes.len()];
        let (client, url, token) = (s.client.clone(), s.url("/v1/files"), token.to_string());
        let sid = containers[i % containers.len()].to_string();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .query(&[("container_sid", sid.as_str())])
                .body(bytes(size, i as u64))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn racing_uploads_fill_a_container_quota_exactly() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s.acme().await;
    let sid = s.container(&c.token, json!({"quota_bytes": 1000})).await;
    let statuses = race(&[&s], &c.token, &[&sid], 24, 100).await;
    assert_eq!(count(&statuses, 201), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 14, "{statuses:?}");
    let cont = s.get_container(&c.token, &sid).await;
    assert_eq!(
        (cont["total_files"].as_i64(), cont["total_bytes"].as_i64()),
        (Some(10), Some(1000))
    );
    assert_eq!(account(&s, &c.token).await, (10, 1000));
}

#[tokio::test]
async fn racing_uploads_into_two_containers_fill_the_customer_quota_exactly() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s
        .customer(json!({"name": "tight", "quota_bytes": 1000, "max_containers": 3}))
        .await;
    let a = s.container(&c.token, json!({"quota_bytes": 1000})).await;
    let b = s.container(&c.token, json!({"quota_bytes": 1000})).await;
    let statuses = race(&[&s], &c.token, &[&a, &b], 24, 100).await;
    assert_eq!(count(&statuses, 201), 10, "{statuses:?}");
    assert_eq!(account(&s, &c.token).await, (10, 1000));
    let ta = s.get_container(&c.token, &a).await["total_bytes"]
        .as_i64()
        .unwrap();
    let tb = s.get_container(&c.token, &b).await["total_bytes"]
        .as_i64()
        .unwrap();
    assert_eq!(
        ta + tb,
        1000,
        "the containers' totals add up to the customer's"
    );
}

#[tokio::test]
async fn two_nodes_on_one_database_never_exceed_one_quota() {
    let Some(url) = fresh_database() else { return };
    // One blob dir for both, as an S3 bucket would be: each node's start-up reconciliation
    // must see the other's bytes.
    let blobs = tempfile::tempdir().unwrap();
    let blob_url = format!("file://{}", blobs.path().join("blobs").display());
    let extra = ["--blob-url", blob_url.as_str()];
    let (n1, n2) = tokio::join!(pg_server(&url, &extra), pg_server(&url, &extra));
    let c = n1.acme().await;
    let sid = n2.container(&c.token, json!({"quota_bytes": 1500})).await;
    let statuses = race(&[&n1, &n2], &c.token, &[&sid], 30, 100).await;
    assert_eq!(count(&statuses, 201), 15, "{statuses:?}");
    assert_eq!(account(&n1, &c.token).await, (15, 1500));
    assert_eq!(account(&n2, &c.token).await, (15, 1500));
}

#[tokio::test]
async fn racing_unique_uploads_let_one_win_and_name_it() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s
        .customer(json!({"name": "many", "max_containers": 5}))
        .await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (client, url, token) = (s.client.clone(), s.url("/v1/files"), c.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .query(&[("unique", "true"), ("string_key_1", "call-9")])
                .body(bytes(50, i))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (st, v) in results.iter().filter(|(st, _)| *st != 201) {
        assert_eq!(*st, 422, "{v}");
        assert_eq!(v["errors"][0]["field"], "unique");
        assert_eq!(v["errors"][0]["reference_sid"], winners[0]["file_sid"]);
    }
    assert_eq!(
        account(&s, &c.token).await,
        (1, 50),
        "losers left nothing in the totals"
    );
    // Containers too, and a taken file_access_name.
    let first = s
        .container(&c.token, json!({"unique": true, "string_key_1": "t"}))
        .await;
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"unique": true, "string_key_1": "t"})),
        )
        .await;
    assert_eq!(
        (st, v["errors"][0]["reference_sid"].as_str()),
        (422, Some(first.as_str()))
    );
    let (st, _) = s
        .upload_raw(&c.token, &[("file_access_name", "taken")], vec![1])
        .await;
    assert_eq!(st, 201);
    let (st, v) = s
        .upload_raw(&c.token, &[("file_access_name", "taken")], vec![1])
        .await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (409, Some("file_access_name")),
        "{v}"
    );
}

#[tokio::test]
async fn a_reject_threshold_honours_its_grace_period_and_re_inclusion() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s.acme().await;
    let sid = s.container(
        &c.token,
        json!({"threshold_action": "reject", "threshold_files": 2, "threshold_grace_period": 300}),
    )
    .await;
    let up = |include: &'static str| {
        let (s, token, sid) = (&s, c.token.clone(), sid.clone());
        async move {
            s.upload_raw(
                &token,
                &[
                    ("container_sid", sid.as_str()),
                    ("threshold_include", include),
                ],
                vec![1; 10],
            )
            .await
        }
    };
    assert_eq!(up("true").await.0, 201);
    assert_eq!(
        up("true").await.0,
        201,
        "reaching the threshold starts the grace period"
    );
    assert_eq!(up("true").await.0, 201, "within the grace period");
    let (_, outside) = up("false").await;
    s.advance(301).await;
    let (st, v) = up("true").await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (429, Some("threshold"))
    );
    let path = format!("/v1/files/{}", outside["file_sid"].as_str().unwrap());
    let (st, _) = s
        .call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"threshold_include": true})),
        )
        .await;
    assert_eq!(st, 429, "re-including is refused as an upload is");
    let cont = s.get_container(&c.token, &sid).await;
    assert_eq!(
        (
            cont["threshold_total_files"].as_i64(),
            cont["total_files"].as_i64()
        ),
        (Some(3), Some(4))
    );
    assert_eq!(
        up("false").await.0,
        201,
        "files outside the threshold still go in"
    );
}

#[tokio::test]
async fn delete_lru_cleans_down_to_the_target() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s.acme().await;
    let sid = s.container(
        &c.token,
        json!({"threshold_action": "delete_lru", "threshold_bytes": 1000, "threshold_bytes_target": 500}),
    )
    .await;
    let mut sids = Vec::new();
    for i in 0..4 {
        let (_, f) = s
            .upload_raw(&c.token, &[("container_sid", sid.as_str())], bytes(300, i))
            .await;
        sids.push(f["file_sid"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        eventually(|| async {
            s.get_container(&c.token, &sid).await["threshold_total_bytes"] == 300
        })
        .await,
        "cleanup did not reach the byte target"
    );
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/files/{}", sids[3]),
            &c.token,
            None,
        )
        .await;
    assert_eq!(st, 200, "the most recent file stays");
    assert_eq!(account(&s, &c.token).await, (1, 300));
}

#[tokio::test]
async fn patch_list_and_delete_keep_the_totals_exact() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s.acme().await;
    let mut sids = Vec::new();
    for i in 0..5u64 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        let (st, f) = s
            .upload_raw(
                &c.token,
                &[("tag", tag), ("name", &format!("f{i}"))],
                vec![1; 10],
            )
            .await;
        assert_eq!(st, 201, "{f}");
        sids.push(f["file_sid"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/v1/files/{}", sids[0]),
            &c.token,
            Some(json!({"name": "renamed", "tag": "odd"})),
        )
        .await;
    assert_eq!((st, v["name"].as_str()), (200, Some("renamed")), "{v}");
    let (_, page) = s
        .call(
            Method::GET,
            "/v1/files?tag=odd&limit=2&page=1",
            &c.token,
            None,
        )
        .await;
    assert_eq!(page["pagination"]["total_records"], 3, "{page}");
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["f3", "f1"], "newest first, paged");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/files/{}", sids[1]),
            &c.token,
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/files/{}", sids[1]),
            &c.token,
            None,
        )
        .await;
    assert_eq!(st, 404);
    assert_eq!(account(&s, &c.token).await, (4, 40));
}

#[tokio::test]
async fn expired_files_go_with_their_totals() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c = s.acme().await;
    let at = (chrono::Utc::now() + chrono::Duration::minutes(61)).to_rfc3339();
    let (st, f) = s
        .upload_raw(&c.token, &[("expires_at", at.as_str())], vec![5; 500])
        .await;
    assert_eq!(st, 201, "{f}");
    s.upload_raw(&c.token, &[], vec![6; 10]).await;
    s.advance(62 * 60).await;
    let sid = f["file_sid"].as_str().unwrap().to_string();
    assert!(
        eventually(|| async {
            s.call(Method::GET, &format!("/v1/files/{sid}"), &c.token, None)
                .await
                .0
                == 404
        })
        .await
    );
    assert_eq!(account(&s, &c.token).await, (1, 10));
}

#[tokio::test]
async fn a_restart_keeps_files_totals_and_links() {
    let Some(url) = fresh_database() else { return };
    let s = pg_server(&url, &[]).await;
    let c: Customer = s.acme().await;
    let data = bytes(5000, 3);
    let (_, f) = s
        .upload_raw(&c.token, &[("publish", "file_sid")], data.clone())
        .await;
    let link = f["uri_download"].as_str().unwrap().to_string();
    let path = link.split_once("/download/").unwrap().1.to_string();
    let dir = s.stop();
    let s = Server::start_in(dir, &["--admin-token", ADMIN, "--metadata-url", &url]).await;
    assert_eq!(account(&s, &c.token).await, (1, 5000));
    let got = s
        .client
        .get(s.url(&format!("/download/{path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test]
async fn two_nodes_share_the_generated_admin_token_and_signed_links() {
    let Some(url) = fresh_database() else { return };
    let blobs = tempfile::tempdir().unwrap();
    let blob_url = format!("file://{}", blobs.path().join("blobs").display());
    let args = [
        "--metadata-url",
        url.as_str(),
        "--blob-url",
        blob_url.as_str(),
    ];
    let (n1, n2) = tokio::join!(
        Server::start_in(tempfile::tempdir().unwrap(), &args),
        Server::start_in(tempfile::tempdir().unwrap(), &args)
    );
    let printed: Vec<&String> = n1
        .stdout_lines
        .iter()
        .chain(&n2.stdout_lines)
        .filter(|l| l.starts_with("admin token"))
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "only the node whose token was stored prints it"
    );
    let token = if n1.admin.is_empty() {
        n2.admin.clone()
    } else {
        n1.admin.clone()
    };
    assert!(printed[0].ends_with(&token));
    for node in [&n1, &n2] {
        let (st, _) = node
            .call(
                Method::POST,
                "/v1/customers",
                &token,
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(st, 201, "both nodes accept the generated token");
    }
    let (st, v) = n1
        .call(
            Method::POST,
            "/v1/customers",
            &token,
            Some(json!({"name": "y"})),
        )
        .await;
    assert_eq!(st, 201);
    let ctoken = v["token"].as_str().unwrap();
    let (_, f) = n1.upload_raw(ctoken, &[], vec![9; 40]).await;
    let path = f["uri_download"]
        .as_str()
        .unwrap()
        .split_once("/download/")
        .unwrap()
        .1
        .to_string();
    let r = n2
        .client
        .get(n2.url(&format!("/download/{path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a link signed by one node works on the other"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[9; 40]);
}
