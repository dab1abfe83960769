//! `mediastore migrate`: copies every customer, token, container, file and its bytes, and the
//! deployment's secrets, from the stores the settings name to new ones (e.g. from the embedded
//! default to PostgreSQL + S3).
//!
//! - The source is only read: its metadata store is opened read-only, its blob store only
//!   listed and read.
//! - Each blob is copied under the same key and its SHA-256 and length checked against the
//!   file's record while it is written; a mismatch stops the migration, the copy is removed.
//! - Progress is the destination itself: a file's row is written only after its bytes were
//!   copied and verified, and every import leaves an existing row alone, so an interrupted run
//!   resumes by running again (files already there are skipped, a blob copied without its row
//!   is copied again).
//! - Totals are copied as stored (the source is consistent; the destination adds nothing).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::domain::model::FileRecord;
use crate::store::meta::Secret;
use crate::store::upload::Upload;
use crate::store::{self, blob_cache::BlobCache, BlobSettings, BlobStore, MetaStore};

/// Settings of `mediastore migrate`: the source as `serve` names it, and the destination.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The source's data dir (its defaults and secrets files).
    #[arg(long, env = "MEDIASTORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The source metadata store [default: sqlite://<data-dir>/meta.db].
    #[arg(long, env = "MEDIASTORE_METADATA_URL")]
    pub metadata_url: Option<String>,
    /// The source blob store [default: file://<data-dir>/blobs].
    #[arg(long, env = "MEDIASTORE_BLOB_URL")]
    pub blob_url: Option<String>,
    /// The destination metadata store (e.g. postgres://user:pass@host/db).
    #[arg(long, env = "MEDIASTORE_TO_METADATA_URL")]
    pub to_metadata_url: String,
    /// The destination blob store (e.g. s3://bucket/prefix; AWS_* variables as for serve).
    #[arg(long, env = "MEDIASTORE_TO_BLOB_URL")]
    pub to_blob_url: String,
    /// Files copied at once.
    #[arg(long, env = "MEDIASTORE_MIGRATE_PARALLEL", default_value_t = 4)]
    pub parallel: usize,
    /// Part size of multipart uploads to S3.
    #[arg(long, env = "MEDIASTORE_BLOB_PART_SIZE", default_value = "8MiB", value_parser = crate::config::parse_size)]
    pub blob_part_size: u64,
    /// Testing aid: stop with an error once this many files were copied, as an interrupted run.
    #[arg(long, hide = true)]
    pub stop_after_files: Option<u64>,
}

/// Files read from the source per page.
const PAGE: i64 = 500;

/// Names of the secrets a deployment keeps, and the files an embedded data dir kept them in
/// before they moved into the metadata store.
const ADMIN_TOKEN_SECRET: &str = crate::app::ADMIN_TOKEN_SECRET;
const SIGNING_KEY_SECRET: &str = crate::app::SIGNING_KEY_SECRET;

/// What a migration did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub customers: u64,
    pub containers: u64,
    /// Files copied by this run.
    pub files_copied: u64,
    /// Files already in the destination (an earlier, interrupted run).
    pub files_skipped: u64,
    pub bytes_copied: u64,
}

/// Counters the progress line reads.
#[derive(Debug, Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
}

/// Runs the migration.
pub async fn run(args: MigrateArgs) -> anyhow::Result<Summary> {
    let from_meta_url = args
        .metadata_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("meta.db").display()));
    let from_blob_url = args
        .blob_url
        .clone()
        .unwrap_or_else(|| format!("file://{}", args.data_dir.join("blobs").display()));
    if from_meta_url == args.to_metadata_url || from_blob_url == args.to_blob_url {
        bail!("the destination must differ from the source");
    }
    let part_size = usize::try_from(args.blob_part_size)?;
    // A cache is needed only for local copies, which a migration never asks for.
    let cache_dir = std::env::temp_dir().join(format!("mediastore-migrate-{}", std::process::id()));
    let settings = BlobSettings {
        part_size,
        cache: Arc::new(BlobCache::new(&cache_dir, 0, 0)?),
    };
    let src_meta = store::open_meta_read_only(&from_meta_url)
        .await
        .with_context(|| format!("source metadata {from_meta_url}"))?;
    let src_blobs = store::open_blobs_read_only(&from_blob_url, &settings)
        .with_context(|| format!("source blobs {from_blob_url}"))?;
    let dst_meta = store::open_meta(&args.to_metadata_url)
        .await
        .with_context(|| format!("destination metadata {}", args.to_metadata_url))?;
    let dst_blobs = store::open_blobs(&args.to_blob_url, &settings)
        .with_context(|| format!("destination blobs {}", args.to_blob_url))?;
    let result = copy_all(
        &args,
        src_meta.as_ref(),
        &src_blobs,
        dst_meta.as_ref(),
        &dst_blobs,
    )
    .await;
    let _ = std::fs::remove_dir_all(&cache_dir);
    result
}

