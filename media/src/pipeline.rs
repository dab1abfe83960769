//! decode → mix → resample → encode, block by block.
//!
//! Memory is bounded by one decoded packet plus one resampler chunk plus the
//! encoder's own state (and, for MP3, up to 4 blocks queued for its thread,
//! see `encode::threaded`), whatever the input length; output is written as it is
//! produced (MP4 excepted, see `encode::mp4`). Cancellation is checked between
//! blocks.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::decode;
use crate::encode::{self, Plan};
use crate::format::AudioFormat;
use crate::limits::Limits;
use crate::loudness::{ceiling_dbtp, settle_gain, Normalization, Normalizer};
use crate::mix::mix;
use crate::resample::Resampler;
use crate::MediaError;

/// Requested conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscodeOptions {
    /// Target format.
    pub format: AudioFormat,
    /// Target bitrate for lossy targets, kbit/s (8..=320); `None` picks the default
    /// (32 kbit/s for mono sources at ≤ 16 kHz, else 128 kbit/s).
    pub bitrate_kbps: Option<u32>,
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscodeStats {
    /// Detected input format.
    pub input_format: AudioFormat,
    /// Input rate, channels and frames decoded.
    pub input_rate: u32,
    /// Input channels.
    pub input_channels: u16,
    /// Frames decoded from the input.
    pub input_frames: u64,
    /// Encoder settings used.
    pub plan: Plan,
    /// Frames handed to the encoder.
    pub output_frames: u64,
    /// Bytes written to the output.
    pub bytes_written: u64,
}

/// An output that is also seekable, letting encoders fix up headers at the end.
pub trait WriteSeek: Write + Seek {}
impl<T: Write + Seek> WriteSeek for T {}

/// Where the converted bytes go.
pub enum Output<'a> {
    /// A plain stream (HTTP body, pipe): headers are written once, up front.
    Stream(&'a mut dyn Write),
    /// A file or buffer we may seek back in to patch headers (exact MP3/FLAC/WAV lengths).
    Seekable(&'a mut dyn WriteSeek),
}

/// Counts bytes on their way to the output.
struct Counting<'a, 'b> {
    out: &'a mut Output<'b>,
    n: u64,
}

impl Write for Counting<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = match self.out {
            Output::Stream(w) => w.write(buf)?,
            Output::Seekable(w) => w.write(buf)?,
        };
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.out {
            Output::Stream(w) => w.flush(),
            Output::Seekable(w) => w.flush(),
        }
    }
}

/// Exact byte length of the conversion of `frames` source frames at `src_rate` for a
/// constant-rate target, or `None` for variable-rate targets.
pub fn exact_output_len(plan: &Plan, src_frames: u64, src_rate: u32) -> Option<u64> {
    let frames = Resampler::output_frames_for(src_frames, src_rate, plan.rate);
    let ch = u64::from(plan.channels);
    match plan.format {
        AudioFormat::Wav => Some(crate::encode::WAV_HEADER_LEN + frames * ch * 2),
        AudioFormat::Alaw | AudioFormat::Ulaw => Some(frames),
        AudioFormat::G722 => Some(frames.div_ceil(2)),
        _ => None,
    }
}

/// Converts `input` into `out`. See [`crate::transcode`].
pub fn run(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    limits: &Limits,
    out: Output<'_>,
    cancel: &AtomicBool,
) -> Result<TranscodeStats, MediaError> {
    run_normalized(input, hint, opts, None, limits, out, cancel)
}

/// [`run`], normalising the loudness on the way when `norm` asks it.
pub fn run_normalized(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    norm: Option<&Normalization>,
    limits: &Limits,
    out: Output<'_>,
    cancel: &AtomicBool,
) -> Result<TranscodeStats, MediaError> {
    let gain_db = match norm {
        Some(n) => Some(settle_gain(input, hint, limits, opts, n, cancel)?),
        None => None,
    };
    let (input_format, src) = decode::open(input, hint, limits)?;
    let from = Start {
        norm_gain_db: gain_db,
        ..Start::default()
    };
    convert(input_format, src, opts, out, cancel, from)
}

