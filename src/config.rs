//! Settings of `mediastore serve`: each a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Parses a size such as `256MiB`, `1GiB`, `500kB` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?} (use B, kB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// `mediastore serve` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MEDIASTORE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the metadata database, the blobs, the admin token and the signing key.
    #[arg(long, env = "MEDIASTORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Base of `publish_uri` and `uri_download` [default: http://<listen>].
    #[arg(long, env = "MEDIASTORE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Admin token [default: generated on first start, printed once, kept in the data dir].
    #[arg(long, env = "MEDIASTORE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Metadata store [default: sqlite://<data-dir>/meta.db].
    #[arg(long, env = "MEDIASTORE_METADATA_URL")]
    pub metadata_url: Option<String>,
    /// Blob store [default: file://<data-dir>/blobs].
    #[arg(long, env = "MEDIASTORE_BLOB_URL")]
    pub blob_url: Option<String>,
    /// How often expiry and delete_lru cleanup run.
    #[arg(long, env = "MEDIASTORE_CLEANUP_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub cleanup_interval: Duration,
    /// Validity of `uri_download` links.
    #[arg(long, env = "MEDIASTORE_DOWNLOAD_LINK_TTL", default_value = "1h", value_parser = parse_duration)]
    pub download_link_ttl: Duration,
    /// Memory for cached transcoded copies.
    #[arg(long, env = "MEDIASTORE_TRANSCODE_CACHE", default_value = "256MiB", value_parser = parse_size)]
    pub transcode_cache: u64,
    /// Largest file the server accepts at all (a container's max_file_size may lower it).
    #[arg(long, env = "MEDIASTORE_MAX_FILE_SIZE", default_value = "5GiB", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Conversions running at once [default: the number of CPUs].
    #[arg(long, env = "MEDIASTORE_TRANSCODE_WORKERS")]
    pub transcode_workers: Option<usize>,
    /// Conversions one customer may have running at once (on-the-fly and at upload); past it
    /// 429 with Retry-After [default: the workers less one, at least 1, so another customer
    /// always finds a worker].
    #[arg(long, env = "MEDIASTORE_CONVERSIONS_PER_CUSTOMER")]
    pub conversions_per_customer: Option<usize>,
    /// Uploads one customer may have in progress at once; past it 429 with Retry-After.
    #[arg(long, env = "MEDIASTORE_UPLOADS_PER_CUSTOMER", default_value_t = 16)]
    pub uploads_per_customer: usize,
    /// Threads serving HTTP, each with its own event loop [default: the number of CPUs].
    #[arg(long, env = "MEDIASTORE_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// A connection with no request in flight and none begun for this long (at most twice
    /// this) is closed; it also bounds how long a client may take to send a request's headers.
    #[arg(long, env = "MEDIASTORE_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Local disk for this node's read-through cache of remote (S3) blobs.
    #[arg(long, env = "MEDIASTORE_BLOB_CACHE", default_value = "1GiB", value_parser = parse_size)]
    pub blob_cache: u64,
    /// Memory for first reads of remote blobs on their way to the cache: a whole read's copy is
    /// kept here until its client has the blob, then written, so the disk write does not slow
    /// the client; past it, copies are written as they come.
    #[arg(long, env = "MEDIASTORE_BLOB_CACHE_KEEP", default_value = "64MiB", value_parser = parse_size)]
    pub blob_cache_keep: u64,
    /// Part size of multipart uploads to S3 (at least 5 MiB); an upload holds about three parts
    /// in memory at most.
    #[arg(long, env = "MEDIASTORE_BLOB_PART_SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub blob_part_size: u64,
    /// Blob-store space for converted copies shared by the nodes (only with a shared store);
    /// the oldest go first.
    #[arg(long, env = "MEDIASTORE_SHARED_COPIES", default_value = "10GiB", value_parser = parse_size)]
    pub shared_copies: u64,
    /// On a shared (S3) store, how old an unfinished upload or a blob no file describes must be
    /// before start-up repair removes it: other nodes may be in the middle of an upload.
    #[arg(long, env = "MEDIASTORE_UPLOAD_GRACE", default_value = "1h", value_parser = parse_duration)]
    pub upload_grace: Duration,
    /// Hosts (or host:port) an external container's `endpoint` may name, comma-separated; any
    /// scheme and address there. Otherwise only the providers' public endpoints over HTTPS, and
    /// never a loopback, link-local or private address.
    #[arg(long, env = "MEDIASTORE_EXTERNAL_ENDPOINTS", default_value = "")]
    pub external_endpoints: String,
    /// Testing aid: enables `POST /v1/admin/clock` to move the server's clock forward.
    #[arg(long, env = "MEDIASTORE_TEST_CLOCK", hide = true)]
    pub test_clock: bool,
    /// `GET /metrics` answers anyone, not only the admin token (for a scraper on a private
    /// network).
    #[arg(long, env = "MEDIASTORE_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Benchmarking aid: records no metrics (the A/B of `benches/metrics.sh`).
    #[arg(long, env = "MEDIASTORE_NO_METRICS", hide = true)]
    pub no_metrics: bool,
}

