//! `transcode_range` gives exactly the slice of the whole stream conversion, for every
//! constant-rate target, whether it seeks (WAV/G.711 sources to wav/alaw/ulaw, with or
//! without resampling) or converts from the start (g722 target, compressed or G.722
//! sources).

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::fixture;
use mediastore_media::{
    transcode, transcode_range, transcode_range_stats, AudioFormat, MediaError, RangeStats,
    TranscodeOptions,
};

fn whole(src: &Path, hint: Option<&str>, format: AudioFormat) -> Vec<u8> {
    let opts = TranscodeOptions {
        format,
        bitrate_kbps: None,
    };
    let mut out = Vec::new();
    transcode(src, hint, &opts, &mut out, &AtomicBool::new(false)).expect("whole conversion");
    out
}

fn slice(src: &Path, hint: Option<&str>, format: AudioFormat, start: u64, len: u64) -> Vec<u8> {
    slice_stats(src, hint, format, start, len).0
}

fn slice_stats(
    src: &Path,
    hint: Option<&str>,
    format: AudioFormat,
    start: u64,
    len: u64,
) -> (Vec<u8>, RangeStats) {
    let opts = TranscodeOptions {
        format,
        bitrate_kbps: None,
    };
    let mut out = Vec::new();
    let stats = transcode_range_stats(
        src,
        hint,
        &opts,
        start,
        len,
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap_or_else(|e| panic!("{} → {format} [{start}+{len}]: {e}", src.display()));
    (out, stats)
}

/// Windows that cover the header, its edges, frame-unaligned starts, the middle,
/// the last bytes and the whole output.
fn windows(total: u64) -> Vec<(u64, u64)> {
    let mut w = vec![
        (0, total),
        (0, 1),
        (0, 44),
        (0, 45),
        (10, 40),
        (43, 2),
        (44, 1),
        (44, 100),
        (45, 3),
        (101, 999),
        (total / 3, 5000),
        (total / 2 + 1, 7),
        (total / 2, total - total / 2),
        (total - 1, 1),
        (total - 3, 3),
        (total - 4097, 4097),
    ];
    w.retain(|&(s, l)| l > 0 && s + l <= total);
    w
}

/// [`windows`] plus, for a resampled target, starts at every phase of the rate ratio
/// and around the first start that can seek.
fn dense_windows(total: u64) -> Vec<(u64, u64)> {
    let mut w = windows(total);
    // 441/80 (44.1 kHz → 8 kHz) has 80 phases; 2/1 (16 kHz) one.
    for s in (0..200).chain(total / 2 - 100..total / 2 + 100) {
        w.push((s, 1));
        w.push((s, 37));
    }
    for i in 0..60 {
        w.push((total * i / 60 + i, 1000));
    }
    w.retain(|&(s, l)| l > 0 && s + l <= total);
    w
}

fn check(name: &str, hint: Option<&str>, format: AudioFormat, expect_seek: bool) {
    check_windows(name, hint, format, expect_seek, windows);
}

fn check_windows(
    name: &str,
    hint: Option<&str>,
    format: AudioFormat,
    expect_seek: bool,
    windows: fn(u64) -> Vec<(u64, u64)>,
) {
    let src = fixture(name);
    let full = whole(&src, hint, format);
    let total = full.len() as u64;
    assert!(total > 10_000, "{name} → {format}: {total} bytes");
    let mut seeks = 0;
    for (start, len) in windows(total) {
        let (got, stats) = slice_stats(&src, hint, format, start, len);
        let want = &full[start as usize..(start + len) as usize];
        assert!(
            got == want,
            "{name} → {format}: window [{start}, +{len}) differs from the whole conversion"
        );
        // Past the first few hundred frames, every window seeks when seeking is possible.
        if start >= 1000 {
            assert_eq!(
                stats.seeked, expect_seek,
                "{name} → {format} [{start}+{len}]"
            );
        }
        seeks += u32::from(stats.seeked);
    }
    assert_eq!(seeks > 0, expect_seek, "{name} → {format}");
    // Mid-file windows take the fast path exactly when promised.
    let opts = TranscodeOptions {
        format,
        bitrate_kbps: None,
    };
    let mut out = Vec::new();
    let stats = transcode_range_stats(
        &src,
        hint,
        &opts,
        total / 2,
        100,
        &mut out,
        &AtomicBool::new(false),
    )
    .expect("range");
    assert_eq!(stats.seeked, expect_seek, "{name} → {format}: {stats:?}");
}

const CONSTANT_RATE: [AudioFormat; 4] = [
    AudioFormat::Wav,
    AudioFormat::Alaw,
    AudioFormat::Ulaw,
    AudioFormat::G722,
];

#[test]
fn speech8k_wav_every_target() {
    for f in CONSTANT_RATE {
        // 8 kHz: wav/alaw/ulaw need no resampling; g722 (16 kHz, stateful) falls back.
        check("speech8k.wav", None, f, f != AudioFormat::G722);
    }
}

#[test]
fn speech16k_wav_every_target() {
    for f in CONSTANT_RATE {
        // wav keeps 16 kHz; alaw/ulaw resample to 8 kHz and seek too (to an aligned
        // earlier frame, dropping the filter's warm-up); g722 is stateful.
        check_windows(
            "speech16k.wav",
            None,
            f,
            f != AudioFormat::G722,
            dense_windows,
        );
    }
}

#[test]
fn raw_alaw_and_ulaw_sources() {
    for f in CONSTANT_RATE {
        check("speech.al", Some("al"), f, f != AudioFormat::G722);
        check("speech.ul", Some("ul"), f, f != AudioFormat::G722);
    }
}

#[test]
fn g711_and_float_in_wav() {
    for f in CONSTANT_RATE {
        check("speech_ulaw.wav", None, f, f != AudioFormat::G722);
        check("speech_alaw.wav", None, f, f != AudioFormat::G722);
    }
    check("speech_f32.wav", None, AudioFormat::Wav, true);
    check("speech_s24.wav", None, AudioFormat::Wav, true);
}

#[test]
fn stereo_music_to_wav() {
    check("music44k.wav", None, AudioFormat::Wav, true);
    // To 8 kHz mono: mixed and resampled (441/80), still seeks.
    check_windows("music44k.wav", None, AudioFormat::Alaw, true, dense_windows);
    check("music44k.wav", None, AudioFormat::Ulaw, true);
}

#[test]
fn compressed_and_g722_sources_fall_back() {
    check("speech.g722", Some("g722"), AudioFormat::Wav, false);
    check("speech.mp3", None, AudioFormat::Wav, false);
    check("music.flac", None, AudioFormat::Wav, false);
}

#[test]
fn window_past_the_end_is_an_error() {
    let src = fixture("speech8k.wav");
    let total = whole(&src, None, AudioFormat::Alaw).len() as u64;
    let opts = TranscodeOptions {
        format: AudioFormat::Alaw,
        bitrate_kbps: None,
    };
    let cancel = AtomicBool::new(false);
    for (start, len) in [(total - 10, 11), (total, 1), (total + 100, 5)] {
        let mut out = Vec::new();
        let r = transcode_range(&src, None, &opts, start, len, &mut out, &cancel);
        assert!(
            matches!(r, Err(MediaError::Io(_))),
            "[{start}+{len}]: {r:?}"
        );
    }
}

/// Ten minutes of mono 16-bit PCM at `rate` (a deterministic chirp).
fn ten_minutes(path: &Path, rate: u32) {
    let n = rate * 600;
    let mut data = Vec::with_capacity(n as usize * 2 + 44);
    data.extend_from_slice(b"RIFF");
    data.extend_from_slice(&(36 + n * 2).to_le_bytes());
    data.extend_from_slice(b"WAVEfmt ");
    data.extend_from_slice(&16u32.to_le_bytes());
    data.extend_from_slice(&1u16.to_le_bytes());
    data.extend_from_slice(&1u16.to_le_bytes());
    data.extend_from_slice(&rate.to_le_bytes());
    data.extend_from_slice(&(rate * 2).to_le_bytes());
    data.extend_from_slice(&2u16.to_le_bytes());
    data.extend_from_slice(&16u16.to_le_bytes());
    data.extend_from_slice(b"data");
    data.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let t = f64::from(i) / f64::from(rate);
        let s = (0.4 * (2.0 * std::f64::consts::PI * (200.0 + t) * t).sin() * 32767.0) as i16;
        data.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, data).expect("write source");
}

