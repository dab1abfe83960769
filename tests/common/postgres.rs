//! A throwaway PostgreSQL cluster per test binary: started on first use on a free loopback port
//! in a temp dir, one fresh database per call of [`fresh_database`]. A shell watchdog stops the
//! server and removes its dir once the test binary is gone (Rust tests have no teardown hook).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A running cluster: where its programs are and the port it listens on.
struct Cluster {
    bin: PathBuf,
    port: u16,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();

/// A new empty database on this binary's cluster, as a `postgres://` URL; `None` (the test
/// skips) when PostgreSQL is not installed, a failure under MEDIASTORE_REQUIRE_TOOLS=1.
pub fn fresh_database() -> Option<String> {
    let cluster = CLUSTER.get_or_init(start).as_ref()?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let out = Command::new(cluster.bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &cluster.port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        cluster.port
    ))
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else the directory of an `initdb` on PATH.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}

fn start() -> Option<Cluster> {
    let Some(bin) = find_bin() else {
        assert!(
            !super::require_tools(),
            "PostgreSQL is required (MEDIASTORE_REQUIRE_TOOLS=1) but initdb is missing"
        );
        eprintln!("skipping: PostgreSQL (initdb) is not installed");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("mediastore-pg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create the cluster dir");
    // initdb and postgres refuse to run as root: run them as the postgres user.
    let as_root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    if as_root {
        let ok = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().expect("utf-8 temp dir")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown of {} to postgres failed", dir.display());
    }
    let run = |program: &Path| -> Command {
        if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    let data = dir.join("data");
    let out = run(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let postgres = format!(
        "{} -D {} -p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        bin.join("postgres").display(),
        data.display(),
        dir.display()
    );
    // The watchdog: the server lives while this test binary does, then goes with its dir. It
    // outlives this process by design, so it is never waited for.
    let watchdog = format!(
        "{postgres} >{log} 2>&1 & p=$!; while [ -d /proc/{pid} ]; do sleep 0.5; done; \
         kill -INT $p; wait $p; rm -rf {dir}",
        log = dir.join("server.log").display(),
        pid = std::process::id(),
        dir = dir.display()
    );
    #[allow(clippy::zombie_processes)]
    run(Path::new("sh"))
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    for _ in 0..300 {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Some(Cluster { bin, port });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    panic!("PostgreSQL did not start:\n{log}");
}