/// Validated settings, with defaults resolved against the data dir and the bound address.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: Option<String>,
    pub admin_token: Option<String>,
    pub metadata_url: String,
    pub blob_url: String,
    pub cleanup_interval: Duration,
    pub download_link_ttl: Duration,
    pub transcode_cache_bytes: u64,
    pub max_file_size: u64,
    pub transcode_workers: usize,
    pub conversions_per_customer: usize,
    pub uploads_per_customer: usize,
    pub http_threads: usize,
    pub idle_timeout: Duration,
    pub blob_cache_bytes: u64,
    pub blob_cache_keep_bytes: u64,
    pub shared_copies_bytes: u64,
    pub blob_part_size: usize,
    pub upload_grace: Duration,
    /// Where external containers may connect (`--external-endpoints`).
    pub external_endpoints: crate::domain::endpoint::EndpointPolicy,
    pub test_clock: bool,
    pub metrics_public: bool,
    pub metrics: bool,
}

impl Config {
    /// Resolves defaults and checks the settings agree with each other.
    pub fn from_args(a: ServeArgs) -> Result<Self, String> {
        let data_dir = a.data_dir;
        let metadata_url = a
            .metadata_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("meta.db").display()));
        let blob_url = a
            .blob_url
            .unwrap_or_else(|| format!("file://{}", data_dir.join("blobs").display()));
        if a.cleanup_interval.is_zero() {
            return Err("--cleanup-interval must be more than 0".into());
        }
        if a.idle_timeout.is_zero() {
            return Err("--idle-timeout must be more than 0".into());
        }
        if a.download_link_ttl.is_zero() {
            return Err("--download-link-ttl must be more than 0".into());
        }
        if let Some(t) = &a.admin_token {
            if t.len() < 16 {
                return Err("--admin-token must be at least 16 characters".into());
            }
        }
        let public_url = a.public_url.map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err("--public-url must start with http:// or https://".into());
            }
        }
        const MIN_PART: u64 = 5 * 1024 * 1024;
        if !(MIN_PART..=(1 << 30)).contains(&a.blob_part_size) {
            return Err("--blob-part-size must be between 5MiB and 1GiB (S3's limits)".into());
        }
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = a.transcode_workers.unwrap_or(cpus).max(1);
        if a.conversions_per_customer == Some(0) || a.uploads_per_customer == 0 {
            return Err(
                "--conversions-per-customer and --uploads-per-customer must be at least 1".into(),
            );
        }
        Ok(Config {
            listen: a.listen,
            data_dir,
            public_url,
            admin_token: a.admin_token,
            metadata_url,
            blob_url,
            cleanup_interval: a.cleanup_interval,
            download_link_ttl: a.download_link_ttl,
            transcode_cache_bytes: a.transcode_cache,
            max_file_size: a.max_file_size,
            transcode_workers: workers,
            conversions_per_customer: a
                .conversions_per_customer
                .unwrap_or(workers.saturating_sub(1))
                .max(1),
            uploads_per_customer: a.uploads_per_customer,
            http_threads: a.http_threads.unwrap_or(cpus).clamp(1, 256),
            idle_timeout: a.idle_timeout,
            blob_cache_bytes: a.blob_cache,
            blob_cache_keep_bytes: a.blob_cache_keep,
            shared_copies_bytes: a.shared_copies,
            blob_part_size: usize::try_from(a.blob_part_size).map_err(|e| e.to_string())?,
            upload_grace: a.upload_grace,
            external_endpoints: crate::domain::endpoint::EndpointPolicy::parse(
                &a.external_endpoints,
            )
            .map_err(|e| format!("--external-endpoints: {e}"))?,
            test_clock: a.test_clock,
            metrics_public: a.metrics_public,
            metrics: !a.no_metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500kB"), Ok(500_000));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
