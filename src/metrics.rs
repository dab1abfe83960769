//! The server's counters, histograms and gauges, as `/metrics` shows them (Prometheus text).
//!
//! Every layer records through one [`Metrics`] handle with typed methods (a route class, a
//! refusal reason, a cleanup cause: never a file or a customer). Recording is a relaxed atomic
//! add into the calling thread's own shard of one flat array, so the HTTP threads (one per core,
//! ~100k requests/s on 4 KiB ranges) never write to a cache line another core writes: no lock, no
//! allocation, no contended line per request. A scrape sums the shards.
//!
//! The text itself is written by `prometheus-client`'s encoder from a [`Collector`] that reads
//! the cells, so names, `# TYPE` lines, label escaping and histogram buckets follow its format.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use mediastore_media::AudioFormat;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Shards of the cell array; threads beyond this share shards (still correct, a little slower).
const SHARDS: usize = 16;
/// Cells are grouped per shard in multiples of this many (128 bytes: two cache lines, as the
/// adjacent-line prefetcher pairs them).
const LINE_CELLS: usize = 16;

/// Upper bounds of the request latency buckets, seconds.
const LATENCY_BOUNDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds of the conversion duration buckets, seconds.
const CONVERSION_BOUNDS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Status codes counted one by one: 100..=599.
const STATUS_BASE: u16 = 100;
const STATUSES: usize = 500;

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in label order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const COUNT: usize = Self::ALL.len();

            /// The label value.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}

label_enum! {
    /// What a request was for: the `route` label of the request metrics.
    Route {
        /// `/f/{key}`.
        Publish => "publish",
        /// `/download/{file_sid}`.
        Download => "download",
        /// `POST /v1/files`.
        Upload => "upload",
        /// Other `/v1/files` requests.
        Files => "files",
        Containers => "containers",
        Account => "account",
        /// `/v1/customers` and `/v1/admin`.
        Admin => "admin",
        /// `/metrics`, `/openapi.json`, `/docs`, `/healthz`.
        Operations => "operations",
        Console => "console",
        /// Anything else (answered 404 or 405).
        Other => "other",
    }
}

label_enum! {
    /// Why an upload was refused: the `reason` label of `mediastore_upload_refusals_total`.
    Refusal {
        /// A storage or file quota (429).
        Quota => "quota",
        /// A `reject` threshold (429).
        Threshold => "threshold",
        /// The container does not take the file's classification (422).
        Classification => "classification",
        /// Larger than allowed (413).
        Size => "size",
    }
}

label_enum! {
    /// Why the cleanup deleted a file: the `cause` label of `mediastore_cleanup_deletions_total`.
    Cleanup {
        /// Past its `expires_at`.
        Expired => "expired",
        /// The oldest of a container over its `delete_lru` threshold.
        Lru => "lru",
    }
}

label_enum! {
    /// Which cache a lookup went to: the `cache` label of the cache counters.
    Cache {
        /// Converted copies (`f=`, `br=`, waveforms).
        Converted => "converted",
        /// Published files and signed links, per HTTP thread.
        Publish => "publish",
    }
}

/// The `format` label of `mediastore_conversion_duration_seconds`: each target audio format
/// (by [`AudioFormat::ALL`]'s index), then `waveform`.
const CONVERSION_FORMATS: usize = AudioFormat::ALL.len() + 1;

/// The series of a conversion: its target format's, or the waveforms' (`None`).
fn conversion_series(format: Option<AudioFormat>) -> usize {
    format
        .and_then(|f| AudioFormat::ALL.iter().position(|a| *a == f))
        .unwrap_or(AudioFormat::ALL.len())
}

/// Where each metric's cells start in a shard.
struct Layout {
    requests: usize,
    latency_buckets: usize,
    latency_sum_ns: usize,
    sent: usize,
    received: usize,
    uploads: usize,
    refusals: usize,
    conversions_refused: usize,
    conversion_buckets: usize,
    conversion_sum_ns: usize,
    hits: usize,
    misses: usize,
    cleanup: usize,
    /// Cells per shard, rounded up to whole lines.
    stride: usize,
}

