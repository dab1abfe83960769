//! `mediastore migrate`: data made on the embedded default, copied to new stores (PostgreSQL +
//! S3, or another embedded store), then served by a new server on them byte-exact under the
//! same sids, tokens and links; an interrupted migration resumes; the source is untouched.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{bytes, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What the source held, to compare the destination with.
struct Made {
    admin: String,
    tokens: Vec<String>,
    /// file sid → (owner's token, bytes, publish URI path, signed link)
    files: BTreeMap<String, (String, Vec<u8>, Option<String>, String)>,
    accounts: Vec<Value>,
}

async fn populate(s: &Server) -> Made {
    let mut made = Made {
        admin: s.admin.clone(),
        tokens: Vec::new(),
        files: BTreeMap::new(),
        accounts: Vec::new(),
    };
    for (i, name) in ["acme", "globex"].iter().enumerate() {
        let c = s.customer(json!({"name": name})).await;
        let (st, cont) = s
            .call(
                Method::POST,
                "/v1/containers",
                &c.token,
                Some(json!({"quota_bytes": 100_000_000})),
            )
            .await;
        assert_eq!(st, 201, "{cont}");
        let csid = cont["container_sid"].as_str().unwrap().to_string();
        // Small files, one with an access name, and one larger than a multipart part.
        let sizes = [10, 70_000, 3_000 + i, 20 << 20];
        for (j, size) in sizes.iter().enumerate() {
            let data = bytes(*size, (i * 10 + j) as u64);
            let access = format!("{name}-greeting-{j}");
            let (st, f) = s
                .upload_raw(
                    &c.token,
                    &[
                        ("container_sid", csid.as_str()),
                        ("name", &format!("f{j}.bin")),
                        (
                            "publish",
                            if j == 1 {
                                "file_access_name"
                            } else {
                                "file_sid"
                            },
                        ),
                        ("file_access_name", &access),
                    ],
                    data.clone(),
                )
                .await;
            assert_eq!(st, 201, "{f}");
            let publish = f["publish_uri"]
                .as_str()
                .map(|u| u.trim_start_matches(&s.base).to_string());
            let signed = f["uri_download"]
                .as_str()
                .unwrap()
                .trim_start_matches(&s.base)
                .to_string();
            made.files.insert(
                f["file_sid"].as_str().unwrap().to_string(),
                (c.token.clone(), data, publish, signed),
            );
        }
        let (_, account) = s.call(Method::GET, "/v1/account", &c.token, None).await;
        made.accounts.push(account);
        made.tokens.push(c.token);
    }
    made
}

/// Everything the source's data dir holds, by path, with each file's SHA-256.
fn snapshot(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with("server.log")
                // SQLite's side files, which any reader of a WAL database may create.
                && !p.to_string_lossy().ends_with("-wal")
                && !p.to_string_lossy().ends_with("-shm")
            {
                let sum = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), sum);
            }
        }
    }
    out
}

