//! MP3 via LAME (`mp3lame-encoder`, LAME 3.100 built from source), CBR.
//!
//! The output rate follows LAME's own choice for the bitrate (its
//! `optimum_bandwidth`/`optimum_samplefreq` in lame.c, ported below) so that we
//! resample once, with rubato, instead of letting LAME resample again; it is then
//! raised or lowered only as far as the MPEG version's bitrate table requires for
//! `br` to be honoured exactly.
//!
//! Every output starts with an Info (Xing, CBR) + LAME tag frame stating the
//! frame count, byte count, seek table and encoder delay/padding, so decoders get
//! the exact (gapless) length and players the duration:
//!
//! - on seekable outputs LAME reserves the frame and we patch in LAME's own tag at
//!   the end;
//! - on plain streams (the server's conversions) the tag must go out before the
//!   audio, so it is computed up front from the frame count the pipeline promises
//!   (the source's declared length, delivered exactly). LAME's CBR output is
//!   deterministic in its length: frames, end padding, frame padding slots and
//!   seek table follow from the input length alone (`Layout`, ported from
//!   lame.c/VbrTag.c), and the rest of the tag depends only on the settings, so it
//!   is taken from a tag LAME writes for a short run of silence with the same
//!   settings (once per setting, cached). Only the "music CRC" (a CRC of the
//!   encoded audio) cannot be known before encoding; it is left 0, which players
//!   ignore (ffmpeg, mpg123 and browsers read delay, padding and frame count).
//!   Where LAME's tag does not fit the frame (mono MPEG-2 at 32 kbit/s and below,
//!   the telephony speech default; MPEG-1 below 64 kbit/s) a compact one without
//!   the seek table is written instead (`compact_template`; at 8 kbit/s stereo
//!   and 8 kHz without the byte count too). With no promised length no tag is written (an
//!   empty reserved frame would be worse); CBR durations then come from the byte
//!   count.

use std::collections::HashMap;
use std::io::Write;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use mp3lame_encoder::{
    Bitrate, Builder, Encoder, FlushGap, InterleavedPcm, Mode, MonoPcm, VbrMode,
};

use super::{BlockEncoder, Patch, Plan};
use crate::MediaError;

/// CBR bitrates LAME accepts, kbit/s.
const BITRATES: [u32; 16] = [
    8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];

/// Nearest bitrate LAME can produce (ties go down).
pub(crate) fn nearest_bitrate(kbps: u32) -> u32 {
    BITRATES
        .iter()
        .copied()
        .min_by_key(|&b| (b.abs_diff(kbps), b))
        .unwrap_or(128)
}

fn lame_bitrate(kbps: u32) -> Bitrate {
    match kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        _ => Bitrate::Kbps320,
    }
}

/// LAME 3.100 `optimum_bandwidth`: lowpass (Hz) for a CBR bitrate.
fn lame_lowpass(kbps: u32) -> u32 {
    #[rustfmt::skip]
    const MAP: [(u32, u32); 17] = [
        (8, 2000), (16, 3700), (24, 3900), (32, 5500), (40, 7000), (48, 7500), (56, 10000),
        (64, 11000), (80, 13500), (96, 15100), (112, 15600), (128, 17000), (160, 17500),
        (192, 18600), (224, 19400), (256, 19700), (320, 20500),
    ];
    MAP.iter()
        .min_by_key(|(b, _)| b.abs_diff(kbps))
        .map_or(17000, |&(_, f)| f)
}

/// LAME 3.100 `optimum_samplefreq`.
fn lame_samplefreq(lowpass: u32, input: u32) -> u32 {
    let mut suggested = match lowpass {
        0..=3970 => 8_000,
        3971..=4510 => 11_025,
        4511..=5420 => 12_000,
        5421..=7230 => 16_000,
        7231..=9970 => 22_050,
        9971..=11220 => 24_000,
        11221..=15250 => 32_000,
        15251..=15960 => 44_100,
        _ => 48_000,
    };
    if lowpass > 15960 {
        suggested = 44_100;
    }
    if input < suggested {
        // LAME picks the valid MPEG rate at or just above the input rate.
        return super::mpeg_rate_at_or_above(input);
    }
    suggested
}

