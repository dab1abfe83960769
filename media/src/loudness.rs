//! Loudness normalisation (ITU-R BS.1770-4 / EBU R128): measure a recording's integrated
//! loudness and true peak in one decode pass, then convert it with a gain towards a target and
//! a true-peak limiter that keeps the result at most [`TRUE_PEAK_CEILING_DBTP`].
//!
//! The gain is capped at [`MAX_GAIN_DB`] so the hiss of a near-silent recording is not blown
//! up, and audio with no block above the absolute gate (−70 LUFS; digital silence) gets none.
//! The limiter looks ahead ([`LOOKAHEAD_MS`]), detects peaks between samples by 4x polyphase
//! interpolation, and never lets its gain rise above what every peak in its window allows, so
//! no sample (nor the analogue signal between them) goes over its ceiling.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use ebur128::{EbuR128, Mode};

use crate::decode;
use crate::encode::{self, Plan};
use crate::format::AudioFormat;
use crate::limits::Limits;
use crate::mix::mix;
use crate::pipeline::TranscodeOptions;
use crate::resample::Resampler;
use crate::MediaError;

/// Targets a client may ask for, LUFS.
pub const TARGET_RANGE_LUFS: std::ops::RangeInclusive<f64> = -40.0..=-5.0;
/// Most gain applied, dB.
pub const MAX_GAIN_DB: f64 = 20.0;
/// The true peak the output stays under, dBTP.
pub const TRUE_PEAK_CEILING_DBTP: f64 = -1.0;
/// How far ahead the limiter looks, ms: its gain is down before a peak arrives.
pub const LOOKAHEAD_MS: f64 = 5.0;
/// How fast the limiter's gain recovers after a peak (time constant), ms.
const RELEASE_MS: f64 = 20.0;
/// Most loudness given back for what the limiter takes, dB.
const MAX_MAKEUP_DB: f64 = 6.0;
/// Loudness stored for audio with no block above the gates, and the floor of a true peak.
pub const SILENT_DB: f64 = -200.0;

/// A recording's loudness, as measured once and stored with the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS; `None` when no block passes the gates (silence, or below
    /// −70 LUFS throughout).
    pub integrated_lufs: Option<f64>,
    /// The same, of the channels mixed to mono as a mono target carries them (equal to
    /// `integrated_lufs` for mono audio).
    pub mono_lufs: Option<f64>,
    /// Highest true peak over all channels, dBTP (at least [`SILENT_DB`]).
    pub true_peak_dbtp: f64,
}

/// A normalisation asked of a conversion: the target and the source's measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Target integrated loudness, LUFS.
    pub target_lufs: f64,
    /// The source's loudness.
    pub measured: Loudness,
}

impl Normalization {
    /// The gain, dB, for a target of `channels` from a source of `source_channels`.
    pub fn gain_db(&self, source_channels: u16, channels: u16) -> f64 {
        let measured = if channels == 1 && source_channels > 1 {
            self.measured.mono_lufs
        } else {
            self.measured.integrated_lufs
        };
        gain_db(measured, self.target_lufs)
    }
}

/// The gain bringing audio at `measured` LUFS to `target`, capped at [`MAX_GAIN_DB`]; none for
/// audio with no measurable loudness (silence stays silence).
pub fn gain_db(measured: Option<f64>, target: f64) -> f64 {
    match measured {
        Some(l) if l.is_finite() && l > SILENT_DB => (target - l).min(MAX_GAIN_DB),
        _ => 0.0,
    }
}

/// The limiter's ceiling for a target format, dBTP: below −1 by what its encoder may add to
/// peaks (a lossy codec's or ADPCM's reconstruction overshoots the signal it was given).
pub fn ceiling_dbtp(format: AudioFormat, bitrate_kbps: Option<u32>) -> f64 {
    // Measured with ffmpeg's meter on speech and music pushed into the limiter: G.711 added
    // up to 0.2 dB, G.722 0.3 (0.6 on speech pushed hard into the limiter), mp3/ogg/AAC 0.3 at
    // 128 kbit/s and up to 0.7 at 32.
    let margin = match format {
        AudioFormat::Wav | AudioFormat::Flac => 0.2,
        AudioFormat::Alaw | AudioFormat::Ulaw => 0.4,
        AudioFormat::G722 => 0.8,
        AudioFormat::Mp3 | AudioFormat::Ogg | AudioFormat::Mp4 => {
            if bitrate_kbps.is_some_and(|b| b < 64) {
                1.0
            } else {
                0.5
            }
        }
    };
    TRUE_PEAK_CEILING_DBTP - margin
}

