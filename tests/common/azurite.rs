//! A throwaway Azurite (Azure Blob Storage emulator) for the tests: started on a free loopback
//! port in a temp dir with one account of its own, under a shell watchdog that stops it once the
//! test process is gone (as `garage.rs` does). It can be restarted on the same port and data
//! with another account key, which is how a test revokes a key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A running Azurite.
pub struct Azurite {
    pub port: u16,
    pub account: String,
    pub key: String,
    program: String,
    location: tempfile::TempDir,
    pid_file: std::path::PathBuf,
}

/// The `azurite-blob` program: `$MEDIASTORE_AZURITE`, else the one `.ci/run` installs under
/// `$MEDIASTORE_TOOLS/npm`, else on the PATH.
fn program() -> Option<String> {
    if let Ok(p) = std::env::var("MEDIASTORE_AZURITE") {
        return Some(p);
    }
    let tools =
        std::env::var("MEDIASTORE_TOOLS").unwrap_or_else(|_| "/var/tmp/mediastore-tools".into());
    let installed = format!("{tools}/npm/node_modules/.bin/azurite-blob");
    if std::path::Path::new(&installed).exists() {
        return Some(installed);
    }
    super::on_path("azurite-blob", "--version")
}

/// A random base64 account key.
pub fn new_key() -> String {
    use base64::Engine;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    base64::engine::general_purpose::STANDARD.encode(super::bytes(64, seed))
}

impl Azurite {
    /// Starts Azurite, or `None` (the test skips) when it is not installed, unless
    /// `MEDIASTORE_REQUIRE_TOOLS=1`.
    pub fn start() -> Option<Azurite> {
        let program = super::tool_or_skip(program(), "azurite")?;
        let location = tempfile::Builder::new()
            .prefix("mediastore-azurite")
            .tempdir()
            .unwrap();
        let pid_file = location.path().join("azurite.pid");
        let a = Azurite {
            port: super::garage::free_port(),
            account: "mediastoretest".into(),
            key: new_key(),
            program,
            location,
            pid_file,
        };
        a.run();
        Some(a)
    }

    fn run(&self) {
        let data = self.location.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let log = self.location.path().join("azurite.log");
        let _ = std::fs::remove_file(&log);
        let script = format!(
            "{program} --blobHost 127.0.0.1 --blobPort {port} --location {data} --skipApiVersionCheck --loose --disableTelemetry >{log} 2>&1 & \
             g=$!; echo $g >{pid}; while kill -0 {me} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 0.5; done; \
             kill $g 2>/dev/null; wait $g",
            program = self.program,
            port = self.port,
            data = data.display(),
            log = log.display(),
            pid = self.pid_file.display(),
            me = std::process::id(),
        );
        // The watchdog outlives this process by design; nobody waits for it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("AZURITE_ACCOUNTS", format!("{}:{}", self.account, self.key))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(Instant::now() < deadline, "azurite did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops Azurite and starts it again on the same port and data with a new key for the
    /// account: the old key is revoked.
    pub fn rotate_key(&mut self) {
        self.stop();
        self.key = new_key();
        self.run();
    }

    fn stop(&self) {
        let pid = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        let pid = pid.trim();
        if pid.is_empty() {
            return;
        }
        let _ = Command::new("kill").arg(pid).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "azurite did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The account's endpoint (path-style: the account in the path).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, self.account)
    }

    /// Creates a blob container (Azure's "Create Container", signed with the account key).
    pub async fn create_container(&self, name: &str) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}/{account}/{name}\nrestype:container",
            account = self.account
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&b64.decode(&self.key).unwrap()).unwrap();
        mac.update(to_sign.as_bytes());
        let signature = b64.encode(mac.finalize().into_bytes());
        let resp = reqwest::Client::new()
            .put(format!("{}/{name}?restype=container", self.endpoint()))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("content-length", "0")
            .header(
                "authorization",
                format!("SharedKey {}:{signature}", self.account),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "{}",
            resp.text().await.unwrap()
        );
    }

    /// A client of blob container `name`, through the emulator's own API.
    fn client(&self, name: &str) -> object_store::azure::MicrosoftAzure {
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(&self.account)
            .with_access_key(&self.key)
            .with_container_name(name)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// Every blob of container `name` under `prefix`.
    pub async fn list(&self, name: &str, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let p = object_store::path::Path::from(prefix);
        let found: Vec<_> = self
            .client(name)
            .list(Some(&p))
            .try_collect()
            .await
            .unwrap();
        found.into_iter().map(|o| o.location.to_string()).collect()
    }

    /// The bytes of blob `path` of container `name`.
    pub async fn get(&self, name: &str, path: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let got = self
            .client(name)
            .get(&object_store::path::Path::from(path))
            .await
            .unwrap();
        got.bytes().await.unwrap().to_vec()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}