/// Output rate for `kbps` CBR with `channels` channels from an `input`-Hz source.
pub(crate) fn choose_rate(kbps: u32, channels: u16, input: u32) -> u32 {
    let mut lowpass = lame_lowpass(kbps);
    if channels == 1 {
        lowpass = lowpass * 3 / 2; // lame.c: mono gets 1.5x the bandwidth
    }
    let rate = lame_samplefreq(lowpass, input);
    // Bitrate tables: MPEG-2.5 (8-12 kHz) tops at 64, MPEG-2 (16-24 kHz) at 160,
    // MPEG-1 (32-48 kHz) starts at 32.
    match rate {
        r if r <= 12_000 && kbps > 64 => {
            if kbps > 160 {
                32_000
            } else {
                16_000
            }
        }
        r if r <= 24_000 && kbps > 160 => 32_000,
        r if r >= 32_000 && kbps < 32 => 24_000,
        r => r,
    }
}

pub(crate) struct Mp3Encoder {
    enc: Encoder,
    channels: u16,
    tagged: bool,
    /// The Info/LAME frame computed up front, written before LAME's first bytes.
    stream_tag: Option<Vec<u8>>,
    buf: Vec<u8>,
}

fn lame_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::encoder(format!("lame: {e}"))
}

/// A LAME encoder for `plan`, reserving the Info/LAME tag frame when `tag`.
fn build(plan: &Plan, tag: bool) -> Result<Encoder, MediaError> {
    let kbps = plan.bitrate_kbps.unwrap_or(128);
    let mut b = Builder::new().ok_or_else(|| lame_err("cannot allocate encoder"))?;
    b.set_num_channels(plan.channels as u8).map_err(lame_err)?;
    b.set_sample_rate(plan.rate).map_err(lame_err)?;
    b.set_output_sample_rate(NonZeroU32::new(plan.rate))
        .map_err(lame_err)?;
    b.set_brate(lame_bitrate(kbps)).map_err(lame_err)?;
    b.set_vbr_mode(VbrMode::Off).map_err(lame_err)?;
    b.set_mode(if plan.channels == 1 {
        Mode::Mono
    } else {
        Mode::JointStereo
    })
    .map_err(lame_err)?;
    b.set_to_write_vbr_tag(tag).map_err(lame_err)?;
    b.build().map_err(lame_err)
}

/// Feeds interleaved `pcm` to `enc`, appending the bytes to `buf`.
fn encode_into(
    enc: &mut Encoder,
    channels: u16,
    pcm: &[f32],
    buf: &mut Vec<u8>,
) -> Result<(), MediaError> {
    let frames = pcm.len() / usize::from(channels);
    buf.reserve(mp3lame_encoder::max_required_buffer_size(frames));
    if channels == 1 {
        enc.encode_to_vec(MonoPcm(pcm), buf).map_err(lame_err)?;
    } else {
        enc.encode_to_vec(InterleavedPcm(pcm), buf)
            .map_err(lame_err)?;
    }
    Ok(())
}

/// LAME's encoder delay (`ENCDELAY`, lame.c), samples, stated in the LAME tag.
const ENC_DELAY: u64 = 576;

/// What LAME 3.100 produces in CBR for a given input length: it is fixed by the
/// length and settings alone, which lets the tag be written before the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Audio frames (the tag frame excluded).
    pub frames: u64,
    /// Silence LAME appends to fill the last frame (`encoder_padding`), samples.
    pub end_padding: u64,
    /// Bytes of the audio frames.
    pub audio_bytes: u64,
    /// Bytes of a frame without its padding slot, which is also the tag frame's size.
    pub frame_bytes: u64,
}

