//! Encoders, one module per target, behind one small block interface, and the
//! choice of output rate, channels and bitrate for each target.

use std::io::Write;

use crate::decode::StreamSpec;
use crate::format::AudioFormat;
use crate::MediaError;

mod flac;
mod g711;
mod g722;
mod mp3;
mod mp4;
mod ogg;
mod threaded;
mod wav;

/// Bytes of the WAV header we write before the samples.
pub const WAV_HEADER_LEN: u64 = wav::HEADER_LEN;

/// Lowest and highest `br` accepted, kbit/s.
pub const BITRATE_RANGE_KBPS: std::ops::RangeInclusive<u32> = 8..=320;
/// Default lossy bitrate for telephony-band mono sources (≤ 16 kHz), kbit/s.
pub const DEFAULT_SPEECH_KBPS: u32 = 32;
/// Default lossy bitrate for everything else, kbit/s.
pub const DEFAULT_MUSIC_KBPS: u32 = 128;

/// What the encoder will be fed and produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Target format.
    pub format: AudioFormat,
    /// Encoder input (and output) sample rate.
    pub rate: u32,
    /// Encoder channel count.
    pub channels: u16,
    /// Bitrate for lossy targets, kbit/s.
    pub bitrate_kbps: Option<u32>,
}

/// Bytes to overwrite at `offset` (from the start of our output) once encoding is
/// done, e.g. a LAME Info tag or final FLAC STREAMINFO. Applied only to seekable outputs.
pub(crate) struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// A streaming encoder: interleaved `f32` frames at the plan's rate and channels in,
/// bytes out as they are ready.
pub(crate) trait BlockEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError>;
    fn finish(self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError>;
}

/// Chooses rate, channels and bitrate for `format` given the source.
pub fn plan(
    format: AudioFormat,
    src: StreamSpec,
    bitrate_kbps: Option<u32>,
) -> Result<Plan, MediaError> {
    if let Some(br) = bitrate_kbps {
        if !BITRATE_RANGE_KBPS.contains(&br) {
            return Err(MediaError::Unsupported(format!(
                "bitrate {br} kbit/s (allowed 8-320)"
            )));
        }
    }
    let src_ch = src.channels.max(1);
    let speechy = src.rate <= 16_000 && src_ch == 1;
    let lossy_br = bitrate_kbps.unwrap_or(if speechy {
        DEFAULT_SPEECH_KBPS
    } else {
        DEFAULT_MUSIC_KBPS
    });
    let p = match format {
        AudioFormat::Wav | AudioFormat::Flac => Plan {
            format,
            rate: src.rate,
            channels: src_ch,
            bitrate_kbps: None,
        },
        AudioFormat::Alaw | AudioFormat::Ulaw => Plan {
            format,
            rate: 8_000,
            channels: 1,
            bitrate_kbps: None,
        },
        AudioFormat::G722 => Plan {
            format,
            rate: 16_000,
            channels: 1,
            bitrate_kbps: None,
        },
        AudioFormat::Mp3 => {
            let channels = src_ch.min(2);
            let br = mp3::nearest_bitrate(lossy_br);
            Plan {
                format,
                rate: mp3::choose_rate(br, channels, src.rate),
                channels,
                bitrate_kbps: Some(br),
            }
        }
        AudioFormat::Ogg => {
            let channels = src_ch.min(2);
            let rate = ogg::choose_rate(lossy_br, channels, src.rate)?;
            Plan {
                format,
                rate,
                channels,
                bitrate_kbps: Some(lossy_br),
            }
        }
        AudioFormat::Mp4 => {
            let channels = src_ch.min(2);
            Plan {
                format,
                rate: mp4::choose_rate(lossy_br, channels, src.rate),
                channels,
                bitrate_kbps: Some(lossy_br),
            }
        }
    };
    Ok(p)
}