/// The gain normalising `input` as `opts`' target carries it (mixed, resampled) to `norm`'s
/// target. When the limiter will turn peaks down it takes some loudness with them: then the
/// audio is run through gain and limiter once without encoding (a decode pass), and what went
/// missing is added back (at most [`MAX_MAKEUP_DB`], the total at most [`MAX_GAIN_DB`]).
pub(crate) fn settle_gain(
    input: &Path,
    hint: Option<&str>,
    limits: &Limits,
    opts: &TranscodeOptions,
    norm: &Normalization,
    cancel: &AtomicBool,
) -> Result<f64, MediaError> {
    let (_, mut src) = decode::open(input, hint, limits)?;
    let block = decode::first_block(src.as_mut())?;
    let spec = src.spec();
    let plan = encode::plan(opts.format, spec, opts.bitrate_kbps)?;
    let gain = norm.gain_db(spec.channels, plan.channels);
    let ceiling = ceiling_dbtp(plan.format, plan.bitrate_kbps);
    if gain == 0.0 || norm.measured.true_peak_dbtp + gain <= ceiling {
        return Ok(gain);
    }
    let loss = limiter_loss(
        src.as_mut(),
        block,
        spec.channels,
        &plan,
        gain,
        ceiling,
        cancel,
    )?;
    Ok((gain + loss.makeup_db()).min(MAX_GAIN_DB))
}

/// What the limiter took from a recording at one gain.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LimiterLoss {
    /// The loudness taken, dB (at most 0).
    db: f64,
    /// The share of the output's energy in frames it turned down: those stay at the ceiling
    /// when the gain rises, so each dB more gain loses this much of a dB again.
    pinned: f64,
}

impl LimiterLoss {
    /// The gain to add back so the limited audio reaches the loudness asked: `m` with
    /// `m + loss(gain + m) = 0`, the loss growing by `pinned` per dB (at most
    /// [`MAX_MAKEUP_DB`]).
    fn makeup_db(&self) -> f64 {
        // Past 3/4 pinned (audio limited nearly throughout) the estimate stops growing: more
        // gain there mostly turns into limiting.
        (-self.db / (1.0 - self.pinned.clamp(0.0, 0.75))).clamp(0.0, MAX_MAKEUP_DB)
    }
}

/// The loudness the limiter takes from `src` (its first `block` already read)
/// mixed and resampled as `plan` says, with `gain` applied: the energy of its output against
/// its input's. The limiter turns the level down for a few milliseconds around each peak,
/// evenly across frequencies, so the energy ratio is what BS.1770's K-weighted, gated mean
/// sees to within a few hundredths of a dB, at a fraction of a meter's cost.
fn limiter_loss(
    src: &mut dyn decode::PcmSource,
    block: Vec<f32>,
    channels: u16,
    plan: &Plan,
    gain: f64,
    ceiling: f64,
    cancel: &AtomicBool,
) -> Result<LimiterLoss, MediaError> {
    let spec = src.spec();
    let (src_ch, dst_ch) = (usize::from(channels.max(1)), usize::from(plan.channels));
    let mut resampler = if spec.rate != plan.rate {
        Some(Resampler::new(spec.rate, plan.rate, dst_ch)?)
    } else {
        None
    };
    let mut limiter = Normalizer::new(gain, ceiling, plan.channels, plan.rate);
    let (mut energy_in, mut energy_out) = (0.0f64, 0.0f64);
    let (mut mixed, mut resampled, mut limited) = (Vec::new(), Vec::new(), Vec::new());
    decode::each_block(src, block, cancel, |block| {
        mixed.clear();
        mix(block, src_ch, dst_ch, &mut mixed);
        let ready = Resampler::through(resampler.as_mut(), &mixed, &mut resampled)?;
        energy_in += energy(ready);
        limited.clear();
        limiter.process(ready, &mut limited);
        energy_out += energy(&limited);
        Ok(())
    })?;
    limited.clear();
    if let Some(r) = &mut resampler {
        resampled.clear();
        r.finish(&mut resampled)?;
        energy_in += energy(&resampled);
        limiter.process(&resampled, &mut limited);
    }
    limiter.finish(&mut limited);
    energy_out += energy(&limited);
    // The input's energy before the gain: the output's is compared at the same level.
    let energy_in = energy_in * 10f64.powf(gain / 10.0);
    Ok(if energy_in > 0.0 && energy_out > 0.0 {
        LimiterLoss {
            db: (10.0 * (energy_out / energy_in).log10()).min(0.0),
            pinned: limiter.limited_energy() / energy_out,
        }
    } else {
        LimiterLoss {
            db: 0.0,
            pinned: 0.0,
        }
    })
}