const fn layout() -> Layout {
    let routes = Route::COUNT;
    let latency_buckets = routes * STATUSES;
    let latency_sum_ns = latency_buckets + routes * (LATENCY_BOUNDS.len() + 1);
    let sent = latency_sum_ns + routes;
    let received = sent + routes;
    let uploads = received + routes;
    let refusals = uploads + 1;
    let conversions_refused = refusals + Refusal::COUNT;
    let conversion_buckets = conversions_refused + 1;
    let conversion_sum_ns = conversion_buckets + CONVERSION_FORMATS * (CONVERSION_BOUNDS.len() + 1);
    let hits = conversion_sum_ns + CONVERSION_FORMATS;
    let misses = hits + Cache::COUNT;
    let cleanup = misses + Cache::COUNT;
    let end = cleanup + Cleanup::COUNT;
    Layout {
        requests: 0,
        latency_buckets,
        latency_sum_ns,
        sent,
        received,
        uploads,
        refusals,
        conversions_refused,
        conversion_buckets,
        conversion_sum_ns,
        hits,
        misses,
        cleanup,
        stride: end.div_ceil(LINE_CELLS) * LINE_CELLS,
    }
}

const LAYOUT: Layout = layout();

/// The calling thread's shard, fixed at its first record.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        let mut v = s.get();
        if v == usize::MAX {
            v = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(v);
        }
        v
    })
}

/// Index of the bucket of `value` among `bounds` (the last index is +Inf).
fn bucket(bounds: &[f64], value: f64) -> usize {
    bounds
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(bounds.len())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The server's metrics (in `AppState`; the transcoder holds a clone of the `Arc`).
pub struct Metrics {
    /// Off only for benchmarks (`--no-metrics`): every record is a no-op.
    enabled: bool,
    cells: Box<[AtomicU64]>,
    conversions_running: AtomicI64,
    conversions_queued: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(true)
    }
}

/// What a scrape adds from the metadata store: the stored totals of every customer.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageTotals {
    pub customers: i64,
    pub files: i64,
    pub bytes: i64,
}

