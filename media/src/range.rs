//! Byte ranges of a conversion without converting what comes before them, where
//! that gives the same bytes.
//!
//! A constant-rate target maps bytes to frames: wav is a 44-byte header then
//! `channels * 2` bytes a frame, A-law and µ-law one byte a frame. When, in
//! addition, the encoder is stateless per sample (wav, alaw, ulaw) and the source
//! can be positioned on an exact frame ([`PcmSource::seek_exact`]: PCM/float/G.711
//! in WAV, raw A-law and µ-law), the conversion starts mid-stream and runs the same
//! pipeline code from there:
//! - same rate: at the window's first frame;
//! - resampled (e.g. 16 or 44.1 kHz → 8 kHz alaw): at an earlier input frame where
//!   the resampler's phase is the whole run's and far enough back for its filter to
//!   be full of real input by the window; the warm-up output is computed and
//!   dropped. Each output sample of rubato's exact-table sinc is a pure function of
//!   the input samples under the filter and the sample's phase, so the samples (and
//!   bytes) are identical; see [`Resampler::restart_point`] for the argument and
//!   when it does not hold (then: from the start).
//!
//! Everything else converts from the start and stops right after the window,
//! because starting mid-stream would change the bytes:
//! - g722 target: its ADPCM encoder's state depends on every earlier sample;
//! - resampling ratios whose table is interpolated (output rate / gcd > 2048), or
//!   windows too close to the start for a warmed-up restart;
//! - MP3, Ogg, FLAC, MP4 and raw G.722 sources: their decoders carry state across
//!   packets (overlap, prediction, priming) and their readers do not promise a
//!   sample-exact seek.
//! - variable-rate targets have no byte ↔ frame mapping at all.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::decode::{self, PcmSource};
use crate::encode::{self, WAV_HEADER_LEN};
use crate::format::AudioFormat;
use crate::limits::Limits;
use crate::pipeline::{self, Output, Start, TranscodeOptions};
use crate::resample::Resampler;
use crate::MediaError;

/// How a range was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeStats {
    /// True when the source was positioned at the window's first frame (the fast
    /// path); false when it was converted from the start.
    pub seeked: bool,
    /// The first source frame decoded.
    pub first_frame: u64,
    /// Source frames decoded for this range.
    pub input_frames: u64,
    /// Bytes written to the output (the window's length on success).
    pub bytes_written: u64,
}

/// Passes bytes `[skip, skip + want)` of what it is given on to `out`, and raises
/// `stop` once it has them all.
struct Window<'a> {
    skip: u64,
    want: u64,
    written: u64,
    out: &'a mut dyn Write,
    stop: &'a AtomicBool,
}