/// Where [`convert`] starts, and what else may stop it.
#[derive(Default)]
pub(crate) struct Start<'a> {
    /// The source has been positioned (exactly) mid-stream, and the first frame
    /// produced from there is the whole stream's output frame `out_frame`: the source
    /// frame itself without resampling; with it, the resampler's restart point
    /// (`Resampler::restart_point`). Output starts with the encoder's header, if
    /// any. Only meaningful for stateless encoders.
    pub out_frame: u64,
    /// Output frames to compute and drop before encoding (the resampler's warm-up
    /// and whatever precedes the window); they count towards the stream's length.
    pub discard: u64,
    /// Set when the caller has all the bytes it wants (a range).
    pub stop: Option<&'a AtomicBool>,
    /// Loudness normalisation of the whole stream by this gain, dB, with the true-peak
    /// limiter (never with a mid-stream start: the limiter's state depends on everything
    /// before).
    pub norm_gain_db: Option<f64>,
}

/// decode → mix → resample → encode of an opened source, into `out`.
pub(crate) fn convert(
    input_format: AudioFormat,
    mut src: Box<dyn decode::PcmSource>,
    opts: &TranscodeOptions,
    mut out: Output<'_>,
    cancel: &AtomicBool,
    from: Start<'_>,
) -> Result<TranscodeStats, MediaError> {
    // Decode one block before choosing the encoder: nothing is written for corrupt input.
    let mut block = decode::first_block(src.as_mut())?;
    let spec = src.spec();
    let plan = encode::plan(opts.format, spec, opts.bitrate_kbps)?;
    let seekable = matches!(out, Output::Seekable(_));
    let start = match &mut out {
        Output::Seekable(w) => w.stream_position()?,
        Output::Stream(_) => 0,
    };
    // A promised length: headers that state the length up front need it (wav, flac,
    // mp3), so do byte offsets of constant-rate targets, and the pipeline pads or
    // trims to it so the bytes match exactly what was announced.
    let expected = spec
        .frames
        .map(|n| Resampler::output_frames_for(n, spec.rate, plan.rate));
    // Whole conversions only: a range (`from` mid-stream, or `stop`) stays on one thread.
    let overlap = from.out_frame == 0 && from.discard == 0 && from.stop.is_none();
    let mut encoder = encode::make(&plan, seekable, expected, overlap)?;
    // A stream's header cannot be corrected afterwards: when it states the length,
    // deliver exactly that (a seekable output is patched with what was delivered).
    let enforce_len = if !seekable && encode::states_length_up_front(plan.format) {
        expected
    } else {
        None
    };

    let src_ch = usize::from(spec.channels);
    let dst_ch = usize::from(plan.channels);
    let mut resampler = if spec.rate != plan.rate {
        let mut r = Resampler::new(spec.rate, plan.rate, dst_ch)?;
        r.discard(from.discard);
        Some(r)
    } else {
        None
    };
    debug_assert!(resampler.is_some() || from.discard == 0);
    debug_assert!(from.norm_gain_db.is_none() || (from.out_frame == 0 && from.discard == 0));
    // After mixing and resampling: the gain and the limiter act on what is encoded.
    let mut normalizer = from.norm_gain_db.map(|gain_db| {
        Normalizer::new(
            gain_db,
            ceiling_dbtp(plan.format, plan.bitrate_kbps),
            plan.channels,
            plan.rate,
        )
    });
    let mut normalized = Vec::new();
    // Output frames dropped so far (see `Start::discard`).
    let mut dropped = 0u64;
    let mut mixed = Vec::with_capacity(1 << 16);
    let mut resampled = Vec::with_capacity(1 << 16);
    let mut input_frames = 0u64;
    // Counted from the start of the stream, so trimming and padding to the promised
    // length end where they would for a conversion from the first frame.
    let mut output_frames = from.out_frame;

    let mut sink = Counting {
        out: &mut out,
        n: 0,
    };
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        if from.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            // The caller has every byte it wants: what follows would be thrown away.
            sink.flush()?;
            return Ok(TranscodeStats {
                input_format,
                input_rate: spec.rate,
                input_channels: spec.channels,
                input_frames,
                plan,
                output_frames: output_frames - from.out_frame - dropped,
                bytes_written: sink.n,
            });
        }
        input_frames += (block.len() / src_ch) as u64;
        mixed.clear();
        mix(&block, src_ch, dst_ch, &mut mixed);
        let ready = Resampler::through(resampler.as_mut(), &mixed, &mut resampled)?;
        if let Some(r) = &resampler {
            output_frames += newly_dropped(r, from.discard, &mut dropped);
        }
        let ready: &[f32] = match &mut normalizer {
            Some(n) => {
                normalized.clear();
                n.process(ready, &mut normalized);
                &normalized
            }
            None => ready,
        };
        output_frames += emit(
            &mut *encoder,
            ready,
            dst_ch,
            enforce_len,
            output_frames,
            &mut sink,
        )?;
        block.clear();
        if !src.next_block(&mut block)? {
            break;
        }
    }
    if let Some(r) = &mut resampler {
        resampled.clear();
        r.finish(&mut resampled)?;
        output_frames += newly_dropped(r, from.discard, &mut dropped);
        if let Some(n) = &mut normalizer {
            normalized.clear();
            n.process(&resampled, &mut normalized);
            std::mem::swap(&mut resampled, &mut normalized);
        }
        output_frames += emit(
            &mut *encoder,
            &resampled,
            dst_ch,
            enforce_len,
            output_frames,
            &mut sink,
        )?;
    }
    if let Some(n) = &mut normalizer {
        normalized.clear();
        n.finish(&mut normalized);
        output_frames += emit(
            &mut *encoder,
            &normalized,
            dst_ch,
            enforce_len,
            output_frames,
            &mut sink,
        )?;
    }
    if let Some(total) = enforce_len {
        // The source held less than its header said: pad with silence to the promised length.
        let silence = vec![0.0f32; 4096 * dst_ch];
        while output_frames < total {
            let n = ((total - output_frames) as usize).min(4096);
            encoder.encode(&silence[..n * dst_ch], &mut sink)?;
            output_frames += n as u64;
        }
    }
    let patch = encoder.finish(&mut sink)?;
    sink.flush()?;
    let bytes_written = sink.n;
    if let (Some(p), Output::Seekable(w)) = (patch, &mut out) {
        let end = w.stream_position()?;
        w.seek(SeekFrom::Start(start + p.offset))?;
        w.write_all(&p.bytes)?;
        w.seek(SeekFrom::Start(end))?;
        w.flush()?;
    }
    Ok(TranscodeStats {
        input_format,
        input_rate: spec.rate,
        input_channels: spec.channels,
        input_frames,
        plan,
        output_frames: output_frames - from.out_frame - dropped,
        bytes_written,
    })
}

/// Output frames the resampler has dropped since the last call (`dropped` so far).
fn newly_dropped(r: &Resampler, discard: u64, dropped: &mut u64) -> u64 {
    let now = r.produced().min(discard);
    let new = now - *dropped;
    *dropped = now;
    new
}

/// Encodes `pcm`, trimmed to the promised total when one is enforced; returns frames encoded.
fn emit(
    encoder: &mut dyn encode::BlockEncoder,
    pcm: &[f32],
    ch: usize,
    limit: Option<u64>,
    done: u64,
    out: &mut dyn Write,
) -> Result<u64, MediaError> {
    let mut frames = (pcm.len() / ch) as u64;
    if let Some(total) = limit {
        frames = frames.min(total.saturating_sub(done));
    }
    if frames > 0 {
        encoder.encode(&pcm[..frames as usize * ch], out)?;
    }
    Ok(frames)
}
