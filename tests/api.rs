//! The `/v1` API through HTTP: auth, tenancy, customers, account, containers, files, errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_answers_ok() {
    let s = Server::start().await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn calls_without_a_valid_token_answer_401() {
    let s = Server::start().await;
    for (method, path) in [
        (Method::GET, "/v1/account"),
        (Method::GET, "/v1/files"),
        (Method::POST, "/v1/containers"),
        (Method::POST, "/v1/customers"),
    ] {
        let r = s
            .client
            .request(method.clone(), s.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} without token");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], 401);
        let (st, _) = s.call(method.clone(), path, "not-a-token", None).await;
        assert_eq!(st, 401, "{method} {path} with a bad token");
    }
    let c = s.acme().await;
    // Admin and customer tokens are not interchangeable.
    assert_eq!(s.call(Method::GET, "/v1/account", ADMIN, None).await.0, 401);
    assert_eq!(
        s.call(
            Method::POST,
            "/v1/customers",
            &c.token,
            Some(json!({"name": "x"}))
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn admin_creates_customers_and_further_tokens() {
    let s = Server::start().await;
    let c = s
        .customer(json!({"name": "acme", "quota_bytes": 5000, "max_containers": 3}))
        .await;
    let (st, body) = s
        .call(Method::GET, &format!("/v1/customers/{}", c.id), ADMIN, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["quota_bytes"], 5000);
    assert_eq!(body["max_containers"], 3);
    let (st, body) = s
        .call(
            Method::POST,
            &format!("/v1/customers/{}/tokens", c.id),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(st, 201);
    let second = body["token"].as_str().unwrap();
    let (st, acct) = s.call(Method::GET, "/v1/account", second, None).await;
    assert_eq!(st, 200);
    assert_eq!(acct["customer_id"], c.id.as_str());
    assert_eq!(
        s.call(Method::GET, "/v1/customers/nope", ADMIN, None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call(Method::POST, "/v1/customers/nope/tokens", ADMIN, None)
            .await
            .0,
        404
    );
    let (st, body) = s
        .call(Method::POST, "/v1/customers", ADMIN, Some(json!({})))
        .await;
    assert_eq!(
        (st, body["errors"][0]["field"].as_str()),
        (400, Some("name"))
    );
}

on_both_backends! {
async fn account_shows_defaults_and_exact_totals(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["quota_bytes"], 10737418240i64);
    assert_eq!(acct["total_file_count"], 0);
    assert_eq!(acct["total_file_size"], 0);
    assert_eq!(acct["container_count"], 0);
    s.upload_raw(&c.token, &[("name", "a.bin")], vec![1; 1000])
        .await;
    s.upload_raw(&c.token, &[("name", "b.bin")], vec![2; 234])
        .await;
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["total_file_count"], 2);
    assert_eq!(acct["total_file_size"], 1234);
    assert_eq!(
        acct["container_count"], 1,
        "the default container was made on first upload"
    );
}
}

#[tokio::test]
async fn containers_have_defaults_and_a_limit_of_two() {
    let s = Server::start().await;
    let c = s.acme().await;
    let (st, one) = s
        .call(Method::POST, "/v1/containers", &c.token, Some(json!({})))
        .await;
    assert_eq!(st, 201);
    assert_eq!(one["quota_bytes"], 1073741824);
    assert_eq!(one["quota_files"], Value::Null);
    assert_eq!(one["threshold_action"], "no_action");
    assert_eq!(one["total_bytes"], 0);
    assert_eq!(
        s.call(Method::POST, "/v1/containers", &c.token, None)
            .await
            .0,
        201,
        "an empty body is {{}}"
    );
    let (st, err) = s
        .call(Method::POST, "/v1/containers", &c.token, Some(json!({})))
        .await;
    assert_eq!(st, 422);
    assert_eq!(err["message"], "object validation error");
    assert_eq!(err["errors"][0]["field"], "max_containers");
    let (_, list) = s.call(Method::GET, "/v1/containers", &c.token, None).await;
    assert_eq!(list["pagination"]["total_records"], 2);
}

#[tokio::test]
async fn container_quota_may_rise_only_to_the_customer_quota() {
    let s = Server::start().await;
    let c = s
        .customer(json!({"name": "small", "quota_bytes": 5_000_000}))
        .await;
    let (_, cont) = s
        .call(Method::POST, "/v1/containers", &c.token, Some(json!({})))
        .await;
    assert_eq!(
        cont["quota_bytes"], 5_000_000,
        "default quota is capped by the customer's"
    );
    let path = format!("/v1/containers/{}", cont["container_sid"].as_str().unwrap());
    let (st, body) = s
        .call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"quota_bytes": 4_000_000, "quota_files": 10})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["quota_bytes"], 4_000_000);
    assert_eq!(body["quota_files"], 10);
    let (st, body) = s
        .call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"quota_bytes": 6_000_000})),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(body["errors"][0]["field"], "quota_bytes");
    let (st, body) = s
        .call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"quota_bytes": "lots"})),
        )
        .await;
    assert_eq!(
        (st, body["errors"][0]["field"].as_str()),
        (400, Some("quota_bytes"))
    );
}

