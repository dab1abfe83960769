//! Probing: format, codec, rate, channels, duration and bitrate from headers,
//! without decoding the audio (MP3s are measured from their Xing/Info tag or a
//! scan of frame headers; constant-rate formats from their size).

use std::fs::File;
use std::path::Path;

use crate::decode::{self, detect, first_audio_track, open_reader};
use crate::format::AudioFormat;
use crate::limits::Limits;
use crate::raw::raw_params;
use crate::{isobmff, mp3scan, MediaError};

/// What a stored audio file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Container/format, as `content_format`.
    pub format: AudioFormat,
    /// Codec short name: `pcm_s16le`, `pcm_alaw`, `mp3`, `vorbis`, `flac`, `aac`, `g722`, ...
    pub codec: String,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Duration, milliseconds (rounded down).
    pub duration_ms: u64,
    /// Bitrate, bits per second (nominal for PCM, average for compressed audio).
    pub bitrate: u32,
    /// Exact length in frames, when the headers state it.
    pub frames: Option<u64>,
}

/// Probes with default [`Limits`].
pub fn probe(path: &Path, hint: Option<&str>) -> Result<MediaInfo, MediaError> {
    probe_with(path, hint, &Limits::default())
}

/// Probes `path`; `hint` is an extension or declared format (needed for raw al/ul/g722).
pub fn probe_with(
    path: &Path,
    hint: Option<&str>,
    limits: &Limits,
) -> Result<MediaInfo, MediaError> {
    let mut file = File::open(path)?;
    let det = detect(&mut file, hint)?;
    let info = match det.format {
        f if f.is_raw() => {
            let (rate, per_byte) = raw_params(f);
            let frames = det.file_len * per_byte;
            let codec = match f {
                AudioFormat::Alaw => "pcm_alaw",
                AudioFormat::Ulaw => "pcm_mulaw",
                _ => "g722",
            };
            info(f, codec, rate, 1, frames, 64_000)
        }
        AudioFormat::Mp3 => {
            let scan = mp3scan::scan(&mut file, det.file_len)?
                .ok_or_else(|| MediaError::malformed("no MPEG audio frames found"))?;
            if scan.frames == 0 {
                return Err(MediaError::malformed("no MPEG audio frames found"));
            }
            let bitrate = avg_bitrate(scan.audio_bytes, scan.frames, scan.sample_rate)
                .unwrap_or(scan.first_bitrate_kbps * 1000);
            info(
                AudioFormat::Mp3,
                "mp3",
                scan.sample_rate,
                scan.channels,
                scan.frames,
                bitrate,
            )
        }
        f => probe_container(path, file, f, det.file_len, limits)?,
    };
    check_limits(&info, limits)?;
    Ok(info)
}

fn info(
    format: AudioFormat,
    codec: &str,
    rate: u32,
    channels: u16,
    frames: u64,
    bitrate: u32,
) -> MediaInfo {
    MediaInfo {
        format,
        codec: codec.to_string(),
        sample_rate: rate,
        channels,
        duration_ms: if rate == 0 {
            0
        } else {
            (u128::from(frames) * 1000 / u128::from(rate)) as u64
        },
        bitrate,
        frames: Some(frames),
    }
}

fn avg_bitrate(bytes: u64, frames: u64, rate: u32) -> Option<u32> {
    if frames == 0 {
        return None;
    }
    let bps = u128::from(bytes) * 8 * u128::from(rate) / u128::from(frames);
    u32::try_from(bps).ok()
}

fn check_limits(info: &MediaInfo, limits: &Limits) -> Result<(), MediaError> {
    if info.sample_rate == 0 || info.channels == 0 {
        return Err(MediaError::malformed("zero sample rate or channel count"));
    }
    if info.sample_rate > limits.max_sample_rate {
        return Err(MediaError::Limit(format!(
            "sample rate {} Hz",
            info.sample_rate
        )));
    }
    if info.channels > limits.max_channels {
        return Err(MediaError::Limit(format!("{} channels", info.channels)));
    }
    if info.duration_ms > limits.max_duration_ms {
        return Err(MediaError::Limit(format!(
            "duration {} ms",
            info.duration_ms
        )));
    }
    Ok(())
}

fn probe_container(
    path: &Path,
    file: File,
    format: AudioFormat,
    file_len: u64,
    limits: &Limits,
) -> Result<MediaInfo, MediaError> {
    let reader = open_reader(file, format)?;
    let track = first_audio_track(reader.as_ref())?;
    let p = &track.codec_params;
    let codec = symphonia::default::get_codecs()
        .get_codec(p.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| "unknown".into());
    let rate = decode::sample_rate(p)?;
    let mut channels = p.channels.map(|c| c.count() as u16).unwrap_or(0);
    let mut frames = p.n_frames;
    // G.711 in WAV: symphonia states no sample width; it is 8 bits by definition.
    let bits = p
        .bits_per_coded_sample
        .or(p.bits_per_sample)
        .or(match codec.as_str() {
            "pcm_alaw" | "pcm_mulaw" => Some(8),
            _ => None,
        });
    drop(reader);

    if let Some(e) = isobmff::edit_trim_of(path, format, file_len, rate)? {
        frames = frames.map(|n| e.apply(n));
    }
    if channels == 0 || frames.is_none() {
        // Rare (no channel layout in the header, or no stated length): decode to find out,
        // still under the duration limit.
        let (_, mut src) = decode::open(path, Some(format.name()), limits)?;
        let mut buf = Vec::new();
        let mut n = 0u64;
        while src.next_block(&mut buf)? {
            channels = src.spec().channels;
            n += (buf.len() / usize::from(channels.max(1))) as u64;
            buf.clear();
            if frames.is_some() {
                break;
            }
        }
        if frames.is_none() {
            frames = Some(n);
        }
    }
    let frames = frames.unwrap_or(0);
    if frames == 0 {
        return Err(MediaError::malformed("no audio frames"));
    }
    let bitrate = match (format, bits) {
        (AudioFormat::Wav, Some(b)) => {
            let nominal = u64::from(rate) * u64::from(channels) * u64::from(b);
            // A header claiming far more audio than the file holds is a truncated file.
            let claimed = u128::from(frames) * u128::from(channels) * u128::from(b) / 8;
            if claimed > u128::from(file_len) + u128::from(file_len / 50) + 4096 {
                return Err(MediaError::malformed(format!(
                    "truncated: header declares {claimed} bytes of audio, file has {file_len}"
                )));
            }
            u32::try_from(nominal).unwrap_or(u32::MAX)
        }
        _ => avg_bitrate(file_len, frames, rate).unwrap_or(0),
    };
    Ok(info(format, &codec, rate, channels, frames, bitrate))
}
