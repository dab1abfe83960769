//! Three mediastore nodes on one PostgreSQL database and a three-node Garage cluster
//! (`replication_factor = 3`), each node talking to its own Garage node, behave as one service:
//! what one node stores every node serves, quotas hold across them, a `delete_lru` pass runs
//! once, a node killed mid-upload leaves nothing, and a Garage node going down and coming back
//! does not stop reads or writes. Skipped when PostgreSQL or Garage is missing, unless
//! MEDIASTORE_REQUIRE_TOOLS=1.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::garage_cluster::GarageCluster;
use common::{bytes, eventually, Backend, Server};
use reqwest::Method;
use serde_json::json;

/// The cluster: Garage, a database, and `n` mediastore nodes (node i on Garage node i).
struct Service {
    garage: GarageCluster,
    nodes: Vec<Server>,
}

async fn service(n: usize, extra: &[&str]) -> Option<Service> {
    let garage = GarageCluster::start(n)?;
    let db = common::postgres::fresh_database()?;
    let blob_url = format!("s3://{}/media", garage.bucket);
    let backends: Vec<Backend> = (0..n)
        .map(|i| Backend::Distributed {
            metadata_url: Some(db.clone()),
            blob_url: blob_url.clone(),
            env: garage.env(i),
        })
        .collect();
    let mut nodes = Vec::new();
    for b in &backends {
        nodes.push(node(b, extra).await);
    }
    Some(Service { garage, nodes })
}

async fn node(backend: &Backend, extra: &[&str]) -> Server {
    let mut args = vec!["--test-clock", "--cleanup-interval", "150ms"];
    args.extend_from_slice(extra);
    Server::node(backend, &args).await
}

#[tokio::test]
async fn three_nodes_on_a_replicated_garage_act_as_one_service() {
    let Some(mut svc) = service(3, &[]).await else {
        return;
    };
    let [n1, n2, n3] = [&svc.nodes[0], &svc.nodes[1], &svc.nodes[2]];
    let c = n1.acme().await;

    // What node 1 stores, nodes 2 and 3 serve.
    let data = bytes(300_000, 1);
    let (st, f) = n1
        .upload_raw(
            &c.token,
            &[("name", "a.bin"), ("publish", "file_sid")],
            data.clone(),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    let path = f["publish_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches(&n1.base)
        .to_string();
    for n in [n2, n3] {
        let got = n.client.get(n.url(&path)).send().await.unwrap();
        assert_eq!(got.status(), 200);
        assert!(got.bytes().await.unwrap().as_ref() == data.as_slice());
    }

    // 24 uploads raced over the three nodes against room for 10.
    let csid = n2.container(&c.token, json!({"quota_bytes": 10_000})).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let n = &svc.nodes[i % 3];
        let (client, url, token, csid) = (
            n.client.clone(),
            n.url("/v1/files"),
            c.token.clone(),
            csid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .query(&[("container_sid", csid)])
                .body(bytes(1000, 100 + i as u64))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap() == 201);
    }
    assert_eq!(ok, 10);
    for n in [n1, n2, n3] {
        assert_eq!(
            n.totals(&c.token).await,
            (11, 310_000),
            "every node sees the same totals"
        );
    }

    // One Garage node goes down: reads and writes go on through the others.
    svc.garage.stop_node(2);
    let more = bytes(50_000, 2);
    let (st, g) = n1
        .upload_raw(
            &c.token,
            &[("name", "during.bin"), ("publish", "file_sid")],
            more.clone(),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    let gpath = g["publish_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches(&n1.base)
        .to_string();
    let got = n2.client.get(n2.url(&gpath)).send().await.unwrap();
    assert!(got.bytes().await.unwrap().as_ref() == more.as_slice());
    let got = n2.client.get(n2.url(&path)).send().await.unwrap();
    assert!(got.bytes().await.unwrap().as_ref() == data.as_slice());
    // ... and comes back: the node talking to it serves both files again.
    svc.garage.start_node(2);
    let back = eventually(|| async {
        let r = n3.client.get(n3.url(&gpath)).send().await.unwrap();
        r.status() == 200 && r.bytes().await.unwrap().as_ref() == more.as_slice()
    })
    .await;
    assert!(back, "node 3 serves again once its Garage node is back");
}

#[tokio::test]
async fn a_delete_lru_pass_runs_once_across_three_nodes() {
    let Some(svc) = service(3, &[]).await else {
        return;
    };
    let n1 = &svc.nodes[0];
    let c = n1.acme().await;
    let sid = n1.container(&c.token, json!({})).await;
    for i in 0..8 {
        let (st, _) = n1
            .upload_raw(&c.token, &[("container_sid", sid.as_str())], bytes(100, i))
            .await;
        assert_eq!(st, 201);
    }
    let (st, v) = n1
        .call(
            Method::PATCH,
            &format!("/v1/containers/{sid}"),
            &c.token,
            Some(json!({"threshold_action": "delete_lru", "threshold_files": 8, "threshold_files_target": 3})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let done = eventually(|| async {
        n1.get_container(&c.token, &sid).await["threshold_total_files"] == 3
    })
    .await;
    assert!(done, "the cleanup brought the container to its target");
    // Several more passes on every node: nothing below the target, each file deleted once.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(n1.totals(&c.token).await, (3, 300));
    assert_eq!(n1.stored_blobs().await, 3);
    let evicted: usize = svc
        .nodes
        .iter()
        .map(|n| {
            n.log()
                .lines()
                .filter(|l| l.contains(" cleanup"))
                .filter_map(|l| l.split("evicted=").nth(1))
                .filter_map(|v| v.split_whitespace().next()?.parse::<usize>().ok())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(evicted, 5, "five files evicted in all, by one pass");
}

#[tokio::test]
async fn a_node_killed_mid_upload_leaves_nothing_behind_and_nothing_in_the_totals() {
    let Some(backend) = Backend::distributed() else {
        return;
    };
    let n1 = node(&backend, &[]).await;
    let c = n1.acme().await;
    let addr = n1.base.trim_start_matches("http://").to_string();
    let token = c.token.clone();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        let body = bytes(20 << 20, 9);
        let _ = write!(
            sock,
            "POST /v1/files?name=big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            40 << 20
        );
        let _ = sock.write_all(&body);
        let _ = sent_tx.send(());
        std::thread::sleep(Duration::from_secs(2));
    });
    sent_rx.recv().unwrap();
    // A multipart upload is under way on node 1 when it dies.
    let began = eventually(|| async { n1.unfinished_uploads().await >= 1 }).await;
    assert!(began, "the upload became a multipart upload");
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(n1.pid().to_string())
        .status();
    client.join().unwrap();
    let before = n1.unfinished_uploads().await;
    assert!(before >= 1, "the dead node left its upload unfinished");
    // Once the grace period has passed (here at once), the next node to start sweeps it.
    let n2 = node(&backend, &["--upload-grace", "0s"]).await;
    assert_eq!(n2.unfinished_uploads().await, 0, "swept");
    assert_eq!(n2.stored_blobs().await, 0, "no bytes left");
    assert_eq!(n2.totals(&c.token).await, (0, 0), "nothing in the totals");
}
