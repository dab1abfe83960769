//! Container policies and lifecycle: thresholds with grace periods, LRU cleanup,
//! classifications, unique keys, expiry.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{bytes, eventually, Server, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

async fn policy_server(backend: &common::Backend) -> Server {
    Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--admin-token",
            ADMIN,
            "--test-clock",
            "--cleanup-interval",
            "150ms",
        ],
        backend,
    )
    .await
}

async fn container(s: &Server, token: &str, body: Value) -> String {
    s.container(token, body).await
}

async fn advance(s: &Server, secs: i64) {
    s.advance(secs).await
}

async fn get_container(s: &Server, token: &str, sid: &str) -> Value {
    s.get_container(token, sid).await
}

on_both_backends! {
async fn reject_threshold_lets_uploads_through_during_the_grace_period_then_stops_them(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let sid = container(
        &s,
        &c.token,
        json!({"threshold_action": "reject", "threshold_files": 2, "threshold_grace_period": 300}),
    )
    .await;
    let up = |name: &'static str| {
        let (s, token, sid) = (&s, c.token.clone(), sid.clone());
        async move {
            s.upload_raw(
                &token,
                &[("container_sid", sid.as_str()), ("name", name)],
                vec![1; 10],
            )
            .await
        }
    };
    assert_eq!(up("1").await.0, 201);
    assert_eq!(
        up("2").await.0,
        201,
        "the upload that reaches the threshold is accepted"
    );
    // Threshold reached: the 300 s grace period started now.
    assert_eq!(up("3").await.0, 201);
    advance(&s, 200).await;
    assert_eq!(up("4").await.0, 201, "still within the grace period");
    advance(&s, 101).await;
    let (st, v) = up("5").await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["errors"][0]["field"], "threshold");
    let cont = get_container(&s, &c.token, &sid).await;
    assert_eq!(cont["threshold_total_files"], 4);
    assert_eq!(cont["threshold_available_files_percent"], 0.0);
    assert_eq!(cont["total_files"], 4, "the refused upload left nothing");
    // Files outside the threshold still go in.
    let (st, _) = s
        .upload_raw(
            &c.token,
            &[
                ("container_sid", sid.as_str()),
                ("threshold_include", "false"),
            ],
            vec![1; 10],
        )
        .await;
    assert_eq!(st, 201);
}
}

on_both_backends! {
async fn without_a_grace_period_the_threshold_rejects_at_once_and_deleting_reopens_it(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let sid = container(
        &s,
        &c.token,
        json!({"threshold_action": "reject", "threshold_bytes": 100}),
    )
    .await;
    let (_, f) = s
        .upload_raw(&c.token, &[("container_sid", sid.as_str())], vec![1; 100])
        .await;
    let (st, _) = s
        .upload_raw(&c.token, &[("container_sid", sid.as_str())], vec![1; 1])
        .await;
    assert_eq!(st, 429);
    let cont = get_container(&s, &c.token, &sid).await;
    assert_eq!(
        (
            cont["threshold_total_bytes"].as_i64(),
            cont["threshold_available_bytes_percent"].as_f64()
        ),
        (Some(100), Some(0.0))
    );
    s.call(
        Method::DELETE,
        &format!("/v1/files/{}", f["file_sid"].as_str().unwrap()),
        &c.token,
        None,
    )
    .await;
    let (st, _) = s
        .upload_raw(&c.token, &[("container_sid", sid.as_str())], vec![1; 40])
        .await;
    assert_eq!(st, 201);
    let cont = get_container(&s, &c.token, &sid).await;
    assert_eq!(cont["threshold_available_bytes_percent"], 60.0);
}
}