async fn copy_all(
    args: &MigrateArgs,
    src_meta: &dyn MetaStore,
    src_blobs: &Arc<dyn BlobStore>,
    dst_meta: &dyn MetaStore,
    dst_blobs: &Arc<dyn BlobStore>,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    for s in source_secrets(args, src_meta).await? {
        dst_meta.import_secret(&s).await?;
    }
    let customers = src_meta.export_customers().await?;
    let (total_files, total_bytes) = customers.iter().fold((0u64, 0u64), |(f, b), c| {
        (
            f + c.customer.total_files.max(0) as u64,
            b + c.customer.total_bytes.max(0) as u64,
        )
    });
    for c in &customers {
        dst_meta.import_customer(c).await?;
        summary.customers += 1;
    }
    // An external container's files stay in the customer's bucket: only their rows move.
    let mut external = std::collections::HashSet::new();
    for c in src_meta.export_containers().await? {
        dst_meta.import_container(&c).await?;
        if c.is_external() {
            external.insert(c.container_sid.clone());
        }
        summary.containers += 1;
    }
    let external = &external;

    let done = Arc::new(Counters::default());
    let progress = tokio::spawn(report(Arc::clone(&done), total_files, total_bytes));
    let mut after: Option<String> = None;
    let outcome: anyhow::Result<()> = async {
        loop {
            let page = src_meta.export_files_after(after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.file_sid.clone());
            let full = page.len() as i64 == PAGE;
            let copies = futures_util::stream::iter(page.into_iter().map(|f| {
                let done = Arc::clone(&done);
                async move {
                    let copied = if external.contains(&f.container_sid) {
                        dst_meta.import_file(&f).await?
                    } else {
                        copy_file(&f, src_blobs, dst_meta, dst_blobs).await?
                    };
                    done.files.fetch_add(1, Ordering::Relaxed);
                    if copied {
                        done.bytes
                            .fetch_add(f.size.max(0) as u64, Ordering::Relaxed);
                    }
                    Ok::<_, anyhow::Error>((copied, f.size.max(0) as u64))
                }
            }))
            .buffer_unordered(args.parallel.max(1));
            let mut copies = std::pin::pin!(copies);
            while let Some((copied, size)) = copies.try_next().await? {
                if copied {
                    summary.files_copied += 1;
                    summary.bytes_copied += size;
                } else {
                    summary.files_skipped += 1;
                }
                if args.stop_after_files == Some(summary.files_copied) {
                    bail!(
                        "stopped after {} files (--stop-after-files)",
                        summary.files_copied
                    );
                }
            }
            if !full {
                break;
            }
        }
        Ok(())
    }
    .await;
    progress.abort();
    outcome?;
    finish_line(&summary);
    Ok(summary)
}

