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
/// Longest sinc (taps at the input rate): steep enough an anti-aliasing band edge for
/// both speech and music at a cost well under the encoders'.
const MAX_SINC_LEN: usize = 128;
/// Shortest sinc when downsampling.
const MIN_SINC_LEN: usize = 64;
/// Above this interpolation factor we stop using the exact table and interpolate.
const MAX_EXACT_OVERSAMPLING: usize = 2048;

/// The sinc length for a conversion, a multiple of 8 (rubato rounds up to one). Upsampling
/// uses [`MAX_SINC_LEN`]. Downsampling uses the length ffmpeg's default resampler does (32
/// taps at the output rate, so `32·in/out` at the input rate: 59 for 44.1 → 24 kHz, 64 for
/// 16 → 8 kHz), within [`MIN_SINC_LEN`]..=[`MAX_SINC_LEN`]: every tap is a multiply-add per
/// output sample and channel, and at 128 the resampler cost four times ffmpeg's (12% of an
/// mp3 → mp3 conversion).
fn sinc_len(in_rate: u32, out_rate: u32) -> usize {
    if in_rate <= out_rate {
        return MAX_SINC_LEN;
    }
    let len = (32 * u64::from(in_rate)).div_ceil(u64::from(out_rate).max(1));
    (len.div_ceil(8) * 8).clamp(MIN_SINC_LEN as u64, MAX_SINC_LEN as u64) as usize
}

/// Half the filter as rubato uses it.
fn half(in_rate: u32, out_rate: u32) -> u64 {
    (sinc_len(in_rate, out_rate) / 2) as u64
}

/// A mid-stream start of a resampled conversion, see [`Resampler::restart_point`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restart {
    /// Input frame to start from.
    pub(crate) input_frame: u64,
    /// The whole stream's output frame that a fresh resampler's first output equals
    /// (in position; its first outputs are warm-up and must be dropped).
    pub(crate) output_frame: u64,
}

/// Streaming resampler of interleaved blocks.
pub struct Resampler {
    inner: SincFixedIn<f32>,
    channels: usize,
    in_rate: u64,
    out_rate: u64,
    pending: Vec<Vec<f32>>,
    out_planar: Vec<Vec<f32>>,
    total_in: u64,
    /// Output frames produced, including dropped ones.
    emitted: u64,
    /// Output frames still to drop.
    to_skip: u64,
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
        let sinc_len = sinc_len(in_rate, out_rate);
        let params = SincInterpolationParameters {
            sinc_len,
            f_cutoff: calculate_cutoff(sinc_len, window),
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

    /// Where a conversion can start mid-stream so that its output from frame `k0` on
    /// is bit-identical to a run over the whole stream, or `None` when that cannot be
    /// guaranteed (or would not save anything). `total_out` is the whole stream's
    /// output length ([`Resampler::output_frames_for`]).
    ///
    /// Why this is exact, from rubato 0.16's `SincFixedIn` (`asynchro_sinc.rs`,
    /// `process_into_buffer`, Nearest mode):
    /// - with a constant ratio, `t_ratio_increment` is exactly 0, so output `k` (from
    ///   0) is taken at input position `-HALF + (k + 1)·T`, `T = in/out`, `HALF` = half
    ///   the filter (the start `last_index = -(len/2)`); positions are accumulated in
    ///   f64 per chunk (`idx += t_ratio`, `last_index = idx - chunk_size`);
    /// - with `T = m/l` in lowest terms, every exact position is a multiple of `1/l`,
    ///   the table is oversampled exactly `l` times, and `get_nearest_time` rounds
    ///   `frac(idx)·l` to the nearest entry; so as long as the accumulated f64 error
    ///   stays below `1/(2l)`, the entry used (input index and table row) is the exact
    ///   one, whatever the chunking and history;
    /// - the value is then one dot product of the `sinc_len` buffered input samples from that
    ///   index with that table row, in a fixed order (`get_sinc_interpolated`: AVX/SSE/
    ///   scalar picked once per process), with no other state.
    ///
    /// So output `k` depends only on the input samples it reads and on `k mod l`. A
    /// fresh resampler fed from input frame `p = k_p·m/l` (`k_p` a multiple of `l`)
    /// produces, as its output `j`, whole-stream output `k_p + j`, exactly, once its
    /// window no longer reaches before `p` (its history there is zeros): `j ≥
    /// ceil(HALF·l/m)`; the caller drops those first outputs ([`Resampler::discard`]).
    ///
    /// The f64 bound: `|idx| < 1024` always (it is reset by the chunk size each chunk,
    /// exactly, by Sterbenz, since the chunk ends at `idx ≥ 512`), so each addition
    /// rounds by at most 2^-44, and `t_ratio = 1/(out/in)` is off by at most `T·2^-52
    /// ≤ 2^-43` (`T ≤ 383`); after `n` outputs the error is below `n·2^-42`, under
    /// `1/(2l)` when `n·l ≤ 2^40`, checked here with ample slack for the flush.
    pub(crate) fn restart_point(
        in_rate: u32,
        out_rate: u32,
        k0: u64,
        total_out: u64,
    ) -> Option<Restart> {
        if in_rate == 0 || out_rate == 0 || in_rate == out_rate {
            return None;
        }
        let g = gcd(u64::from(in_rate), u64::from(out_rate));
        let (m, l) = (u64::from(in_rate) / g, u64::from(out_rate) / g);
        // Only the exact table (Nearest) is position-exact; the interpolating modes use
        // the f64 fraction itself.
        if l > MAX_EXACT_OVERSAMPLING as u64 {
            return None;
        }
        // The chunk must end at `idx ≥ 512` (end_idx = CHUNK - (sinc_len + 1) - ceil(T)).
        if m.div_ceil(l) > (CHUNK / 2 - sinc_len(in_rate, out_rate) - 1) as u64 {
            return None;
        }
        // Whole-stream outputs, plus what the flush may compute beyond them.
        let slack = 70 * (CHUNK as u64 * l / m + 2);
        if (total_out.checked_add(slack)?).checked_mul(l)? > 1 << 40 {
            return None;
        }
        let warmup = (half(in_rate, out_rate) * l).div_ceil(m);
        let k_p = k0.checked_sub(warmup)? / l * l;
        if k_p == 0 || k0 >= total_out {
            return None;
        }
        Some(Restart {
            input_frame: k_p / l * m,
            output_frame: k_p,
        })
    }

    /// `input` through `r` into `out` (cleared first), or `input` itself when there is no
    /// resampler: the block the next stage takes.
    pub fn through<'a>(
        r: Option<&mut Resampler>,
        input: &'a [f32],
        out: &'a mut Vec<f32>,
    ) -> Result<&'a [f32], MediaError> {
        match r {
            Some(r) => {
                out.clear();
                r.process(input, out)?;
                Ok(out)
            }
            None => Ok(input),
        }
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

