//! Shared helpers: fixture paths, full decodes, and similarity measures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mediastore_media::{mix, open_decoder, Limits, Resampler};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/media")
        .join(name)
}

/// Decodes a whole file to mono f32 at its own rate.
pub fn decode_mono(path: &Path, hint: Option<&str>) -> (u32, Vec<f32>) {
    let hint = hint.or_else(|| path.extension().and_then(|e| e.to_str()));
    let (_, mut src) = open_decoder(path, hint, &Limits::default()).expect("open decoder");
    let mut all = Vec::new();
    let mut block = Vec::new();
    while src.next_block(&mut block).expect("decode") {
        let ch = usize::from(src.spec().channels);
        mix(&block, ch, 1, &mut all);
        block.clear();
    }
    (src.spec().rate, all)
}

pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to {
        return x.to_vec();
    }
    let mut r = Resampler::new(from, to, 1).expect("resampler");
    let mut out = Vec::new();
    for b in x.chunks(4096) {
        r.process(b, &mut out).expect("resample");
    }
    r.finish(&mut out).expect("finish");
    out
}

/// Highest normalised cross-correlation between `a` and `b` over lags up to `max_lag`
/// samples either way (encoders that cannot signal their delay shift the signal).
pub fn best_correlation(a: &[f32], b: &[f32], max_lag: usize) -> f64 {
    let mut best = f64::MIN;
    for lag in -(max_lag as isize)..=(max_lag as isize) {
        let (x, y) = if lag >= 0 {
            (a, b.get(lag as usize..).unwrap_or(&[]))
        } else {
            (a.get((-lag) as usize..).unwrap_or(&[]), b)
        };
        let n = x.len().min(y.len());
        if n < 1000 {
            continue;
        }
        let (mut sxy, mut sxx, mut syy) = (0f64, 0f64, 0f64);
        for i in 0..n {
            let (p, q) = (f64::from(x[i]), f64::from(y[i]));
            sxy += p * q;
            sxx += p * p;
            syy += q * q;
        }
        let c = sxy / (sxx.sqrt() * syy.sqrt()).max(1e-12);
        best = best.max(c);
    }
    best
}

/// A longer copy of a 16-bit WAV fixture (repeated `times`), so fixed container
/// overhead (Vorbis setup headers are ~4 KB) does not dominate bitrate measurements.
pub fn long_wav(name: &str, times: usize, dir: &Path) -> PathBuf {
    let mut r = hound::WavReader::open(fixture(name)).expect("open fixture");
    let spec = r.spec();
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let out = dir.join(format!("long_{name}"));
    let mut w = hound::WavWriter::create(&out, spec).expect("create");
    for _ in 0..times {
        for &s in &samples {
            w.write_sample(s).expect("write");
        }
    }
    w.finalize().expect("finalize");
    out
}
