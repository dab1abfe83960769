//! The delete_lru cleanup's cost follows the files it deletes, not the files a container holds:
//! a container of 10,000 and one of 100,000 files, each over its threshold by 100 files.
//!
//! Run: `cargo bench --bench lru_cleanup`
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use clap::Parser;
use mediastore::config::{Config, ServeArgs};
use mediastore::domain::Timestamp;
use sqlx::Row;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(n: i64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = Args::parse_from([
        "bench",
        "--data-dir",
        data,
        "--admin-token",
        "bench-admin-token-0123456789",
    ]);
    let state = mediastore::app::build(
        Config::from_args(args.serve).unwrap(),
        "http://bench".into(),
    )
    .await
    .unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{data}/meta.db"))
        .await
        .unwrap();
    let now = Timestamp::now().millis();
    let (cust, cont) = (
        "c0000000-0000-4000-8000-000000000000",
        "k0000000-0000-4000-8000-000000000000",
    );
    sqlx::query("INSERT INTO customers (id, name, quota_bytes, max_containers, container_count, date_created, date_modified) VALUES (?, 'bench', ?, 2, 1, ?, ?)")
        .bind(cust).bind(i64::MAX / 4).bind(now).bind(now).execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO containers (sid, customer_id, quota_bytes, threshold_action, threshold_files, threshold_files_target, date_created, date_modified) VALUES (?, ?, ?, 'no_action', ?, ?, ?, ?)")
        .bind(cont).bind(cust).bind(i64::MAX / 4).bind(n).bind(n - 100).bind(now).bind(now).execute(&pool).await.unwrap();
    let t = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        // Half were read at some point, in a scrambled order; half never.
        let accessed: Option<i64> = (i % 2 == 0).then(|| now - ((i * 7919) % n) * 1000);
        sqlx::query(
            "INSERT INTO files (sid, container_sid, customer_id, blob_key, name, size, mime_type, content_format,
               content_classification, checksum_sha256, file_access_name, date_last_accessed, date_created, date_modified)
             VALUES (?, ?, ?, ?, 'f', 1000, 'application/octet-stream', 'unknown', 'unknown', '00', ?, ?, ?, ?)",
        )
        .bind(format!("f{i:09}")).bind(cont).bind(cust).bind(format!("b{i:031}")).bind(format!("a{i:09}"))
        .bind(accessed).bind(now - (n - i) * 10).bind(now)
        .execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    state.meta.recompute_totals().await.unwrap();
    let filled = t.elapsed().as_secs_f64();

    let plan: Vec<String> = sqlx::query("EXPLAIN QUERY PLAN SELECT * FROM files WHERE container_sid = ? AND threshold_include = 1 ORDER BY coalesce(date_last_accessed, 0), date_created LIMIT 500")
        .bind(cont).fetch_all(&pool).await.unwrap().iter().map(|r| r.get::<String, _>("detail")).collect();

    let mut query_ms = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let got = state.meta.lru_files(cont, 100).await.unwrap();
        query_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(got.len(), 100);
    }
    sqlx::query("UPDATE containers SET threshold_action = 'delete_lru' WHERE sid = ?")
        .bind(cont)
        .execute(&pool)
        .await
        .unwrap();
    let t = Instant::now();
    let (_, evicted) = mediastore::jobs::cleanup_once(&state, Timestamp::now())
        .await
        .unwrap();
    let cleanup_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(evicted, 100);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, n - 100);
    println!(
        "{n:>7} files (filled in {filled:.1} s): LRU query for 100 files median {:.3} ms; cleanup pass deleting 100 files {cleanup_ms:.1} ms ({:.2} ms per file); plan: {}",
        median(query_ms),
        cleanup_ms / 100.0,
        plan.join("; ")
    );
}

#[tokio::main]
async fn main() {
    for n in [10_000, 100_000] {
        run(n).await;
    }
}
