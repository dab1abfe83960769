//! On-the-fly conversion for the publish URI and signed links: a bounded worker pool, single
//! flight per copy, and a cache of finished copies weighted by their size.
//!
//! Finished copies live as files in `<data-dir>/transcode` (so they cost page cache, not heap)
//! and are indexed by a `moka` cache whose weight is their byte length, bounded by
//! `--transcode-cache`; an evicted copy's file is removed.

pub mod conversion;
pub mod loudness;
pub mod variant;
pub mod waveform;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mediastore_media::{MediaError, TranscodeOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::conversion::{Conversion, Phase, Reader, SpoolWriter};
pub use self::loudness::Measured;
pub use self::variant::{Requested, Variant, VariantKey};
use crate::error::Error;
use crate::fair::{PerCustomer, Slot};
use crate::metrics::{Cache, Metrics, Running};
use crate::store::blob::{LocalCopy, OpenBlob};
use crate::store::fs::LocalFile;

/// How long a request waits for a free worker before it is told to come back (503).
pub const PERMIT_WAIT: Duration = Duration::from_millis(250);

/// A finished converted copy, kept on local disk.
#[derive(Debug)]
pub struct ConvertedCopy {
    pub path: PathBuf,
    /// The copy opened for reads (the same fast path as stored blobs).
    pub open: Arc<dyn OpenBlob>,
    pub len: u64,
}

/// Told of every copy a conversion finishes (e.g. to share it with other nodes); called on the
/// conversion's blocking thread, so it must hand real work off.
pub type OnKept = Arc<dyn Fn(&Variant, &Arc<ConvertedCopy>) + Send + Sync>;

/// Told of every loudness measurement a conversion takes (to keep it with the file); called on
/// the conversion's blocking thread, so it must hand real work off.
pub type OnMeasured = Arc<dyn Fn(&Variant, &crate::domain::model::LoudnessInfo) + Send + Sync>;

/// The conversion service shared by all requests.
pub struct Transcoder {
    pool: Arc<Semaphore>,
    cache: moka::sync::Cache<VariantKey, Arc<ConvertedCopy>>,
    inflight: Arc<Mutex<HashMap<VariantKey, Arc<Conversion>>>>,
    dir: PathBuf,
    on_kept: Option<OnKept>,
    /// Measurements taken here, until the metadata store has them too (see `loudness`).
    measured: loudness::Measured,
    /// Conversions running per customer, and how many one may run (`--conversions-per-customer`).
    customers: Arc<PerCustomer>,
    per_customer: AtomicUsize,
    workers: usize,
    metrics: Arc<Metrics>,
}

/// A worker, held by one conversion of one customer's audio.
#[derive(Debug)]
pub struct Permit {
    _worker: OwnedSemaphorePermit,
    _slot: Slot,
    _running: Running,
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder")
            .field("dir", &self.dir)
            .finish()
    }
}

/// What a finished conversion logs.
struct Outcome<'a> {
    variant: &'a Variant,
    started: Instant,
    /// Milliseconds of audio read, when a conversion ran.
    audio_ms: Option<u64>,
}

fn log_conversion(o: Outcome<'_>, bytes: u64, cached: bool) {
    tracing::info!(
        source = %o.variant.source_hint,
        target = o.variant.key.format.name(),
        bitrate_kbps = o.variant.key.bitrate_kbps,
        waveform = o.variant.key.waveform.map(|w| w.format.name()),
        norm_lufs = o.variant.key.norm_lufs(),
        audio_ms = o.audio_ms,
        took_ms = o.started.elapsed().as_secs_f64() * 1000.0,
        bytes,
        from_cache = cached,
        "conversion"
    );
}