fn migrate(source: &std::path::Path, to: &Backend, extra: &[&str]) -> (bool, String) {
    let to_dir = tempfile::tempdir().unwrap();
    let (meta, blobs) = match to {
        Backend::Embedded => (
            format!("sqlite://{}/meta.db", to_dir.path().display()),
            format!("file://{}/blobs", to_dir.path().display()),
        ),
        Backend::Distributed {
            metadata_url,
            blob_url,
            ..
        } => (metadata_url.clone().unwrap(), blob_url.clone()),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_mediastore"))
        .arg("migrate")
        .arg("--data-dir")
        .arg(source)
        .args(["--to-metadata-url", &meta, "--to-blob-url", &blobs])
        .args(extra)
        .envs(to.env().iter().cloned())
        .output()
        .unwrap();
    // An embedded destination must outlive the call: keep its directory.
    std::mem::forget(to_dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Files copied and files already there, from a run's closing line
/// ("... N files (X) copied, M files already there").
fn counts(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("migrated "))
        .unwrap_or_else(|| panic!("no closing line in {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let number_before = |word: &str, back: usize| -> u64 {
        let i = words.iter().position(|x| *x == word).unwrap();
        words[i - back].parse().unwrap()
    };
    (number_before("copied,", 4), number_before("already", 2))
}

/// The destination stores of a migration, as a backend a server can start on.
fn destination() -> Option<Backend> {
    Backend::distributed()
}

#[tokio::test]
async fn a_migrated_store_serves_every_file_byte_exact_under_the_same_sids_tokens_and_links() {
    let Some(to) = destination() else { return };
    // The source: the embedded default with a generated admin token (a secret to carry over).
    let s = Server::start_in(tempfile::tempdir().unwrap(), &[]).await;
    let made = populate(&s).await;
    let data = s.stop();
    let source = data.path().join("store");
    let before = snapshot(&source);

    // Interrupted after two files, then run again: it resumes.
    let (ok, err) = migrate(&source, &to, &["--stop-after-files", "2"]);
    assert!(!ok, "the first run stops early: {err}");
    assert!(err.contains("stopped after 2 files"), "{err}");
    let (ok, err) = migrate(&source, &to, &[]);
    assert!(ok, "{err}");
    let (copied, skipped) = counts(&err);
    assert!(
        copied + skipped == 8 && skipped >= 2 && copied >= 1,
        "the second run copies only what the first did not: {err}"
    );
    assert_eq!(snapshot(&source), before, "the source is left untouched");

    // A new node on the new stores: no admin token given, none printed.
    let node = Server::start_with(tempfile::tempdir().unwrap(), &[], &to).await;
    assert!(node
        .stdout_lines
        .iter()
        .all(|l| !l.starts_with("admin token")));
    let (st, _) = node
        .call(Method::GET, "/v1/customers", &made.admin, None)
        .await;
    assert_ne!(st, 401, "the old admin token is accepted");
    for (i, token) in made.tokens.iter().enumerate() {
        let (st, account) = node.call(Method::GET, "/v1/account", token, None).await;
        assert_eq!(st, 200);
        assert_eq!(account, made.accounts[i], "totals and fields as they were");
    }
    for (sid, (token, bytes, publish, signed)) in &made.files {
        let got = node
            .client
            .get(node.url(&format!("/v1/files/{sid}/data")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert!(
            got.bytes().await.unwrap().as_ref() == bytes.as_slice(),
            "{sid} byte-exact"
        );
        if let Some(p) = publish {
            let got = node.client.get(node.url(p)).send().await.unwrap();
            assert_eq!(got.status(), 200, "{p}");
            assert!(got.bytes().await.unwrap().as_ref() == bytes.as_slice());
        }
        let got = node.client.get(node.url(signed)).send().await.unwrap();
        assert_eq!(got.status(), 200, "the old signed link {signed}");
        assert!(got.bytes().await.unwrap().as_ref() == bytes.as_slice());
    }
    // Running it again finds everything there.
    let (ok, err) = migrate(&source, &to, &[]);
    assert!(
        ok && err.contains("0 files (0 B) copied, 8 files already there"),
        "{err}"
    );
}

#[tokio::test]
async fn a_migration_refuses_a_source_whose_bytes_do_not_match_their_checksum() {
    let s = Server::start().await;
    let c = s.acme().await;
    let (_, f) = s
        .upload_raw(&c.token, &[("name", "a.bin")], bytes(5000, 1))
        .await;
    let key = s
        .blob_with_checksum(f["checksum_sha256"].as_str().unwrap())
        .await;
    let data = s.stop();
    let source = data.path().join("store");
    // Same length, other bytes: only the checksum can tell.
    std::fs::write(
        source.join("blobs").join(&key[..2]).join(&key),
        bytes(5000, 2),
    )
    .unwrap();
    let (ok, err) = migrate(&source, &Backend::Embedded, &[]);
    assert!(!ok);
    assert!(err.contains("do not match its record"), "{err}");
}
