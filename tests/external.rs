//! External containers: a container of type `aws`, `gcp` or `azure` keeps its files' bytes in the
//! customer's own bucket (here Garage, fake-gcs-server and Azurite, started by the tests), with every behaviour of
//! an internal container, secrets never shown or logged, endpoints limited to what the operator
//! lists, and a failing bucket answered 502 naming the container.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;

use common::azurite::Azurite;
use common::{tone_wav, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// A customer whose quota (1000 bytes) and container limit (1, taken) no upload below fits.
async fn tight_customer(s: &Server) -> common::Customer {
    let c = s
        .customer(json!({"name": "tight", "quota_bytes": 1000, "max_containers": 1}))
        .await;
    s.container(&c.token, json!({})).await;
    c
}

/// Uploads with the data part before `file_object` (the container is known only at the end).
async fn upload_data_first(
    s: &Server,
    token: &str,
    file_object: Value,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "data",
            reqwest::multipart::Part::bytes(bytes).file_name("late.wav"),
        )
        .text("file_object", file_object.to_string());
    s.upload_form(token, form).await
}

async fn get(s: &Server, url: &str, token: Option<&str>, range: Option<&str>) -> reqwest::Response {
    let mut req = s.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

/// Every file behaviour on external container `sid`, whose bucket `objects` lists through the
/// emulator's own API; `secret` must appear in no answer, log or stored file.
async fn exercise<F, Fut>(
    s: &Server,
    token: &str,
    sid: &str,
    secret_field: &str,
    secret: &str,
    objects: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    // Secrets are write-only.
    let shown = s.get_container(token, sid).await;
    assert_eq!(shown["external"][secret_field], "********", "{shown}");
    let (_, list) = s.call(Method::GET, "/v1/containers", token, None).await;
    assert!(!list.to_string().contains(secret));
    assert_eq!(objects().await.len(), 0, "the probe object is removed");

    // Both upload forms (and a multipart body whose fields come last) go to the bucket, past
    // the customer's quota, which does not apply.
    let wav = tone_wav(2);
    let q = [
        ("container_sid", sid),
        ("name", "a.wav"),
        ("publish", "file_sid"),
    ];
    let (st, raw) = s.upload_raw(token, &q, wav.clone()).await;
    assert_eq!(st, 201, "{raw}");
    let (st, mp) = s
        .upload_multipart(token, json!({"container_sid": sid}), "b.wav", wav.clone())
        .await;
    assert_eq!(st, 201, "{mp}");
    let (st, late) = upload_data_first(s, token, json!({"container_sid": sid}), wav.clone()).await;
    assert_eq!(st, 201, "{late}");
    assert_eq!(objects().await.len(), 3, "{:?}", objects().await);

    // Reads are byte-exact, Ranges exact, through the API, the publish URI and a signed link.
    let file_sid = raw["file_sid"].as_str().unwrap();
    let data = s.url(&format!("/v1/files/{file_sid}/data"));
    let whole = get(s, &data, Some(token), None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().to_vec(), wav);
    let part = get(s, &data, Some(token), Some("bytes=100-1099")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.bytes().await.unwrap().to_vec(),
        wav[100..1100].to_vec()
    );
    let published = raw["publish_uri"].as_str().unwrap();
    assert_eq!(
        get(s, published, None, None)
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        wav
    );
    let link = raw["uri_download"].as_str().unwrap();
    let tail = get(s, link, None, Some("bytes=-500")).await;
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().await.unwrap().to_vec(),
        wav[wav.len() - 500..].to_vec()
    );

    // A conversion of a file kept in the bucket.
    let mp3 = get(s, &format!("{published}?f=mp3"), None, None).await;
    assert_eq!(mp3.status(), 200);
    assert_eq!(mp3.headers()["content-type"], "audio/mpeg");
    assert!(mp3.bytes().await.unwrap().len() > 1000);

    // The container's totals are exact; the customer's quota and totals are not involved.
    let c = s.get_container(token, sid).await;
    assert_eq!(c["total_files"], 3);
    assert_eq!(c["total_bytes"], 3 * wav.len());
    let (_, account) = s.call(Method::GET, "/v1/account", token, None).await;
    assert_eq!(account["total_file_size"], 0, "{account}");

    // Delete: the object goes from the bucket too.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/files/{}", late["file_sid"].as_str().unwrap()),
            token,
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(objects().await.len(), 2);
    assert_eq!(s.get_container(token, sid).await["total_files"], 2);

    // The secret is in no log and not in the clear in any stored file.
    assert!(!s.log().contains(secret), "secret in the server's log");
    for entry in walk(&s.data.path().join("store")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret in the clear in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A 502 naming container `sid` in the contract's error form.
fn names_container(status: u16, body: &Value, sid: &str) {
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["status"], 502);
    assert_eq!(body["errors"][0]["field"], "container_sid", "{body}");
    assert_eq!(body["errors"][0]["reference_sid"], sid);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains(sid));
}