/// The sum of squares of `xs`.
fn energy(xs: &[f32]) -> f64 {
    // Lane-wise partial sums in f32 over short chunks (vectorised, and short enough not to
    // lose precision), added up in f64.
    xs.chunks(1024)
        .map(|c| {
            let mut acc = [0.0f32; 8];
            let lanes = c.chunks_exact(8);
            let tail: f32 = lanes.remainder().iter().map(|v| v * v).sum();
            for l in lanes {
                for i in 0..8 {
                    acc[i] += l[i] * l[i];
                }
            }
            f64::from(acc.iter().sum::<f32>() + tail)
        })
        .sum()
}

/// Measures the integrated loudness and true peak of `input` (format from its content, or
/// `hint` for raw audio), decoding it once. `cancel` is polled between blocks.
pub fn measure(
    input: &Path,
    hint: Option<&str>,
    cancel: &AtomicBool,
) -> Result<Loudness, MediaError> {
    let (_, mut src) = decode::open(input, hint, &Limits::default())?;
    let block = decode::first_block(src.as_mut())?;
    let spec = src.spec();
    let mut meter = Meter::new(spec.channels, spec.rate)?;
    decode::each_block(src.as_mut(), block, cancel, |block| meter.add(block))?;
    meter.finish()
}

/// BS.1770 meters of a stream: its own channels (with true peak), and its mono mix.
pub struct Meter {
    full: EbuR128,
    peak: PeakFinder,
    mono: Option<EbuR128>,
    channels: usize,
    mixed: Vec<f32>,
}

fn meter_error(e: ebur128::Error) -> MediaError {
    MediaError::Unsupported(format!("loudness meter: {e}"))
}

impl Meter {
    /// Meters for interleaved audio of `channels` at `rate`.
    pub fn new(channels: u16, rate: u32) -> Result<Self, MediaError> {
        // The histogram keeps memory constant whatever the length (0.1 LU resolution).
        // True peak by our own interpolator, which skips what cannot raise the maximum.
        let full = EbuR128::new(u32::from(channels), rate, Mode::I | Mode::HISTOGRAM)
            .map_err(meter_error)?;
        let mono = if channels > 1 {
            Some(EbuR128::new(1, rate, Mode::I | Mode::HISTOGRAM).map_err(meter_error)?)
        } else {
            None
        };
        Ok(Meter {
            full,
            peak: PeakFinder::new(channels),
            mono,
            channels: usize::from(channels.max(1)),
            mixed: Vec::new(),
        })
    }

    /// Adds interleaved frames.
    pub fn add(&mut self, block: &[f32]) -> Result<(), MediaError> {
        self.full.add_frames_f32(block).map_err(meter_error)?;
        self.peak.add(block);
        if let Some(m) = &mut self.mono {
            self.mixed.clear();
            mix(block, self.channels, 1, &mut self.mixed);
            m.add_frames_f32(&self.mixed).map_err(meter_error)?;
        }
        Ok(())
    }

    /// The measurement of everything added.
    pub fn finish(&mut self) -> Result<Loudness, MediaError> {
        let lufs = |m: &EbuR128| -> Result<Option<f64>, MediaError> {
            let l = m.loudness_global().map_err(meter_error)?;
            Ok((l.is_finite() && l > SILENT_DB).then_some(l))
        };
        let integrated_lufs = lufs(&self.full)?;
        let mono_lufs = match &self.mono {
            Some(m) => lufs(m)?,
            None => integrated_lufs,
        };
        let peak = f64::from(self.peak.finish());
        let true_peak_dbtp = if peak > 0.0 {
            (20.0 * peak.log10()).max(SILENT_DB)
        } else {
            SILENT_DB
        };
        Ok(Loudness {
            integrated_lufs,
            mono_lufs,
            true_peak_dbtp,
        })
    }
}

