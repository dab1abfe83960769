//! Sample-rate conversion with rubato's windowed-sinc resampler.
//!
//! Output length is deterministic: exactly `round(input_frames * out / in)`
//! frames, with the filter delay removed at the start and the tail flushed at
//! the end, so the same input always yields the same samples (the basis for
//! computing exact output lengths of constant-rate targets).

use rubato::{
    calculate_cutoff, Resampler as _, SincFixedIn, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use crate::MediaError;

/// Input frames per rubato call; small enough to keep latency and memory low,
/// large enough to amortise per-call overhead.
const CHUNK: usize = 1024;
/// Sinc length: 128 taps gives a steep enough anti-aliasing band edge for both
/// speech and music at a cost well under the encoders'.
const SINC_LEN: usize = 128;
/// Above this interpolation factor we stop using the exact table and interpolate.
const MAX_EXACT_OVERSAMPLING: usize = 2048;

/// Streaming resampler of interleaved blocks.
pub struct Resampler {
    inner: SincFixedIn<f32>,
    channels: usize,
    in_rate: u64,
    out_rate: u64,
    pending: Vec<Vec<f32>>,
    out_planar: Vec<Vec<f32>>,
    total_in: u64,
    emitted: u64,
    to_skip: usize,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Resampler {
    /// A resampler from `in_rate` to `out_rate` for `channels` interleaved channels.
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self, MediaError> {
        let g = gcd(u64::from(in_rate), u64::from(out_rate)).max(1);
        let l = (u64::from(out_rate) / g) as usize;
        // When every output instant falls on a multiple of 1/L of an input period
        // (always, for rational rate pairs), a table oversampled L times is exact:
        // no interpolation error and the cheapest inner loop.
        let (interpolation, oversampling_factor) = if l <= MAX_EXACT_OVERSAMPLING {
            (SincInterpolationType::Nearest, l)
        } else {
            (SincInterpolationType::Cubic, 256)
        };
        let window = WindowFunction::BlackmanHarris2;
        let params = SincInterpolationParameters {
            sinc_len: SINC_LEN,
            f_cutoff: calculate_cutoff(SINC_LEN, window),
            oversampling_factor,
            interpolation,
            window,
        };
        let ratio = f64::from(out_rate) / f64::from(in_rate);
        let inner = SincFixedIn::<f32>::new(ratio, 1.0, params, CHUNK, channels)
            .map_err(|e| MediaError::encoder(format!("resampler: {e}")))?;
        let out_planar = inner.output_buffer_allocate(true);
        // rubato 0.16's SincFixedIn starts its read position half a filter before the
        // first input, so its output is already aligned; `output_delay()` reports the
        // filter's group delay, which must NOT be skipped again (measured: an impulse at
        // input n lands exactly at output n*out/in without skipping).
        let to_skip = 0;
        Ok(Resampler {
            inner,
            channels,
            in_rate: u64::from(in_rate),
            out_rate: u64::from(out_rate),
            pending: (0..channels).map(|_| Vec::with_capacity(CHUNK)).collect(),
            out_planar,
            total_in: 0,
            emitted: 0,
            to_skip,
        })
    }

    /// Output frames the whole stream will have for `input_frames` input frames.
    pub fn output_frames_for(input_frames: u64, in_rate: u32, out_rate: u32) -> u64 {
        let (i, o) = (u128::from(in_rate), u128::from(out_rate));
        ((u128::from(input_frames) * o + i / 2) / i) as u64
    }

    /// Feeds interleaved input, appending whatever output is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), MediaError> {
        let ch = self.channels;
        let frames = input.len() / ch;
        self.total_in += frames as u64;
        let mut f = 0;
        while f < frames {
            let room = CHUNK - self.pending[0].len();
            let take = room.min(frames - f);
            for (c, p) in self.pending.iter_mut().enumerate() {
                p.extend(input[f * ch..(f + take) * ch].iter().skip(c).step_by(ch));
            }
            f += take;
            if self.pending[0].len() == CHUNK {
                self.run_chunk(out, None)?;
            }
        }
        Ok(())
    }

    /// Flushes the filter tail; after this the output holds exactly
    /// [`Resampler::output_frames_for`] frames in total.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), MediaError> {
        let target =
            Self::output_frames_for(self.total_in, self.in_rate as u32, self.out_rate as u32);
        // Pad with silence until the delayed tail has come out.
        let mut guard = 0;
        while self.emitted < target {
            for p in self.pending.iter_mut() {
                p.resize(CHUNK, 0.0);
            }
            self.run_chunk(out, Some(target))?;
            guard += 1;
            if guard > 64 {
                break;
            }
        }
        Ok(())
    }

    fn run_chunk(&mut self, out: &mut Vec<f32>, limit: Option<u64>) -> Result<(), MediaError> {
        let (_, produced) = self
            .inner
            .process_into_buffer(&self.pending, &mut self.out_planar, None)
            .map_err(|e| MediaError::encoder(format!("resampler: {e}")))?;
        for p in self.pending.iter_mut() {
            p.clear();
        }
        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let mut n = produced - skip;
        if let Some(t) = limit {
            n = n.min(t.saturating_sub(self.emitted) as usize);
        }
        let ch = self.channels;
        out.reserve(n * ch);
        for i in skip..skip + n {
            for c in 0..ch {
                out.push(self.out_planar[c][i]);
            }
        }
        self.emitted += n as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(in_rate: u32, out_rate: u32, frames: usize) -> Vec<f32> {
        let input: Vec<f32> = (0..frames)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / in_rate as f32).sin() * 0.5)
            .collect();
        let mut r = Resampler::new(in_rate, out_rate, 1).expect("resampler");
        let mut out = Vec::new();
        for block in input.chunks(777) {
            r.process(block, &mut out).expect("process");
        }
        r.finish(&mut out).expect("finish");
        out
    }

    #[test]
    fn output_length_is_exact() {
        for &(i, o, n) in &[
            (44_100, 16_000, 44_100),
            (8_000, 16_000, 12_345),
            (16_000, 8_000, 999),
            (48_000, 44_100, 5),
        ] {
            let out = run(i, o, n);
            assert_eq!(
                out.len() as u64,
                Resampler::output_frames_for(n as u64, i, o),
                "{i}->{o}"
            );
        }
    }

    #[test]
    fn impulses_stay_in_place() {
        for &(a, b) in &[
            (8_000u32, 16_000u32),
            (16_000, 8_000),
            (44_100, 16_000),
            (8_000, 8_001),
        ] {
            let mut input = vec![0f32; a as usize];
            input[1000] = 1.0;
            let mut r = Resampler::new(a, b, 1).expect("resampler");
            let mut out = Vec::new();
            r.process(&input, &mut out).expect("process");
            r.finish(&mut out).expect("finish");
            let peak = out
                .iter()
                .enumerate()
                .fold(
                    (0, 0f32),
                    |m, (i, &v)| if v.abs() > m.1 { (i, v.abs()) } else { m },
                )
                .0;
            let want = (1000.0 * f64::from(b) / f64::from(a)).round() as usize;
            assert!(
                peak.abs_diff(want) <= 1,
                "{a}->{b}: peak at {peak}, want {want}"
            );
        }
    }

    #[test]
    fn delay_is_compensated() {
        // A 440 Hz sine resampled 8k -> 16k should line up with a 16k sine.
        let out = run(8_000, 16_000, 8_000);
        let err: f32 = out[2000..14000]
            .iter()
            .enumerate()
            .map(|(k, &s)| {
                let t = (k + 2000) as f32 / 16_000.0;
                (s - (t * 440.0 * std::f32::consts::TAU).sin() * 0.5).abs()
            })
            .fold(0.0, f32::max);
        assert!(err < 0.01, "max error {err}");
    }
}