on_both_backends! {
async fn container_with_files_cannot_be_deleted(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, f) = s
        .upload_raw(&c.token, &[("name", "a.bin")], vec![1; 10])
        .await;
    let cpath = format!("/v1/containers/{}", f["container_sid"].as_str().unwrap());
    assert_eq!(s.call(Method::DELETE, &cpath, &c.token, None).await.0, 409);
    let fpath = format!("/v1/files/{}", f["file_sid"].as_str().unwrap());
    assert_eq!(s.call(Method::DELETE, &fpath, &c.token, None).await.0, 204);
    assert_eq!(s.call(Method::DELETE, &cpath, &c.token, None).await.0, 204);
    assert_eq!(s.call(Method::GET, &cpath, &c.token, None).await.0, 404);
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["container_count"], 0);
}
}

on_both_backends! {
async fn another_customers_objects_answer_exactly_like_missing_ones(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let a = s.acme().await;
    let b = s.customer(json!({"name": "other"})).await;
    let (_, f) = s
        .upload_raw(&a.token, &[("name", "secret.bin")], vec![7; 100])
        .await;
    let fsid = f["file_sid"].as_str().unwrap();
    let csid = f["container_sid"].as_str().unwrap();
    let missing = "00000000-0000-4000-8000-000000000000";
    let cases: Vec<(Method, String, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/v1/files/{fsid}"),
            format!("/v1/files/{missing}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/files/{fsid}"),
            format!("/v1/files/{missing}"),
            Some(json!({"tag": "x"})),
        ),
        (
            Method::DELETE,
            format!("/v1/files/{fsid}"),
            format!("/v1/files/{missing}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/files/{fsid}/data"),
            format!("/v1/files/{missing}/data"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/containers/{csid}"),
            format!("/v1/containers/{missing}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/containers/{csid}"),
            format!("/v1/containers/{missing}"),
            Some(json!({"quota_files": 1})),
        ),
        (
            Method::DELETE,
            format!("/v1/containers/{csid}"),
            format!("/v1/containers/{missing}"),
            None,
        ),
    ];
    for (m, theirs, absent, body) in cases {
        let got = s.call(m.clone(), &theirs, &b.token, body.clone()).await;
        let want = s.call(m.clone(), &absent, &b.token, body).await;
        assert_eq!(got, want, "{m} {theirs}");
        assert_eq!(got.0, 404, "{m} {theirs}");
    }
    // Uploading into someone else's container is refused the same way.
    let (st, _) = s
        .upload_raw(&b.token, &[("container_sid", csid)], vec![1])
        .await;
    assert_eq!(st, 404);
    // Lists never show them.
    let (_, list) = s.call(Method::GET, "/v1/files", &b.token, None).await;
    assert_eq!(list["pagination"]["total_records"], 0);
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/v1/files?container_sid={csid}"),
            &b.token,
            None,
        )
        .await;
    assert_eq!(list["pagination"]["total_records"], 0);
    let (_, list) = s.call(Method::GET, "/v1/containers", &b.token, None).await;
    assert_eq!(list["pagination"]["total_records"], 0);
    // And A's file is untouched.
    assert_eq!(
        s.call(Method::GET, &format!("/v1/files/{fsid}"), &a.token, None)
            .await
            .0,
        200
    );
}
}

