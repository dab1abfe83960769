//! Several nodes as one service: servers on one PostgreSQL database and one S3 bucket (Garage)
//! racing on the same quotas, sharing the generated admin token and the link-signing key, and
//! starting while another node uploads. Skipped when PostgreSQL or Garage is missing, unless
//! MEDIASTORE_REQUIRE_TOOLS=1.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{bytes, Backend, Server};
use reqwest::Method;
use serde_json::json;

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
            client
                .post(url)
                .bearer_auth(token)
                .query(&[("container_sid", sid.as_str())])
                .body(bytes(size, i as u64))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
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
async fn two_nodes_never_exceed_one_container_quota_and_agree_on_the_totals() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let (n1, n2) = tokio::join!(Server::node(&backend, &[]), Server::node(&backend, &[]));
    let c = n1.acme().await;
    let sid = n2.container(&c.token, json!({"quota_bytes": 1500})).await;
    let statuses = race(&[&n1, &n2], &c.token, &[&sid], 30, 100).await;
    assert_eq!(count(&statuses, 201), 15, "{statuses:?}");
    assert_eq!(n1.totals(&c.token).await, (15, 1500));
    assert_eq!(n2.totals(&c.token).await, (15, 1500));
    assert_eq!(n1.stored_blobs().await, 15, "refused uploads left no bytes");
}

#[tokio::test]
async fn racing_uploads_into_two_containers_on_two_nodes_fill_the_customer_quota_exactly() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let (n1, n2) = tokio::join!(Server::node(&backend, &[]), Server::node(&backend, &[]));
    let c = n1
        .customer(json!({"name": "tight", "quota_bytes": 1000, "max_containers": 3}))
        .await;
    let a = n1.container(&c.token, json!({"quota_bytes": 1000})).await;
    let b = n2.container(&c.token, json!({"quota_bytes": 1000})).await;
    let statuses = race(&[&n1, &n2], &c.token, &[&a, &b], 24, 100).await;
    assert_eq!(count(&statuses, 201), 10, "{statuses:?}");
    assert_eq!(n2.totals(&c.token).await, (10, 1000));
    let total = |v: serde_json::Value| v["total_bytes"].as_i64().unwrap();
    assert_eq!(
        total(n1.get_container(&c.token, &a).await) + total(n2.get_container(&c.token, &b).await),
        1000,
        "the containers' totals add up to the customer's"
    );
}

#[tokio::test]
async fn two_nodes_share_the_generated_admin_token_and_signed_links() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    // No --admin-token: the first node to store its generated token's hash wins.
    let (n1, n2) = tokio::join!(
        Server::start_with(tempfile::tempdir().unwrap(), &[], &backend),
        Server::start_with(tempfile::tempdir().unwrap(), &[], &backend)
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

#[tokio::test]
async fn a_node_starting_up_leaves_another_nodes_upload_in_flight_alone() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let n1 = Server::node(&backend, &[]).await;
    let c = n1.acme().await;
    let data = bytes(20 << 20, 5);
    let addr = n1.base.trim_start_matches("http://").to_string();
    let (token, body) = (c.token.clone(), data.clone());
    // A slow upload on node 1: half its body (a multipart upload already under way), a pause
    // during which node 2 starts and repairs the shared store, then the rest.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let upload = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            sock,
            "POST /v1/files?name=slow.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        let half = body.len() / 2;
        sock.write_all(&body[..half]).unwrap();
        sock.flush().unwrap();
        let _ = started_tx.send(());
        go_rx.recv().unwrap();
        sock.write_all(&body[half..]).unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut sock, &mut answer).unwrap();
        answer
    });
    started_rx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n2 = Server::node(&backend, &[]).await;
    go_tx.send(()).unwrap();
    let answer = upload.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (_, list) = n2.call(Method::GET, "/v1/files", &c.token, None).await;
    let sid = list["items"][0]["file_sid"].as_str().unwrap().to_string();
    let got = n2
        .client
        .get(n2.url(&format!("/v1/files/{sid}/data")))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert!(got.bytes().await.unwrap().as_ref() == data.as_slice());
}

