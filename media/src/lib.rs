//! mediastore's audio engine: probe, decode, resample, encode.
//!
//! A plain synchronous library (no async runtime): the server runs it on a
//! bounded blocking pool. Input formats: WAV (PCM 8/16/24/32-bit, float, A-law,
//! µ-law), MP3, FLAC, Ogg Vorbis, AAC in MP4/M4A (all via symphonia), and raw
//! A-law, µ-law and G.722 (via `mediastore-codecs`, recognised by hint). Targets:
//! wav, alaw, ulaw, g722, mp3, ogg, flac, mp4.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;

mod decode;
mod encode;
mod error;
mod format;
mod isobmff;
mod limits;
pub mod loudness;
mod mix;
mod mp3scan;
mod pipeline;
mod probe;
mod range;
mod raw;
mod resample;
pub mod waveform;

pub use decode::{open as open_decoder, PcmSource, StreamSpec};
pub use encode::{plan, Plan, BITRATE_RANGE_KBPS, DEFAULT_MUSIC_KBPS, DEFAULT_SPEECH_KBPS};
pub use error::MediaError;
pub use format::{sniff, AudioFormat};
pub use limits::{Limits, MAX_CHANNELS, MAX_DURATION_MS, MAX_PACKET_FRAMES, MAX_SAMPLE_RATE};
pub use loudness::{Loudness, Normalization};
pub use mix::mix;
pub use pipeline::{Output, TranscodeOptions, TranscodeStats, WriteSeek};
pub use probe::{probe, probe_with, MediaInfo};
pub use range::RangeStats;
pub use resample::Resampler;
pub use waveform::{waveform, WaveformFormat, WaveformOptions, WaveformStats};

/// Converts `input` (format from its content, or `hint` for raw al/ul/g722) to
/// `opts.format`, streaming the result into `out`.
///
/// `cancel` is polled between blocks; setting it stops the work with
/// [`MediaError::Cancelled`]. Nothing is written when the input cannot be decoded
/// at all; on a mid-stream error the output is incomplete and must be discarded.
/// Headers state the source's declared length up front (WAV sizes, FLAC STREAMINFO,
/// MP3 Info/LAME frame) and exactly that many frames follow, so the output needs no
/// later patch; [`transcode_to`] with [`Output::Seekable`] also patches in what only
/// the end knows (FLAC frame sizes, LAME's music CRC).
pub fn transcode(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<TranscodeStats, MediaError> {
    pipeline::run(
        input,
        hint,
        opts,
        &Limits::default(),
        Output::Stream(out),
        cancel,
    )
}

/// [`transcode`] with the loudness normalised as `norm` asks: the gain towards its target
/// (from its measurement, see [`loudness::measure`]) and a true-peak limiter, applied to the
/// audio as the target carries it (after mixing and resampling).
pub fn transcode_normalized(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    norm: &Normalization,
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<TranscodeStats, MediaError> {
    pipeline::run_normalized(
        input,
        hint,
        opts,
        Some(norm),
        &Limits::default(),
        Output::Stream(out),
        cancel,
    )
}

/// Bytes `[start, start+len)` of the conversion of `input`, identical to that slice
/// of what [`transcode`] writes to a stream ([`Output::Stream`]).
///
/// For wav, alaw and ulaw targets of a source at the output rate that can be
/// positioned on an exact frame (PCM, float, A-law or µ-law WAV; raw A-law or µ-law)
/// only the frames the window needs are decoded; everything else is converted from
/// the start and stopped right after the window (see the `range` module for why).
/// A window reaching past the end of the conversion is an error
/// ([`MediaError::Io`], `UnexpectedEof`); on any error the bytes written are incomplete.
pub fn transcode_range(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    start: u64,
    len: u64,
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<(), MediaError> {
    transcode_range_stats(input, hint, opts, start, len, out, cancel).map(|_| ())
}

/// [`transcode_range`], also saying whether it seeked and how much it decoded.
pub fn transcode_range_stats(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    start: u64,
    len: u64,
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<RangeStats, MediaError> {
    range::run(
        input,
        hint,
        opts,
        &Limits::default(),
        (start, len),
        out,
        cancel,
    )
}

/// [`transcode`] with explicit limits and output kind.
pub fn transcode_to(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    limits: &Limits,
    out: Output<'_>,
    cancel: &AtomicBool,
) -> Result<TranscodeStats, MediaError> {
    pipeline::run(input, hint, opts, limits, out, cancel)
}

/// Exact byte length of the conversion of `info` for constant-rate targets
/// (wav, alaw, ulaw, g722) as [`transcode`] produces it to a stream; `None` for
/// variable-rate targets or when the source's length is not known exactly.
pub fn exact_output_len(info: &MediaInfo, opts: &TranscodeOptions) -> Option<u64> {
    let spec = StreamSpec {
        rate: info.sample_rate,
        channels: info.channels,
        frames: info.frames,
    };
    let plan = encode::plan(opts.format, spec, opts.bitrate_kbps).ok()?;
    pipeline::exact_output_len(&plan, info.frames?, info.sample_rate)
}

/// The CLI's `mediastore transcode IN OUT [--format F] [--bitrate KBPS]`: format
/// from `format` or else OUT's extension; the input's hint is IN's extension.
/// On error no partial output file is left behind.
pub fn transcode_file(
    input: &Path,
    output: &Path,
    format: Option<&str>,
    bitrate_kbps: Option<u32>,
) -> Result<TranscodeStats, MediaError> {
    let fmt_str = match format {
        Some(f) => f.to_string(),
        None => output
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                MediaError::Unsupported(format!(
                    "cannot tell the output format of {} (no extension; use --format)",
                    output.display()
                ))
            })?,
    };
    let target = AudioFormat::from_param(&fmt_str).ok_or_else(|| {
        MediaError::Unsupported(format!("unknown output format '{fmt_str}' (use one of al alaw flac g722 mp3 mp4 ogg ul ulaw wav)"))
    })?;
    let hint = input.extension().and_then(|e| e.to_str());
    let opts = TranscodeOptions {
        format: target,
        bitrate_kbps,
    };
    // Check the input before creating the output, so a bad input leaves nothing behind.
    if !input.is_file() {
        return Err(MediaError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("cannot read {}", input.display()),
        )));
    }
    let file = File::create(output)?;
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    let cancel = AtomicBool::new(false);
    let result = pipeline::run(
        input,
        hint,
        &opts,
        &Limits::default(),
        Output::Seekable(&mut w),
        &cancel,
    )
    .and_then(|stats| {
        w.flush()?;
        Ok(stats)
    });
    if result.is_err() {
        drop(w);
        let _ = std::fs::remove_file(output);
    }
    result
}