on_both_backends! {
async fn file_list_pages_and_filters(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    for i in 0..5 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        let rt = if i == 0 { "voicemail" } else { "recording" };
        let owner = format!("agent-{}", i % 2);
        let name = format!("f{i}.bin");
        let (st, _) = s
            .upload_raw(
                &c.token,
                &[
                    ("name", &name),
                    ("tag", tag),
                    ("reference_type", rt),
                    ("reference_id", "call-1"),
                    ("owner_id", &owner),
                ],
                vec![i as u8; 10],
            )
            .await;
        assert_eq!(st, 201);
    }
    let total = |v: &Value| v["pagination"]["total_records"].as_i64().unwrap();
    let (_, all) = s
        .call(Method::GET, "/v1/files?limit=2&page=2", &c.token, None)
        .await;
    assert_eq!(total(&all), 5);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!(all["pagination"]["page"], 2);
    assert_eq!(all["pagination"]["limit"], 2);
    let (_, last) = s
        .call(Method::GET, "/v1/files?limit=2&page=3", &c.token, None)
        .await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    for (q, n) in [
        ("tag=even", 3),
        ("tag=odd", 2),
        ("reference_type=voicemail", 1),
        ("reference_id=call-1", 5),
        ("owner_id=agent-1", 2),
        ("name=f3.bin", 1),
        ("name=nope", 0),
    ] {
        let (st, v) = s
            .call(Method::GET, &format!("/v1/files?{q}"), &c.token, None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(total(&v), n, "{q}");
    }
    let csid = all["items"][0]["container_sid"].as_str().unwrap();
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/v1/files?container_sid={csid}"),
            &c.token,
            None,
        )
        .await;
    assert_eq!(total(&v), 5);
    for bad in [
        "page=0",
        "page=-1",
        "page=x",
        "limit=0",
        "limit=101",
        "limit=abc",
        "colour=red",
    ] {
        let (st, v) = s
            .call(Method::GET, &format!("/v1/files?{bad}"), &c.token, None)
            .await;
        assert_eq!(st, 400, "{bad}");
        assert!(v["errors"][0]["field"].is_string(), "{bad}: {v}");
    }
}
}