fn field_of(body: &Value) -> &str {
    body["errors"][0]["field"].as_str().unwrap_or_default()
}

/// Asserts an error answer's status and the field it names.
fn refused(answer: &(u16, Value), status: u16, field: &str) {
    assert_eq!(
        (answer.0, field_of(&answer.1)),
        (status, field),
        "{}",
        answer.1
    );
}

async fn create(s: &Server, token: &str, body: Value) -> (u16, Value) {
    s.call(Method::POST, "/v1/containers", token, Some(body))
        .await
}

async fn patch_external(s: &Server, token: &str, sid: &str, external: Value) -> (u16, Value) {
    let path = format!("/v1/containers/{sid}");
    let body = json!({ "external": external });
    s.call(Method::PATCH, &path, token, Some(body)).await
}

/// `GET /v1/files/{sid}/data` as status and JSON (an error's body).
async fn read_data(s: &Server, token: &str, file_sid: &str) -> (u16, Value) {
    let path = format!("/v1/files/{file_sid}/data");
    s.call(Method::GET, &path, token, None).await
}

/// The sid of a file of container `sid`.
async fn a_file_of(s: &Server, token: &str, sid: &str) -> String {
    let path = format!("/v1/files?container_sid={sid}");
    let (_, files) = s.call(Method::GET, &path, token, None).await;
    files["items"][0]["file_sid"].as_str().unwrap().to_string()
}

/// A Garage key of its own with read/write on a new bucket (the default key too, to look).
fn garage_bucket(g: &common::garage::Garage) -> (String, String, String) {
    // Unique per call: both backends' runs share one Garage.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("ext{}-{n}", std::process::id());
    let bucket = name.clone();
    let out = g.cli(&["key", "create", &name]);
    let value = |label: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    let (id, secret) = (value("Key ID"), value("Secret key"));
    g.cli(&["bucket", "create", &bucket]);
    for key in [&id, &g.access_key] {
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", key,
        ]);
    }
    (bucket, id, secret)
}

on_both_backends! {
    /// On the embedded default and on PostgreSQL + Garage (where converted copies of the
    /// bucket's files are shared through our own store).
    async fn aws_container_on_garage(backend: Backend) {
    let Some(g) = common::garage::garage() else {
        return;
    };
    let (bucket, key_id, secret) = garage_bucket(&g);
    let host = g.endpoint.trim_start_matches("http://").to_string();
    let args = ["--admin-token", common::ADMIN, "--external-endpoints", &host];
    let s = Server::start_with(tempfile::tempdir().unwrap(), &args, &backend).await;
    let c = tight_customer(&s).await;
    let settings = |secret: &str, bucket: &str| {
        json!({"type": "aws", "external": {"bucket": bucket, "prefix": "/calls/2026/", "region": "garage",
            "endpoint": g.endpoint, "access_key_id": key_id, "secret_access_key": secret}})
    };

    // Bad credentials and a missing bucket are refused at creation, naming the field.
    let bad_secret = create(&s, &c.token, settings("0000", &bucket)).await;
    refused(&bad_secret, 422, "external.secret_access_key");
    let no_bucket = create(&s, &c.token, settings(&secret, "nosuchbucket")).await;
    refused(&no_bucket, 422, "external.bucket");

    // Created beyond max_containers, which does not apply.
    let (st, created) = create(&s, &c.token, settings(&secret, &bucket)).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["type"], "aws");
    assert_eq!(created["external"]["secret_access_key"], "********");
    assert_eq!(created["external"]["prefix"], "calls/2026");
    assert!(!created.to_string().contains(&secret));
    let sid = created["container_sid"].as_str().unwrap().to_string();

    let url = format!("s3://{bucket}/calls/2026");
    let env = g.env();
    let objects = || common::garage::list(&url, &env);
    exercise(&s, &c.token, &sid, "secret_access_key", &secret, objects).await;

    // A revoked key: reads and uploads answer 502 naming the container; nothing is written.
    g.cli(&["key", "delete", "--yes", &key_id]);
    let file_sid = a_file_of(&s, &c.token, &sid).await;
    let (st, body) = read_data(&s, &c.token, &file_sid).await;
    names_container(st, &body, &sid);
    let (st, body) = s
        .upload_raw(&c.token, &[("container_sid", &sid)], tone_wav(1))
        .await;
    names_container(st, &body, &sid);
    assert_eq!(objects().await.len(), 2);
    assert_eq!(s.get_container(&c.token, &sid).await["total_files"], 2);
    assert!(!s.log().contains(&secret));
    }
}

