//! Waveform peaks in BBC audiowaveform's version-2 format (JSON or binary `.dat`), as
//! peaks.js and waveform-data.js read them.
//!
//! One streaming pass over the decoded audio: each pixel is the minimum and maximum of
//! `samples_per_pixel` frames (the last pixel may hold fewer), per channel or of the
//! channels' mean. Samples are taken as 16-bit values (`round(x * 32768)`, clamped); 8-bit
//! output divides them by 256 (truncating, as audiowaveform does). Memory holds one decoded
//! block and the pixels, whose count is bounded by [`MAX_WAVEFORM_POINTS`], so it is bounded
//! whatever the length of the audio.

use std::io::Write;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::decode;
use crate::limits::Limits;
use crate::MediaError;

/// Accepted `samples_per_pixel`.
pub const SAMPLES_PER_PIXEL_RANGE: RangeInclusive<u32> = 32..=65536;
/// Most points (pixels × series) one waveform may have: past it the computation stops with
/// [`MediaError::Limit`]. 2^21 points are at most 8 MiB of 16-bit min/max pairs, e.g. a
/// 6-hour mono recording at 48 kHz with 256 samples per pixel (about 4 million pixels) is
/// refused, at 8 kHz (675 000 pixels) accepted.
pub const MAX_WAVEFORM_POINTS: u64 = 1 << 21;

/// The serialization of a waveform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaveformFormat {
    /// audiowaveform's JSON (`application/json`).
    Json,
    /// audiowaveform's binary `.dat` (`application/octet-stream`).
    Dat,
}

impl WaveformFormat {
    /// The format named by `waveform=` (`json` or `dat`).
    pub fn from_param(s: &str) -> Option<Self> {
        match s {
            "json" => Some(WaveformFormat::Json),
            "dat" => Some(WaveformFormat::Dat),
            _ => None,
        }
    }

    /// The parameter value and file extension.
    pub fn name(self) -> &'static str {
        match self {
            WaveformFormat::Json => "json",
            WaveformFormat::Dat => "dat",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            WaveformFormat::Json => "application/json",
            WaveformFormat::Dat => "application/octet-stream",
        }
    }
}

/// What waveform to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaveformOptions {
    /// JSON or `.dat`.
    pub format: WaveformFormat,
    /// Frames per pixel, within [`SAMPLES_PER_PIXEL_RANGE`].
    pub samples_per_pixel: u32,
    /// 8 or 16.
    pub bits: u8,
    /// One series per channel instead of one of the channels' mean.
    pub split_channels: bool,
}

impl Default for WaveformOptions {
    fn default() -> Self {
        WaveformOptions {
            format: WaveformFormat::Json,
            samples_per_pixel: 256,
            bits: 8,
            split_channels: false,
        }
    }
}

/// What a waveform computation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveformStats {
    /// The audio's sample rate.
    pub sample_rate: u32,
    /// Series in the output (the source's channels when split, else 1).
    pub channels: u16,
    /// Pixels per series.
    pub length: u64,
    /// Frames decoded.
    pub frames: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

/// Min/max per pixel over interleaved `f32` frames, kept as 16-bit values.
#[derive(Debug)]
pub struct Peaks {
    spp: u32,
    src_channels: usize,
    series: usize,
    max_points: u64,
    count: u32,
    /// The current pixel's extremes per series, as decoded values: rounding to 16 bits is
    /// monotonic, so it is done once per pixel instead of once per sample.
    cur_min: Vec<f32>,
    cur_max: Vec<f32>,
    /// Per pixel, per series: min, max.
    data: Vec<i16>,
    frames: u64,
    /// The channels' mean of a run of frames (when not split).
    mixed: Vec<f32>,
}

fn to_i16(x: f32) -> i16 {
    // `as` saturates, and maps NaN to 0.
    (x * 32768.0).round() as i16
}

/// Lanes of the min/max scan: independent accumulators the compiler keeps in one vector
/// register (a single running min is a dependency chain it cannot vectorise).
const LANES: usize = 8;

/// The smallest and largest of `xs` (NaN ignored); (+inf, -inf) when empty.
fn min_max(xs: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            lo[i] = lo[i].min(c[i]);
            hi[i] = hi[i].max(c[i]);
        }
    }
    let lo = tail.iter().chain(&lo).fold(f32::INFINITY, |m, &v| m.min(v));
    let hi = tail
        .iter()
        .chain(&hi)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    (lo, hi)
}

