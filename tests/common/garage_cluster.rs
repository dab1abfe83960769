//! A three-node Garage cluster (`replication_factor = 3`) on loopback for the cluster tests,
//! owned by one test: started in a temp dir, every node stopped when it is dropped (and one
//! node can be stopped and started again meanwhile). Each node's S3 endpoint serves the same
//! bucket, so each mediastore node may talk to its own Garage node.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::garage::free_port;

/// One Garage node.
struct Node {
    config: PathBuf,
    s3_port: u16,
    log: PathBuf,
    child: Option<Child>,
}

/// The cluster and its bucket.
pub struct GarageCluster {
    program: String,
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

fn hex(n: usize) -> String {
    super::bytes(
        n,
        Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id()),
    )
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect()
}

impl GarageCluster {
    /// Starts `n` nodes, connects them, applies a layout with every node in one zone, and makes
    /// a bucket and a key; `None` (skipped) when `garage` is missing, unless
    /// `MEDIASTORE_REQUIRE_TOOLS=1`.
    pub fn start(n: usize) -> Option<GarageCluster> {
        super::garage::garage()?;
        let program = std::env::var("MEDIASTORE_GARAGE").unwrap_or_else(|_| "garage".into());
        let dir = tempfile::Builder::new()
            .prefix("mediastore-garage3")
            .tempdir()
            .unwrap();
        let secret = hex(32);
        let mut nodes = Vec::new();
        for i in 0..n {
            let (s3_port, rpc_port) = (free_port(), free_port());
            let root = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&root).unwrap();
            let config = root.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "lmdb"
replication_factor = {n}
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
"#,
                    root = root.display()
                ),
            )
            .unwrap();
            nodes.push(Node {
                config,
                s3_port,
                log: root.join("garage.log"),
                child: None,
            });
        }
        let mut cluster = GarageCluster {
            program,
            dir,
            nodes,
            bucket: format!("c{}", &hex(8)),
            access_key: format!("GK{}", &hex(12)),
            secret_key: hex(32),
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        let ids: Vec<String> = (0..n)
            .map(|i| cluster.cli(i, &["node", "id", "-q"]).trim().to_string())
            .collect();
        for id in &ids {
            cluster.cli(0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap();
            cluster.cli(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        cluster.cli(0, &["layout", "apply", "--version", "1"]);
        let (key, secret_key, bucket) = (
            cluster.access_key.clone(),
            cluster.secret_key.clone(),
            cluster.bucket.clone(),
        );
        cluster.cli(
            0,
            &["key", "import", "--yes", "-n", "test", &key, &secret_key],
        );
        cluster.cli(0, &["bucket", "create", &bucket]);
        cluster.cli(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", &key,
            ],
        );
        Some(cluster)
    }

    /// Runs the `garage` command line against node `i`.
    fn cli(&self, i: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(&self.program)
                .arg("-c")
                .arg(&self.nodes[i].config)
                .args(args)
                .output()
                .expect("run garage");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            // Right after start the node may not answer RPC yet.
            assert!(
                Instant::now() < deadline,
                "garage {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts node `i` (again) and waits for its S3 port.
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        node.child = Some(
            Command::new(&self.program)
                .arg("-c")
                .arg(&node.config)
                .arg("server")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("start garage"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", node.s3_port)).is_err() {
            assert!(Instant::now() < deadline, "garage node {i} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops node `i` (SIGKILL, as a crash).
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Node `i`'s S3 endpoint.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// The `AWS_*` variables reaching the bucket through node `i`.
    pub fn env(&self, i: usize) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "garage".into()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint(i)),
        ]
    }

    /// Where the cluster keeps its files (logs for a failing test).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
    }
}
