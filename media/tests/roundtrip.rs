//! Every target made from the speech and the music fixture decodes back to the
//! same duration (±2%) and correlates with the source.
//!
//! Correlation is measured on mono, at the lower of the two rates, as the best
//! normalised cross-correlation within ±60 ms. Thresholds: 0.995 for lossless and
//! G.711 targets, 0.99 for G.722, 0.98 for lossy (mp3/ogg/mp4) at their default
//! bitrates (measured: ≥ 0.9999, ≥ 0.998, ≥ 0.995 respectively).

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{best_correlation, decode_mono, fixture, resample};
use mediastore_media::{transcode, transcode_file, AudioFormat, TranscodeOptions};

fn threshold(f: AudioFormat) -> f64 {
    match f {
        AudioFormat::Wav | AudioFormat::Flac | AudioFormat::Alaw | AudioFormat::Ulaw => 0.995,
        AudioFormat::G722 => 0.99,
        _ => 0.98,
    }
}

fn check(src_name: &str, target: AudioFormat) {
    let src = fixture(src_name);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join(format!("out.{}", target.extension()));
    let stats = transcode_file(&src, &out, None, None).expect("transcode");
    assert!(stats.bytes_written > 0);

    let (sr, s) = decode_mono(&src, None);
    let (or, o) = decode_mono(&out, Some(target.extension()));
    let src_dur = s.len() as f64 / f64::from(sr);
    let out_dur = o.len() as f64 / f64::from(or);
    assert!(
        (out_dur - src_dur).abs() <= src_dur * 0.02,
        "{src_name} -> {target}: duration {out_dur:.3}s vs {src_dur:.3}s"
    );
    let common = sr.min(or);
    let (a, b) = (resample(&s, sr, common), resample(&o, or, common));
    let c = best_correlation(&a, &b, common as usize * 60 / 1000);
    eprintln!(
        "{src_name} -> {target}: correlation {c:.4}, {} bytes",
        stats.bytes_written
    );
    assert!(
        c >= threshold(target),
        "{src_name} -> {target}: correlation {c:.4}"
    );
}

macro_rules! roundtrip_tests {
    ($($name:ident: $src:expr => $fmt:expr,)*) => {$(
        #[test]
        fn $name() { check($src, $fmt); }
    )*};
}

roundtrip_tests! {
    speech_to_wav: "speech16k.wav" => AudioFormat::Wav,
    speech_to_alaw: "speech16k.wav" => AudioFormat::Alaw,
    speech_to_ulaw: "speech16k.wav" => AudioFormat::Ulaw,
    speech_to_g722: "speech8k.wav" => AudioFormat::G722,
    speech_to_mp3: "speech8k.wav" => AudioFormat::Mp3,
    speech_to_ogg: "speech16k.wav" => AudioFormat::Ogg,
    speech_to_flac: "speech16k.wav" => AudioFormat::Flac,
    speech_to_mp4: "speech16k.wav" => AudioFormat::Mp4,
    music_to_wav: "music44k.wav" => AudioFormat::Wav,
    music_to_alaw: "music44k.wav" => AudioFormat::Alaw,
    music_to_ulaw: "music44k.wav" => AudioFormat::Ulaw,
    music_to_g722: "music44k.wav" => AudioFormat::G722,
    music_to_mp3: "music44k.wav" => AudioFormat::Mp3,
    music_to_ogg: "music44k.wav" => AudioFormat::Ogg,
    music_to_flac: "music44k.wav" => AudioFormat::Flac,
    music_to_mp4: "music44k.wav" => AudioFormat::Mp4,
    mp3_to_ogg: "music.mp3" => AudioFormat::Ogg,
    ogg_to_mp3: "music.ogg" => AudioFormat::Mp3,
    flac_to_mp4: "music.flac" => AudioFormat::Mp4,
    m4a_to_flac: "music.m4a" => AudioFormat::Flac,
    alaw_raw_to_wav: "speech.al" => AudioFormat::Wav,
    g722_raw_to_ulaw: "speech.g722" => AudioFormat::Ulaw,
    ulaw_wav_to_g722: "speech_ulaw.wav" => AudioFormat::G722,
}