/// Copies one file unless the destination already has it: bytes first (verified), then its row.
/// True when it was copied now.
async fn copy_file(
    f: &FileRecord,
    src_blobs: &Arc<dyn BlobStore>,
    dst_meta: &dyn MetaStore,
    dst_blobs: &Arc<dyn BlobStore>,
) -> anyhow::Result<bool> {
    if dst_meta.file_by_sid(&f.file_sid).await?.is_some() {
        return Ok(false);
    }
    let size = u64::try_from(f.size)?;
    let mut body = src_blobs
        .read_range(&f.blob_key, 0, size)
        .await
        .with_context(|| format!("reading the bytes of file {}", f.file_sid))?;
    let mut upload = Upload::begin(dst_blobs.as_ref(), &f.blob_key).await?;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                upload.abort().await;
                return Err(anyhow::Error::from(e).context(format!("reading file {}", f.file_sid)));
            }
        };
        if let Err(e) = upload.write(chunk).await {
            upload.abort().await;
            return Err(anyhow::Error::from(e).context(format!("writing file {}", f.file_sid)));
        }
    }
    let stored = upload.commit().await?;
    if stored.size != size || stored.sha256 != f.checksum_sha256 {
        dst_blobs.delete(&stored.key).await?;
        bail!(
            "file {}: the source's bytes do not match its record ({} bytes, sha256 {}; the record says {} bytes, sha256 {})",
            f.file_sid,
            stored.size,
            stored.sha256,
            size,
            f.checksum_sha256
        );
    }
    dst_meta.import_file(f).await?;
    Ok(true)
}

/// The deployment's secrets: those in the source's metadata store, and those an embedded data
/// dir still keeps only in its files (a data dir last run before secrets moved into the store).
async fn source_secrets(args: &MigrateArgs, meta: &dyn MetaStore) -> anyhow::Result<Vec<Secret>> {
    let mut secrets = meta.export_secrets().await.unwrap_or_default();
    let has = |secrets: &[Secret], name: &str| secrets.iter().any(|s| s.name == name);
    if !has(&secrets, ADMIN_TOKEN_SECRET) {
        if let Ok(t) = std::fs::read_to_string(args.data_dir.join("admin_token")) {
            secrets.push(Secret {
                name: ADMIN_TOKEN_SECRET.into(),
                value: Sha256::digest(t.trim().as_bytes()).to_vec(),
            });
        }
    }
    if !has(&secrets, SIGNING_KEY_SECRET) {
        if let Ok(k) = std::fs::read(args.data_dir.join("signing_key")) {
            secrets.push(Secret {
                name: SIGNING_KEY_SECRET.into(),
                value: k,
            });
        }
    }
    Ok(secrets)
}

/// Prints files, bytes, rate and ETA once a second: on one rewritten line on a terminal, as
/// plain lines otherwise (a log).
async fn report(done: Arc<Counters>, total_files: u64, total_bytes: u64) {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (files, bytes) = (
            done.files.load(Ordering::Relaxed),
            done.bytes.load(Ordering::Relaxed),
        );
        let line = progress_line(files, total_files, bytes, total_bytes, started.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

fn finish_line(s: &Summary) {
    let tty = std::io::stderr().is_terminal();
    eprintln!(
        "{}migrated {} customers, {} containers, {} files ({}) copied, {} files already there",
        if tty { "\r\x1b[K" } else { "" },
        s.customers,
        s.containers,
        s.files_copied,
        human_bytes(s.bytes_copied),
        s.files_skipped
    );
}

/// `files 120/500  bytes 1.2 GiB/4.0 GiB  85.3 MiB/s  ETA 0:34`.
fn progress_line(
    files: u64,
    total_files: u64,
    bytes: u64,
    total_bytes: u64,
    elapsed: Duration,
) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = bytes as f64 / secs;
    let eta = if rate > 0.0 && total_bytes > bytes {
        let left = ((total_bytes - bytes) as f64 / rate) as u64;
        format!("{}:{:02}", left / 60, left % 60)
    } else {
        "-".into()
    };
    format!(
        "files {files}/{total_files}  bytes {}/{}  {}/s  ETA {eta}",
        human_bytes(bytes),
        human_bytes(total_bytes),
        human_bytes(rate as u64)
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_counts_rate_and_eta() {
        let line = progress_line(5, 10, 50 << 20, 100 << 20, Duration::from_secs(10));
        assert_eq!(
            line,
            "files 5/10  bytes 50.0 MiB/100.0 MiB  5.0 MiB/s  ETA 0:10"
        );
        assert_eq!(human_bytes(512), "512 B");
        assert!(progress_line(0, 0, 0, 0, Duration::ZERO).ends_with("ETA -"));
    }
}