#[tokio::test]
async fn azure_container_on_azurite() {
    let Some(mut az) = Azurite::start() else {
        return;
    };
    az.create_container("media").await;
    let listed = format!("127.0.0.1:{}", az.port);
    let s = Server::start_with_flags(&["--external-endpoints", &listed]).await;
    let c = tight_customer(&s).await;
    let (account, endpoint) = (az.account.clone(), az.endpoint());
    let settings = |key: &str| {
        json!({"account": account, "container": "media", "prefix": "p", "access_key": key,
            "endpoint": endpoint})
    };
    let azure = |key: &str| json!({"type": "azure", "external": settings(key)});

    let wrong = common::azurite::new_key();
    refused(
        &create(&s, &c.token, azure(&wrong)).await,
        422,
        "external.access_key",
    );

    let key = az.key.clone();
    let (st, created) = create(&s, &c.token, azure(&key)).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["external"]["access_key"], "********");
    let sid = created["container_sid"].as_str().unwrap().to_string();

    exercise(&s, &c.token, &sid, "access_key", &key, || {
        az.list("media", "p")
    })
    .await;
    let kept = az.list("media", "p").await;
    let file_sid = a_file_of(&s, &c.token, &sid).await;
    let bytes = az.get("media", &kept[0]).await;
    assert_eq!(bytes, tone_wav(2), "the bucket holds the bytes as sent");

    // The account's key is rotated at the provider: the old one answers 502 naming the
    // container, until the container is given the new key (checked the same way).
    az.rotate_key();
    let (st, body) = read_data(&s, &c.token, &file_sid).await;
    names_container(st, &body, &sid);
    let stale = patch_external(&s, &c.token, &sid, settings(&key)).await;
    refused(&stale, 422, "external.access_key");
    let new_key = az.key.clone();
    let (st, body) = patch_external(&s, &c.token, &sid, settings(&new_key)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["external"]["access_key"], "********");
    assert_eq!(read_data(&s, &c.token, &file_sid).await.0, 200);
    assert!(!s.log().contains(&new_key));
    // While it holds files, the container's files cannot be moved to another place.
    let mut moved = settings(&new_key);
    moved["prefix"] = json!("elsewhere");
    let move_refused = patch_external(&s, &c.token, &sid, moved).await;
    refused(&move_refused, 409, "external.container");
}