    /// Drops the next `n` output frames (they still count towards the stream's length):
    /// the warm-up of a conversion restarted mid-stream, see [`Resampler::restart_point`].
    pub(crate) fn discard(&mut self, n: u64) {
        self.to_skip = n;
    }

    /// Output frames produced so far, dropped ones included.
    pub(crate) fn produced(&self) -> u64 {
        self.emitted
    }

    fn run_chunk(&mut self, out: &mut Vec<f32>, limit: Option<u64>) -> Result<(), MediaError> {
        let (_, produced) = self
            .inner
            .process_into_buffer(&self.pending, &mut self.out_planar, None)
            .map_err(|e| MediaError::encoder(format!("resampler: {e}")))?;
        for p in self.pending.iter_mut() {
            p.clear();
        }
        let mut n = produced;
        if let Some(t) = limit {
            n = n.min(t.saturating_sub(self.emitted) as usize);
        }
        let skip = usize::try_from(self.to_skip).map_or(n, |s| s.min(n));
        self.to_skip -= skip as u64;
        let ch = self.channels;
        out.reserve((n - skip) * ch);
        for i in skip..n {
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

    /// Resamples `input` (mono) in blocks of `block` frames.
    fn resample_all(r: &mut Resampler, input: &[f32], block: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for b in input.chunks(block) {
            r.process(b, &mut out).expect("process");
        }
        r.finish(&mut out).expect("finish");
        out
    }

    #[test]
    fn restart_is_bit_identical() {
        // A signal with energy everywhere (noise plus a chirp), so any difference in the
        // samples read or the table row used shows up.
        let mut x = 0x1234_5678u32;
        let mut signal = |n: usize, rate: u32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let t = i as f32 / rate as f32;
                    0.3 * (t * (300.0 + 2000.0 * t) * std::f32::consts::TAU).sin()
                        + 0.2 * (x as f32 / u32::MAX as f32 - 0.5)
                })
                .collect()
        };
        for &(a, b) in &[
            (16_000u32, 8_000u32),
            (44_100, 8_000),
            (48_000, 8_000),
            (22_050, 8_000),
            (11_025, 8_000),
            (32_000, 8_000),
            (8_000, 16_000),
            (44_100, 48_000),
            (12_000, 8_000),
        ] {
            let input = signal(a as usize * 3 + 77, a);
            let mut r = Resampler::new(a, b, 1).expect("resampler");
            let whole = resample_all(&mut r, &input, 1000);
            let total = whole.len() as u64;
            assert_eq!(
                total,
                Resampler::output_frames_for(input.len() as u64, a, b)
            );
            let mut starts: Vec<u64> = (0..300).map(|i| total * i / 300).collect();
            starts.extend([1, 2, 63, 64, 65, 100, total - 2000, total - 5, total - 1]);
            let mut restarted = 0;
            for k0 in starts {
                let Some(rp) = Resampler::restart_point(a, b, k0, total) else {
                    continue;
                };
                restarted += 1;
                assert!(
                    rp.output_frame <= k0 && rp.input_frame > 0,
                    "{a}->{b} {k0}: {rp:?}"
                );
                let mut r = Resampler::new(a, b, 1).expect("resampler");
                r.discard(k0 - rp.output_frame);
                // Blocks unrelated to the whole run's, to show chunking does not matter.
                let got = resample_all(&mut r, &input[rp.input_frame as usize..], 333);
                assert_eq!(r.produced(), total - rp.output_frame, "{a}->{b} {k0}");
                let want = &whole[k0 as usize..];
                assert_eq!(got.len(), want.len(), "{a}->{b} {k0}");
                let same = got
                    .iter()
                    .zip(want)
                    .all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "{a}->{b}: restart for output {k0} ({rp:?}) differs");
            }
            assert!(restarted > 250, "{a}->{b}: only {restarted} restarts");
        }
    }

    #[test]
    fn restart_refused_where_not_exact() {
        // 44.1 kHz -> 44.099 kHz needs an interpolated table (l > 2048).
        assert_eq!(
            Resampler::restart_point(44_100, 44_099, 100_000, 1 << 20),
            None
        );
        // Too early to have a warmed-up filter from a later aligned start.
        assert_eq!(Resampler::restart_point(44_100, 8_000, 80, 1 << 20), None);
        assert!(Resampler::restart_point(44_100, 8_000, 100, 1 << 20).is_some());
        // Beyond the stream.
        assert_eq!(Resampler::restart_point(16_000, 8_000, 5000, 5000), None);
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
