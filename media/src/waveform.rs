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
use std::sync::atomic::{AtomicBool, Ordering};

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
    cur_min: Vec<i16>,
    cur_max: Vec<i16>,
    /// Per pixel, per series: min, max.
    data: Vec<i16>,
    frames: u64,
}

fn to_i16(x: f32) -> i16 {
    // `as` saturates, and maps NaN to 0.
    (x * 32768.0).round() as i16
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
            cur_min: vec![i16::MAX; series],
            cur_max: vec![i16::MIN; series],
            data: Vec::new(),
            frames: 0,
        }
    }

    /// Adds interleaved frames (a trailing partial frame is ignored).
    pub fn push(&mut self, block: &[f32]) -> Result<(), MediaError> {
        let ch = self.src_channels;
        for frame in block.chunks_exact(ch) {
            if self.series == 1 {
                let v = to_i16(frame.iter().sum::<f32>() / ch as f32);
                self.cur_min[0] = self.cur_min[0].min(v);
                self.cur_max[0] = self.cur_max[0].max(v);
            } else {
                for (c, &x) in frame.iter().enumerate() {
                    let v = to_i16(x);
                    self.cur_min[c] = self.cur_min[c].min(v);
                    self.cur_max[c] = self.cur_max[c].max(v);
                }
            }
            self.count += 1;
            self.frames += 1;
            if self.count == self.spp {
                self.emit()?;
            }
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
            self.data.push(self.cur_min[c]);
            self.data.push(self.cur_max[c]);
            self.cur_min[c] = i16::MAX;
            self.cur_max[c] = i16::MIN;
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
    let mut block = Vec::with_capacity(1 << 16);
    if !src.next_block(&mut block)? {
        return Err(MediaError::malformed("no decodable audio"));
    }
    // After the first block: some containers state the channels only in their first packet.
    let spec = src.spec();
    let mut peaks = Peaks::new(
        spec.channels,
        opts.samples_per_pixel,
        opts.split_channels,
        MAX_WAVEFORM_POINTS,
    );
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        peaks.push(&block)?;
        block.clear();
        if !src.next_block(&mut block)? {
            break;
        }
    }
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