on_both_backends! {
async fn re_including_a_file_past_a_reached_reject_threshold_is_refused_and_changes_nothing(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let sid = container(
        &s,
        &c.token,
        json!({"threshold_action": "reject", "threshold_bytes": 100}),
    )
    .await;
    let (st, _) = s
        .upload_raw(&c.token, &[("container_sid", sid.as_str())], vec![1; 100])
        .await;
    assert_eq!(st, 201);
    let (st, outside) = s
        .upload_raw(
            &c.token,
            &[
                ("container_sid", sid.as_str()),
                ("threshold_include", "false"),
            ],
            vec![1; 10],
        )
        .await;
    assert_eq!(st, 201);
    let before = get_container(&s, &c.token, &sid).await;
    let path = format!("/v1/files/{}", outside["file_sid"].as_str().unwrap());
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"threshold_include": true})),
        )
        .await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["errors"][0]["field"], "threshold");
    let after = get_container(&s, &c.token, &sid).await;
    for field in [
        "threshold_total_bytes",
        "threshold_total_files",
        "total_bytes",
        "total_files",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["threshold_total_bytes"], 100);
    let (_, file) = s.call(Method::GET, &path, &c.token, None).await;
    assert_eq!(
        file["threshold_include"], false,
        "the refused PATCH changed nothing"
    );
}
}

on_both_backends! {
async fn no_action_threshold_never_rejects(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let sid = container(
        &s,
        &c.token,
        json!({"threshold_action": "no_action", "threshold_files": 1}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            s.upload_raw(&c.token, &[("container_sid", sid.as_str())], vec![1; 5])
                .await
                .0,
            201
        );
    }
}
}