/// Builds the encoder for `plan`. `seekable` says whether a [`Patch`] can be applied;
/// `expected_frames` is the exact frame count the pipeline will deliver, when known.
/// `overlap` allows running an encoder that dominates the conversion's cost (LAME)
/// on a second thread, when there is a second core; its output is unchanged.
pub(crate) fn make(
    plan: &Plan,
    seekable: bool,
    expected_frames: Option<u64>,
    overlap: bool,
) -> Result<Box<dyn BlockEncoder>, MediaError> {
    let overlap = overlap && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    Ok(match plan.format {
        AudioFormat::Wav => Box::new(wav::WavEncoder::new(plan, expected_frames)),
        AudioFormat::Alaw => Box::new(g711::G711Encoder::new(true)),
        AudioFormat::Ulaw => Box::new(g711::G711Encoder::new(false)),
        AudioFormat::G722 => Box::new(g722::G722Encoder::new()),
        AudioFormat::Mp3 if overlap => Box::new(threaded::Threaded::spawn(mp3::Mp3Encoder::new(
            plan,
            seekable,
            expected_frames,
        )?)?),
        AudioFormat::Mp3 => Box::new(mp3::Mp3Encoder::new(plan, seekable, expected_frames)?),
        AudioFormat::Ogg => Box::new(ogg::OggEncoder::new(plan)?),
        AudioFormat::Flac => Box::new(flac::FlacEncoder::new(plan, expected_frames)?),
        AudioFormat::Mp4 => Box::new(mp4::Mp4Encoder::new(plan)?),
    })
}

/// Whether a plain stream of `format` states its length before the audio (WAV
/// sizes, FLAC STREAMINFO, MP3 Info/LAME frame), or maps bytes to frames (raw
/// G.711/G.722): the pipeline must then deliver exactly the promised frames.
/// Ogg (granule positions per page) and MP4 (written whole at the end) state the
/// length they actually have.
pub(crate) fn states_length_up_front(format: AudioFormat) -> bool {
    format.is_constant_rate() || matches!(format, AudioFormat::Flac | AudioFormat::Mp3)
}

/// `f32` in [-1, 1] to 16-bit PCM, rounding (half away from zero) and clipping as ffmpeg does;
/// NaN gives 0.
///
/// Exactly `(s * 32768.0).round().clamp(-32768.0, 32767.0) as i16`, without `round`: baseline
/// x86-64 has no rounding instruction, so `round` is a libm call per sample (12% of a FLAC
/// conversion). Clamping first to whole bounds does not change the result, the cast truncates,
/// and the fraction left (exact in `f32`) says which way to round.
#[inline]
pub(crate) fn to_i16(s: f32) -> i16 {
    let x = (s * 32768.0).clamp(-32768.0, 32767.0);
    let t = x as i32;
    let frac = x - t as f32;
    (t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)) as i16
}

/// The MPEG-1/2/2.5 sample rates, which are also the ones AAC-LC signals with a frequency index.
pub(crate) const MPEG_RATES: [u32; 9] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

/// The lowest of [`MPEG_RATES`] at or above `min` (48 kHz when none is).
pub(crate) fn mpeg_rate_at_or_above(min: u32) -> u32 {
    MPEG_RATES.into_iter().find(|&r| r >= min).unwrap_or(48_000)
}

/// Converts a block to 16-bit PCM into a reused buffer.
pub(crate) fn fill_i16(pcm: &[f32], buf: &mut Vec<i16>) {
    buf.clear();
    buf.extend(pcm.iter().map(|&s| to_i16(s)));
}

#[cfg(test)]
mod tests {
    use super::to_i16;

    #[test]
    fn to_i16_rounds_and_clips_as_round_then_clamp() {
        let reference = |s: f32| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        // Every 16-bit level and the points half a level either side of it, then a spread of
        // bit patterns (NaNs, infinities, subnormals and huge values included).
        let levels = (-32769i32..=32769).flat_map(|i| {
            let v = i as f32 / 32768.0;
            [
                v,
                v + 0.5 / 32768.0,
                v - 0.5 / 32768.0,
                v + 0.49999 / 32768.0,
            ]
        });
        let patterns = (0..=u32::MAX).step_by(4099).map(f32::from_bits);
        for s in levels.chain(patterns) {
            assert_eq!(to_i16(s), reference(s), "{s:e} ({:#x})", s.to_bits());
        }
    }
}
