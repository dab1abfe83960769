//! Test harness: starts the real `mediastore serve` binary on a free port with a temporary data
//! dir, and gives a reqwest client and helpers for the contract's calls.
#![allow(dead_code, clippy::unwrap_used)]

pub mod postgres;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub mod azurite;
pub mod fake_gcs;
pub mod garage;
pub mod garage_cluster;

/// Which stores a test server runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite and local files in the server's data dir: the embedded default.
    Embedded,
    /// A fresh PostgreSQL database (SQLite in the data dir where `metadata_url` is `None`) and a
    /// fresh prefix in the shared Garage (S3), as a cluster node runs.
    Distributed {
        metadata_url: Option<String>,
        blob_url: String,
        env: Vec<(String, String)>,
    },
}

impl Backend {
    /// Fresh distributed stores, or `None` when a tool is missing (the test then skips, except
    /// under `MEDIASTORE_REQUIRE_TOOLS=1`).
    pub fn distributed() -> Option<Backend> {
        let g = garage::garage()?;
        let metadata_url = postgres::fresh_database()?;
        Some(Backend::Distributed {
            metadata_url: Some(metadata_url),
            blob_url: g.fresh_url(),
            env: g.env(),
        })
    }

    /// The `serve` flags naming these stores.
    pub fn args(&self) -> Vec<String> {
        match self {
            Backend::Embedded => Vec::new(),
            Backend::Distributed {
                metadata_url,
                blob_url,
                ..
            } => {
                let mut a = vec!["--blob-url".to_string(), blob_url.clone()];
                if let Some(m) = metadata_url {
                    a.extend(["--metadata-url".to_string(), m.clone()]);
                }
                a
            }
        }
    }

    /// The environment the server needs (S3 credentials and endpoint).
    pub fn env(&self) -> &[(String, String)] {
        match self {
            Backend::Embedded => &[],
            Backend::Distributed { env, .. } => env,
        }
    }

    /// Uploads left unfinished in the stores of a server whose data dir is `data`: spooled
    /// parts on disk, or multipart uploads in the bucket (named by mediastore or held by Garage).
    pub async fn unfinished_uploads(&self, data: &std::path::Path) -> usize {
        match self {
            Backend::Embedded => std::fs::read_dir(data.join("store/blobs/.spool"))
                .unwrap()
                .count(),
            Backend::Distributed { blob_url, env, .. } => {
                let named = garage::list(blob_url, env)
                    .await
                    .iter()
                    .filter(|k| k.starts_with(".uploads/"))
                    .count();
                let held = garage::garage().map_or(0, |g| g.unfinished_multipart(blob_url));
                named.max(held)
            }
        }
    }

    /// True on the distributed stores.
    pub fn is_distributed(&self) -> bool {
        matches!(self, Backend::Distributed { .. })
    }
}