on_both_backends! {
async fn thresholds_are_validated_against_quotas_and_targets(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    for (body, field) in [
        (
            json!({"quota_bytes": 1000, "threshold_bytes": 2000}),
            "threshold_bytes",
        ),
        (
            json!({"quota_files": 5, "threshold_files": 6}),
            "threshold_files",
        ),
        (
            json!({"threshold_action": "delete_lru", "threshold_files": 5}),
            "threshold_bytes_target",
        ),
        (
            json!({"threshold_action": "delete_lru", "threshold_files": 5, "threshold_files_target": 6}),
            "threshold_files_target",
        ),
        (json!({"threshold_action": "reject"}), "threshold_bytes"),
        (
            json!({"allowed_classifications": ["media"], "blocked_classifications": ["media"]}),
            "blocked_classifications",
        ),
    ] {
        let (st, v) = s
            .call(Method::POST, "/v1/containers", &c.token, Some(body.clone()))
            .await;
        assert_eq!(st, 422, "{body}: {v}");
        assert_eq!(v["errors"][0]["field"], field, "{body}");
    }
    for (body, field) in [
        (json!({"threshold_action": "sometimes"}), "threshold_action"),
        (
            json!({"allowed_classifications": ["music"]}),
            "allowed_classifications",
        ),
        (
            json!({"threshold_grace_period": -1}),
            "threshold_grace_period",
        ),
    ] {
        let (st, v) = s
            .call(Method::POST, "/v1/containers", &c.token, Some(body.clone()))
            .await;
        assert_eq!(
            (st, v["errors"][0]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
}
}

on_both_backends! {
async fn delete_lru_removes_exactly_the_least_recently_read_files_down_to_the_target(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let sid = container(&s, &c.token, json!({})).await;
    let mut sids = Vec::new();
    for i in 0..5 {
        let name = format!("f{i}");
        let (_, f) = s
            .upload_raw(
                &c.token,
                &[("container_sid", sid.as_str()), ("name", &name)],
                bytes(100, i),
            )
            .await;
        sids.push(f["file_sid"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, kept) = s
        .upload_raw(
            &c.token,
            &[
                ("container_sid", sid.as_str()),
                ("threshold_include", "false"),
            ],
            vec![0; 100],
        )
        .await;
    // Read f0 and f1 through the owner's data call: they become the most recently used.
    for i in [0usize, 1] {
        let r = s
            .client
            .get(s.url(&format!("/v1/files/{}/data", sids[i])))
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A read through the publish link does not count (f4 stays least recently used).
    s.call(
        Method::PATCH,
        &format!("/v1/files/{}", sids[4]),
        &c.token,
        Some(json!({"publish": "file_sid"})),
    )
    .await;
    s.client
        .get(s.url(&format!("/f/{}", sids[4])))
        .send()
        .await
        .unwrap();
    // Now turn the policy on: 5 included files reach threshold_files 5; the target is 2.
    let (st, v) = s
        .call(Method::PATCH, &format!("/v1/containers/{sid}"), &c.token, Some(json!({"threshold_action": "delete_lru", "threshold_files": 5, "threshold_files_target": 2})))
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        eventually(|| async {
            get_container(&s, &c.token, &sid).await["threshold_total_files"] == 2
        })
        .await,
        "cleanup did not reach the target"
    );
    let exists = |sid: String| {
        let (s, token) = (&s, c.token.clone());
        async move {
            s.call(Method::GET, &format!("/v1/files/{sid}"), &token, None)
                .await
                .0
                == 200
        }
    };
    let alive: Vec<bool> = futures_util::future::join_all(sids.iter().cloned().map(exists)).await;
    assert_eq!(
        alive,
        vec![true, true, false, false, false],
        "f2, f3, f4 were the least recently read"
    );
    assert!(
        exists(kept["file_sid"].as_str().unwrap().to_string()).await,
        "excluded files stay"
    );
    let cont = get_container(&s, &c.token, &sid).await;
    assert_eq!(
        (cont["total_files"].as_i64(), cont["total_bytes"].as_i64()),
        (Some(3), Some(300))
    );
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(
        (
            acct["total_file_count"].as_i64(),
            acct["total_file_size"].as_i64()
        ),
        (Some(3), Some(300))
    );
}
}

on_both_backends! {
async fn delete_lru_by_bytes_stops_at_the_byte_target(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let sid = container(&s, &c.token, json!({"threshold_action": "delete_lru", "threshold_bytes": 1000, "threshold_bytes_target": 500})).await;
    for i in 0..4 {
        s.upload_raw(&c.token, &[("container_sid", sid.as_str())], bytes(300, i))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // 1200 bytes ≥ 1000: delete oldest until ≤ 500 → two files of 300 remain? No: 600 > 500, so three go.
    assert!(
        eventually(|| async {
            get_container(&s, &c.token, &sid).await["threshold_total_bytes"] == 300
        })
        .await
    );
    assert_eq!(get_container(&s, &c.token, &sid).await["total_files"], 1);
}
}

on_both_backends! {
async fn executable_bytes_named_wav_are_refused_by_a_media_only_container(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let media_only = container(&s, &c.token, json!({"allowed_classifications": ["media"]})).await;
    let no_exe = container(
        &s,
        &c.token,
        json!({"blocked_classifications": ["executable"]}),
    )
    .await;
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    for sid in [&media_only, &no_exe] {
        let (st, v) = s
            .upload_raw(
                &c.token,
                &[
                    ("container_sid", sid.as_str()),
                    ("name", "song.wav"),
                    ("content_classification", "media"),
                ],
                elf.clone(),
            )
            .await;
        assert_eq!(st, 422, "{v}");
        assert_eq!(v["errors"][0]["field"], "content_classification");
        let (st, v) = s
            .upload_multipart(
                &c.token,
                json!({"container_sid": sid}),
                "song.wav",
                elf.clone(),
            )
            .await;
        assert_eq!(st, 422, "{v}");
    }
    let (st, _) = s
        .upload_raw(
            &c.token,
            &[
                ("container_sid", media_only.as_str()),
                ("name", "notes.txt"),
            ],
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(st, 422, "a document is not media");
    let wav = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/media/speech8k.wav"
    ))
    .unwrap();
    let (st, f) = s
        .upload_raw(
            &c.token,
            &[
                ("container_sid", media_only.as_str()),
                ("name", "speech.wav"),
            ],
            wav,
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(f["content_classification"], "media");
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["total_file_count"], 1, "refused uploads left nothing");
}
}

on_both_backends! {
async fn racing_uploads_with_the_same_unique_keys_let_exactly_one_win(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (client, url, token) = (s.client.clone(), s.url("/v1/files"), c.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .query(&[
                    ("unique", "true"),
                    ("integer_key_1", "42"),
                    ("string_key_1", "call-7"),
                ])
                .body(bytes(100, i))
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
    let winner = winners[0]["file_sid"].as_str().unwrap();
    for (st, v) in results.iter().filter(|(st, _)| *st != 201) {
        assert_eq!(*st, 422);
        assert_eq!(v["errors"][0]["field"], "unique");
        assert_eq!(v["errors"][0]["reference_sid"], winner);
        assert_eq!(
            v["errors"][0]["message"],
            "file with the same set of keys already exists"
        );
    }
    // A different key set, or a file not marked unique, is fine.
    assert_eq!(
        s.upload_raw(
            &c.token,
            &[("unique", "true"), ("integer_key_1", "43")],
            vec![1]
        )
        .await
        .0,
        201
    );
    assert_eq!(
        s.upload_raw(
            &c.token,
            &[("integer_key_1", "42"), ("string_key_1", "call-7")],
            vec![1]
        )
        .await
        .0,
        201
    );
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["total_file_count"], 3);
}
}

on_both_backends! {
async fn unique_containers_are_refused_with_the_existing_sid(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s
        .customer(json!({"name": "many", "max_containers": 5}))
        .await;
    let first = container(
        &s,
        &c.token,
        json!({"unique": true, "string_key_1": "tenant-a"}),
    )
    .await;
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"unique": true, "string_key_1": "tenant-a"})),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["errors"][0]["field"], "unique");
    assert_eq!(v["errors"][0]["reference_sid"], first.as_str());
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(
        acct["container_count"], 1,
        "the refused container did not count"
    );
    assert_eq!(
        s.call(
            Method::POST,
            "/v1/containers",
            &c.token,
            Some(json!({"unique": true, "string_key_1": "tenant-b"}))
        )
        .await
        .0,
        201
    );
}
}

on_both_backends! {
async fn expired_files_are_deleted_with_their_bytes_totals_and_links(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let at = (chrono::Utc::now() + chrono::Duration::minutes(61)).to_rfc3339();
    let (st, f) = s
        .upload_raw(
            &c.token,
            &[("expires_at", at.as_str()), ("publish", "file_sid")],
            vec![5; 500],
        )
        .await;
    assert_eq!(st, 201, "{f}");
    let (_, keep) = s.upload_raw(&c.token, &[], vec![6; 10]).await;
    let sid = f["file_sid"].as_str().unwrap().to_string();
    let link = f["uri_download"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.call(Method::GET, &format!("/v1/files/{sid}"), &c.token, None)
            .await
            .0,
        200,
        "not yet"
    );
    advance(&s, 62 * 60).await;
    assert!(
        eventually(|| async {
            s.call(Method::GET, &format!("/v1/files/{sid}"), &c.token, None)
                .await
                .0
                == 404
        })
        .await
    );
    assert_eq!(
        s.client
            .get(s.url(&format!("/f/{sid}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_ne!(s.client.get(&link).send().await.unwrap().status(), 200);
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(
        (
            acct["total_file_count"].as_i64(),
            acct["total_file_size"].as_i64()
        ),
        (Some(1), Some(10))
    );
    assert_eq!(
        s.call(
            Method::GET,
            &format!("/v1/files/{}", keep["file_sid"].as_str().unwrap()),
            &c.token,
            None
        )
        .await
        .0,
        200
    );
}
}

on_both_backends! {
async fn signed_links_stop_working_at_their_own_expiry(backend: Backend) {
    let s = policy_server(&backend).await;
    let c = s.acme().await;
    let (_, f) = s.upload_raw(&c.token, &[], vec![5; 50]).await;
    let link = f["uri_download"].as_str().unwrap().to_string();
    assert_eq!(s.client.get(&link).send().await.unwrap().status(), 200);
    advance(&s, 3601).await;
    let r = s.client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 403);
}
}

on_both_backends! {
async fn the_test_clock_is_off_unless_asked_for(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/admin/clock",
            ADMIN,
            Some(json!({"advance_seconds": 10})),
        )
        .await;
    assert_eq!(st, 404);
}
}