impl Transcoder {
    /// A transcoder with `workers` conversions at once and `cache_bytes` of cached copies,
    /// keeping its files in `dir` (emptied now: copies do not outlive the process), recording
    /// into `metrics`.
    pub fn new(
        dir: &Path,
        workers: usize,
        cache_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let cache = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_: &VariantKey, c: &Arc<ConvertedCopy>| {
                u32::try_from(c.len).unwrap_or(u32::MAX)
            })
            .support_invalidation_closures()
            .eviction_listener(|_, c: Arc<ConvertedCopy>, _| {
                // Readers holding the file keep reading it; the name goes now.
                let _ = std::fs::remove_file(&c.path);
            })
            .build();
        Ok(Transcoder {
            pool: Arc::new(Semaphore::new(workers.max(1))),
            cache,
            inflight: Arc::new(Mutex::new(HashMap::new())),
            dir: dir.to_path_buf(),
            on_kept: None,
            measured: loudness::Measured::new(None),
            customers: PerCustomer::new(),
            // Until told otherwise, one customer leaves one worker to the others.
            per_customer: AtomicUsize::new(workers.saturating_sub(1).max(1)),
            workers: workers.max(1),
            metrics,
        })
    }

    /// Calls `f` with every copy a conversion finishes.
    pub fn on_kept(mut self, f: OnKept) -> Self {
        self.on_kept = Some(f);
        self
    }

    /// Calls `f` with every loudness measurement a conversion takes.
    pub fn on_measured(mut self, f: OnMeasured) -> Self {
        self.measured = loudness::Measured::new(Some(f));
        self
    }

    /// A finished copy, if cached.
    pub fn cached(&self, variant: &Variant) -> Option<Arc<ConvertedCopy>> {
        let hit = self.cache.get(&variant.key);
        self.metrics.cache_lookup(Cache::Converted, hit.is_some());
        if hit.is_some() {
            log_conversion(
                Outcome {
                    variant,
                    started: Instant::now(),
                    audio_ms: None,
                },
                hit.as_ref().map_or(0, |c| c.len),
                true,
            );
        }
        hit
    }

    /// Drops every cached copy of a blob (its file was deleted) and stops its conversions.
    pub fn forget(&self, blob_key: &str) {
        for (k, conv) in self
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if k.blob_key == blob_key {
                conv.cancel
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
        let key = blob_key.to_string();
        if let Err(e) = self
            .cache
            .invalidate_entries_if(move |k, _| k.blob_key == key)
        {
            tracing::warn!(error = %e, "cannot invalidate cached copies");
        }
    }

    /// Sets how many conversions one customer may run at once.
    pub fn limit_per_customer(&self, n: usize) {
        self.per_customer.store(n.max(1), Ordering::Relaxed);
    }

    /// A worker for `customer`: past the customer's share, refused after a short wait for one
    /// of its own to end, so it never queues in front of others (429, or 503 when the share is
    /// the whole pool: then capacity, not the share, is what ran out); otherwise waits briefly
    /// for a worker, then gives up with 503 rather than queueing without limit.
    pub async fn permit(&self, customer: &str) -> Result<Permit, Error> {
        let queued = self.metrics.conversion_queued();
        let permit = self.wait_for_permit(customer).await;
        drop(queued);
        if permit.is_err() {
            self.metrics.conversion_refused();
        }
        permit
    }

    async fn wait_for_permit(&self, customer: &str) -> Result<Permit, Error> {
        let limit = self.per_customer.load(Ordering::Relaxed);
        let Some(slot) = self.customers.acquire(customer, limit, PERMIT_WAIT).await else {
            return Err(if limit >= self.workers {
                Error::Busy
            } else {
                Error::CustomerBusy {
                    what: "conversions",
                    limit,
                }
            });
        };
        match tokio::time::timeout(PERMIT_WAIT, Arc::clone(&self.pool).acquire_owned()).await {
            Ok(Ok(p)) => Ok(Permit {
                _worker: p,
                _slot: slot,
                _running: self.metrics.conversion_running(),
            }),
            _ => Err(Error::Busy),
        }
    }

    /// Joins the running conversion of `variant`, or starts it from `source`.
    pub async fn conversion(
        &self,
        variant: &Variant,
        source: &Arc<LocalCopy>,
    ) -> Result<Arc<Conversion>, Error> {
        if let Some(c) = self.running(&variant.key) {
            return Ok(c);
        }
        let permit = self.permit(&variant.customer_id).await?;
        // Someone may have started it while we waited for the permit.
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = inflight.get(&variant.key).filter(|c| !c.is_cancelled()) {
            return Ok(Arc::clone(c));
        }
        let path = self
            .dir
            .join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let (conv, writer) = Conversion::create(path)?;
        inflight.insert(variant.key.clone(), Arc::clone(&conv));
        drop(inflight);
        self.spawn(
            variant.clone(),
            Arc::clone(source),
            Arc::clone(&conv),
            writer,
            permit,
        );
        Ok(conv)
    }

    fn running(&self, key: &VariantKey) -> Option<Arc<Conversion>> {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|c| !c.is_cancelled())
            .cloned()
    }

    fn spawn(
        &self,
        variant: Variant,
        source: Arc<LocalCopy>,
        conv: Arc<Conversion>,
        writer: std::fs::File,
        permit: Permit,
    ) {
        let started = Instant::now();
        let cache = self.cache.clone();
        let dir_done = self
            .dir
            .join(format!("{}.copy", uuid::Uuid::new_v4().simple()));
        let inflight_key = variant.key.clone();
        let inflight = Arc::clone(&self.inflight);
        let on_kept = self.on_kept.clone();
        let metrics = Arc::clone(&self.metrics);
        let measured = self.measured.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = SpoolWriter::new(&conv, writer);
            let result = produce(&variant, &measured, source.path(), &mut w, &conv.cancel)
                .and_then(|audio_ms| Ok((audio_ms, w.finish()?)));
            // The worker is free as soon as the encoder is; readers may still be catching up.
            drop(permit);
            match result {
                Ok((audio_ms, len)) => {
                    let kept = std::fs::rename(&conv.path, &dir_done)
                        .and_then(|()| std::fs::File::open(&dir_done))
                        .map(|file| {
                            Arc::new(ConvertedCopy {
                                path: dir_done.clone(),
                                open: Arc::new(LocalFile::new(file, len)),
                                len,
                            })
                        });
                    match kept {
                        Ok(copy) => {
                            // Waiters get the copy even if the cache cannot keep it (too big).
                            conv.keep(Arc::clone(&copy));
                            if !conv.is_cancelled() {
                                if let Some(f) = &on_kept {
                                    f(&variant, &copy);
                                }
                                cache.insert(inflight_key.clone(), copy);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "converted copy not kept"),
                    }
                    metrics.conversion_finished(variant.metrics_format(), started.elapsed());
                    log_conversion(
                        Outcome {
                            variant: &variant,
                            started,
                            audio_ms: Some(audio_ms),
                        },
                        len,
                        false,
                    );
                    conv.finish(Phase::Done);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&conv.path);
                    if !matches!(e, MediaError::Cancelled) {
                        tracing::warn!(source = %variant.source_hint, target = variant.key.format.name(), error = %e, "conversion failed");
                    } else {
                        tracing::info!(
                            target = variant.key.format.name(),
                            took_ms = started.elapsed().as_secs_f64() * 1000.0,
                            "conversion cancelled: no one is reading"
                        );
                    }
                    conv.finish(Phase::Failed(e));
                }
            }
            // A cancelled run may have been replaced by a fresh one under the same key.
            let mut map = inflight.lock().unwrap_or_else(PoisonError::into_inner);
            if map
                .get(&inflight_key)
                .is_some_and(|c| Arc::ptr_eq(c, &conv))
            {
                map.remove(&inflight_key);
            }
        });
    }

    /// Follows the conversion of `variant` from its first byte (joining or starting it).
    pub async fn follow(
        &self,
        variant: &Variant,
        source: &Arc<LocalCopy>,
    ) -> Result<Reader, Error> {
        Ok(self.conversion(variant, source).await?.subscribe())
    }

    /// The whole copy, converting it once if needed (everyone asking meanwhile shares the run).
    pub async fn complete(
        &self,
        variant: &Variant,
        source: &Arc<LocalCopy>,
    ) -> Result<Arc<ConvertedCopy>, Error> {
        // A run we joined may be cancelled under us (its last reader left): start another.
        for _ in 0..3 {
            if let Some(c) = self.cache.get(&variant.key) {
                return Ok(c);
            }
            let conv = self.conversion(variant, source).await?;
            match conv.wait().await {
                Phase::Done => {
                    if let Some(copy) = conv.kept() {
                        return Ok(copy);
                    }
                }
                Phase::Failed(_) if conv.is_cancelled() => {}
                Phase::Failed(why) => return Err(variant.media_error(why)),
                Phase::Running => {}
            }
        }
        Err(Error::Busy)
    }

    /// Bytes `[start, start + len)` of a constant-rate copy without converting what follows, on
    /// a worker. Identical to the same slice of the whole copy.
    pub async fn range(
        &self,
        variant: &Variant,
        source: &Arc<LocalCopy>,
        start: u64,
        len: u64,
    ) -> Result<Bytes, Error> {
        let permit = self.permit(&variant.customer_id).await?;
        let variant = variant.clone();
        let source = Arc::clone(source);
        let started = Instant::now();
        let metrics = Arc::clone(&self.metrics);
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let opts = TranscodeOptions {
                format: variant.key.format,
                bitrate_kbps: variant.key.bitrate_kbps,
            };
            let r = convert_range(source.path(), &variant.source_hint, &opts, start, len);
            if r.is_ok() {
                metrics.conversion_finished(variant.metrics_format(), started.elapsed());
            }
            tracing::info!(
                source = %variant.source_hint,
                target = variant.key.format.name(),
                start, len,
                took_ms = started.elapsed().as_secs_f64() * 1000.0,
                from_cache = false,
                "range conversion"
            );
            r
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(out)
    }

    /// Exact length of a constant-rate copy, from the source's headers (a cheap probe).
    pub async fn exact_len(
        &self,
        variant: &Variant,
        source: &Arc<LocalCopy>,
    ) -> Result<Option<u64>, Error> {
        // A normalised copy's bytes depend on all the audio before them (the limiter): it is
        // served like a variable-rate copy, once converted whole.
        if variant.key.waveform.is_some()
            || variant.key.norm.is_some()
            || !variant.key.format.is_constant_rate()
        {
            return Ok(None);
        }
        let (source, hint) = (Arc::clone(source), variant.source_hint.clone());
        let opts = TranscodeOptions {
            format: variant.key.format,
            bitrate_kbps: variant.key.bitrate_kbps,
        };
        let probed = tokio::task::spawn_blocking(move || {
            mediastore_media::probe(source.path(), Some(&hint))
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok(probed
            .ok()
            .and_then(|info| mediastore_media::exact_output_len(&info, &opts)))
    }
}

/// Runs the conversion (or waveform computation) of `variant` into `out`; returns the
/// milliseconds of audio read.
fn produce(
    variant: &Variant,
    measured: &loudness::Measured,
    source: &Path,
    out: &mut SpoolWriter,
    cancel: &AtomicBool,
) -> Result<u64, MediaError> {
    let hint = Some(variant.source_hint.as_str());
    let ms = |frames: u64, rate: u32| frames * 1000 / u64::from(rate.max(1));
    match &variant.key.waveform {
        Some(wf) => mediastore_media::waveform(source, hint, wf, out, cancel)
            .map(|s| ms(s.frames, s.sample_rate)),
        None => {
            let opts = TranscodeOptions {
                format: variant.key.format,
                bitrate_kbps: variant.key.bitrate_kbps,
            };
            let stats = match variant.key.norm_lufs() {
                Some(target) => {
                    let norm = measured.normalization(variant, source, target, cancel)?;
                    mediastore_media::transcode_normalized(source, hint, &opts, &norm, out, cancel)
                }
                None => mediastore_media::transcode(source, hint, &opts, out, cancel),
            };
            stats.map(|s| ms(s.input_frames, s.input_rate))
        }
    }
}

/// Bytes `[start, start + len)` of the conversion, from the media layer, which converts only
/// what the window needs where that gives the same bytes (see `mediastore_media::transcode_range`).
fn convert_range(
    source: &Path,
    hint: &str,
    opts: &TranscodeOptions,
    start: u64,
    len: u64,
) -> Result<Bytes, Error> {
    let want = usize::try_from(len).map_err(|_| std::io::Error::other("range too large"))?;
    let mut out = Vec::with_capacity(want);
    // Nobody cancels a range: it is short and its caller waits for all of it.
    let cancel = AtomicBool::new(false);
    mediastore_media::transcode_range(source, Some(hint), opts, start, len, &mut out, &cancel)
        .map_err(media_error)?;
    Ok(Bytes::from(out))
}

/// A media error of a conversion asked for by `f` (or `br`), its kind kept for `http::error`.
pub fn media_error(e: MediaError) -> Error {
    Error::Media {
        field: "f",
        source: e,
    }
}

/// A deleted file's copies go (and its conversions stop); other changes leave copies alone,
/// since a blob's bytes never change.
impl crate::domain::events::Subscriber for Transcoder {
    fn file_changed(&self, change: &crate::domain::events::FileChange) {
        if let crate::domain::events::FileChange::Deleted { blob_key, .. } = change {
            self.forget(blob_key);
        }
    }

    fn out_of_touch(&self, _lost: bool) {
        // Copies are found through the metadata, read on every request: nothing to drop.
    }
}