on_both_backends! {
async fn bad_input_gets_a_400_naming_the_field_never_a_500(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, f) = s
        .upload_raw(&c.token, &[("name", "a.bin")], vec![1; 10])
        .await;
    let fpath = format!("/v1/files/{}", f["file_sid"].as_str().unwrap());
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "a/b"}), "name"),
        (json!({"name": "a\u{0}b"}), "name"),
        (json!({"name": 12}), "name"),
        (json!({"tag": "x".repeat(50)}), "tag"),
        (json!({"description": "x".repeat(255)}), "description"),
        (json!({"expires_at": "tomorrow"}), "expires_at"),
        (json!({"expires_at": "2020-01-01T00:00:00Z"}), "expires_at"),
        (json!({"publish": "everyone"}), "publish"),
        (json!({"reference_type": "fax"}), "reference_type"),
        (json!({"integer_key_1": 1e30}), "integer_key_1"),
        (
            json!({"integer_key_1": 18446744073709551615u64}),
            "integer_key_1",
        ),
        (json!({"threshold_include": "maybe"}), "threshold_include"),
        (json!({"size": 5}), "size"),
        (json!({"bogus": 1}), "bogus"),
        (json!({"container_sid": "x"}), "container_sid"),
        (json!({"file_access_name": "has space"}), "file_access_name"),
        (json!({"mime_type": "text/plain\r\nX-Evil: 1"}), "mime_type"),
    ];
    for (body, field) in cases {
        let (st, v) = s
            .call(Method::PATCH, &fpath, &c.token, Some(body.clone()))
            .await;
        assert_eq!(st, 400, "{body}");
        assert_eq!(v["errors"][0]["field"], field, "{body}: {v}");
        assert_eq!(v["status"], 400);
    }
    for raw in ["{", "[1,2]", "\"str\"", "nul"] {
        let r = s
            .client
            .patch(s.url(&fpath))
            .bearer_auth(&c.token)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{raw}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["errors"][0]["field"], "body");
    }
    let r = s
        .client
        .patch(s.url(&fpath))
        .bearer_auth(&c.token)
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Upload fields are checked too, before anything is stored.
    for (q, field) in [
        ("desired_bitrate", "desired_bitrate"),
        ("desired_format", "desired_format"),
        ("expires_at", "expires_at"),
    ] {
        let (st, v) = s.upload_raw(&c.token, &[(q, "33")], vec![1; 5]).await;
        assert_eq!((st, v["errors"][0]["field"].as_str()), (400, Some(field)));
    }
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(acct["total_file_count"], 1);
    // A name that is not UTF-8 is decoded lossily, not refused with a 500.
    let r = s
        .client
        .post(format!("{}/v1/files?name=%FF%FEx.bin", s.base))
        .bearer_auth(&c.token)
        .body(vec![1u8; 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // An empty PATCH changes nothing and succeeds.
    assert_eq!(s.call(Method::PATCH, &fpath, &c.token, None).await.0, 200);
}
}