/// A recovering gain this close to where it is heading (about 0.001 dB) gets there.
const SETTLED: f32 = 1e-4;

/// Frames checked against the ceiling at once before finding peaks frame by frame.
const RUN: u64 = 8;
/// Taps per phase of the 4x interpolator that finds peaks between samples.
const TAPS: usize = 12;
/// Frames before the current one the interpolator reads (and `TAPS - HALF - 1` after).
const HALF: usize = TAPS / 2 - 1;
/// Frames after the current one the interpolator reads.
const AHEAD: usize = TAPS - HALF - 1;

/// The 4x interpolator that finds peaks between samples: phases 1/4, 2/4, 3/4 (phase 0 is the
/// sample itself) of a Hann-windowed sinc, each scaled to unit gain at DC.
struct Interpolator {
    h: [[f32; TAPS]; 3],
    /// Σ|h| of the worst phase (at least 1): no interpolated value exceeds this times the
    /// largest sample around it.
    worst_sum: f32,
}

impl Interpolator {
    fn new() -> Self {
        let mut h = [[0.0f32; TAPS]; 3];
        let half_width = TAPS as f64 / 2.0;
        for (k, phase) in h.iter_mut().enumerate() {
            let t = (k + 1) as f64 / 4.0;
            let mut taps = [0.0f64; TAPS];
            for (i, tap) in taps.iter_mut().enumerate() {
                // Tap i weighs frame c - HALF + i; its distance from the point c + t.
                let x = i as f64 - HALF as f64 - t;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let w = 0.5 + 0.5 * (std::f64::consts::PI * x / half_width).cos();
                *tap = sinc * w;
            }
            let sum: f64 = taps.iter().sum();
            for (dst, v) in phase.iter_mut().zip(taps) {
                *dst = (v / sum) as f32;
            }
        }
        let worst_sum = h
            .iter()
            .map(|p| p.iter().map(|v| v.abs()).sum::<f32>())
            .fold(1.0f32, f32::max);
        Interpolator { h, worst_sum }
    }

    /// The most any sample or interpolated value can reach in a stretch whose largest
    /// absolute sample is `loudest`.
    fn bound(&self, loudest: f32) -> f32 {
        loudest * self.worst_sum
    }

    /// The largest absolute value of a frame's samples and of the signal between them and the
    /// next frame's, the frame's interpolation window starting at `buf[start]`.
    fn frame_peak(&self, buf: &[f32], start: usize, ch: usize) -> f32 {
        let mut peak = 0.0f32;
        for c in 0..ch {
            let at = |i: usize| buf[start + i * ch + c];
            peak = peak.max(at(HALF).abs());
            for phase in &self.h {
                let mut acc = 0.0f32;
                for (i, w) in phase.iter().enumerate() {
                    acc += w * at(i);
                }
                peak = peak.max(acc.abs());
            }
        }
        peak
    }
}

/// The largest absolute value in `xs`.
fn loudest(xs: &[f32]) -> f32 {
    xs.iter().fold(0.0f32, |m, s| m.max(s.abs()))
}

/// The true peak of interleaved audio (4x interpolated), found in one pass that interpolates
/// only runs of frames whose largest sample could raise the maximum so far.
struct PeakFinder {
    ch: usize,
    interp: Interpolator,
    /// The last frames of the audio so far: context of the next frames' interpolation, and
    /// the frames not yet looked at (the last `AHEAD`).
    tail: Vec<f32>,
    buf: Vec<f32>,
    peak: f32,
}

impl PeakFinder {
    fn new(channels: u16) -> Self {
        let ch = usize::from(channels.max(1));
        PeakFinder {
            ch,
            interp: Interpolator::new(),
            tail: vec![0.0; (HALF + AHEAD) * ch],
            buf: Vec::new(),
            peak: 0.0,
        }
    }

    fn add(&mut self, block: &[f32]) {
        self.buf.clear();
        self.buf.extend_from_slice(&self.tail);
        self.buf.extend_from_slice(block);
        self.scan();
    }