/// The smallest and largest of channel `c` of interleaved `ch`-channel frames.
fn channel_min_max(frames: &[f32], c: usize, ch: usize) -> (f32, f32) {
    if ch == 1 {
        return min_max(frames);
    }
    frames
        .iter()
        .skip(c)
        .step_by(ch)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Appends the mean of each of `frames`' `ch` channels to `out`.
fn mix_mean(frames: &[f32], ch: usize, out: &mut Vec<f32>) {
    match ch {
        1 => out.extend_from_slice(frames),
        2 => out.extend(frames.chunks_exact(2).map(|f| (f[0] + f[1]) / 2.0)),
        _ => out.extend(
            frames
                .chunks_exact(ch)
                .map(|f| f.iter().sum::<f32>() / ch as f32),
        ),
    }
}

impl Peaks {
    /// Peaks of `channels`-channel audio with `samples_per_pixel` frames per pixel, one series
    /// per channel when `split`, at most `max_points` points.
    pub fn new(channels: u16, samples_per_pixel: u32, split: bool, max_points: u64) -> Self {
        let src_channels = usize::from(channels.max(1));
        let series = if split { src_channels } else { 1 };
        Peaks {
            spp: samples_per_pixel.max(1),
            src_channels,
            series,
            max_points,
            count: 0,
            cur_min: vec![f32::INFINITY; series],
            cur_max: vec![f32::NEG_INFINITY; series],
            data: Vec::new(),
            frames: 0,
            mixed: Vec::new(),
        }
    }

    /// Adds interleaved frames (a trailing partial frame is ignored).
    pub fn push(&mut self, block: &[f32]) -> Result<(), MediaError> {
        let ch = self.src_channels;
        let mut rest = &block[..block.len() - block.len() % ch];
        while !rest.is_empty() {
            // The frames that complete (or continue) the current pixel.
            let take = ((self.spp - self.count) as usize).min(rest.len() / ch);
            let (now, later) = rest.split_at(take * ch);
            if self.series == 1 {
                let (lo, hi) = if ch == 1 {
                    min_max(now)
                } else {
                    self.mixed.clear();
                    mix_mean(now, ch, &mut self.mixed);
                    min_max(&self.mixed)
                };
                self.cur_min[0] = self.cur_min[0].min(lo);
                self.cur_max[0] = self.cur_max[0].max(hi);
            } else {
                for c in 0..ch {
                    let (lo, hi) = channel_min_max(now, c, ch);
                    self.cur_min[c] = self.cur_min[c].min(lo);
                    self.cur_max[c] = self.cur_max[c].max(hi);
                }
            }
            self.count += take as u32;
            self.frames += take as u64;
            if self.count == self.spp {
                self.emit()?;
            }
            rest = later;
        }
        Ok(())
    }

    fn emit(&mut self) -> Result<(), MediaError> {
        let points = (self.length() + 1) * self.series as u64;
        if points > self.max_points {
            return Err(MediaError::Limit(format!(
                "the waveform would have more than {} points; use a larger samples_per_pixel",
                self.max_points
            )));
        }
        for c in 0..self.series {
            let (lo, hi) = (self.cur_min[c], self.cur_max[c]);
            // A pixel of nothing but NaN (no extremes found) reads as silence.
            let (lo, hi) = if lo <= hi {
                (to_i16(lo), to_i16(hi))
            } else {
                (0, 0)
            };
            self.data.push(lo);
            self.data.push(hi);
            self.cur_min[c] = f32::INFINITY;
            self.cur_max[c] = f32::NEG_INFINITY;
        }
        self.count = 0;
        Ok(())
    }

    /// Ends the input: a last partial pixel is kept.
    pub fn finish(&mut self) -> Result<(), MediaError> {
        if self.count > 0 {
            self.emit()?;
        }
        Ok(())
    }

    /// Pixels per series so far.
    pub fn length(&self) -> u64 {
        (self.data.len() / (2 * self.series)) as u64
    }

    /// Series (output channels).
    pub fn series(&self) -> usize {
        self.series
    }

    /// Frames taken in.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The 16-bit values: per pixel, per series, min then max.
    pub fn values(&self) -> &[i16] {
        &self.data
    }

    fn value(v: i16, bits: u8) -> i16 {
        if bits == 8 {
            v / 256
        } else {
            v
        }
    }

    /// Writes audiowaveform's version-2 JSON; returns the bytes written.
    pub fn write_json(
        &self,
        sample_rate: u32,
        bits: u8,
        out: &mut dyn Write,
    ) -> std::io::Result<u64> {
        let mut w = CountingWriter { out, n: 0 };
        write!(
            w,
            "{{\"version\":2,\"channels\":{},\"sample_rate\":{},\"samples_per_pixel\":{},\"bits\":{},\"length\":{},\"data\":[",
            self.series,
            sample_rate,
            self.spp,
            bits,
            self.length()
        )?;
        let mut line = String::with_capacity(8 * 1024);
        for (i, &v) in self.data.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&Self::value(v, bits).to_string());
            if line.len() >= 8000 {
                w.write_all(line.as_bytes())?;
                line.clear();
            }
        }
        line.push_str("]}");
        w.write_all(line.as_bytes())?;
        w.flush()?;
        Ok(w.n)
    }

    /// Writes audiowaveform's version-2 binary `.dat`; returns the bytes written.
    pub fn write_dat(
        &self,
        sample_rate: u32,
        bits: u8,
        out: &mut dyn Write,
    ) -> std::io::Result<u64> {
        let mut w = CountingWriter { out, n: 0 };
        let length = u32::try_from(self.length())
            .map_err(|_| std::io::Error::other("waveform too long for .dat"))?;
        let mut head = Vec::with_capacity(24);
        head.extend_from_slice(&2i32.to_le_bytes());
        head.extend_from_slice(&u32::from(bits == 8).to_le_bytes());
        head.extend_from_slice(&(sample_rate as i32).to_le_bytes());
        head.extend_from_slice(&(self.spp as i32).to_le_bytes());
        head.extend_from_slice(&length.to_le_bytes());
        head.extend_from_slice(&(self.series as i32).to_le_bytes());
        w.write_all(&head)?;
        let mut buf = Vec::with_capacity(16 * 1024);
        for chunk in self.data.chunks(4096) {
            buf.clear();
            for &v in chunk {
                if bits == 8 {
                    buf.push(Self::value(v, 8) as i8 as u8);
                } else {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            w.write_all(&buf)?;
        }
        w.flush()?;
        Ok(w.n)
    }
}

struct CountingWriter<'a> {
    out: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.out.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Checks `opts` against the accepted ranges.
pub fn check(opts: &WaveformOptions) -> Result<(), MediaError> {
    if !SAMPLES_PER_PIXEL_RANGE.contains(&opts.samples_per_pixel) {
        return Err(MediaError::Unsupported(format!(
            "samples_per_pixel must be {}..={}",
            SAMPLES_PER_PIXEL_RANGE.start(),
            SAMPLES_PER_PIXEL_RANGE.end()
        )));
    }
    if opts.bits != 8 && opts.bits != 16 {
        return Err(MediaError::Unsupported("bits must be 8 or 16".into()));
    }
    Ok(())
}

/// Computes the waveform of `input` (format from its content, or `hint` for raw audio) and
/// writes it to `out` once the last frame is read (the `.dat` header states the length).
/// `cancel` is polled between blocks.
pub fn waveform(
    input: &Path,
    hint: Option<&str>,
    opts: &WaveformOptions,
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<WaveformStats, MediaError> {
    check(opts)?;
    let (_, mut src) = decode::open(input, hint, &Limits::default())?;
    let block = decode::first_block(src.as_mut())?;
    let spec = src.spec();
    let mut peaks = Peaks::new(
        spec.channels,
        opts.samples_per_pixel,
        opts.split_channels,
        MAX_WAVEFORM_POINTS,
    );
    decode::each_block(src.as_mut(), block, cancel, |block| peaks.push(block))?;
    peaks.finish()?;
    let bytes_written = match opts.format {
        WaveformFormat::Json => peaks.write_json(spec.rate, opts.bits, out)?,
        WaveformFormat::Dat => peaks.write_dat(spec.rate, opts.bits, out)?,
    };
    Ok(WaveformStats {
        sample_rate: spec.rate,
        channels: peaks.series() as u16,
        length: peaks.length(),
        frames: peaks.frames(),
        bytes_written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peaks_of(block: &[f32], ch: u16, spp: u32, split: bool) -> Peaks {
        let mut p = Peaks::new(ch, spp, split, MAX_WAVEFORM_POINTS);
        p.push(block).expect("push");
        p.finish().expect("finish");
        p
    }

    #[test]
    fn min_max_per_pixel_with_partial_last() {
        let block = [0.0, 0.5, -0.5, 0.25, 1.0, -1.0, 0.125];
        let p = peaks_of(&block, 1, 3, false);
        assert_eq!(p.length(), 3);
        assert_eq!(p.values(), &[-16384, 16384, -32767 - 1, 32767, 4096, 4096]);
    }

    /// The peaks as first defined: every sample rounded, then compared.
    fn naive(block: &[f32], ch: usize, spp: usize, split: bool) -> Vec<i16> {
        let mut out = Vec::new();
        for pixel in block.chunks(spp * ch) {
            let series = if split { ch } else { 1 };
            for c in 0..series {
                let vals = pixel.chunks_exact(ch).map(|f| {
                    if split {
                        to_i16(f[c])
                    } else {
                        to_i16(f.iter().sum::<f32>() / ch as f32)
                    }
                });
                let (lo, hi) = vals.fold((i16::MAX, i16::MIN), |(l, h), v| (l.min(v), h.max(v)));
                out.extend([lo, hi]);
            }
        }
        out
    }

    #[test]
    fn per_pixel_scan_equals_rounding_every_sample() {
        // A deterministic pseudo-random signal with values on rounding boundaries too.
        let mut x = 0x2545_f491_u32;
        let block: Vec<f32> = (0..3 * 5000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 == 0 {
                    ((x % 2001) as f32 - 1000.0 + 0.5) / 32768.0
                } else {
                    (x as f32 / u32::MAX as f32) * 2.2 - 1.1
                }
            })
            .collect();
        for ch in 1..=3usize {
            let frames = &block[..block.len() / ch * ch];
            for split in [false, true] {
                for spp in [32usize, 33, 256] {
                    let want = naive(frames, ch, spp, split);
                    for chunk in [1usize, 97, 4096, frames.len()] {
                        let mut p = Peaks::new(ch as u16, spp as u32, split, MAX_WAVEFORM_POINTS);
                        for c in frames.chunks(chunk * ch) {
                            p.push(c).expect("push");
                        }
                        p.finish().expect("finish");
                        assert_eq!(
                            p.values(),
                            want,
                            "ch {ch} split {split} spp {spp} chunk {chunk}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn stereo_mixed_and_split() {
        // Two frames: (0.5, -0.5), (1.0, 0.0).
        let block = [0.5, -0.5, 1.0, 0.0];
        let mixed = peaks_of(&block, 2, 2, false);
        assert_eq!(mixed.values(), &[0, 16384]);
        let split = peaks_of(&block, 2, 2, true);
        assert_eq!(split.series(), 2);
        assert_eq!(split.values(), &[16384, 32767, -16384, 0]);
    }

    #[test]
    fn json_known_answer() {
        let p = peaks_of(&[0.5, -0.5, 0.25], 1, 2, false);
        let mut out = Vec::new();
        let n = p.write_json(8000, 8, &mut out).expect("json");
        let s = String::from_utf8(out).expect("utf8");
        assert_eq!(n as usize, s.len());
        assert_eq!(
            s,
            r#"{"version":2,"channels":1,"sample_rate":8000,"samples_per_pixel":2,"bits":8,"length":2,"data":[-64,64,32,32]}"#
        );
        let mut out = Vec::new();
        p.write_json(8000, 16, &mut out).expect("json");
        assert!(String::from_utf8_lossy(&out).ends_with(r#""data":[-16384,16384,8192,8192]}"#));
    }

    #[test]
    fn dat_known_answer() {
        let p = peaks_of(&[0.5, -0.5, 0.25], 1, 2, false);
        let mut out = Vec::new();
        p.write_dat(8000, 8, &mut out).expect("dat");
        let mut want = Vec::new();
        for v in [2i32, 1, 8000, 2, 2, 1] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&[(-64i8) as u8, 64, 32, 32]);
        assert_eq!(out, want);
        let mut out = Vec::new();
        p.write_dat(8000, 16, &mut out).expect("dat");
        assert_eq!(out.len(), 24 + 8);
        assert_eq!(&out[4..8], &0u32.to_le_bytes());
        assert_eq!(&out[24..26], &(-16384i16).to_le_bytes());
    }

    #[test]
    fn point_limit() {
        let mut p = Peaks::new(1, 32, false, 2);
        assert!(p.push(&[0.0; 64]).is_ok());
        assert!(matches!(p.push(&[0.0; 32]), Err(MediaError::Limit(_))));
    }

    #[test]
    fn options_checked() {
        let mut o = WaveformOptions::default();
        assert!(check(&o).is_ok());
        o.samples_per_pixel = 31;
        assert!(check(&o).is_err());
        o.samples_per_pixel = 65536;
        o.bits = 12;
        assert!(check(&o).is_err());
    }
}