on_both_backends! {
async fn file_fields_round_trip_and_patch(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let expires = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (st, f) = s
        .upload_multipart(
            &c.token,
            json!({"name": "greeting.wav", "description": "hello", "tag": "greetings", "owner_id": "agent-7",
                   "reference_type": "greeting", "reference_id": "vm-1", "publish": "file_access_name",
                   "file_access_name": "welcome-message", "expires_at": expires, "threshold_include": false,
                   "unique": true, "integer_key_1": 5, "string_key_1": "k"}),
            "ignored.bin",
            vec![9; 50],
        )
        .await;
    assert_eq!(st, 201, "{f}");
    assert_eq!(f["name"], "greeting.wav");
    assert_eq!(f["description"], "hello");
    assert_eq!(f["owner_id"], "agent-7");
    assert_eq!(f["reference_type"], "greeting");
    assert_eq!(f["file_access_name"], "welcome-message");
    assert!(f["publish_uri"]
        .as_str()
        .unwrap()
        .ends_with("/f/welcome-message"));
    assert_eq!(f["threshold_include"], false);
    assert_eq!(f["unique"], true);
    assert_eq!(f["integer_key_1"], 5);
    assert!(f["expires_at"].is_string());
    assert!(f["uri_download"].as_str().unwrap().contains("/download/"));
    let path = format!("/v1/files/{}", f["file_sid"].as_str().unwrap());
    let (st, p) = s
        .call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"tag": null, "publish": "file_sid", "description": "new"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(p["tag"], Value::Null);
    assert_eq!(p["description"], "new");
    assert!(p["publish_uri"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/f/{}", f["file_sid"].as_str().unwrap())));
    assert_eq!(
        s.call(
            Method::PATCH,
            &path,
            &c.token,
            Some(json!({"desired_format": "mp3"}))
        )
        .await
        .0,
        400
    );
}
}

on_both_backends! {
async fn date_last_accessed_changes_only_on_the_data_call(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "a.bin"), ("publish", "file_sid")],
            vec![1; 10],
        )
        .await;
    let sid = f["file_sid"].as_str().unwrap();
    assert_eq!(f["date_last_accessed"], Value::Null);
    let r = s
        .client
        .get(f["publish_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 10);
    let r = s
        .client
        .get(f["uri_download"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, g) = s
        .call(Method::GET, &format!("/v1/files/{sid}"), &c.token, None)
        .await;
    assert_eq!(g["date_last_accessed"], Value::Null);
    let r = s
        .client
        .get(s.url(&format!("/v1/files/{sid}/data")))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[1u8; 10]);
    let (_, g) = s
        .call(Method::GET, &format!("/v1/files/{sid}"), &c.token, None)
        .await;
    assert!(g["date_last_accessed"].is_string());
}
}

on_both_backends! {
async fn publish_uri_serves_only_the_way_publish_allows(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (_, f) = s
        .upload_raw(
            &c.token,
            &[("name", "a.bin"), ("file_access_name", "my-file")],
            vec![3; 10],
        )
        .await;
    let sid = f["file_sid"].as_str().unwrap();
    assert_eq!(f["publish_uri"], Value::Null);
    let get = |p: String| {
        let s = &s;
        async move {
            s.client
                .get(s.url(&p))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(format!("/f/{sid}")).await, 404);
    assert_eq!(get("/f/my-file".into()).await, 404);
    s.call(
        Method::PATCH,
        &format!("/v1/files/{sid}"),
        &c.token,
        Some(json!({"publish": "file_sid"})),
    )
    .await;
    assert_eq!(get(format!("/f/{sid}")).await, 200);
    assert_eq!(get("/f/my-file".into()).await, 404);
    s.call(
        Method::PATCH,
        &format!("/v1/files/{sid}"),
        &c.token,
        Some(json!({"publish": "file_access_name"})),
    )
    .await;
    assert_eq!(get(format!("/f/{sid}")).await, 404);
    assert_eq!(get("/f/my-file".into()).await, 200);
    // The signed link works whether or not the file is published; a changed one does not.
    let link = f["uri_download"].as_str().unwrap();
    assert_eq!(s.client.get(link).send().await.unwrap().status(), 200);
    let tampered = link.replace("signature=", "signature=00");
    let r = s.client.get(tampered).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 403);
}
}

#[tokio::test]
async fn not_found_names_what_was_not_found() {
    let s = Server::start().await;
    let c = s.acme().await;
    let (st, v) = s.call(Method::GET, "/v1/files/nope", &c.token, None).await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (404, Some("file_sid"))
    );
    let (st, v) = s
        .call(Method::GET, "/v1/containers/nope", &c.token, None)
        .await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (404, Some("container_sid"))
    );
    let (st, v) = s
        .call(Method::GET, "/v1/nothing-here", &c.token, None)
        .await;
    assert_eq!((st, v["errors"][0]["field"].as_str()), (404, Some("path")));
}

