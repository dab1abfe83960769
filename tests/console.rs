//! `/console`, the web console: its assets as HTTP serves them, and the console driven in
//! headless Chromium as a user would (tests/console/console.spec.mjs).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

const ASSETS: [(&str, &str); 4] = [
    ("/console", "text/html; charset=utf-8"),
    ("/console/app.js", "text/javascript; charset=utf-8"),
    ("/console/style.css", "text/css; charset=utf-8"),
    ("/console/icon.svg", "image/svg+xml"),
];

#[tokio::test]
async fn console_assets_have_their_types_a_self_only_policy_and_etags() {
    let s = Server::start().await;
    for (path, ty) in ASSETS {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], ty, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-cache");
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        let etag = h["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        let body = r.bytes().await.unwrap();
        assert!(!body.is_empty());

        // Revalidation: the same ETag is a 304 without a body; another one the whole asset.
        let r = s
            .client
            .get(s.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path}");
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert!(r.bytes().await.unwrap().is_empty());
        let r = s
            .client
            .get(s.url(path))
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), body);
    }
    // The page is the same at `/console/`; HEAD answers its headers.
    let r = s.client.get(s.url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let r = s.client.head(s.url("/console")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("etag"));
    // An unknown asset is the contract's 404.
    let r = s
        .client
        .get(s.url("/console/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], 404);
}

#[tokio::test]
async fn console_loads_nothing_from_outside_the_binary() {
    let s = Server::start().await;
    let page = s.get_text("/console").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/console");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // Every file of the console is served (and so embedded).
        let r = s
            .client
            .get(s.url(&format!("/console/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} is not served");
        for outside in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "from \"http",
            "//cdn",
        ] {
            assert!(!text.contains(outside), "{name} refers outside: {outside}");
        }
    }
    assert!(page.contains("<script type=\"module\" src=\"/console/app.js\">"));
}

/// What the browser test needs, or `None` (skipped, or a failure under
/// `MEDIASTORE_REQUIRE_TOOLS=1`) when something is missing.
struct Browser {
    chromium: PathBuf,
    node_modules: PathBuf,
}

fn browser() -> Option<Browser> {
    let chromium = PathBuf::from(
        std::env::var("MEDIASTORE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    // playwright-core as .ci/run installs it (npm, into $MEDIASTORE_TOOLS/npm).
    let node_modules = std::env::var("MEDIASTORE_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let tools = std::env::var("MEDIASTORE_TOOLS")
                .unwrap_or_else(|_| "/var/tmp/mediastore-tools".into());
            Path::new(&tools).join("npm/node_modules")
        });
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !node {
        Some("node".to_string())
    } else if !chromium.is_file() {
        Some(format!("chromium ({})", chromium.display()))
    } else if !node_modules.join("playwright-core/package.json").is_file() {
        Some(format!(
            "npm playwright-core (in {}; set MEDIASTORE_NODE_MODULES)",
            node_modules.display()
        ))
    } else {
        None
    };
    if let Some(what) = missing {
        assert!(
            !common::require_tools(),
            "{what} is required (MEDIASTORE_REQUIRE_TOOLS=1) but missing"
        );
        eprintln!("skipping: {what} is not installed");
        return None;
    }
    Some(Browser {
        chromium,
        node_modules,
    })
}

/// Runs `cmd`, stopping it (SIGTERM, then SIGKILL) when it outlasts `limit`. Playwright closes
/// the browser it started on SIGTERM.
fn run_with_limit(mut cmd: Command, limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!(
        "{}{}",
        reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default()
    );
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{text}\n(stopped after {limit:?})")),
    }
}

/// A customer signs in, uploads two files by drag and drop and watches both bars finish, finds
/// them (filters, pages), plays one and seeks on its waveform, publishes it and fetches the
/// copied links byte-exact, meets the refusals of a container's policy, deletes with a
/// confirmation; a customer over its quota is told so; the admin creates a customer and tokens.
/// Screenshots of each screen at desktop and phone width go to the target dir.
#[tokio::test]
async fn console_in_chromium() {
    let Some(b) = browser() else { return };
    let s = Server::start().await;
    let acme = s.acme().await;
    // Ten files already there: the list has two pages of ten once two more are uploaded.
    for i in 0..10 {
        let name = format!("note-{i:02}.txt");
        let (st, f) = s
            .upload_raw(
                &acme.token,
                &[("name", &name), ("tag", "bulk")],
                format!("note {i}\n").into_bytes(),
            )
            .await;
        assert_eq!(st, 201, "{f}");
    }
    let small = s
        .customer(json!({"name": "tiny", "quota_bytes": 10_000}))
        .await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = json!({
        "base": s.base,
        "customer": acme.token,
        "quota_customer": small.token,
        "admin": s.admin,
        "fixtures": root.join("fixtures/media"),
        "shots": shots,
        "node_modules": b.node_modules,
        "chromium": b.chromium,
    });
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tests/console/console.spec.mjs"))
        .arg(config.to_string());
    let (ok, output) =
        tokio::task::spawn_blocking(move || run_with_limit(cmd, Duration::from_secs(300)))
            .await
            .unwrap();
    eprintln!("{output}");
    eprintln!("screenshots in {}", shots.display());
    assert!(ok, "the browser scenario failed:\n{output}\n{}", s.log());
}