impl Layout {
    /// The layout of `input_frames` frames at `rate` Hz, `kbps` CBR.
    pub(crate) fn new(rate: u32, kbps: u32, input_frames: u64) -> Self {
        let rate = u64::from(rate.max(1));
        // MPEG-1 (32-48 kHz) frames hold 1152 samples, MPEG-2/2.5 576.
        let mpeg1 = rate >= 32_000;
        let spf: u64 = if mpeg1 { 1152 } else { 576 };
        // lame_encode_flush: the stream is the delay, the input and end padding that
        // completes the last frame, at least 576 samples of it.
        let to_encode = ENC_DELAY + input_frames;
        let mut end_padding = spf - to_encode % spf;
        if end_padding < 576 {
            end_padding += spf;
        }
        let frames = (to_encode + end_padding) / spf;
        // Frame size: (version+1)·72000·kbps/rate bytes, plus a padding byte whenever
        // the remainder accumulates past a whole byte, never on the first frame
        // (encoder.c, "padding method"); after k frames that is ceil((k-1)·frac/rate).
        let num = if mpeg1 { 144_000 } else { 72_000 } * u64::from(kbps);
        let frame_bytes = num / rate;
        let frac = num % rate;
        let padded = (frames.saturating_sub(1) * frac).div_ceil(rate);
        Layout {
            frames,
            end_padding,
            audio_bytes: frames * frame_bytes + padded,
            frame_bytes,
        }
    }
}

/// The Xing table of contents LAME writes for `frames` CBR frames of `kbps`
/// (`addVbr` and `Xing_seek_table` in VbrTag.c, same arithmetic): entry `i` is the
/// byte position of `i`% of the duration, in 256ths of the stream.
pub(crate) fn lame_toc(frames: u64, kbps: u32) -> [u8; 100] {
    const SIZE: usize = 400;
    let mut bag = [0i64; SIZE];
    let (mut pos, mut want, mut seen, mut sum) = (0usize, 1u64, 0u64, 0i64);
    for _ in 0..frames {
        sum += i64::from(kbps);
        seen += 1;
        if seen < want {
            continue;
        }
        if pos < SIZE {
            bag[pos] = sum;
            pos += 1;
            seen = 0;
        }
        if pos == SIZE {
            for i in (1..SIZE).step_by(2) {
                bag[i / 2] = bag[i];
            }
            want *= 2;
            pos /= 2;
        }
    }
    let mut toc = [0u8; 100];
    if pos == 0 {
        return toc;
    }
    for (i, t) in toc.iter_mut().enumerate().skip(1) {
        // C's float and double steps, so the entries match LAME's to the bit.
        let j = i as f32 / 100.0f32;
        let indx = ((j * pos as f32).floor() as usize).min(pos - 1);
        let act = bag[indx] as f32;
        let total = sum as f32;
        *t = ((256.0f64 * f64::from(act) / f64::from(total)) as i32).min(255) as u8;
    }
    toc
}

/// CRC-16 (polynomial 0x8005, reflected, initial 0) as the LAME tag uses it
/// (`CRC_update_lookup`, VbrTag.c).
pub(crate) fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Offset of "Info" in a tag frame: right after the side information.
fn info_offset(frame: &[u8]) -> Option<usize> {
    (4..frame.len().min(40)).find(|&i| frame[i..].starts_with(b"Info"))
}

/// Xing flags: which optional fields follow (frames, bytes, TOC, quality).
const XING_FRAMES: u32 = 1;
const XING_BYTES: u32 = 2;
const XING_TOC: u32 = 4;
const XING_QUALITY: u32 = 8;
/// Byte offsets in the LAME extension (36 bytes after the Xing fields).
const EXT_LEN: usize = 36;
const EXT_DELAY: usize = 21;
const EXT_MUSIC_LEN: usize = 28;
const EXT_MUSIC_CRC: usize = 32;
const EXT_TAG_CRC: usize = 34;

/// Where the fields of a tag frame are.
struct TagLayout {
    /// Offset of "Info"; the frame count follows the flags at `x + 8`.
    x: usize,
    /// Offset of the LAME extension.
    ext: usize,
    /// Whether the byte count (at `x + 12`) is present.
    bytes: bool,
    /// Whether the TOC (after the byte count) is present.
    toc: bool,
}