#[tokio::test]
async fn an_access_name_cannot_take_the_shape_of_a_sid() {
    let s = Server::start().await;
    let c = s.acme().await;
    let (_, f) = s
        .upload_raw(&c.token, &[("publish", "file_sid")], vec![1; 10])
        .await;
    let sid = f["file_sid"].as_str().unwrap();
    let other = s.customer(json!({"name": "squatter"})).await;
    let (st, v) = s
        .upload_raw(
            &other.token,
            &[("publish", "file_access_name"), ("file_access_name", sid)],
            vec![2; 10],
        )
        .await;
    assert_eq!(
        (st, v["errors"][0]["field"].as_str()),
        (400, Some("file_access_name"))
    );
    let body = s
        .client
        .get(s.url(&format!("/f/{sid}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.as_ref(), &[1u8; 10]);
}

on_both_backends! {
async fn access_names_are_unique(backend: Backend) {
    let s = Server::start_on(&backend).await;
    let c = s.acme().await;
    let (st, _) = s
        .upload_raw(&c.token, &[("file_access_name", "taken")], vec![1])
        .await;
    assert_eq!(st, 201);
    let (st, v) = s
        .upload_raw(&c.token, &[("file_access_name", "taken")], vec![1])
        .await;
    assert_eq!(st, 409);
    assert_eq!(v["errors"][0]["field"], "file_access_name");
    let (_, acct) = s.call(Method::GET, "/v1/account", &c.token, None).await;
    assert_eq!(
        acct["total_file_count"], 1,
        "the refused upload left no trace"
    );
}
}

/// Reads from `tcp` until EOF or `limit`; true if the server closed the connection in time.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn idle_and_slow_header_connections_are_closed_but_busy_ones_are_not() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &["--admin-token", ADMIN, "--idle-timeout", "1s"],
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();

    // Headers never finished (slow loris): closed within two periods.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A keep-alive connection that answered once and then went quiet: closed too.
    let mut quiet = tokio::net::TcpStream::connect(&addr).await.unwrap();
    quiet
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A connection that keeps asking stays open across several periods.
    let mut busy = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let busy_task = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        for _ in 0..12 {
            busy.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .map_err(|e| format!("write: {e}"))?;
            match busy.read(&mut buf).await {
                Ok(n) if n > 0 => {}
                other => return Err(format!("closed while busy: {other:?}")),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok::<(), String>(())
    });
    assert!(
        closed_within(&mut slow, Duration::from_secs(4)).await,
        "slow headers"
    );
    assert!(
        closed_within(&mut quiet, Duration::from_secs(4)).await,
        "idle keep-alive"
    );
    busy_task.await.unwrap().unwrap();
}

/// Size of the download the idle-watchdog tests ask for: far more than the socket buffers hold,
/// so the server keeps sending only for as long as the client reads.
const BIG_DOWNLOAD: usize = 32 << 20;

/// A server with a 1-s idle timeout, and a raw connection that has asked for a published
/// [`BIG_DOWNLOAD`]-byte file.
async fn big_download_requested(seed: u64) -> (Server, tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &["--admin-token", ADMIN, "--idle-timeout", "1s"],
    )
    .await;
    let c = s.acme().await;
    let (st, file) = s
        .upload_raw(
            &c.token,
            &[("name", "big.bin"), ("publish", "file_sid")],
            common::bytes(BIG_DOWNLOAD, seed),
        )
        .await;
    assert_eq!(st, 201, "{file}");
    let path = format!("/f/{}", file["file_sid"].as_str().unwrap());
    let mut tcp = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    (s, tcp)
}

#[tokio::test]
async fn a_slow_reader_of_a_long_download_is_not_cut_off() {
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    let (_s, mut tcp) = big_download_requested(7).await;
    let size = BIG_DOWNLOAD;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let started = std::time::Instant::now();
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
        if got >= size {
            break;
        }
        // About 8 MiB/s, then 2 MiB/s for the last 8 MiB: the body takes ~6 s, several idle
        // periods, and its end drains slowly after the server has finished it.
        let step = if got < size - (8 << 20) {
            1 << 20
        } else {
            256 << 10
        };
        if got % step < n {
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    }
    assert!(got >= size, "cut off after {got} bytes");
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the read was slow"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_its_download_is_closed() {
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    let (s, mut tcp) = big_download_requested(9).await;
    let size = BIG_DOWNLOAD;
    // Read nothing for a while: the socket buffers fill and the server's writes stall.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // What the buffers held still arrives, then the connection ends well short of the file.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let read_all = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    assert!(read_all.is_ok(), "the connection stayed open");
    assert!(got < size, "the whole file arrived: {got}");
    assert!(s.log().contains("complete=false"), "the cut is logged");
}
