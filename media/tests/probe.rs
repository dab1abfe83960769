//! Probe figures for every fixture.

mod common;

use common::fixture;
use mediastore_media::{probe, AudioFormat};

/// (file, format, codec, rate, channels, duration_ms, bitrate bit/s, bitrate tolerance %)
type Case = (
    &'static str,
    AudioFormat,
    &'static str,
    u32,
    u16,
    u64,
    u32,
    u32,
);

#[test]
fn probe_reports_each_fixture() {
    let cases: &[Case] = &[
        (
            "speech8k.wav",
            AudioFormat::Wav,
            "pcm_s16le",
            8_000,
            1,
            5_000,
            128_000,
            0,
        ),
        (
            "speech16k.wav",
            AudioFormat::Wav,
            "pcm_s16le",
            16_000,
            1,
            5_000,
            256_000,
            0,
        ),
        (
            "speech_u8.wav",
            AudioFormat::Wav,
            "pcm_u8",
            8_000,
            1,
            5_000,
            64_000,
            0,
        ),
        (
            "speech_s24.wav",
            AudioFormat::Wav,
            "pcm_s24le",
            8_000,
            1,
            5_000,
            192_000,
            0,
        ),
        (
            "speech_f32.wav",
            AudioFormat::Wav,
            "pcm_f32le",
            8_000,
            1,
            5_000,
            256_000,
            0,
        ),
        (
            "speech_alaw.wav",
            AudioFormat::Wav,
            "pcm_alaw",
            8_000,
            1,
            5_000,
            64_000,
            0,
        ),
        (
            "speech_ulaw.wav",
            AudioFormat::Wav,
            "pcm_mulaw",
            8_000,
            1,
            5_000,
            64_000,
            0,
        ),
        (
            "music44k.wav",
            AudioFormat::Wav,
            "pcm_s16le",
            44_100,
            2,
            4_500,
            1_411_200,
            0,
        ),
        (
            "music.mp3",
            AudioFormat::Mp3,
            "mp3",
            44_100,
            2,
            4_500,
            128_000,
            3,
        ),
        (
            "speech.mp3",
            AudioFormat::Mp3,
            "mp3",
            8_000,
            1,
            5_000,
            32_000,
            5,
        ),
        (
            "music.ogg",
            AudioFormat::Ogg,
            "vorbis",
            44_100,
            2,
            4_500,
            128_000,
            15,
        ),
        (
            "music.flac",
            AudioFormat::Flac,
            "flac",
            44_100,
            2,
            4_500,
            330_000,
            10,
        ),
        (
            "music.m4a",
            AudioFormat::Mp4,
            "aac",
            44_100,
            2,
            4_500,
            128_000,
            5,
        ),
        (
            "speech.al",
            AudioFormat::Alaw,
            "pcm_alaw",
            8_000,
            1,
            5_000,
            64_000,
            0,
        ),
        (
            "speech.ul",
            AudioFormat::Ulaw,
            "pcm_mulaw",
            8_000,
            1,
            5_000,
            64_000,
            0,
        ),
        (
            "speech.g722",
            AudioFormat::G722,
            "g722",
            16_000,
            1,
            5_000,
            64_000,
            0,
        ),
    ];
    for &(name, format, codec, rate, ch, dur, br, tol) in cases {
        let path = fixture(name);
        let hint = path.extension().and_then(|e| e.to_str());
        let i = probe(&path, hint).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (i.format, i.codec.as_str(), i.sample_rate, i.channels),
            (format, codec, rate, ch),
            "{name}"
        );
        assert!(
            i.duration_ms.abs_diff(dur) <= 1,
            "{name}: duration {} ms",
            i.duration_ms
        );
        assert!(
            u64::from(i.bitrate.abs_diff(br)) * 100 <= u64::from(br) * u64::from(tol),
            "{name}: bitrate {} vs {br}",
            i.bitrate
        );
    }
}

#[test]
fn raw_needs_a_hint_and_declared_formats_work_without_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = dir.path().join("greeting");
    std::fs::copy(fixture("speech.g722"), &bare).expect("copy");
    assert!(probe(&bare, None).is_err(), "raw audio has no header");
    let i = probe(&bare, Some("g722")).expect("declared g722");
    assert_eq!((i.sample_rate, i.duration_ms), (16_000, 5_000));
    // Containers are recognised by content whatever the name says.
    let mislabelled = dir.path().join("song.wav");
    std::fs::copy(fixture("music.mp3"), &mislabelled).expect("copy");
    assert_eq!(
        probe(&mislabelled, Some("wav")).expect("probe").format,
        AudioFormat::Mp3
    );
}