/// Polls `url` on `node` until it answers `status`; how long that took.
async fn until_status(node: &Server, url: &str, status: u16) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let got = node.client.get(url).send().await.unwrap().status().as_u16();
        if got == status || started.elapsed() > Duration::from_secs(5) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_delete_or_unpublish_on_one_node_stops_every_node_serving_within_a_second() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let (n1, n2) = tokio::join!(Server::node(&backend, &[]), Server::node(&backend, &[]));
    let c = n1.acme().await;
    let mut uris = Vec::new();
    for name in ["a.bin", "b.bin"] {
        let (st, f) = n2
            .upload_raw(
                &c.token,
                &[("name", name), ("publish", "file_sid")],
                vec![7; 5000],
            )
            .await;
        assert_eq!(st, 201);
        let path = f["publish_uri"]
            .as_str()
            .unwrap()
            .trim_start_matches(&n2.base)
            .to_string();
        // Node 1 serves it, and keeps it in its publish cache.
        for _ in 0..3 {
            let r = n1.client.get(n1.url(&path)).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        uris.push((f["file_sid"].as_str().unwrap().to_string(), path));
    }
    let (sid, path) = &uris[0];
    let (st, _) = n2
        .call(Method::DELETE, &format!("/v1/files/{sid}"), &c.token, None)
        .await;
    assert_eq!(st, 204);
    let took = until_status(&n1, &n1.url(path), 404).await;
    assert!(
        took < Duration::from_secs(1),
        "deleted: node 1 still served it after {took:?}"
    );

    let (sid, path) = &uris[1];
    let (st, _) = n2
        .call(
            Method::PATCH,
            &format!("/v1/files/{sid}"),
            &c.token,
            Some(json!({"publish": "no"})),
        )
        .await;
    assert_eq!(st, 200);
    let took = until_status(&n1, &n1.url(path), 404).await;
    assert!(
        took < Duration::from_secs(1),
        "unpublished: node 1 still served it after {took:?}"
    );
}

#[tokio::test]
async fn a_copy_converted_on_one_node_is_served_by_another_without_converting_and_goes_with_its_file(
) {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let (n1, n2) = tokio::join!(Server::node(&backend, &[]), Server::node(&backend, &[]));
    let c = n1.acme().await;
    let (st, f) = n1
        .upload_raw(
            &c.token,
            &[("name", "greeting.wav"), ("publish", "file_sid")],
            common::tone_wav(3),
        )
        .await;
    assert_eq!(st, 201);
    let path = format!(
        "{}?f=mp3",
        f["publish_uri"]
            .as_str()
            .unwrap()
            .trim_start_matches(&n1.base)
    );
    let made = n1.client.get(n1.url(&path)).send().await.unwrap();
    assert_eq!(made.status(), 200);
    let made = made.bytes().await.unwrap();
    // The copy is shared in the background once converted.
    let shared = common::eventually(|| async { n1.stored_blobs().await == 2 }).await;
    assert!(shared, "the copy was not stored beside the file");
    let got = n2.client.get(n2.url(&path)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.bytes().await.unwrap() == made, "the same copy");
    let ranged = n2
        .client
        .get(n2.url(&path))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap(), made.slice(100..200));
    assert!(n1.log().contains(" conversion"), "node 1 converted it");
    let log = n2.log();
    assert!(log.contains("shared copy"), "{log}");
    assert!(
        !log.contains(" conversion"),
        "node 2 converted nothing:\n{log}"
    );

    let sid = f["file_sid"].as_str().unwrap();
    let (st, _) = n2
        .call(Method::DELETE, &format!("/v1/files/{sid}"), &c.token, None)
        .await;
    assert_eq!(st, 204);
    assert_eq!(n1.stored_blobs().await, 0, "the file's copy went with it");
}

#[tokio::test]
async fn a_node_that_loses_its_channel_reads_through_and_listens_again() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let Backend::Distributed {
        metadata_url: Some(db),
        ..
    } = &backend
    else {
        return;
    };
    let (n1, n2) = tokio::join!(Server::node(&backend, &[]), Server::node(&backend, &[]));
    let c = n1.acme().await;
    let (_, f) = n2
        .upload_raw(&c.token, &[("publish", "file_sid")], vec![1; 100])
        .await;
    let path = f["publish_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches(&n2.base)
        .to_string();
    assert_eq!(
        n1.client.get(n1.url(&path)).send().await.unwrap().status(),
        200
    );
    // Cut every node's listening session, as a network blip or a database restart would.
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(cut.len() >= 2, "both nodes were listening");
    // A change made meanwhile is still seen by node 1.
    let sid = f["file_sid"].as_str().unwrap();
    let (st, _) = n2
        .call(
            Method::PATCH,
            &format!("/v1/files/{sid}"),
            &c.token,
            Some(json!({"publish": "no"})),
        )
        .await;
    assert_eq!(st, 200);
    let took = until_status(&n1, &n1.url(&path), 404).await;
    assert!(
        took < Duration::from_secs(1),
        "served for {took:?} after the unpublish"
    );
    let relistened = common::eventually(|| async {
        let log = n1.log();
        log.contains("lost the channel") && log.matches("listening to other nodes").count() >= 2
    })
    .await;
    assert!(
        relistened,
        "node 1 noticed and listens again:\n{}",
        n1.log()
    );
}
