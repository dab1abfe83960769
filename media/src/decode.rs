//! Decoding to interleaved `f32` blocks: symphonia for containers, our own
//! codecs for headerless G.711/G.722.
//!
//! Every call into symphonia runs under `catch_unwind`: it is a large parser of
//! hostile input, and a bug there must become [`MediaError::Malformed`], not a
//! crashed worker.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{self as sc, CodecType, Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};

use crate::format::{sniff, AudioFormat};
use crate::isobmff;
use crate::limits::{Limits, MAX_PACKET_FRAMES};
use crate::raw::RawSource;
use crate::MediaError;

/// Shape of a decoded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Interleaved channel count.
    pub channels: u16,
    /// Total frames when the container states them (gapless-trimmed where known).
    pub frames: Option<u64>,
}

/// A source of decoded PCM.
pub trait PcmSource: Send {
    /// Rate, channels and (if known) length.
    fn spec(&self) -> StreamSpec;
    /// Appends the next block of interleaved samples in [-1, 1] to `out`;
    /// `Ok(false)` at the end of the stream (nothing appended).
    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<bool, MediaError>;

    /// Repositions the source so that the next block starts exactly at `frame`, with
    /// the same samples a decode from the start would give from there on.
    /// `Ok(false)` (and nothing changed) when this source cannot guarantee that:
    /// only stateless codecs in containers with fixed-size frames can (PCM, float
    /// and G.711 in WAV; raw A-law/µ-law).
    fn seek_exact(&mut self, frame: u64) -> Result<bool, MediaError> {
        let _ = frame;
        Ok(false)
    }
}

/// Bytes read from the start of a file to recognise its format.
pub(crate) const SNIFF_LEN: usize = 16 * 1024;
/// Consecutive undecodable packets tolerated before the input counts as corrupt
/// (a few bad frames are common in real MP3s; thousands mean garbage).
const MAX_CONSECUTIVE_ERRORS: u32 = 64;

/// What the file is, decided from its content and the caller's hint.
pub(crate) struct Detected {
    pub format: AudioFormat,
    pub file_len: u64,
}

/// Decides the format. Content wins over a container hint (users mislabel files);
/// a raw hint (al/ul/g722) is needed for headerless audio, and is refused when the
/// content is plainly a container, since decoding its header as samples makes noise.
pub(crate) fn detect(file: &mut File, hint: Option<&str>) -> Result<Detected, MediaError> {
    let file_len = file.metadata()?.len();
    if file_len == 0 {
        return Err(MediaError::malformed("empty file"));
    }
    let mut head = vec![0u8; SNIFF_LEN.min(file_len as usize)];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let hinted = hint.and_then(AudioFormat::from_param);
    let sniffed = sniff(&head);
    let format = match (sniffed, hinted) {
        (Some(s), Some(h)) if h.is_raw() => {
            return Err(MediaError::malformed(format!(
                "declared as raw {} but the content is a {} file",
                h.name(),
                s.name()
            )))
        }
        (Some(s), _) => s,
        (None, Some(h)) => h,
        (None, None) => {
            return Err(MediaError::Unsupported("unrecognised audio format".into()));
        }
    };
    Ok(Detected { format, file_len })
}

/// Opens `path` for decoding.
pub fn open(
    path: &Path,
    hint: Option<&str>,
    limits: &Limits,
) -> Result<(AudioFormat, Box<dyn PcmSource>), MediaError> {
    let mut file = File::open(path)?;
    let det = detect(&mut file, hint)?;
    let src: Box<dyn PcmSource> = if det.format.is_raw() {
        Box::new(RawSource::new(file, det.format, det.file_len, limits)?)
    } else {
        Box::new(SymphoniaSource::new(
            path,
            file,
            det.format,
            det.file_len,
            limits,
        )?)
    };
    Ok((det.format, src))
}

/// Decodes `src`'s first block. It proves the input decodes and settles the stream's shape
/// (some containers state the channels only in their first packet), so [`PcmSource::spec`]
/// is read after it; an input with no audio is an error.
pub(crate) fn first_block(src: &mut dyn PcmSource) -> Result<Vec<f32>, MediaError> {
    let mut block = Vec::with_capacity(1 << 16);
    if !src.next_block(&mut block)? {
        return Err(MediaError::malformed("no decodable audio"));
    }
    Ok(block)
}

