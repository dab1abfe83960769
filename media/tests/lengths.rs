//! Converted copies state their length in their own header when written to a plain
//! stream (as the server does), so players show the duration and can seek from the
//! first byte: FLAC STREAMINFO total samples, WAV sizes, the MP3 Info/LAME frame,
//! Ogg granule positions, MP4 durations. Checked by parsing the headers here and by
//! ffprobe (skipped when missing unless `MEDIASTORE_REQUIRE_TOOLS=1`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use common::fixture;
use mediastore_media::{
    plan, probe, transcode, AudioFormat, Resampler, StreamSpec, TranscodeOptions,
};

/// Sources of every input kind with a known length.
const SOURCES: [&str; 8] = [
    "speech8k.wav",
    "speech16k.wav",
    "music44k.wav",
    "music.flac",
    "music.mp3",
    "speech.mp3",
    "music.ogg",
    "music.m4a",
];

const TARGETS: [AudioFormat; 5] = [
    AudioFormat::Wav,
    AudioFormat::Flac,
    AudioFormat::Mp3,
    AudioFormat::Ogg,
    AudioFormat::Mp4,
];

fn have_ffprobe() -> bool {
    let ok = Command::new("ffprobe")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("MEDIASTORE_REQUIRE_TOOLS").map_or(true, |v| v != "1"),
            "ffprobe is required (MEDIASTORE_REQUIRE_TOOLS=1) but missing"
        );
        eprintln!("skipping ffprobe checks: ffprobe is not installed");
    }
    ok
}

/// ffprobe's duration for `path`, in seconds, refusing an estimate from the bitrate
/// (what ffmpeg falls back to when a header states no length).
fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", path.display());
    assert!(
        !err.contains("Estimating duration"),
        "{}: no length in the header: {err}",
        path.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: duration {text:?}", path.display()))
}

/// The conversion of `src` as the server makes it: to a plain stream.
fn streamed(src: &Path, format: AudioFormat, bitrate_kbps: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = TranscodeOptions {
        format,
        bitrate_kbps,
    };
    transcode(src, None, &opts, &mut out, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("{} -> {format}: {e}", src.display()));
    out
}

/// Output frames the header must state: the source's declared length at the output rate.
fn promised(src: &Path, format: AudioFormat, bitrate_kbps: Option<u32>) -> (u32, u64, f64) {
    let info = probe(src, None).expect("probe");
    let frames = info.frames.expect("the fixture declares its length");
    let spec = StreamSpec {
        rate: info.sample_rate,
        channels: info.channels,
        frames: info.frames,
    };
    let p = plan(format, spec, bitrate_kbps).expect("plan");
    let out = Resampler::output_frames_for(frames, info.sample_rate, p.rate);
    (p.rate, out, frames as f64 / f64::from(info.sample_rate))
}