    fn finish(&mut self) -> f32 {
        self.buf.clear();
        self.buf.extend_from_slice(&self.tail);
        self.buf.extend(std::iter::repeat_n(0.0, AHEAD * self.ch));
        self.scan();
        self.peak
    }

    /// Looks at every frame of `buf` with its interpolation context inside it.
    fn scan(&mut self) {
        let ch = self.ch;
        let n = self.buf.len() / ch;
        let Some(last) = n.checked_sub(AHEAD) else {
            return;
        };
        let mut f = HALF;
        while f < last {
            let end = (f + RUN as usize).min(last);
            let near = loudest(&self.buf[(f - HALF) * ch..(end + AHEAD) * ch]);
            if self.interp.bound(near) > self.peak {
                for g in f..end {
                    let p = self.interp.frame_peak(&self.buf, (g - HALF) * ch, ch);
                    self.peak = self.peak.max(p);
                }
            }
            f = end;
        }
        let keep = (HALF + AHEAD).min(n) * ch;
        self.tail.clear();
        self.tail
            .extend_from_slice(&self.buf[self.buf.len() - keep..]);
    }
}

/// Applies a gain to interleaved audio, then limits its true peak with look-ahead.
///
/// Output is delayed inside ([`Self::process`] returns fewer frames than it is given at
/// first); [`Self::finish`] returns the rest, so the total equals the input exactly.
pub struct Normalizer {
    gain: f32,
    ceiling: f32,
    ch: usize,
    lookahead: usize,
    release: f32,
    interp: Interpolator,
    /// Gained frames from `base` on: history for the interpolator and frames awaiting output.
    x: Vec<f32>,
    base: u64,
    /// Next frame whose true peak is to be found.
    next_peak: u64,
    /// Next frame to output.
    next_out: u64,
    /// Frames given so far.
    frames_in: u64,
    /// Sliding minimum of the gains the peaks ahead require: (frame, gain).
    window: VecDeque<(u64, f32)>,
    /// The smoothed gain (it only rises slowly) and the last `lookahead` of it, summed.
    smooth: f32,
    ring: Vec<f32>,
    ring_sum: f64,
    /// How many of `ring` are below 1 (none: the frame passes untouched).
    ring_below: usize,
    /// Frames the limiter turned down (for statistics).
    limited: u64,
    /// The energy (sum of squares) of the frames it output turned down.
    limited_energy: f64,
    /// Quiet runs pass through at once while the limiter is idle (off in tests comparing
    /// with the frame-by-frame path).
    pass_runs: bool,
}

impl Normalizer {
    /// A normaliser adding `gain_db` to `channels` of audio at `rate`, limiting the true peak to
    /// `ceiling_dbtp`.
    pub fn new(gain_db: f64, ceiling_dbtp: f64, channels: u16, rate: u32) -> Self {
        let lookahead = ((f64::from(rate) * LOOKAHEAD_MS / 1000.0).round() as usize).max(1);
        let ch = usize::from(channels.max(1));
        Normalizer {
            gain: 10f64.powf(gain_db / 20.0) as f32,
            ceiling: 10f64.powf(ceiling_dbtp / 20.0) as f32,
            ch,
            lookahead,
            release: (1.0 - (-1000.0 / (RELEASE_MS * f64::from(rate.max(1)))).exp()) as f32,
            interp: Interpolator::new(),
            // The interpolator's history before the first frame is silence.
            x: vec![0.0; HALF * ch],
            base: 0,
            next_peak: 0,
            next_out: 0,
            frames_in: 0,
            window: VecDeque::with_capacity(lookahead + 1),
            smooth: 1.0,
            ring: vec![1.0; lookahead],
            ring_sum: lookahead as f64,
            ring_below: 0,
            limited: 0,
            limited_energy: 0.0,
            pass_runs: true,
        }
    }

    /// Frames the limiter turned down so far.
    pub fn limited_frames(&self) -> u64 {
        self.limited
    }

    /// The energy (sum of squares) of the output frames the limiter turned down so far.
    pub fn limited_energy(&self) -> f64 {
        self.limited_energy
    }

    /// Frames held back: output lags input by this much until [`Self::finish`].
    pub fn latency(&self) -> usize {
        AHEAD + self.lookahead - 1
    }

