//! Test harness: starts the real `mediastore serve` binary on a free port with a temporary data
//! dir, and gives a reqwest client and helpers for the contract's calls.
#![allow(dead_code, clippy::unwrap_used)]

pub mod postgres;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The admin token every test server uses unless a test asks for the generated one.
pub const ADMIN: &str = "test-admin-token-0123456789";

/// A running server.
pub struct Server {
    pub base: String,
    pub admin: String,
    pub data: tempfile::TempDir,
    pub client: reqwest::Client,
    /// What the server printed to stdout before it was ready (first-start token line).
    pub stdout_lines: Vec<String>,
    child: Option<Child>,
}

/// A customer and its token.
pub struct Customer {
    pub id: String,
    pub token: String,
}

impl Server {
    /// A server with the default test settings.
    pub async fn start() -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), &["--admin-token", ADMIN]).await
    }

    /// A server with the default test settings plus `extra` flags (e.g. `--metadata-url`).
    pub async fn start_with(extra: &[&str]) -> Server {
        let mut args = vec!["--admin-token", ADMIN];
        args.extend_from_slice(extra);
        Self::start_in(tempfile::tempdir().unwrap(), &args).await
    }

    /// A server with extra flags (no admin token is passed unless in `args`).
    pub async fn start_in(data: tempfile::TempDir, args: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.path().join("server.log"))
            .unwrap();
        let metadata = metadata_args(&data, args);
        let mut child = Command::new(env!("CARGO_BIN_EXE_mediastore"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data.path().join("store"))
            .args(args)
            .args(&metadata)
            .env_remove("MEDIASTORE_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start mediastore");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ready = line.starts_with("mediastore listening on ");
                lines.push(line);
                if ready {
                    let _ = tx.send(lines.clone());
                }
            }
        });
        let lines = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let log =
                    std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default();
                panic!("server did not start:\n{log}")
            });
        let base = lines
            .last()
            .unwrap()
            .trim_start_matches("mediastore listening on ")
            .to_string();
        let admin = args
            .windows(2)
            .find(|w| w[0] == "--admin-token")
            .map(|w| w[1].to_string())
            .unwrap_or_else(|| {
                std::fs::read_to_string(data.path().join("store/admin_token"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            });
        let client = reqwest::Client::builder().build().unwrap();
        Server {
            base,
            admin,
            data,
            client,
            stdout_lines: lines,
            child: Some(child),
        }
    }

    /// Stops the server with SIGTERM and waits for it, keeping the data dir.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.terminate();
        std::mem::replace(&mut self.data, tempfile::tempdir().unwrap())
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    /// Creates a customer through the admin API.
    pub async fn customer(&self, body: Value) -> Customer {
        let resp = self
            .client
            .post(self.url("/v1/customers"))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        Customer {
            id: v["customer"]["customer_id"].as_str().unwrap().to_string(),
            token: v["token"].as_str().unwrap().to_string(),
        }
    }

    /// A customer named "acme" with default quotas.
    pub async fn acme(&self) -> Customer {
        self.customer(json!({"name": "acme"})).await
    }

    /// Creates a container; returns its sid.
    pub async fn container(&self, token: &str, body: Value) -> String {
        let (st, c) = self
            .call(reqwest::Method::POST, "/v1/containers", token, Some(body))
            .await;
        assert_eq!(st, 201, "{c}");
        c["container_sid"].as_str().unwrap().to_string()
    }

    /// A container as `GET /v1/containers/{sid}` shows it.
    pub async fn get_container(&self, token: &str, sid: &str) -> Value {
        let path = format!("/v1/containers/{sid}");
        self.call(reqwest::Method::GET, &path, token, None).await.1
    }

    /// Moves the server's test clock (`--test-clock`) forward.
    pub async fn advance(&self, secs: i64) {
        let body = json!({"advance_seconds": secs});
        let (st, _) = self
            .call(reqwest::Method::POST, "/v1/admin/clock", ADMIN, Some(body))
            .await;
        assert_eq!(st, 200);
    }

    /// Uploads raw bytes with fields as query parameters; returns the status and body.
    pub async fn upload_raw(
        &self,
        token: &str,
        query: &[(&str, &str)],
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/v1/files"))
            .bearer_auth(token)
            .query(query)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Uploads with multipart `file_object` + `data`.
    pub async fn upload_multipart(
        &self,
        token: &str,
        file_object: Value,
        filename: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let form = reqwest::multipart::Form::new()
            .text("file_object", file_object.to_string())
            .part(
                "data",
                reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()),
            );
        let resp = self
            .client
            .post(self.url("/v1/files"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An authenticated request with an optional JSON body; returns status and JSON (Null if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// With `MEDIASTORE_TEST_POSTGRES=1`, every server whose `args` name no `--metadata-url` keeps
/// its metadata in PostgreSQL: a fresh database per data dir, the same one again when a test
/// restarts a server on that data dir.
fn metadata_args(data: &tempfile::TempDir, args: &[&str]) -> Vec<String> {
    if std::env::var("MEDIASTORE_TEST_POSTGRES").map_or(true, |v| v != "1")
        || args.contains(&"--metadata-url")
    {
        return Vec::new();
    }
    let kept = data.path().join("metadata_url");
    let url = match std::fs::read_to_string(&kept) {
        Ok(url) => url,
        Err(_) => {
            let url =
                postgres::fresh_database().expect("MEDIASTORE_TEST_POSTGRES=1 needs PostgreSQL");
            std::fs::write(&kept, &url).unwrap();
            url
        }
    };
    vec!["--metadata-url".into(), url]
}

/// Polls until `f` holds (for work the server does in the background), at most 6 s.
pub async fn eventually<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..60 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether a test that needs an outside program must fail (CI) rather than skip when it is missing.
pub fn require_tools() -> bool {
    std::env::var("MEDIASTORE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// True if `program` runs; otherwise says so (and fails under MEDIASTORE_REQUIRE_TOOLS=1).
pub fn have_tool(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            !require_tools(),
            "{program} is required (MEDIASTORE_REQUIRE_TOOLS=1) but missing"
        );
        eprintln!("skipping: {program} is not installed");
    }
    ok
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