/// Defines a test twice, as a module of two tests named for the backend: `embedded` on the
/// embedded default and `distributed` on PostgreSQL + S3 (skipped when they are missing).
/// The body receives the [`Backend`] and starts its servers with [`Server::start_on`].
#[macro_export]
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::common::Backend) $body

            #[tokio::test]
            async fn embedded() {
                run($crate::common::Backend::Embedded).await
            }

            #[tokio::test]
            async fn distributed() {
                if let Some(b) = $crate::common::Backend::distributed() {
                    run(b).await
                }
            }
        }
    };
}

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
    /// The stores it runs on.
    pub backend: Backend,
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

    /// A server with the default test settings on `backend`.
    pub async fn start_on(backend: &Backend) -> Server {
        Self::start_with(
            tempfile::tempdir().unwrap(),
            &["--admin-token", ADMIN],
            backend,
        )
        .await
    }

    /// A server with the default test settings plus `extra` flags (e.g. `--metadata-url`).
    pub async fn start_with_flags(extra: &[&str]) -> Server {
        let mut args = vec!["--admin-token", ADMIN];
        args.extend_from_slice(extra);
        Self::start_in(tempfile::tempdir().unwrap(), &args).await
    }

    /// A server with extra flags (no admin token is passed unless in `args`).
    pub async fn start_in(data: tempfile::TempDir, args: &[&str]) -> Server {
        Self::start_with(data, args, &Backend::Embedded).await
    }

    /// A server on `backend` with extra flags (no admin token is passed unless in `args`).
    pub async fn start_with(data: tempfile::TempDir, args: &[&str], backend: &Backend) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.path().join("server.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mediastore"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data.path().join("store"))
            .args(args)
            .args(backend.args())
            .envs(backend.env().iter().cloned())
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
            backend: backend.clone(),
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

    /// A node on `backend` with the test admin token plus `extra` flags, in a fresh data dir.
    pub async fn node(backend: &Backend, extra: &[&str]) -> Server {
        let mut args = vec!["--admin-token", ADMIN];
        args.extend_from_slice(extra);
        Self::start_with(tempfile::tempdir().unwrap(), &args, backend).await
    }

    /// (files, bytes) of the caller's account.
    pub async fn totals(&self, token: &str) -> (i64, i64) {
        let (_, a) = self
            .call(reqwest::Method::GET, "/v1/account", token, None)
            .await;
        (
            a["total_file_count"].as_i64().unwrap(),
            a["total_file_size"].as_i64().unwrap(),
        )
    }

    /// Starts it again on the same data dir and stores (after [`stop`](Self::stop)).
    pub async fn restart(data: tempfile::TempDir, backend: &Backend) -> Server {
        Self::start_with(data, &["--admin-token", ADMIN], backend).await
    }

    /// How many blobs (files' bytes) the store holds, wherever the backend keeps them.
    pub async fn stored_blobs(&self) -> usize {
        match &self.backend {
            Backend::Embedded => {
                let root = self.data.path().join("store/blobs");
                let mut n = 0;
                for dir in std::fs::read_dir(&root).unwrap() {
                    let dir = dir.unwrap();
                    if dir.file_type().unwrap().is_dir()
                        && !dir.file_name().to_string_lossy().starts_with('.')
                    {
                        n += std::fs::read_dir(dir.path()).unwrap().count();
                    }
                }
                n
            }
            Backend::Distributed { blob_url, env, .. } => garage::list(blob_url, env)
                .await
                .iter()
                .filter(|k| !k.contains('/'))
                .count(),
        }
    }

    /// Uploads left unfinished: spooled parts on disk, or multipart uploads in the bucket.
    pub async fn unfinished_uploads(&self) -> usize {
        self.backend.unfinished_uploads(self.data.path()).await
    }

    /// The key of the blob whose bytes have this SHA-256 (the API does not show blob keys).
    pub async fn blob_with_checksum(&self, sha256: &str) -> String {
        use sha2::Digest;
        match &self.backend {
            Backend::Embedded => {
                let root = self.data.path().join("store/blobs");
                for dir in std::fs::read_dir(&root).unwrap() {
                    let dir = dir.unwrap().path();
                    if !dir.is_dir() || dir.ends_with(".spool") {
                        continue;
                    }
                    for f in std::fs::read_dir(&dir).unwrap() {
                        let f = f.unwrap().path();
                        if hex::encode(sha2::Sha256::digest(std::fs::read(&f).unwrap())) == sha256 {
                            return f.file_name().unwrap().to_string_lossy().into_owned();
                        }
                    }
                }
            }
            Backend::Distributed { blob_url, env, .. } => {
                for key in garage::list(blob_url, env).await {
                    let bytes = garage::get(blob_url, env, &key).await;
                    if hex::encode(sha2::Sha256::digest(&bytes)) == sha256 {
                        return key;
                    }
                }
            }
        }
        panic!("no blob with checksum {sha256}")
    }

    /// Removes a blob behind the server's back, as an operator's mistake would.
    pub async fn remove_blob(&self, key: &str) {
        match &self.backend {
            Backend::Embedded => std::fs::remove_file(
                self.data
                    .path()
                    .join("store/blobs")
                    .join(&key[..2])
                    .join(key),
            )
            .unwrap(),
            Backend::Distributed { blob_url, env, .. } => garage::remove(blob_url, env, key).await,
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

    /// The body of a plain GET of `path` on this server, as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Uploads `bytes` published by `file_sid`; returns the file's sid.
    pub async fn published(&self, token: &str, bytes: Vec<u8>) -> String {
        let (st, f) = self
            .upload_raw(token, &[("publish", "file_sid")], bytes)
            .await;
        assert_eq!(st, 201, "{f}");
        f["file_sid"].as_str().unwrap().to_string()
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
        self.upload_form(token, form).await
    }

    /// Uploads a multipart form as it is (parts in any order).
    pub async fn upload_form(&self, token: &str, form: reqwest::multipart::Form) -> (u16, Value) {
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

/// Leaves in a stopped server's stores what a crash mid-upload would: an unfinished upload and
/// bytes no file describes (under `orphan`).
pub async fn leave_crash_leftovers(backend: &Backend, data: &std::path::Path, orphan: &str) {
    match backend {
        Backend::Embedded => {
            std::fs::write(data.join("store/blobs/.spool/crash.part"), b"half").unwrap();
            let dir = data.join("store/blobs").join(&orphan[..2]);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(orphan), b"orphan").unwrap();
        }
        Backend::Distributed { blob_url, env, .. } => {
            garage::put(blob_url, env, orphan, b"orphan".to_vec()).await;
            garage::start_multipart(blob_url, env, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee").await;
        }
    }
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

/// `program` when it runs with `arg` (e.g. `--version`), found on the PATH.
pub fn on_path(program: &str, arg: &str) -> Option<String> {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| program.to_string())
}

/// `found` (a tool's program), or `None` after saying the test skips (failing instead under
/// MEDIASTORE_REQUIRE_TOOLS=1).
pub fn tool_or_skip(found: Option<String>, name: &str) -> Option<String> {
    if found.is_none() {
        assert!(
            !require_tools(),
            "{name} is required (MEDIASTORE_REQUIRE_TOOLS=1) but missing (.ci/run installs it)"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
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

/// A WAV of `secs` seconds of a 440 Hz tone, 8 kHz mono 16-bit.
pub fn tone_wav(secs: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * secs)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 8000.0) as i16)
        .collect();
    mono_wav(rate, &samples)
}

/// What ffmpeg must be told before `-i` to read a copy in format `fmt` (raw formats carry no
/// header).
pub fn ffmpeg_input(fmt: &str) -> Vec<&'static str> {
    match fmt {
        "al" | "alaw" => vec!["-f", "alaw", "-ar", "8000", "-ac", "1"],
        "ul" | "ulaw" => vec!["-f", "mulaw", "-ar", "8000", "-ac", "1"],
        "g722" => vec!["-f", "g722"],
        _ => vec![],
    }
}

/// A canonical 44-byte-header WAV of 16-bit mono `samples` at `rate`.
pub fn mono_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let n = samples.len() as u32;
    let mut v = Vec::with_capacity(44 + samples.len() * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + n * 2).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(n * 2).to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
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

/// The Python of the test tools (`.ci/run` installs it with the packages tests use), if it has
/// `modules`; otherwise says so (and fails under MEDIASTORE_REQUIRE_TOOLS=1).
pub fn python_with(modules: &[&str]) -> Option<std::path::PathBuf> {
    let python = std::env::var_os("MEDIASTORE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/mediastore-tools/python/bin/python".into());
    let ok = Command::new(&python)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !require_tools(),
            "python with {modules:?} is required (MEDIASTORE_REQUIRE_TOOLS=1) but missing: run .ci/run once"
        );
        eprintln!("skipping: no python with {modules:?} (.ci/run installs it)");
        return None;
    }
    Some(python)
}

/// Runs `python -c script` with `input` on stdin; its stdout, or a panic with its stderr.
pub fn run_python(python: &std::path::Path, script: &str, input: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