    /// Normalises interleaved `input`, appending what is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        let g = self.gain;
        self.x.extend(input.iter().map(|s| s * g));
        self.frames_in += (input.len() / self.ch) as u64;
        self.advance(self.frames_in, out);
    }

    /// The frames still held back.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        // What follows the end is silence: enough of it to push every frame through.
        let total = self.frames_in;
        self.x
            .extend(std::iter::repeat_n(0.0, self.latency() * self.ch));
        self.advance(total + self.latency() as u64, out);
        out.truncate(out.len() - (self.next_out.saturating_sub(total) as usize) * self.ch);
        self.next_out = self.next_out.min(total);
    }

    /// Finds peaks for every frame whose look-ahead samples are in `x` (`available` frames
    /// given, counting padding) and outputs every frame whose gain is settled.
    fn advance(&mut self, available: u64, out: &mut Vec<f32>) {
        let ch = self.ch;
        let Some(last) = available.checked_sub(AHEAD as u64) else {
            return;
        };
        if self.next_peak >= last {
            return;
        }
        // Frame f sits at x[(f + HALF - base) * ch]. One bound per run of frames: when even
        // the worst interpolation of the largest sample near them stays under the ceiling, no
        // frame of the run needs its peaks found one by one.
        out.reserve(((last - self.next_peak) as usize) * ch);
        let mut f = self.next_peak;
        while f < last {
            let end = (f + RUN).min(last);
            let lo = (f - self.base) as usize * ch;
            let hi = ((end - self.base) as usize + HALF + AHEAD) * ch;
            let quiet = self
                .interp
                .bound(loudest(&self.x[lo..hi.min(self.x.len())]))
                <= self.ceiling;
            if quiet && self.pass_runs && self.idle() {
                self.pass_run(f, end, out);
                f = end;
                continue;
            }
            for g in f..end {
                let need = if quiet {
                    1.0
                } else {
                    let peak = self.true_peak_at(g);
                    if peak > self.ceiling {
                        self.ceiling / peak
                    } else {
                        1.0
                    }
                };
                self.push_gain(g, need, out);
            }
            f = end;
        }
        self.next_peak = last;
        // Keep only the interpolator's history and the frames not yet output.
        let keep_from = self.next_out.min(self.next_peak);
        let drop = (keep_from - self.base) as usize;
        if drop > 4096 {
            self.x.drain(..drop * ch);
            self.base += drop as u64;
        }
    }

    /// Whether the limiter is at rest: no gain below 1 pending, held or still recovering.
    fn idle(&self) -> bool {
        self.smooth >= 1.0
            && self.ring_below == 0
            && self.window.front().is_none_or(|&(_, g)| g >= 1.0)
    }

    /// What [`Self::push_gain`] does for frames `f..end` that need no limiting while the
    /// limiter is idle, at once: the frames they settle pass through unchanged.
    fn pass_run(&mut self, f: u64, end: u64, out: &mut Vec<f32>) {
        // Every push of a need of 1 would leave only itself in the window, and the ring
        // (all 1 when idle) as it is.
        self.window.clear();
        self.window.push_back((end - 1, 1.0));
        let l = self.lookahead as u64;
        // Frame g settles frame g - lookahead + 1 (none before the look-ahead fills).
        let (from, to) = ((f + 1).saturating_sub(l), (end + 1).saturating_sub(l));
        if to > from {
            let at = |j: u64| ((j - self.base) as usize + HALF) * self.ch;
            out.extend_from_slice(&self.x[at(from)..at(to)]);
            self.next_out = to;
        }
    }

    /// The largest absolute value of frame `f`'s samples and of the signal between them and
    /// the next frame's (4x interpolated).
    fn true_peak_at(&self, f: u64) -> f32 {
        // x holds the first tap's frame (f - HALF) at index f - base.
        self.interp
            .frame_peak(&self.x, (f - self.base) as usize * self.ch, self.ch)
    }

    /// Records that frame `f` needs gain at most `need`, and outputs the frame whose gain that
    /// settles.
    fn push_gain(&mut self, f: u64, need: f32, out: &mut Vec<f32>) {
        while self.window.back().is_some_and(|&(_, g)| g >= need) {
            self.window.pop_back();
        }
        self.window.push_back((f, need));
        // The gain of frame j = f - lookahead + 1 must be at most what every frame in
        // [j, f] needs.
        let j = f as i64 - self.lookahead as i64 + 1;
        while self.window.front().is_some_and(|&(i, _)| (i as i64) < j) {
            self.window.pop_front();
        }
        let m = self.window.front().map_or(1.0, |&(_, g)| g);
        // Falls at once, rises slowly; never above `m`, so never above any need ahead. The
        // last 0.001 dB is taken in one step: an exponential in f32 stalls just short of it,
        // which would keep the limiter from ever coming to rest.
        self.smooth = if m < self.smooth || m - self.smooth < SETTLED {
            m
        } else {
            self.smooth + (m - self.smooth) * self.release
        };
        let slot = (f % self.lookahead as u64) as usize;
        let old = self.ring[slot];
        self.ring_sum += f64::from(self.smooth) - f64::from(old);
        self.ring_below = self.ring_below + usize::from(self.smooth < 1.0) - usize::from(old < 1.0);
        self.ring[slot] = self.smooth;
        if j < 0 {
            return;
        }
        // The mean of the last `lookahead` smoothed gains: a ramp reaching each frame's
        // gain no later than the frame, and no click.
        let at = ((j as u64 - self.base) as usize + HALF) * self.ch;
        let frame = &self.x[at..at + self.ch];
        if self.ring_below == 0 {
            out.extend_from_slice(frame);
        } else {
            let gain = ((self.ring_sum / self.lookahead as f64) as f32).min(1.0);
            self.limited += 1;
            let start = out.len();
            out.extend(frame.iter().map(|s| s * gain));
            self.limited_energy += out[start..].iter().map(|&v| f64::from(v * v)).sum::<f64>();
        }
        self.next_out = j as u64 + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64, ch: usize) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        let mut v = Vec::with_capacity(n * ch);
        for i in 0..n {
            let s = (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                as f32;
            v.extend(std::iter::repeat_n(s, ch));
        }
        v
    }

    fn run(n: &mut Normalizer, input: &[f32], chunk: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            n.process(c, &mut out);
        }
        n.finish(&mut out);
        out
    }

    fn meter(pcm: &[f32], ch: u16, rate: u32) -> Loudness {
        let mut m = Meter::new(ch, rate).expect("meter");
        m.add(pcm).expect("add");
        m.finish().expect("finish")
    }

    #[test]
    fn gain_is_capped_and_silence_gets_none() {
        assert_eq!(gain_db(Some(-23.0), -16.0), 7.0);
        assert_eq!(gain_db(Some(-60.0), -16.0), MAX_GAIN_DB);
        assert_eq!(gain_db(Some(-10.0), -16.0), -6.0);
        assert_eq!(gain_db(None, -16.0), 0.0);
        assert_eq!(gain_db(Some(f64::NEG_INFINITY), -16.0), 0.0);
    }

    #[test]
    fn makeup_gives_back_what_the_limiter_takes_at_the_raised_gain() {
        let m = |db, pinned| LimiterLoss { db, pinned }.makeup_db();
        // 0.6 dB taken, a quarter of the energy pinned at the ceiling: 0.8 dB back, of which
        // the limiter takes 0.2 again.
        assert!((m(-0.6, 0.25) - 0.8).abs() < 1e-12);
        assert_eq!(m(0.0, 0.0), 0.0);
        // Limited throughout: the estimate stops at 4x; and never past the cap.
        assert!((m(-1.0, 0.99) - 4.0).abs() < 1e-12);
        assert_eq!(m(-5.0, 0.5), MAX_MAKEUP_DB);
    }

    #[test]
    fn measures_a_sine_as_bs1770_says() {
        // A 997 Hz sine at -20 dBFS (peak), one channel: -23.0 LUFS by the standard's own
        // example (0 dBFS sine → -3.01 LUFS).
        let rate = 48_000;
        let pcm = sine(997.0, rate, 5.0, 0.1, 1);
        let l = meter(&pcm, 1, rate);
        let i = l.integrated_lufs.expect("loud enough");
        assert!((i - -23.0).abs() < 0.2, "{i}");
        assert!(
            (l.true_peak_dbtp - -20.0).abs() < 0.2,
            "{}",
            l.true_peak_dbtp
        );
        let silent = meter(&vec![0.0; 48_000 * 2], 2, rate);
        assert_eq!(silent.integrated_lufs, None);
        assert_eq!(silent.true_peak_dbtp, SILENT_DB);
    }

    #[test]
    fn output_keeps_its_length_in_any_chunking() {
        let pcm = sine(440.0, 8000, 1.0, 0.5, 2);
        for chunk in [1, 7, 100, 4096, 1 << 20] {
            let mut n = Normalizer::new(6.0, -1.0, 2, 8000);
            let out = run(&mut n, &pcm, chunk * 2);
            assert_eq!(out.len(), pcm.len(), "chunk {chunk}");
        }
    }

    #[test]
    fn below_the_ceiling_only_the_gain_applies() {
        let pcm = sine(440.0, 44_100, 1.0, 0.1, 1);
        let mut n = Normalizer::new(6.0, -1.0, 1, 44_100);
        let out = run(&mut n, &pcm, 1000);
        let g = 10f32.powf(6.0 / 20.0);
        for (a, b) in pcm.iter().zip(&out) {
            assert!((a * g - b).abs() < 1e-6);
        }
        assert_eq!(n.limited_frames(), 0);
    }

    #[test]
    fn silence_stays_silence() {
        let pcm = vec![0.0f32; 16_000];
        let mut n = Normalizer::new(MAX_GAIN_DB, -1.0, 1, 16_000);
        assert!(run(&mut n, &pcm, 333).iter().all(|&s| s == 0.0));
    }

    #[test]
    fn limits_the_true_peak_and_keeps_the_loudness() {
        // Music-like: a loud 3 kHz tone with bursts, pushed 12 dB up, far over the ceiling.
        let rate = 44_100;
        let mut pcm = sine(3000.0, rate, 4.0, 0.5, 2);
        for (i, s) in pcm.iter_mut().enumerate() {
            if (i / 2 / 4410) % 3 == 0 {
                *s *= 0.2;
            }
        }
        let ceiling = -1.0;
        let mut n = Normalizer::new(12.0, ceiling, 2, rate);
        let out = run(&mut n, &pcm, 4096);
        assert!(n.limited_frames() > 0);
        let m = meter(&out, 2, rate);
        assert!(
            m.true_peak_dbtp <= ceiling + 0.05,
            "true peak {}",
            m.true_peak_dbtp
        );
        let sample_peak = out.iter().fold(0.0f32, |a, s| a.max(s.abs()));
        assert!(sample_peak < 1.0);
    }

    #[test]
    fn quiet_runs_passed_at_once_equal_the_frame_by_frame_path() {
        // Loud bursts (limited) between quiet stretches (passed through), odd chunking.
        let rate = 8000;
        let mut pcm = sine(440.0, rate, 3.0, 0.9, 2);
        for (i, s) in pcm.iter_mut().enumerate() {
            if (i / 2 / 1000) % 3 != 0 {
                *s *= 0.05;
            }
        }
        for chunk in [1, 33, 4096] {
            let mut fast = Normalizer::new(6.0, -1.0, 2, rate);
            let mut slow = Normalizer::new(6.0, -1.0, 2, rate);
            slow.pass_runs = false;
            let (a, b) = (
                run(&mut fast, &pcm, chunk * 2),
                run(&mut slow, &pcm, chunk * 2),
            );
            assert!(fast.limited_frames() > 0);
            assert_eq!(
                fast.limited_frames(),
                slow.limited_frames(),
                "chunk {chunk}"
            );
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "chunk {chunk}"
            );
            assert_eq!(a.len(), b.len());
        }
    }

    #[test]
    fn an_inter_sample_peak_is_caught() {
        // fs/4 sine at 45° phase: samples at ±0.707 of the true peak.
        let rate = 48_000;
        let n = 48_000;
        let pcm: Vec<f32> = (0..n)
            .map(|i| {
                (0.95
                    * (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin())
                    as f32
            })
            .collect();
        let before = meter(&pcm, 1, rate).true_peak_dbtp;
        assert!(before > -1.0, "{before}");
        let mut lim = Normalizer::new(0.0, -1.0, 1, rate);
        let out = run(&mut lim, &pcm, 1024);
        let after = meter(&out, 1, rate).true_peak_dbtp;
        assert!(after <= -0.95, "{after}");
    }
}