/// The layout of `frame`; `None` unless it is a CBR Info frame with a frame count
/// and a LAME extension.
fn tag_layout(frame: &[u8]) -> Option<TagLayout> {
    let x = info_offset(frame)?;
    let flags = u32::from_be_bytes(frame.get(x + 4..x + 8)?.try_into().ok()?);
    if flags & XING_FRAMES == 0 {
        return None;
    }
    // The optional fields in order, each present when its flag is set.
    let bytes = flags & XING_BYTES != 0;
    let toc = flags & XING_TOC != 0;
    let ext = x
        + 12
        + if bytes { 4 } else { 0 }
        + if toc { 100 } else { 0 }
        + if flags & XING_QUALITY != 0 { 4 } else { 0 };
    if frame.len() < ext + EXT_LEN || !frame[ext..].starts_with(b"LAME") {
        return None;
    }
    Some(TagLayout { x, ext, bytes, toc })
}

/// `template` (a tag frame for the same settings) restated for `layout`: frames,
/// bytes, TOC, delay and padding, music length as LAME would write them; music CRC
/// unknown (0); tag CRC recomputed. `None` if `template` is not a tag frame.
pub(crate) fn restate_tag(template: &[u8], layout: &Layout, kbps: u32) -> Option<Vec<u8>> {
    let TagLayout { x, ext, bytes, toc } = tag_layout(template)?;
    let mut t = template.to_vec();
    // The whole stream: tag frame and audio (VbrTag.c: nBytesWritten + TotalFrameSize).
    let stream = u32::try_from(layout.audio_bytes + t.len() as u64).ok()?;
    let frames = u32::try_from(layout.frames).ok()?;
    t[x + 8..x + 12].copy_from_slice(&frames.to_be_bytes());
    if bytes {
        t[x + 12..x + 16].copy_from_slice(&stream.to_be_bytes());
    }
    if toc {
        t[x + 16..x + 116].copy_from_slice(&lame_toc(layout.frames, kbps));
    }
    // 12 bits of delay, 12 of padding.
    let (d, p) = (ENC_DELAY as u32, layout.end_padding.min(4095) as u32);
    let dp = (d << 12) | p;
    t[ext + EXT_DELAY..ext + EXT_DELAY + 3].copy_from_slice(&dp.to_be_bytes()[1..]);
    t[ext + EXT_MUSIC_LEN..ext + EXT_MUSIC_LEN + 4].copy_from_slice(&stream.to_be_bytes());
    t[ext + EXT_MUSIC_CRC..ext + EXT_MUSIC_CRC + 2].copy_from_slice(&[0, 0]);
    let crc = crc16(&t[..ext + EXT_TAG_CRC]);
    t[ext + EXT_TAG_CRC..ext + EXT_TAG_CRC + 2].copy_from_slice(&crc.to_be_bytes());
    Some(t)
}

/// A tag frame for settings where LAME writes none because its tag (with a 100-byte
/// TOC) does not fit the frame, e.g. mono at 32 kbit/s and 16 kHz (144 bytes), the
/// default for telephony speech: the same layout without the TOC (a CBR stream is
/// seeked by proportion anyway) and without the quality field, so frame count,
/// delay and padding still reach the decoder (ffmpeg and mpg123 read the fields
/// the flags announce). Besides the lengths (filled in by [`restate_tag`]) it says
/// only the version, "CBR" and the bitrate. `first_frame` is an audio frame of the
/// same settings (its header is reused, unpadded); `None` if even this does not fit
/// (it always does: 69 bytes at most, the smallest frame is 72).
fn compact_template(first_frame: &[u8], frame_bytes: usize, kbps: u32) -> Option<Vec<u8>> {
    let header: [u8; 4] = first_frame.get(..4)?.try_into().ok()?;
    if header[0] != 0xFF || header[1] & 0xE0 != 0xE0 {
        return None;
    }
    let mpeg1 = header[1] & 0x18 == 0x18;
    let mono = header[3] >> 6 == 3;
    // Frame header plus side information (ISO 11172-3 / 13818-3).
    let side = 4 + match (mpeg1, mono) {
        (true, false) => 32,
        (true, true) | (false, false) => 17,
        (false, true) => 9,
    };
    // "Info", flags, frames, and the byte count where it fits (all but 8 kbit/s
    // stereo at 8 kHz: 72-byte frames).
    let bytes = frame_bytes >= side + 16 + EXT_LEN;
    let ext = side + if bytes { 16 } else { 12 };
    if frame_bytes < ext + EXT_LEN {
        return None;
    }
    let mut t = vec![0u8; frame_bytes];
    t[..4].copy_from_slice(&header);
    t[2] &= !0x02; // no padding slot: the frame is exactly `frame_bytes`
    t[3] &= 0xCF; // no mode extension: the frame carries no audio
    t[side..side + 4].copy_from_slice(b"Info");
    let flags = if bytes {
        XING_FRAMES | XING_BYTES
    } else {
        XING_FRAMES
    };
    t[side + 4..side + 8].copy_from_slice(&flags.to_be_bytes());
    t[ext..ext + 9].copy_from_slice(b"LAME3.100");
    t[ext + 9] = 0x01; // tag revision 0, CBR
    t[ext + 20] = kbps.min(255) as u8;
    Some(t)
}