#[tokio::test]
async fn endpoints_are_limited_to_the_listed_hosts_and_public_provider_endpoints() {
    let s = Server::start_with_flags(&["--external-endpoints", "127.0.0.1:9"]).await;
    let c = s.acme().await;
    let aws = |endpoint: &str| {
        json!({"type": "aws", "external": {"bucket": "b", "region": "r", "endpoint": endpoint,
            "access_key_id": "AK", "secret_access_key": "SK"}})
    };
    for unlisted in [
        "http://127.0.0.1:3900",
        "https://127.0.0.2",
        "http://localhost:9",
        "https://169.254.169.254",
        "https://10.0.0.1",
        "https://[::1]:9",
        "https://storage.example.com",
        "http://s3.amazonaws.com",
    ] {
        refused(
            &create(&s, &c.token, aws(unlisted)).await,
            400,
            "external.endpoint",
        );
    }
    // A listed host passes the rule (here nothing listens: the bucket is unreachable, 422).
    assert_eq!(create(&s, &c.token, aws("http://127.0.0.1:9")).await.0, 422);
    // gcp settings are read, checked and refused the same way (nothing listens there).
    let gcp = json!({"type": "gcp", "external": {"bucket": "b", "endpoint": "http://127.0.0.1:9",
        "service_account_json": {"type": "service_account", "private_key": "GCPSECRET"}}});
    assert_eq!(create(&s, &c.token, gcp).await.0, 422);
    assert!(!s.log().contains("GCPSECRET"));
    // Settings are checked per type; type is fixed at creation.
    let partial = json!({"type": "aws", "external": {"bucket": "b"}});
    refused(&create(&s, &c.token, partial).await, 400, "external.region");
    refused(
        &create(&s, &c.token, json!({"type": "gcp"})).await,
        400,
        "external",
    );
    let sid = s.container(&c.token, json!({})).await;
    let path = format!("/v1/containers/{sid}");
    let retype = s
        .call(Method::PATCH, &path, &c.token, Some(json!({"type": "aws"})))
        .await;
    refused(&retype, 400, "type");
    assert_eq!(s.get_container(&c.token, &sid).await["type"], "internal");
    assert!(!s.log().contains("\"SK\""));
}

#[tokio::test]
async fn gcp_container_on_fake_gcs_server() {
    let Some(gcs) = common::fake_gcs::fake_gcs() else {
        return;
    };
    let bucket = gcs.bucket().await;
    // Tokens come from an OAuth2 endpoint of the test's own (fake-gcs-server checks none); its
    // address is the key's `token_uri`, and loopback is listed for both.
    let tokens = common::fake_gcs::TokenEndpoint::start().await;
    let flags = [
        "--admin-token",
        common::ADMIN,
        "--external-endpoints",
        "127.0.0.1",
    ];
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        &flags,
        &common::Backend::Embedded,
    )
    .await;
    let c = tight_customer(&s).await;
    let key = tokens.service_account_json.clone();
    let private_key = serde_json::from_str::<Value>(&key).unwrap()["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let settings = |bucket: &str, key: &str| {
        json!({"bucket": bucket, "prefix": "p", "endpoint": gcs.endpoint,
            "service_account_json": key})
    };
    let gcp = |bucket: &str, key: &str| json!({"type": "gcp", "external": settings(bucket, key)});

    // Bad credentials: a key that is not one, a key the token endpoint refuses, a bucket that
    // does not exist.
    refused(
        &create(&s, &c.token, gcp(&bucket, "{\"type\":\"service_account\"}")).await,
        422,
        "external.service_account_json",
    );
    tokens
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    refused(
        &create(&s, &c.token, gcp(&bucket, &key)).await,
        422,
        "external.service_account_json",
    );
    tokens
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    refused(
        &create(&s, &c.token, gcp("no-such-bucket", &key)).await,
        422,
        "external.bucket",
    );

    let (st, created) = create(&s, &c.token, gcp(&bucket, &key)).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["external"]["service_account_json"], "********");
    let sid = created["container_sid"].as_str().unwrap().to_string();
    exercise(
        &s,
        &c.token,
        &sid,
        "service_account_json",
        &private_key,
        || gcs.objects(&bucket),
    )
    .await;
    let file_sid = a_file_of(&s, &c.token, &sid).await;

    // The key is revoked at the provider: a node that needs a token (here, after a restart)
    // answers 502 naming the container.
    tokens
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let s = Server::start_with(s.stop(), &flags, &common::Backend::Embedded).await;
    let (st, body) = read_data(&s, &c.token, &file_sid).await;
    names_container(st, &body, &sid);
    assert!(!s.log().contains(&private_key));
}