/// Decrements a gauge when dropped.
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A conversion holding a worker: counted in `mediastore_conversions_running` until dropped.
#[derive(Debug)]
pub struct Running(std::sync::Arc<Metrics>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.conversions_running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Metrics that record (`enabled`) or ignore every record.
    pub fn new(enabled: bool) -> Self {
        let cells = (0..SHARDS * LAYOUT.stride)
            .map(|_| AtomicU64::new(0))
            .collect();
        Metrics {
            enabled,
            cells,
            conversions_running: AtomicI64::new(0),
            conversions_queued: AtomicI64::new(0),
        }
    }

    /// This handle, if it records (for callers that skip the work of a record when not).
    pub fn recording(self: &std::sync::Arc<Self>) -> Option<std::sync::Arc<Self>> {
        self.enabled.then(|| std::sync::Arc::clone(self))
    }

    #[inline]
    fn add(&self, cell: usize, v: u64) {
        if self.enabled {
            if let Some(c) = self.cells.get(shard() * LAYOUT.stride + cell) {
                c.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    fn sum(&self, cell: usize) -> u64 {
        (0..SHARDS)
            .filter_map(|s| self.cells.get(s * LAYOUT.stride + cell))
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// One answered request: its route class, status, response body bytes and time from its
    /// headers to its last byte.
    #[inline]
    pub fn request(&self, route: Route, status: u16, sent: u64, took: Duration) {
        let r = route as usize;
        let status = usize::from(status.saturating_sub(STATUS_BASE)).min(STATUSES - 1);
        self.add(LAYOUT.requests + r * STATUSES + status, 1);
        let b = bucket(&LATENCY_BOUNDS, took.as_secs_f64());
        self.add(
            LAYOUT.latency_buckets + r * (LATENCY_BOUNDS.len() + 1) + b,
            1,
        );
        self.add(LAYOUT.latency_sum_ns + r, nanos(took));
        if sent > 0 {
            self.add(LAYOUT.sent + r, sent);
        }
    }

    /// Request body bytes received for `route`.
    #[inline]
    pub fn received(&self, route: Route, bytes: u64) {
        self.add(LAYOUT.received + route as usize, bytes);
    }

    /// A file stored by an upload.
    pub fn upload_stored(&self) {
        self.add(LAYOUT.uploads, 1);
    }

    /// An upload refused for `why`.
    pub fn upload_refused(&self, why: Refusal) {
        self.add(LAYOUT.refusals + why as usize, 1);
    }

    /// A lookup in `cache` that found (`hit`) or did not find its entry.
    #[inline]
    pub fn cache_lookup(&self, cache: Cache, hit: bool) {
        let base = if hit { LAYOUT.hits } else { LAYOUT.misses };
        self.add(base + cache as usize, 1);
    }

    /// A file deleted by the cleanup for `cause`.
    pub fn cleanup_deleted(&self, cause: Cleanup) {
        self.add(LAYOUT.cleanup + cause as usize, 1);
    }

    /// A conversion refused for want of a worker (503) or of the customer's share (429).
    pub fn conversion_refused(&self) {
        self.add(LAYOUT.conversions_refused, 1);
    }

    /// A finished conversion to `format` (`None`: a waveform) that took `took`.
    pub fn conversion_finished(&self, format: Option<AudioFormat>, took: Duration) {
        let f = conversion_series(format);
        let b = bucket(&CONVERSION_BOUNDS, took.as_secs_f64());
        self.add(
            LAYOUT.conversion_buckets + f * (CONVERSION_BOUNDS.len() + 1) + b,
            1,
        );
        self.add(LAYOUT.conversion_sum_ns + f, nanos(took));
    }

    /// Counts a request waiting for a conversion worker until the guard drops.
    pub fn conversion_queued(&self) -> GaugeGuard<'_> {
        self.conversions_queued.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(&self.conversions_queued)
    }

    /// Counts a running conversion until the returned value drops.
    pub fn conversion_running(self: &std::sync::Arc<Self>) -> Running {
        self.conversions_running.fetch_add(1, Ordering::Relaxed);
        Running(std::sync::Arc::clone(self))
    }

    /// The exposition: every metric, with `totals` read from the metadata store.
    pub fn encode(self: &std::sync::Arc<Self>, totals: StorageTotals) -> String {
        let mut registry = Registry::with_prefix("mediastore");
        registry.register_collector(Box::new(Scrape {
            metrics: std::sync::Arc::clone(self),
            totals,
        }));
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// One scrape's view: the cells and the totals read for it.
#[derive(Debug)]
struct Scrape {
    metrics: std::sync::Arc<Metrics>,
    totals: StorageTotals,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Scrape {
    fn counter(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        series: &[(Labels<'_>, usize)],
    ) -> std::fmt::Result {
        let mut m = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
        for (labels, cell) in series {
            m.encode_family(labels)?
                .encode_counter::<NoLabelSet, u64, f64>(&self.metrics.sum(*cell), None)?;
        }
        Ok(())
    }

    /// Histograms of per-bucket cells `buckets + i * (bounds + 1)` and nanosecond sums `sums + i`.
    fn histogram(
        &self,
        enc: &mut DescriptorEncoder<'_>,
        (name, help): (&str, &str),
        bounds: &[f64],
        (buckets, sums): (usize, usize),
        series: &[Labels<'_>],
    ) -> std::fmt::Result {
        let mut m =
            enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
        for (i, labels) in series.iter().enumerate() {
            let base = buckets + i * (bounds.len() + 1);
            let counts: Vec<(f64, u64)> = bounds
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .enumerate()
                .map(|(b, le)| (le, self.metrics.sum(base + b)))
                .collect();
            let count = counts.iter().map(|c| c.1).sum();
            let sum = self.metrics.sum(sums + i) as f64 / 1e9;
            m.encode_family(labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &counts, None)?;
        }
        Ok(())
    }

    fn gauge(
        enc: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        value: i64,
    ) -> std::fmt::Result {
        let m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
        ConstGauge::new(value).encode(m)
    }

    fn requests(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut codes = Vec::new();
        for route in Route::ALL {
            for s in 0..STATUSES {
                let cell = LAYOUT.requests + *route as usize * STATUSES + s;
                if self.metrics.sum(cell) > 0 {
                    codes.push((*route, (STATUS_BASE as usize + s).to_string(), cell));
                }
            }
        }
        let series: Vec<_> = codes
            .iter()
            .map(|(r, code, cell)| (vec![("route", r.label()), ("status", code.as_str())], *cell))
            .collect();
        self.counter(
            enc,
            "http_requests",
            "HTTP requests answered, by route class and status",
            None,
            &series,
        )?;
        let routes: Vec<Labels<'_>> = Route::ALL
            .iter()
            .map(|r| vec![("route", r.label())])
            .collect();
        self.histogram(
            enc,
            (
                "http_request_duration",
                "Time from a request's headers to its response's last byte, by route class",
            ),
            &LATENCY_BOUNDS,
            (LAYOUT.latency_buckets, LAYOUT.latency_sum_ns),
            &routes,
        )?;
        let per_route = |base: usize| -> Vec<(Labels<'_>, usize)> {
            Route::ALL
                .iter()
                .map(|r| (vec![("route", r.label())], base + *r as usize))
                .collect()
        };
        self.counter(
            enc,
            "http_response_body",
            "Response body bytes sent, by route class",
            Some(&Unit::Bytes),
            &per_route(LAYOUT.sent),
        )?;
        self.counter(
            enc,
            "http_request_body",
            "Request body bytes received, by route class",
            Some(&Unit::Bytes),
            &per_route(LAYOUT.received),
        )
    }

    fn storage(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        self.counter(
            enc,
            "uploads",
            "Files stored by uploads",
            None,
            &[(vec![], LAYOUT.uploads)],
        )?;
        let refusals: Vec<_> = Refusal::ALL
            .iter()
            .map(|r| (vec![("reason", r.label())], LAYOUT.refusals + *r as usize))
            .collect();
        self.counter(
            enc,
            "upload_refusals",
            "Uploads refused, by reason",
            None,
            &refusals,
        )?;
        let causes: Vec<_> = Cleanup::ALL
            .iter()
            .map(|c| (vec![("cause", c.label())], LAYOUT.cleanup + *c as usize))
            .collect();
        self.counter(
            enc,
            "cleanup_deletions",
            "Files deleted by the cleanup, by cause",
            None,
            &causes,
        )?;
        Self::gauge(
            enc,
            "stored_files",
            "Files stored, all customers",
            None,
            self.totals.files,
        )?;
        Self::gauge(
            enc,
            "stored",
            "Bytes stored, all customers",
            Some(&Unit::Bytes),
            self.totals.bytes,
        )?;
        Self::gauge(enc, "customers", "Customers", None, self.totals.customers)
    }

    fn conversions(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = &self.metrics;
        Self::gauge(
            enc,
            "conversions_running",
            "Conversions holding a worker",
            None,
            m.conversions_running.load(Ordering::Relaxed),
        )?;
        Self::gauge(
            enc,
            "conversions_queued",
            "Requests waiting for a conversion worker",
            None,
            m.conversions_queued.load(Ordering::Relaxed),
        )?;
        self.counter(
            enc,
            "conversions_refused",
            "Conversions refused for want of a worker (503) or of the customer's share (429)",
            None,
            &[(vec![], LAYOUT.conversions_refused)],
        )?;
        let formats: Vec<Labels<'_>> = AudioFormat::ALL
            .iter()
            .map(|f| f.name())
            .chain(["waveform"])
            .map(|f| vec![("format", f)])
            .collect();
        self.histogram(
            enc,
            (
                "conversion_duration",
                "Time of finished conversions, by target format",
            ),
            &CONVERSION_BOUNDS,
            (LAYOUT.conversion_buckets, LAYOUT.conversion_sum_ns),
            &formats,
        )?;
        let caches = |base: usize| -> Vec<(Labels<'_>, usize)> {
            Cache::ALL
                .iter()
                .map(|c| (vec![("cache", c.label())], base + *c as usize))
                .collect()
        };
        self.counter(
            enc,
            "cache_hits",
            "Cache lookups that found their entry",
            None,
            &caches(LAYOUT.hits),
        )?;
        self.counter(
            enc,
            "cache_misses",
            "Cache lookups that did not",
            None,
            &caches(LAYOUT.misses),
        )
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = enc.encode_descriptor("build", "The running build", None, MetricType::Info)?;
        prometheus_client::metrics::info::Info::new(vec![("version", env!("CARGO_PKG_VERSION"))])
            .encode(m)?;
        self.requests(&mut enc)?;
        self.storage(&mut enc)?;
        self.conversions(&mut enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn records_from_several_threads_add_up() {
        let m = Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.request(Route::Publish, 206, 4096, Duration::from_micros(50));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = m.encode(StorageTotals::default());
        assert!(
            text.contains(
                "mediastore_http_requests_total{route=\"publish\",status=\"206\"} 4000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "mediastore_http_response_body_bytes_total{route=\"publish\"} 16384000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "mediastore_http_request_duration_seconds_bucket{route=\"publish\",le=\"0.0001\"} 4000\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let m = Arc::new(Metrics::new(false));
        m.request(Route::Files, 200, 10, Duration::from_millis(1));
        m.upload_refused(Refusal::Quota);
        let text = m.encode(StorageTotals::default());
        assert!(!text.contains("status=\"200\""), "{text}");
        assert!(
            text.contains("mediastore_upload_refusals_total{reason=\"quota\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn buckets_take_values_up_to_their_bound() {
        assert_eq!(bucket(&LATENCY_BOUNDS, 0.0001), 0);
        assert_eq!(bucket(&LATENCY_BOUNDS, 0.00011), 1);
        assert_eq!(bucket(&LATENCY_BOUNDS, 1e9), LATENCY_BOUNDS.len());
    }
}
