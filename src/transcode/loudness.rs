//! `norm=<LUFS>`: normalised copies start from the source's loudness, measured once per stored
//! audio (a decode pass, the first time any normalised copy of it is made) and kept with the
//! file in the metadata store, so another format or target does not measure again. Until the
//! store has it, this node remembers it too.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use mediastore_media::{loudness, Loudness, MediaError, Normalization};

use super::{OnMeasured, Variant};
use crate::domain::model::LoudnessInfo;

/// Measurements this node took, by blob key, a few thousand at most (the store has them all).
const REMEMBERED: u64 = 4096;

/// The measurement a normalised copy starts from: the stored one, else one remembered, else
/// one taken now (and handed to the store).
#[derive(Clone)]
pub struct Measured {
    recent: moka::sync::Cache<String, LoudnessInfo>,
    on_measured: Option<OnMeasured>,
}

impl Measured {
    /// Calls `on_measured` with every measurement taken.
    pub fn new(on_measured: Option<OnMeasured>) -> Self {
        Measured {
            recent: moka::sync::Cache::new(REMEMBERED),
            on_measured,
        }
    }

    /// The normalisation of `variant` (its source at `source`) to `target_lufs`, measuring the
    /// source when no measurement is known. Runs on a blocking thread.
    pub fn normalization(
        &self,
        variant: &Variant,
        source: &Path,
        target_lufs: f64,
        cancel: &AtomicBool,
    ) -> Result<Normalization, MediaError> {
        let blob = &variant.key.blob_key;
        let known = variant.loudness.or_else(|| self.recent.get(blob));
        let info = match known {
            Some(info) => info,
            None => {
                let started = Instant::now();
                let l = loudness::measure(source, Some(&variant.source_hint), cancel)?;
                let info = to_info(&l);
                tracing::info!(
                    source = %variant.source_hint,
                    integrated_lufs = info.integrated_lufs,
                    true_peak_dbtp = info.true_peak_dbtp,
                    took_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "loudness measured"
                );
                self.recent.insert(blob.clone(), info);
                if let Some(f) = &self.on_measured {
                    f(variant, &info);
                }
                info
            }
        };
        Ok(Normalization {
            target_lufs,
            measured: from_info(&info),
        })
    }
}

/// The stored form of a measurement.
pub fn to_info(l: &Loudness) -> LoudnessInfo {
    LoudnessInfo {
        integrated_lufs: l.integrated_lufs,
        mono_lufs: l.mono_lufs,
        true_peak_dbtp: l.true_peak_dbtp,
    }
}

/// A stored measurement, as the media layer takes it.
pub fn from_info(l: &LoudnessInfo) -> Loudness {
    Loudness {
        integrated_lufs: l.integrated_lufs,
        mono_lufs: l.mono_lufs,
        true_peak_dbtp: l.true_peak_dbtp,
    }
}