#[test]
fn minute_nine_decodes_under_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("rec.wav");
    ten_minutes(&src, 8000);
    let cancel = AtomicBool::new(false);
    for (format, start) in [
        (AudioFormat::Alaw, 540 * 8000),
        (AudioFormat::Ulaw, 540 * 8000 + 3),
        (AudioFormat::Wav, 44 + 540 * 16000 + 1),
    ] {
        let opts = TranscodeOptions {
            format,
            bitrate_kbps: None,
        };
        let mut out = Vec::new();
        let stats = transcode_range_stats(&src, None, &opts, start, 65_536, &mut out, &cancel)
            .expect("range");
        assert!(stats.seeked, "{format}: {stats:?}");
        assert!(stats.first_frame >= 539 * 8000, "{format}: {stats:?}");
        assert!(stats.input_frames < 60 * 8000, "{format}: {stats:?}");
        assert_eq!(out.len(), 65_536);
        let full = whole(&src, None, format);
        assert!(
            out == full[start as usize..start as usize + 65_536],
            "{format}"
        );
    }
}

#[test]
fn minute_nine_of_16k_resampled_decodes_under_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("rec16k.wav");
    ten_minutes(&src, 16_000);
    let cancel = AtomicBool::new(false);
    for (format, start, len) in [
        (AudioFormat::Alaw, 540 * 8000, 65_536),
        (AudioFormat::Ulaw, 540 * 8000 + 3, 65_536),
        (AudioFormat::Alaw, 540 * 8000 + 1, 1),
        (AudioFormat::Alaw, 600 * 8000 - 65_536, 65_536),
    ] {
        let opts = TranscodeOptions {
            format,
            bitrate_kbps: None,
        };
        let mut out = Vec::new();
        let stats =
            transcode_range_stats(&src, None, &opts, start, len, &mut out, &cancel).expect("range");
        assert!(stats.seeked, "{format}: {stats:?}");
        assert!(
            stats.first_frame >= 2 * (start - 8000),
            "{format}: {stats:?}"
        );
        assert!(stats.input_frames < 60 * 16_000, "{format}: {stats:?}");
        assert_eq!(out.len() as u64, len);
        let full = whole(&src, None, format);
        assert!(
            out == full[start as usize..(start + len) as usize],
            "{format} [{start}+{len}]"
        );
    }
}

#[test]
fn wav_shorter_than_its_header_says() {
    // 2,500 of 40,000 declared frames missing: a whole conversion pads with silence.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("short.wav");
    let mut data = std::fs::read(fixture("speech8k.wav")).expect("fixture");
    data.truncate(data.len() - 5000);
    std::fs::write(&src, data).expect("write");
    for f in [AudioFormat::Wav, AudioFormat::Alaw] {
        check_slices(&src, f);
    }
    // Resampled (16 kHz → 8 kHz): 2,000 of 80,000 declared frames missing.
    let src = dir.path().join("short16k.wav");
    let mut data = std::fs::read(fixture("speech16k.wav")).expect("fixture");
    data.truncate(data.len() - 4000);
    std::fs::write(&src, data).expect("write");
    check_slices(&src, AudioFormat::Alaw);
}

fn check_slices(src: &Path, f: AudioFormat) {
    let full = whole(src, None, f);
    for (start, len) in windows(full.len() as u64) {
        let got = slice(src, None, f, start, len);
        assert!(
            got == full[start as usize..(start + len) as usize],
            "{f}: [{start}+{len}]"
        );
    }
}