/// Gives `f` the block already read (`block`, see [`first_block`]) and then every following
/// block of `src`, polling `cancel` between blocks.
pub(crate) fn each_block(
    src: &mut dyn PcmSource,
    mut block: Vec<f32>,
    cancel: &AtomicBool,
    mut f: impl FnMut(&[f32]) -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        f(&block)?;
        block.clear();
        if !src.next_block(&mut block)? {
            return Ok(());
        }
    }
}

/// Runs `f`, turning a panic inside symphonia into a malformed-input error.
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, SymError>,
) -> Result<T, MediaError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(MediaError::from),
        Err(_) => Err(MediaError::malformed(format!(
            "{what}: decoder rejected the input (internal panic)"
        ))),
    }
}

/// Checks FLAC metadata block lengths (and the Vorbis comment lengths inside)
/// against the file size before symphonia sees them: symphonia 0.5.5 allocates
/// a zeroed buffer of whatever a comment length says (fuzzing found a 4 GiB
/// calloc from a 12 KB file). RFC 9639 §8.
fn check_flac_metadata(file: &mut File, file_len: u64) -> Result<(), MediaError> {
    let bad = || MediaError::malformed("FLAC metadata block larger than the file");
    file.seek(SeekFrom::Start(4))?;
    let mut pos = 4u64;
    for _ in 0..1024 {
        let mut h = [0u8; 4];
        if file.read_exact(&mut h).is_err() {
            return Err(MediaError::malformed("truncated FLAC metadata"));
        }
        let len = u64::from(u32::from_be_bytes([0, h[1], h[2], h[3]]));
        pos += 4;
        if pos + len > file_len {
            return Err(bad());
        }
        if h[0] & 0x7F == 4 {
            // Vorbis comment: little-endian vendor length, count, then each length.
            let mut block = vec![0u8; len as usize];
            file.read_exact(&mut block)?;
            let le = |o: usize| {
                block
                    .get(o..o + 4)
                    .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            };
            let fits = |o: usize, n: u64| (o as u64 + 4 + n <= len).then(|| o + 4 + n as usize);
            let vendor = le(0).ok_or_else(bad)?;
            let mut o = fits(0, vendor).ok_or_else(bad)?;
            let count = le(o).ok_or_else(bad)?;
            o += 4;
            for _ in 0..count {
                let n = le(o).ok_or_else(bad)?;
                o = fits(o, n).ok_or_else(bad)?;
            }
        } else {
            file.seek(SeekFrom::Current(len as i64))?;
        }
        pos += len;
        if h[0] & 0x80 != 0 {
            break;
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(())
}

/// The track's sample rate; a stream without one, or with 0, is malformed.
pub(crate) fn sample_rate(p: &sc::CodecParameters) -> Result<u32, MediaError> {
    match p.sample_rate {
        None => Err(MediaError::malformed("no sample rate")),
        Some(0) => Err(MediaError::malformed("sample rate 0")),
        Some(rate) => Ok(rate),
    }
}

/// The first track that carries audio (containers may list others first).
pub(crate) fn first_audio_track(
    reader: &dyn symphonia::core::formats::FormatReader,
) -> Result<&symphonia::core::formats::Track, MediaError> {
    reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| MediaError::malformed("no audio track"))
}

/// Opens a symphonia format reader over `file`.
pub(crate) fn open_reader(
    mut file: File,
    format: AudioFormat,
) -> Result<Box<dyn FormatReader>, MediaError> {
    use symphonia::core::formats::FormatReader as _;
    use symphonia::default::formats::{FlacReader, IsoMp4Reader, MpaReader, OggReader, WavReader};

    // The reader is chosen from our own detection rather than symphonia's probe,
    // which scans for any known marker and can hand an MP3 (or junk) with a
    // "fLaC" inside to the FLAC reader, past our FLAC checks.
    let len = file.metadata()?.len();
    match format {
        AudioFormat::Flac => check_flac_metadata(&mut file, len)?,
        AudioFormat::Mp3 => {
            // Skip an ID3v2 tag ourselves: its contents are of no use to us.
            let mut head = [0u8; 10];
            let n = file.read(&mut head)?;
            let skip = crate::mp3scan::id3v2_len(&head[..n]).min(len);
            file.seek(SeekFrom::Start(skip))?;
        }
        _ => {}
    }
    let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let opts = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let reader = guarded("demux", || -> Result<Box<dyn FormatReader>, SymError> {
        Ok(match format {
            AudioFormat::Wav => Box::new(WavReader::try_new(mss, &opts)?),
            AudioFormat::Mp3 => Box::new(MpaReader::try_new(mss, &opts)?),
            AudioFormat::Flac => Box::new(FlacReader::try_new(mss, &opts)?),
            AudioFormat::Ogg => Box::new(OggReader::try_new(mss, &opts)?),
            AudioFormat::Mp4 => Box::new(IsoMp4Reader::try_new(mss, &opts)?),
            other => {
                return Err(SymError::Unsupported(if other.is_raw() {
                    "raw audio has no container"
                } else {
                    "format"
                }))
            }
        })
    })
    .map_err(|e| match e {
        MediaError::Unsupported(m) => {
            MediaError::malformed(format!("not a decodable {} file ({m})", format.name()))
        }
        other => other,
    })?;
    Ok(reader)
}

/// Symphonia-backed decoder for wav, mp3, flac, ogg/vorbis and mp4/aac.
pub(crate) struct SymphoniaSource {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    spec: StreamSpec,
    sbuf: Option<SampleBuffer<f32>>,
    /// Frames still to drop at the start (MP4 priming from the edit list).
    skip: u64,
    /// Frames still to emit, when the edit list bounds the track.
    keep: Option<u64>,
    decoded: u64,
    max_frames: u64,
    max_channels: u16,
    errors: u32,
    format: AudioFormat,
    codec: CodecType,
    /// After a seek: the timestamp the next packet must carry (checked, so a
    /// reader that lands elsewhere is an error rather than shifted audio).
    expect_ts: Option<u64>,
    /// 16-bit PCM in WAV: packets are converted straight from their bytes, skipping the
    /// decoder's planar buffer and its copy back to interleaved (same values, x / 32768).
    direct_s16: bool,
}

impl SymphoniaSource {
    fn new(
        path: &Path,
        file: File,
        format: AudioFormat,
        file_len: u64,
        limits: &Limits,
    ) -> Result<Self, MediaError> {
        let reader = open_reader(file, format)?;
        let track = first_audio_track(reader.as_ref())?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let rate = sample_rate(&params)?;
        if rate > limits.max_sample_rate {
            return Err(MediaError::Limit(format!(
                "sample rate {rate} Hz over {}",
                limits.max_sample_rate
            )));
        }
        let channels = params.channels.map(|c| c.count() as u16).unwrap_or(0);
        if channels > limits.max_channels {
            return Err(MediaError::Limit(format!(
                "{channels} channels over {}",
                limits.max_channels
            )));
        }
        let decoder = guarded("codec", || {
            symphonia::default::get_codecs().make(&params, &DecoderOptions::default())
        })?;
        let max_frames = limits.max_frames(rate);

        let edit = isobmff::edit_trim_of(path, format, file_len, rate)?;
        // A header claiming more than the duration limit is refused up front (a lie or
        // an input we will not decode anyway). 0 means "unknown" (streamed WAV).
        if params.n_frames.is_some_and(|n| n > max_frames) {
            return Err(MediaError::Limit(
                "declared duration over the decode limit".into(),
            ));
        }
        let mut frames = params.n_frames.filter(|&n| n > 0);
        if let Some(e) = edit {
            frames = frames.map(|n| e.apply(n));
        }
        Ok(SymphoniaSource {
            reader,
            decoder,
            track_id,
            spec: StreamSpec {
                rate,
                channels,
                frames,
            },
            sbuf: None,
            skip: edit.map_or(0, |e| e.skip_frames),
            keep: edit.and_then(|e| e.keep_frames),
            decoded: 0,
            max_frames,
            max_channels: limits.max_channels,
            errors: 0,
            format,
            codec: params.codec,
            expect_ts: None,
            direct_s16: format == AudioFormat::Wav
                && params.codec == sc::CODEC_TYPE_PCM_S16LE
                && channels > 0,
        })
    }
}

impl PcmSource for SymphoniaSource {
    fn spec(&self) -> StreamSpec {
        self.spec
    }

    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<bool, MediaError> {
        loop {
            if self.keep == Some(0) {
                return Ok(false);
            }
            let packet = match guarded("demux", || self.reader.next_packet()) {
                Ok(p) => p,
                Err(MediaError::Malformed(m)) if m == "unexpected end of file" => {
                    return self.finish()
                }
                // Symphonia reports some clean ends as a reset or a seek-free EOF.
                Err(e) => {
                    if self.decoded > 0 && matches!(e, MediaError::Malformed(_)) {
                        // Garbage after valid audio (trailing junk, a broken last page):
                        // keep what decoded, like other players do.
                        return self.finish();
                    }
                    return Err(e);
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            if let Some(ts) = self.expect_ts.take() {
                if packet.ts() != ts {
                    return Err(MediaError::malformed(format!(
                        "seek landed at frame {} instead of {ts}",
                        packet.ts()
                    )));
                }
            }
            if self.direct_s16 {
                match self.take_s16(packet.buf(), out)? {
                    true => return Ok(true),
                    false => continue,
                }
            }
            // Decode and copy out inside the guard, so no borrow of the decoder escapes it.
            let decoder = &mut self.decoder;
            let slot = &mut self.sbuf;
            let decoded = catch_unwind(AssertUnwindSafe(
                move || -> Result<(u32, usize, usize), SymError> {
                    let buf = decoder.decode(&packet)?;
                    let spec = *buf.spec();
                    let ch = spec.channels.count();
                    let frames = buf.frames();
                    if frames == 0 || frames > MAX_PACKET_FRAMES || ch == 0 {
                        return Ok((spec.rate, ch, frames));
                    }
                    let need = buf.capacity() * ch;
                    let sbuf = match slot {
                        Some(s) if s.capacity() >= need => s,
                        slot => slot.insert(SampleBuffer::new(buf.capacity() as u64, spec)),
                    };
                    sbuf.copy_interleaved_ref(buf);
                    Ok((spec.rate, ch, frames))
                },
            ));
            let (rate, ch, frames) = match decoded {
                Ok(Ok(v)) => v,
                Ok(Err(SymError::DecodeError(_))) | Ok(Err(SymError::IoError(_))) => {
                    self.errors += 1;
                    if self.errors > MAX_CONSECUTIVE_ERRORS {
                        return Err(MediaError::malformed("too many undecodable packets"));
                    }
                    continue;
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(MediaError::malformed(
                        "decoder rejected the input (internal panic)",
                    ))
                }
            };
            self.errors = 0;
            if frames == 0 {
                continue;
            }
            if frames > MAX_PACKET_FRAMES {
                return Err(MediaError::Limit(format!("packet of {frames} frames")));
            }
            let ch = ch as u16;
            if self.spec.channels == 0 {
                if ch == 0 || ch > self.max_channels {
                    return Err(MediaError::Limit(format!("{ch} channels")));
                }
                self.spec.channels = ch;
            }
            if ch != self.spec.channels || rate != self.spec.rate {
                return Err(MediaError::malformed(
                    "stream changes rate or channel count mid-way",
                ));
            }
            let Some(sbuf) = self.sbuf.as_ref() else {
                continue;
            };
            let mut samples = sbuf.samples();
            // Edit-list trimming, in whole frames.
            let chn = ch as usize;
            if self.skip > 0 {
                let drop = (self.skip as usize).min(samples.len() / chn);
                self.skip -= drop as u64;
                samples = &samples[drop * chn..];
            }
            if let Some(k) = &mut self.keep {
                let n = (*k as usize).min(samples.len() / chn);
                *k -= n as u64;
                samples = &samples[..n * chn];
            }
            if samples.is_empty() {
                continue;
            }
            self.decoded += (samples.len() / chn) as u64;
            if self.decoded > self.max_frames {
                return Err(MediaError::Limit(
                    "input longer than the decode duration limit".into(),
                ));
            }
            out.extend_from_slice(samples);
            return Ok(true);
        }
    }

    fn seek_exact(&mut self, frame: u64) -> Result<bool, MediaError> {
        self.seek_wav(frame)
    }
}

impl SymphoniaSource {
    /// Appends a 16-bit PCM packet's whole frames as `f32` (after any frames a seek left to
    /// drop); `Ok(false)` when it held none to give.
    fn take_s16(&mut self, data: &[u8], out: &mut Vec<f32>) -> Result<bool, MediaError> {
        let frame_bytes = 2 * usize::from(self.spec.channels);
        let frames = data.len() / frame_bytes;
        if frames > MAX_PACKET_FRAMES {
            return Err(MediaError::Limit(format!("packet of {frames} frames")));
        }
        let drop = (self.skip as usize).min(frames);
        self.skip -= drop as u64;
        let bytes = &data[drop * frame_bytes..frames * frame_bytes];
        if bytes.is_empty() {
            return Ok(false);
        }
        self.errors = 0;
        self.decoded += (frames - drop) as u64;
        if self.decoded > self.max_frames {
            return Err(MediaError::Limit(
                "input longer than the decode duration limit".into(),
            ));
        }
        out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
        );
        Ok(true)
    }

    /// Exact seeks for PCM in WAV: symphonia's WAV reader simulates packets of a fixed
    /// frame count and seeks to the packet boundary at or before the target (so packet
    /// timestamps match an unseeked read); the frames between are dropped here. Every
    /// PCM codec (integer, float, A-law, µ-law) decodes each sample on its own, so the
    /// samples from `frame` on equal a decode from the start.
    fn seek_wav(&mut self, frame: u64) -> Result<bool, MediaError> {
        const PCM: [CodecType; 15] = [
            sc::CODEC_TYPE_PCM_U8,
            sc::CODEC_TYPE_PCM_S8,
            sc::CODEC_TYPE_PCM_S16LE,
            sc::CODEC_TYPE_PCM_S16BE,
            sc::CODEC_TYPE_PCM_S24LE,
            sc::CODEC_TYPE_PCM_S24BE,
            sc::CODEC_TYPE_PCM_S32LE,
            sc::CODEC_TYPE_PCM_S32BE,
            sc::CODEC_TYPE_PCM_F32LE,
            sc::CODEC_TYPE_PCM_F32BE,
            sc::CODEC_TYPE_PCM_F64LE,
            sc::CODEC_TYPE_PCM_F64BE,
            sc::CODEC_TYPE_PCM_ALAW,
            sc::CODEC_TYPE_PCM_MULAW,
            sc::CODEC_TYPE_PCM_U16LE,
        ];
        let pcm = PCM.contains(&self.codec);
        if self.format != AudioFormat::Wav || !pcm || self.decoded != 0 || self.skip != 0 {
            return Ok(false);
        }
        let track_id = self.track_id;
        let reader = &mut self.reader;
        let seeked = guarded("seek", || {
            reader.seek(
                SeekMode::Accurate,
                SeekTo::TimeStamp {
                    ts: frame,
                    track_id,
                },
            )
        })?;
        if seeked.required_ts != frame || seeked.actual_ts > frame {
            return Err(MediaError::malformed(format!(
                "seek to frame {frame} landed at {}",
                seeked.actual_ts
            )));
        }
        self.decoder.reset();
        self.skip = frame - seeked.actual_ts;
        self.expect_ts = Some(seeked.actual_ts);
        // Counted as if decoded, so the duration limit and the truncation check at the
        // end see the same totals as a decode from the start.
        self.decoded = frame;
        Ok(true)
    }

    /// End of stream: an empty or badly short stream is an error.
    fn finish(&mut self) -> Result<bool, MediaError> {
        if self.decoded == 0 {
            return Err(MediaError::malformed("no decodable audio"));
        }
        // The frames the container promised: a much shorter decode means truncation.
        if let Some(d) = self.spec.frames {
            // Allow one large packet of slack: containers round their durations.
            if self.decoded + 8192 < d - d / 50 {
                return Err(MediaError::malformed(format!(
                    "truncated: header declares {d} frames, only {} present",
                    self.decoded
                )));
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/media")
            .join(name)
    }

    fn source(name: &str, direct: bool) -> SymphoniaSource {
        let path = fixture(name);
        let mut file = File::open(&path).expect("fixture");
        let det = detect(&mut file, None).expect("detect");
        let mut src =
            SymphoniaSource::new(&path, file, det.format, det.file_len, &Limits::default())
                .expect("open");
        assert!(src.direct_s16 || !direct, "{name} is 16-bit PCM");
        src.direct_s16 = direct;
        src
    }

    fn all(src: &mut SymphoniaSource) -> Vec<f32> {
        let mut out = Vec::new();
        while src.next_block(&mut out).expect("decode") {}
        out
    }

    #[test]
    fn s16_packets_read_directly_equal_the_decoder() {
        for name in ["speech16k.wav", "music44k.wav"] {
            let want = all(&mut source(name, false));
            let got = all(&mut source(name, true));
            assert!(!want.is_empty());
            assert!(
                want.iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
                    && want.len() == got.len(),
                "{name}"
            );
            // After an exact seek, too.
            let (mut slow, mut fast) = (source(name, false), source(name, true));
            assert!(slow.seek_exact(1001).expect("seek") && fast.seek_exact(1001).expect("seek"));
            assert_eq!(all(&mut slow), all(&mut fast), "{name} after a seek");
        }
    }
}