/// Bitrate honoured within 10%: file size over duration, on 30-s sources.
#[test]
fn bitrate_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, AudioFormat, u32)] = &[
        ("music44k.wav", AudioFormat::Mp3, 128),
        ("music44k.wav", AudioFormat::Mp3, 64),
        ("music44k.wav", AudioFormat::Mp3, 32),
        ("speech8k.wav", AudioFormat::Mp3, 16),
        ("speech8k.wav", AudioFormat::Mp3, 128),
        ("music44k.wav", AudioFormat::Ogg, 128),
        ("music44k.wav", AudioFormat::Ogg, 64),
        ("speech16k.wav", AudioFormat::Ogg, 32),
        ("speech8k.wav", AudioFormat::Ogg, 16),
        ("speech8k.wav", AudioFormat::Ogg, 24),
        ("music44k.wav", AudioFormat::Ogg, 96),
        ("music44k.wav", AudioFormat::Ogg, 192),
        ("music44k.wav", AudioFormat::Mp4, 128),
        ("music44k.wav", AudioFormat::Mp4, 64),
        ("speech16k.wav", AudioFormat::Mp4, 32),
    ];
    let mut failures = Vec::new();
    for &(src, fmt, br) in cases {
        let out = dir.path().join(format!("{br}.{}", fmt.extension()));
        let long = common::long_wav(src, 6, dir.path());
        transcode_file(&long, &out, None, Some(br)).expect("transcode");
        let bytes = std::fs::metadata(&out).expect("stat").len();
        let (rate, pcm) = decode_mono(&out, None);
        let secs = pcm.len() as f64 / f64::from(rate);
        let kbps = bytes as f64 * 8.0 / secs / 1000.0;
        eprintln!("{src} -> {fmt} @ {br}: {kbps:.1} kbit/s");
        let br_f = f64::from(br);
        if (kbps - br_f).abs() > br_f * 0.10 {
            failures.push(format!("{src} -> {fmt} @ {br}: measured {kbps:.1}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Streamed output of a constant-rate target has exactly the announced length,
/// and two runs give identical bytes (caching and ranges rely on both).
#[test]
fn constant_rate_streams_are_exact_and_deterministic() {
    for fmt in [
        AudioFormat::Wav,
        AudioFormat::Alaw,
        AudioFormat::Ulaw,
        AudioFormat::G722,
    ] {
        for src in ["speech16k.wav", "music44k.wav", "speech.mp3", "music.flac"] {
            let path = fixture(src);
            let info = mediastore_media::probe(&path, None).expect("probe");
            let opts = TranscodeOptions {
                format: fmt,
                bitrate_kbps: None,
            };
            let expected =
                mediastore_media::exact_output_len(&info, &opts).expect("constant-rate length");
            let cancel = AtomicBool::new(false);
            let mut a = Vec::new();
            transcode(&path, None, &opts, &mut a, &cancel).expect("transcode");
            let mut b = Vec::new();
            transcode(&path, None, &opts, &mut b, &cancel).expect("transcode");
            assert_eq!(a.len() as u64, expected, "{src} -> {fmt}");
            assert!(a == b, "{src} -> {fmt}: output differs between runs");
        }
    }
}

#[test]
fn lossy_outputs_are_deterministic() {
    for fmt in [
        AudioFormat::Mp3,
        AudioFormat::Ogg,
        AudioFormat::Flac,
        AudioFormat::Mp4,
    ] {
        let opts = TranscodeOptions {
            format: fmt,
            bitrate_kbps: Some(64),
        };
        let cancel = AtomicBool::new(false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        transcode(&fixture("speech16k.wav"), None, &opts, &mut a, &cancel).expect("transcode");
        transcode(&fixture("speech16k.wav"), None, &opts, &mut b, &cancel).expect("transcode");
        assert!(a == b, "{fmt}");
    }
}

#[test]
fn cancel_stops_the_work() {
    let cancel = AtomicBool::new(true);
    let opts = TranscodeOptions {
        format: AudioFormat::Mp3,
        bitrate_kbps: None,
    };
    let err = transcode(
        &fixture("music44k.wav"),
        None,
        &opts,
        &mut Vec::new(),
        &cancel,
    )
    .expect_err("cancelled");
    assert!(
        matches!(err, mediastore_media::MediaError::Cancelled),
        "{err}"
    );
}

#[test]
fn wav_output_reads_back_with_hound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.wav");
    transcode_file(&fixture("music.mp3"), &out, None, None).expect("transcode");
    let r = hound::WavReader::open(&out).expect("hound opens our wav");
    let spec = r.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (44_100, 2, 16)
    );
    assert_eq!(r.duration(), 198_450);
}

#[test]
fn mp4_is_moov_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.mp4");
    transcode_file(&fixture("speech16k.wav"), &out, None, None).expect("transcode");
    let bytes = std::fs::read(&out).expect("read");
    let ftyp_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(&bytes[ftyp_len + 4..ftyp_len + 8], b"moov");
}

#[test]
fn cli_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = transcode_file(
        &fixture("speech8k.wav"),
        &dir.path().join("x.aiff"),
        None,
        None,
    )
    .expect_err("unknown");
    assert!(
        e.to_string().contains("unknown output format 'aiff'"),
        "{e}"
    );
    let e = transcode_file(
        Path::new("/nonexistent.wav"),
        &dir.path().join("x.wav"),
        None,
        None,
    )
    .expect_err("missing");
    assert!(!e.to_string().contains('\n'));
    assert!(!dir.path().join("x.wav").exists());
}