/// The tag frame to restate for `plan`: LAME's own (written after a short run of
/// silence with the same settings) or, where LAME writes none, the compact one;
/// `None` when no tag fits the frame. Cached per setting: it costs a LAME run.
fn template(plan: &Plan) -> Result<Option<Arc<[u8]>>, MediaError> {
    type Key = (u32, u16, Option<u32>);
    type Templates = HashMap<Key, Option<Arc<[u8]>>>;
    static CACHE: OnceLock<Mutex<Templates>> = OnceLock::new();
    let key = (plan.rate, plan.channels, plan.bitrate_kbps);
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(t) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(t.clone());
    }
    let kbps = plan.bitrate_kbps.unwrap_or(128);
    let mut enc = build(plan, true)?;
    let silence = vec![0.0f32; 1152 * usize::from(plan.channels)];
    let mut buf = Vec::new();
    encode_into(&mut enc, plan.channels, &silence, &mut buf)?;
    buf.reserve(mp3lame_encoder::max_required_buffer_size(0) + 7200);
    enc.flush_to_vec::<FlushGap>(&mut buf).map_err(lame_err)?;
    let mut tag = Vec::with_capacity(enc.lame_tag_size().max(1));
    let t: Option<Arc<[u8]>> = match enc.lame_tag_encode_to_vec(&mut tag) {
        Some(_) => Some(tag.into()),
        None => {
            let frame_bytes = Layout::new(plan.rate, kbps, 0).frame_bytes as usize;
            compact_template(&buf, frame_bytes, kbps).map(Into::into)
        }
    };
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, t.clone());
    Ok(t)
}

impl Mp3Encoder {
    /// An encoder for `plan`. Seekable outputs get LAME's own tag patched in at the
    /// end; streams get one computed up front from `expected` frames, which the
    /// pipeline must then deliver exactly.
    pub(crate) fn new(
        plan: &Plan,
        seekable: bool,
        expected: Option<u64>,
    ) -> Result<Self, MediaError> {
        let kbps = plan.bitrate_kbps.unwrap_or(128);
        let stream_tag = match expected {
            Some(n) if !seekable => template(plan)?
                .and_then(|t| restate_tag(&t, &Layout::new(plan.rate, kbps, n), kbps)),
            _ => None,
        };
        Ok(Mp3Encoder {
            enc: build(plan, seekable)?,
            channels: plan.channels,
            tagged: seekable,
            stream_tag,
            buf: Vec::new(),
        })
    }
}