fn be32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Frames the header states, parsed here: FLAC STREAMINFO, WAV data size, MP3
/// Info/LAME frame (frames × samples per frame − delay − padding); `None` for Ogg
/// and MP4, whose lengths are not in a fixed header (left to ffprobe).
fn stated_frames(bytes: &[u8], format: AudioFormat) -> Option<u64> {
    match format {
        AudioFormat::Flac => {
            assert_eq!(&bytes[..4], b"fLaC");
            assert_eq!(bytes[4] & 0x7F, 0, "STREAMINFO first");
            let packed = u64::from_be_bytes(bytes[18..26].try_into().expect("8 bytes"));
            Some(packed & 0xF_FFFF_FFFF)
        }
        AudioFormat::Wav => {
            assert_eq!(&bytes[36..40], b"data");
            let channels = u64::from(u16::from_le_bytes([bytes[22], bytes[23]]));
            let riff = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
            let data = u32::from_le_bytes(bytes[40..44].try_into().expect("4 bytes"));
            assert_eq!(riff as usize, bytes.len() - 8, "RIFF size");
            assert_eq!(data as usize, bytes.len() - 44, "data size");
            Some(u64::from(data) / (2 * channels))
        }
        AudioFormat::Mp3 => {
            let x = (4..40)
                .find(|&i| bytes[i..].starts_with(b"Info"))
                .expect("an Info frame first");
            let flags = be32(bytes, x + 4);
            assert_eq!(flags & 1, 1, "frame count stated");
            let frames = be32(bytes, x + 8);
            // Optional fields in order: bytes (absent only where the frame has no
            // room, 8 kbit/s stereo at 8 kHz), TOC, quality.
            let mut ext = x + 12;
            if flags & 2 != 0 {
                assert_eq!(be32(bytes, ext) as usize, bytes.len(), "byte count");
                ext += 4;
            }
            ext += if flags & 4 != 0 { 100 } else { 0 } + if flags & 8 != 0 { 4 } else { 0 };
            assert_eq!(&bytes[ext..ext + 4], b"LAME");
            let dp = be32(bytes, ext + 20) & 0xFF_FFFF;
            let spf = if bytes[1] & 0x18 == 0x18 { 1152 } else { 576 };
            Some(frames * spf - (dp >> 12) - (dp & 0xFFF))
        }
        _ => None,
    }
}

/// An MP3's Info frame count and samples per frame.
fn mp3_frames(bytes: &[u8], format: AudioFormat) -> Option<(u64, u64)> {
    if format != AudioFormat::Mp3 {
        return None;
    }
    let x = (4..40).find(|&i| bytes[i..].starts_with(b"Info"))?;
    let spf = if bytes[1] & 0x18 == 0x18 { 1152 } else { 576 };
    Some((be32(bytes, x + 8), spf))
}

fn check(src_name: &str, format: AudioFormat, bitrate_kbps: Option<u32>, ffprobe: bool) {
    let src = fixture(src_name);
    let bytes = streamed(&src, format, bitrate_kbps);
    let (rate, frames, src_secs) = promised(&src, format, bitrate_kbps);
    let what = format!("{src_name} -> {format} (br {bitrate_kbps:?})");
    if let Some(stated) = stated_frames(&bytes, format) {
        assert_eq!(stated, frames, "{what}: header states the promised length");
    }
    if ffprobe {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("copy.{}", format.extension()));
        std::fs::write(&path, &bytes).expect("write");
        let secs = ffprobe_duration(&path);
        // ffprobe gives an MP3's container duration as its frame count times the
        // frame length: its decoder drops LAME's delay and padding, its duration
        // does not (LAME's own tag reads the same). That is what the Info frame
        // must make it say; the exact length is checked above.
        let want = match mp3_frames(&bytes, format) {
            Some((frames, spf)) => (frames * spf) as f64 / f64::from(rate),
            None => src_secs,
        };
        assert!(
            (secs - want).abs() <= want * 0.01,
            "{what}: ffprobe says {secs:.4} s, expected {want:.4} s (source {src_secs:.4} s)"
        );
    }
}

#[test]
fn every_target_states_the_sources_length() {
    let ffprobe = have_ffprobe();
    for src in SOURCES {
        for format in TARGETS {
            check(src, format, None, ffprobe);
        }
    }
}

/// Every MP3 frame size: LAME's own tag, the compact one (mono at low rates) and
/// MPEG-1 below 64 kbit/s.
#[test]
fn mp3_at_every_bitrate_states_the_length() {
    let ffprobe = have_ffprobe();
    for src in ["speech8k.wav", "speech16k.wav", "music44k.wav"] {
        for br in [8, 16, 24, 32, 48, 64, 96, 128, 192, 320] {
            let (rate, ..) = promised(&fixture(src), AudioFormat::Mp3, Some(br));
            eprintln!("{src} at {br} kbit/s: {rate} Hz");
            check(src, AudioFormat::Mp3, Some(br), ffprobe);
        }
    }
}
