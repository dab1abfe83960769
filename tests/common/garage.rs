//! A throwaway Garage (S3-compatible, distributed object store) for the tests: one single-node
//! server per test binary, started on first use on free loopback ports in a temp dir, with a
//! default bucket and key. Each test gets its own prefix in that bucket.
//!
//! Rust test binaries have no teardown hook, so Garage runs under a small shell watchdog that
//! stops it and removes its directory once the test process is gone.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Connection settings of the shared Garage.
#[derive(Debug, Clone)]
pub struct Garage {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    program: String,
    config: std::path::PathBuf,
}

impl Garage {
    /// The `AWS_*` variables a mediastore server (or any S3 client) needs to reach it.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
        ]
    }

    /// Runs the `garage` command line against the server; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.program)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run garage");
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A `s3://` URL of a prefix in a fresh bucket of its own (so that Garage's counts of a
    /// bucket, e.g. unfinished uploads, are one test's).
    pub fn fresh_url(&self) -> String {
        let bucket = format!("t{}", &uuid_like()[..20]);
        self.cli(&["bucket", "create", &bucket]);
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &bucket,
            "--key",
            &self.access_key,
        ]);
        format!("s3://{bucket}/media")
    }

    /// Multipart uploads Garage holds unfinished in the bucket of `url`.
    pub fn unfinished_multipart(&self, url: &str) -> usize {
        let bucket = url
            .trim_start_matches("s3://")
            .split('/')
            .next()
            .unwrap_or_default();
        let info = self.cli(&["bucket", "info", bucket]);
        info.lines()
            .find(|l| l.starts_with("Unfinished uploads:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

fn uuid_like() -> String {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    hex(&super::bytes(16, seed.wrapping_add(n)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A free loopback port (bound and released: good enough for a test run).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `garage` program: `$MEDIASTORE_GARAGE`, else on the PATH.
fn program() -> Option<String> {
    if let Ok(p) = std::env::var("MEDIASTORE_GARAGE") {
        return Some(p);
    }
    super::on_path("garage", "--version")
}

/// The shared Garage, started on first call; `None` (the test skips) when `garage` is not
/// installed, unless `MEDIASTORE_REQUIRE_TOOLS=1`.
pub fn garage() -> Option<Garage> {
    static GARAGE: OnceLock<Option<Garage>> = OnceLock::new();
    GARAGE.get_or_init(start).clone()
}

fn start() -> Option<Garage> {
    let program = super::tool_or_skip(program(), "garage")?;
    let dir = tempfile::Builder::new()
        .prefix("mediastore-garage")
        .tempdir()
        .expect("temp dir")
        .keep();
    let (s3_port, rpc_port) = (free_port(), free_port());
    let config = dir.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
"#,
            dir = dir.display(),
            secret = uuid_like() + &uuid_like(),
        ),
    )
    .expect("write garage.toml");
    let garage = Garage {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        bucket: "mediastore-test".into(),
        // Garage's key ids are GK + 24 hex digits, secrets 64 hex digits.
        access_key: format!("GK{}", &uuid_like()[..24]),
        secret_key: uuid_like() + &uuid_like(),
        region: "garage".into(),
        program: program.clone(),
        config: config.clone(),
    };
    let log = dir.join("garage.log");
    let script = format!(
        "{program} -c {config} server --single-node --default-access-key --default-bucket >{log} 2>&1 & \
         g=$!; while kill -0 {me} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 0.5; done; \
         kill $g 2>/dev/null; wait $g; rm -rf {dir}",
        config = config.display(),
        log = log.display(),
        me = std::process::id(),
        dir = dir.display(),
    );
    // The watchdog outlives this process by design; nobody waits for it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("GARAGE_DEFAULT_ACCESS_KEY", &garage.access_key)
        .env("GARAGE_DEFAULT_SECRET_KEY", &garage.secret_key)
        .env("GARAGE_DEFAULT_BUCKET", &garage.bucket)
        .env("RUST_LOG", "garage=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start garage");
    // Ready once it has made the default bucket (it logs so after binding the S3 API).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("default bucket")
            && std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "garage did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(garage)
}

/// An S3 client for `s3://bucket/prefix` with the server's environment, and the prefix.
fn client(url: &str, env: &[(String, String)]) -> (object_store::aws::AmazonS3, String) {
    let rest = url.trim_start_matches("s3://");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_allow_http(true);
    for (k, v) in env {
        if let Ok(key) = k.to_ascii_lowercase().parse() {
            b = b.with_config(key, v);
        }
    }
    (b.build().unwrap(), prefix.to_string())
}

/// Every object under the URL's prefix, as paths relative to it.
pub async fn list(url: &str, env: &[(String, String)]) -> Vec<String> {
    use futures_util::TryStreamExt;
    use object_store::ObjectStore;
    let (store, prefix) = client(url, env);
    let p = object_store::path::Path::from(prefix.as_str());
    let objects: Vec<_> = store.list(Some(&p)).try_collect().await.unwrap();
    objects
        .into_iter()
        .map(|o| {
            o.location
                .as_ref()
                .trim_start_matches(prefix.as_str())
                .trim_start_matches('/')
                .to_string()
        })
        .collect()
}

/// Deletes the object `key` under the URL's prefix.
pub async fn remove(url: &str, env: &[(String, String)], key: &str) {
    use object_store::ObjectStoreExt;
    let (store, prefix) = client(url, env);
    store
        .delete(&object_store::path::Path::from(format!("{prefix}/{key}")))
        .await
        .unwrap();
}

/// The bytes of the object `key` under the URL's prefix.
pub async fn get(url: &str, env: &[(String, String)], key: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt;
    let (store, prefix) = client(url, env);
    let path = object_store::path::Path::from(format!("{prefix}/{key}"));
    store
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Writes the object `key` under the URL's prefix.
pub async fn put(url: &str, env: &[(String, String)], key: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    let (store, prefix) = client(url, env);
    let path = object_store::path::Path::from(format!("{prefix}/{key}"));
    store.put(&path, bytes.into()).await.unwrap();
}

/// Starts a multipart upload of `key` with one part sent and names it as mediastore does
/// (`.uploads/<key>`), then leaves it unfinished as a node dying mid-upload would.
pub async fn start_multipart(url: &str, env: &[(String, String)], key: &str) {
    use object_store::multipart::MultipartStore;
    use object_store::ObjectStoreExt;
    let (store, prefix) = client(url, env);
    let path = object_store::path::Path::from(format!("{prefix}/{key}"));
    let id = store.create_multipart(&path).await.unwrap();
    store
        .put_part(&path, &id, 0, vec![7u8; 5 << 20].into())
        .await
        .unwrap();
    let marker = object_store::path::Path::from(format!("{prefix}/.uploads/{key}"));
    store.put(&marker, id.into_bytes().into()).await.unwrap();
}