impl Write for Window<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut d = data;
        if self.skip > 0 {
            let s = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(d.len());
            d = &d[s..];
            self.skip -= s as u64;
        }
        let room = usize::try_from(self.want - self.written).unwrap_or(usize::MAX);
        let take = d.len().min(room);
        if take > 0 {
            self.out.write_all(&d[..take])?;
            self.written += take as u64;
        }
        if self.written == self.want {
            self.stop.store(true, Ordering::Relaxed);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The first frame whose bytes the window starting at byte `start` needs, or `None`
/// when this target has no fixed byte ↔ frame mapping with a stateless encoder.
fn first_frame(format: AudioFormat, channels: u16, start: u64) -> Option<u64> {
    match format {
        AudioFormat::Wav => {
            Some(start.saturating_sub(WAV_HEADER_LEN) / (u64::from(channels.max(1)) * 2))
        }
        AudioFormat::Alaw | AudioFormat::Ulaw => Some(start),
        _ => None,
    }
}

/// Bytes of output per frame before `frame` that a seek to it leaves out.
fn skipped_bytes(format: AudioFormat, channels: u16, frame: u64) -> u64 {
    match format {
        AudioFormat::Wav => frame * u64::from(channels) * 2,
        _ => frame,
    }
}

/// A conversion started mid-stream.
struct Seek {
    /// Source frame the source was positioned at.
    src_frame: u64,
    /// The whole stream's output frame the first produced frame stands for.
    out_frame: u64,
    /// Produced frames to drop (resampler warm-up, up to the window's first frame).
    discard: u64,
}

/// Positions `src` for the window starting at byte `start`, if that is exact.
/// Returns where it starts, or `None` to convert from the start.
fn try_seek(
    src: &mut dyn PcmSource,
    opts: &TranscodeOptions,
    start: u64,
) -> Result<Option<Seek>, MediaError> {
    let spec = src.spec();
    if spec.channels == 0 {
        return Ok(None);
    }
    let plan = encode::plan(opts.format, spec, opts.bitrate_kbps)?;
    let Some(frame) = first_frame(plan.format, plan.channels, start) else {
        return Ok(None);
    };
    let Some(total_in) = spec.frames else {
        return Ok(None);
    };
    let seek = if plan.rate == spec.rate {
        Seek {
            src_frame: frame,
            out_frame: frame,
            discard: 0,
        }
    } else {
        let total_out = Resampler::output_frames_for(total_in, spec.rate, plan.rate);
        let Some(r) = Resampler::restart_point(spec.rate, plan.rate, frame, total_out) else {
            return Ok(None);
        };
        Seek {
            src_frame: r.input_frame,
            out_frame: r.output_frame,
            discard: frame - r.output_frame,
        }
    };
    if seek.src_frame == 0 || seek.src_frame >= total_in {
        return Ok(None);
    }
    Ok(src.seek_exact(seek.src_frame)?.then_some(seek))
}

/// See [`crate::transcode_range`].
pub(crate) fn run(
    input: &Path,
    hint: Option<&str>,
    opts: &TranscodeOptions,
    limits: &Limits,
    (start, len): (u64, u64),
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<RangeStats, MediaError> {
    if len == 0 {
        return Ok(RangeStats {
            seeked: false,
            first_frame: 0,
            input_frames: 0,
            bytes_written: 0,
        });
    }
    let (input_format, mut src) = decode::open(input, hint, limits)?;
    if let Some(seek) = try_seek(&mut *src, opts, start)? {
        let first_out = seek.out_frame + seek.discard;
        let skip = start - skipped_bytes(opts.format, src.spec().channels.max(1), first_out);
        let cut = Cut {
            out_frame: seek.out_frame,
            discard: seek.discard,
            skip,
            len,
        };
        let (r, written) = convert_window(input_format, src, opts, &mut *out, cancel, cut);
        match finish(r, written, len, true, seek.src_frame) {
            // Nothing written yet (e.g. a WAV shorter than its header says, so the seek
            // lands past the audio, where a whole conversion pads with silence): the
            // conversion from the start knows what to do.
            Err(e) if written == 0 && !matches!(e, MediaError::Cancelled) => {}
            other => return other,
        }
        src = decode::open(input, hint, limits)?.1;
    }
    let cut = Cut {
        out_frame: 0,
        discard: 0,
        skip: start,
        len,
    };
    let (r, written) = convert_window(input_format, src, opts, out, cancel, cut);
    finish(r, written, len, false, 0)
}

/// Where a conversion starts and which of its bytes a range keeps.
struct Cut {
    /// Output frame the source is positioned at (see [`Start::out_frame`]).
    out_frame: u64,
    /// Output frames computed and dropped first (see [`Start::discard`]).
    discard: u64,
    /// Output bytes dropped before the range.
    skip: u64,
    /// Bytes of the range.
    len: u64,
}

/// Converts `src` as `cut` says, passing on only the range's bytes and stopping once they are
/// out. Returns the conversion's result and the bytes passed on.
fn convert_window(
    input_format: AudioFormat,
    src: Box<dyn PcmSource>,
    opts: &TranscodeOptions,
    out: &mut dyn Write,
    cancel: &AtomicBool,
    cut: Cut,
) -> (Result<pipeline::TranscodeStats, MediaError>, u64) {
    let stop = AtomicBool::new(false);
    let mut w = Window {
        skip: cut.skip,
        want: cut.len,
        written: 0,
        out,
        stop: &stop,
    };
    let start = Start {
        out_frame: cut.out_frame,
        discard: cut.discard,
        stop: Some(&stop),
        norm_gain_db: None,
    };
    let r = pipeline::convert(
        input_format,
        src,
        opts,
        Output::Stream(&mut w),
        cancel,
        start,
    );
    (r, w.written)
}

/// A conversion that ended short of the window did not produce the range.
fn finish(
    r: Result<pipeline::TranscodeStats, MediaError>,
    written: u64,
    len: u64,
    seeked: bool,
    first_frame: u64,
) -> Result<RangeStats, MediaError> {
    let input_frames = match r {
        Ok(s) => s.input_frames,
        Err(e) => return Err(e),
    };
    if written < len {
        return Err(MediaError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the conversion ended before the end of the range",
        )));
    }
    Ok(RangeStats {
        seeked,
        first_frame,
        input_frames,
        bytes_written: written,
    })
}