impl BlockEncoder for Mp3Encoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        if let Some(tag) = self.stream_tag.take() {
            out.write_all(&tag)?;
        }
        // LAME's float entry points take [-1, 1]; one call per block, no copies.
        for part in pcm.chunks(16_384 * usize::from(self.channels)) {
            self.buf.clear();
            encode_into(&mut self.enc, self.channels, part, &mut self.buf)?;
            out.write_all(&self.buf)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        if let Some(tag) = self.stream_tag.take() {
            out.write_all(&tag)?;
        }
        self.buf.clear();
        self.buf
            .reserve(mp3lame_encoder::max_required_buffer_size(0) + 7200);
        self.enc
            .flush_to_vec::<FlushGap>(&mut self.buf)
            .map_err(lame_err)?;
        out.write_all(&self.buf)?;
        if !self.tagged {
            return Ok(None);
        }
        let mut tag = Vec::with_capacity(2048);
        Ok(self.enc.lame_tag_encode_to_vec(&mut tag).map(|_| Patch {
            offset: 0,
            bytes: tag,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: u32, channels: u16, kbps: u32) -> Plan {
        Plan {
            format: crate::AudioFormat::Mp3,
            rate,
            channels,
            bitrate_kbps: Some(kbps),
        }
    }

    /// `frames` of a tone through an encoder, in uneven blocks; the patch applied.
    fn run(mut enc: Box<dyn BlockEncoder>, channels: u16, frames: u64) -> Vec<u8> {
        let ch = usize::from(channels);
        let pcm: Vec<f32> = (0..frames as usize * ch)
            .map(|i| ((i / ch) as f32 * 0.05).sin() * 0.5)
            .collect();
        let mut out = Vec::new();
        for (k, part) in pcm.chunks(3001 * ch).enumerate() {
            // Alternate block sizes, as decoders hand them over.
            let (a, b) = part.split_at((part.len() / ch / (1 + k % 3)) * ch);
            enc.encode(a, &mut out).expect("encode");
            enc.encode(b, &mut out).expect("encode");
        }
        if let Some(p) = enc.finish(&mut out).expect("finish") {
            let at = p.offset as usize;
            out[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
        }
        out
    }

    /// The tag written up front on a stream is LAME's own tag (patched in at the end
    /// of a seekable run of the same input) except for the music CRC, which needs the
    /// audio; and the audio after it is the same.
    #[test]
    fn stream_tag_is_lames_tag_written_before_the_audio() {
        let cases: &[(u32, u16, u32, &[u64])] = &[
            (
                44_100,
                2,
                128,
                &[1, 575, 576, 577, 1151, 1152, 1153, 44_100 * 3 + 17, 600_000],
            ),
            (48_000, 2, 320, &[1000, 48_000 * 2 + 5]),
            (32_000, 1, 64, &[7, 32_000 + 1]),
            (24_000, 2, 64, &[576 * 9, 24_000 * 2 + 288]),
            (22_050, 1, 32, &[1, 22_050 * 2 + 3, 300_000]),
            (16_000, 1, 32, &[16_000 * 3 + 1]),
            (8_000, 1, 32, &[1, 8_000 * 5 + 99]),
            (8_000, 1, 16, &[8_000 * 2]),
            (8_000, 1, 8, &[8_000 * 2 + 1]),
            (8_000, 2, 8, &[8_000 * 2 + 1]),
            (44_100, 1, 32, &[44_100]),
            (48_000, 2, 32, &[48_000]),
            (16_000, 2, 160, &[16_000]),
        ];
        for &(rate, ch, kbps, lens) in cases {
            for &n in lens {
                let p = plan(rate, ch, kbps);
                let lame = run(
                    Box::new(Mp3Encoder::new(&p, true, None).expect("enc")),
                    ch,
                    n,
                );
                let ours = run(
                    Box::new(Mp3Encoder::new(&p, false, Some(n)).expect("enc")),
                    ch,
                    n,
                );
                let what = format!("{rate} Hz {ch} ch {kbps} kbit/s, {n} frames");
                let layout = Layout::new(rate, kbps, n);
                let tag_len = layout.frame_bytes as usize;
                assert_eq!(
                    ours.len() as u64,
                    layout.audio_bytes + layout.frame_bytes,
                    "{what}"
                );
                let Some(TagLayout { x, ext, toc, .. }) = tag_layout(&lame) else {
                    // LAME wrote no tag (it does not fit): ours is the compact one,
                    // followed by the same audio.
                    assert_eq!(ours[tag_len..], lame[..], "{what}: audio");
                    let t = tag_layout(&ours).expect("a compact tag");
                    assert!(!t.toc);
                    let field = |at: usize| {
                        u32::from_be_bytes([ours[at], ours[at + 1], ours[at + 2], ours[at + 3]])
                    };
                    assert_eq!(u64::from(field(t.x + 8)), layout.frames, "{what}");
                    if t.bytes {
                        assert_eq!(field(t.x + 12) as usize, ours.len(), "{what}");
                    }
                    let dp = field(t.ext + EXT_DELAY - 1) & 0xFF_FFFF;
                    assert_eq!(
                        (u64::from(dp >> 12), u64::from(dp & 0xFFF)),
                        (ENC_DELAY, layout.end_padding)
                    );
                    assert_eq!(field(t.ext + EXT_MUSIC_LEN) as usize, ours.len(), "{what}");
                    let crc = u16::from_be_bytes([
                        ours[t.ext + EXT_TAG_CRC],
                        ours[t.ext + EXT_TAG_CRC + 1],
                    ]);
                    assert_eq!(crc, crc16(&ours[..t.ext + EXT_TAG_CRC]), "{what}: tag CRC");
                    // Same frame header as the audio's, unpadded.
                    assert_eq!(ours[..2], lame[..2]);
                    assert_eq!(ours[2], lame[2] & !0x02);
                    continue;
                };
                assert!(toc && x < ext);
                assert_eq!(ours.len(), lame.len(), "{what}: length");
                assert_eq!(ours[tag_len..], lame[tag_len..], "{what}: audio");
                let (mut a, mut b) = (ours[..tag_len].to_vec(), lame[..tag_len].to_vec());
                // Mode extension of the tag frame's header: LAME copies the last
                // frame's; it has no meaning for a frame without audio.
                a[3] &= 0xCF;
                b[3] &= 0xCF;
                for t in [&mut a, &mut b] {
                    t[ext + EXT_MUSIC_CRC..ext + EXT_TAG_CRC + 2].fill(0);
                }
                assert_eq!(a, b, "{what}: tag");
                let crc =
                    u16::from_be_bytes([ours[ext + EXT_TAG_CRC], ours[ext + EXT_TAG_CRC + 1]]);
                assert_eq!(crc, crc16(&ours[..ext + EXT_TAG_CRC]), "{what}: tag CRC");
            }
        }
    }

    #[test]
    fn crc16_known_answer() {
        // CRC-16/ARC check value.
        assert_eq!(crc16(b"123456789"), 0xBB3D);
    }

    #[test]
    fn layout_follows_lame_flush() {
        // 44.1 kHz, 128 kbit/s: 417.96 bytes a frame, the first unpadded.
        let l = Layout::new(44_100, 128, 44_100);
        assert_eq!(l.frames, (576 + 44_100 + l.end_padding) / 1152);
        assert!(l.end_padding >= 576 && l.end_padding < 576 + 1152);
        assert_eq!(l.frame_bytes, 417);
        assert_eq!(Layout::new(44_100, 128, 1).audio_bytes, 417 + 418);
        // 48 kHz, 128 kbit/s: exactly 384 bytes, never padded.
        let l = Layout::new(48_000, 128, 48_000);
        assert_eq!(l.audio_bytes, l.frames * 384);
    }

    #[test]
    fn rates_follow_lame() {
        assert_eq!(choose_rate(32, 1, 8_000), 8_000);
        assert_eq!(choose_rate(32, 1, 16_000), 16_000);
        assert_eq!(choose_rate(64, 2, 44_100), 24_000);
        assert_eq!(choose_rate(128, 2, 44_100), 44_100);
        assert_eq!(choose_rate(32, 1, 44_100), 22_050);
        // br must stay legal: 128 kbit/s cannot be carried at 8 kHz.
        assert_eq!(choose_rate(128, 1, 8_000), 16_000);
        assert_eq!(choose_rate(16, 2, 48_000), 8_000);
    }
}
