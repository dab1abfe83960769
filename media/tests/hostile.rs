//! Corrupt, truncated, empty, lying and mislabelled inputs answer an error
//! (never a panic, hang or runaway allocation), from probe and from transcode.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::fixture;
use mediastore_media::{probe, transcode, AudioFormat, MediaError, TranscodeOptions};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn both_fail(path: &Path, hint: Option<&str>) -> (MediaError, MediaError) {
    let p = probe(path, hint);
    let cancel = AtomicBool::new(false);
    let opts = TranscodeOptions {
        format: AudioFormat::Wav,
        bitrate_kbps: None,
    };
    let mut sink = Vec::new();
    let t = transcode(path, hint, &opts, &mut sink, &cancel);
    let pe = p.expect_err(&format!("probe of {} should fail", path.display()));
    let te = t.expect_err(&format!("transcode of {} should fail", path.display()));
    (pe, te)
}

fn prefix(name: &str, n: usize) -> Vec<u8> {
    let b = std::fs::read(fixture(name)).expect("fixture");
    b[..n.min(b.len())].to_vec()
}

#[test]
fn zero_length_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for hint in [None, Some("wav"), Some("mp3"), Some("al"), Some("g722")] {
        let p = write(dir.path(), "empty", &[]);
        let (pe, _) = both_fail(&p, hint);
        assert!(matches!(pe, MediaError::Malformed(_)), "{pe}");
    }
}

#[test]
fn unknown_content_without_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let p = write(dir.path(), "junk.bin", &junk);
    let (pe, te) = both_fail(&p, None);
    assert!(matches!(pe, MediaError::Unsupported(_)), "{pe}");
    assert!(te.is_client_fault());
    // A container hint does not make garbage decodable.
    for hint in ["mp3", "wav", "flac", "ogg", "m4a"] {
        both_fail(&p, Some(hint));
    }
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Cut inside the headers, or where the headers reveal the cut: probe fails too.
    for (name, n) in [
        ("speech16k.wav", 44),
        ("speech16k.wav", 60_000),
        ("music.flac", 42),
        ("music.mp3", 300),
        ("music.ogg", 3_000),
        ("music.m4a", 1_000),
    ] {
        let p = write(dir.path(), &format!("cut_{n}_{name}"), &prefix(name, n));
        both_fail(&p, None);
    }
    // Cut mid-audio in formats whose headers cannot show it without reading everything:
    // probe (header-only by design) reports the declared length, decoding finds the cut.
    for (name, n) in [("music.flac", 60_000), ("music.m4a", 40_000)] {
        let p = write(dir.path(), &format!("cut_{n}_{name}"), &prefix(name, n));
        let cancel = AtomicBool::new(false);
        let opts = TranscodeOptions {
            format: AudioFormat::Wav,
            bitrate_kbps: None,
        };
        let e = transcode(&p, None, &opts, &mut Vec::new(), &cancel).expect_err(name);
        assert!(matches!(e, MediaError::Malformed(_)), "{name}: {e}");
    }
}

#[test]
fn corrupt_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "music.mp3",
        "music.ogg",
        "music.flac",
        "music.m4a",
        "music44k.wav",
    ] {
        let mut b = std::fs::read(fixture(name)).expect("fixture");
        // Keep the first 64 bytes (the format is still recognised), scramble the rest.
        for (i, x) in b.iter_mut().enumerate().skip(64) {
            *x = (i as u32).wrapping_mul(2_246_822_519).rotate_left(13) as u8;
        }
        let p = write(dir.path(), &format!("corrupt_{name}"), &b);
        let cancel = AtomicBool::new(false);
        let opts = TranscodeOptions {
            format: AudioFormat::Mp3,
            bitrate_kbps: None,
        };
        let r = transcode(&p, None, &opts, &mut Vec::new(), &cancel);
        assert!(r.is_err(), "{name}: scrambled body transcoded");
    }
}

fn wav_header(channels: u16, rate: u32, bits: u16, data_len: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate.wrapping_mul(u32::from(channels * bits / 8))).to_le_bytes());
    h.extend_from_slice(&(channels * bits / 8).to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[test]
fn huge_header_claims() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = vec![0u8; 4096];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "channels.wav",
            [wav_header(64, 8_000, 16, 4096), body.clone()].concat(),
        ),
        (
            "rate.wav",
            [wav_header(1, 4_000_000_000, 16, 4096), body.clone()].concat(),
        ),
        (
            "datalen.wav",
            [wav_header(1, 8_000, 16, 0xFFFF_0000), body.clone()].concat(),
        ),
        (
            "bits.wav",
            [wav_header(1, 8_000, 64, 4096), body.clone()].concat(),
        ),
        // ID3v2 tag claiming 256 MB, then nothing.
        (
            "id3.mp3",
            [b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec(), body.clone()].concat(),
        ),
        // MP4 box claiming 2^62 bytes.
        (
            "box.m4a",
            [
                vec![0, 0, 0, 1],
                b"ftyp".to_vec(),
                (1u64 << 62).to_be_bytes().to_vec(),
                body.clone(),
            ]
            .concat(),
        ),
        // FLAC STREAMINFO with max block size and 8 channels at 655 kHz, no frames.
        (
            "streaminfo.flac",
            [
                b"fLaC\x80\x00\x00\x22".to_vec(),
                vec![0xFF; 34],
                body.clone(),
            ]
            .concat(),
        ),
        // Ogg page with a huge segment table claim.
        (
            "page.ogg",
            [b"OggS\x00\x02".to_vec(), vec![0xFF; 30], body].concat(),
        ),
    ];
    for (name, bytes) in cases {
        let p = write(dir.path(), name, &bytes);
        both_fail(&p, None);
    }
}

#[test]
fn wrong_hints() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A raw hint on a container is refused rather than decoded as noise.
    for hint in ["al", "ulaw", "g722"] {
        let p = write(
            dir.path(),
            "x",
            &std::fs::read(fixture("speech8k.wav")).expect("fixture"),
        );
        let (pe, _) = both_fail(&p, Some(hint));
        assert!(matches!(pe, MediaError::Malformed(_)), "{pe}");
    }
    // A container hint on raw audio cannot make it decodable.
    let p = write(
        dir.path(),
        "y",
        &std::fs::read(fixture("speech.g722")).expect("fixture"),
    );
    both_fail(&p, Some("flac"));
}

#[test]
fn bad_bitrate_and_format() {
    let cancel = AtomicBool::new(false);
    let opts = TranscodeOptions {
        format: AudioFormat::Mp3,
        bitrate_kbps: Some(1000),
    };
    let e = transcode(
        &fixture("speech8k.wav"),
        None,
        &opts,
        &mut Vec::new(),
        &cancel,
    )
    .expect_err("bitrate");
    assert!(matches!(e, MediaError::Unsupported(_)), "{e}");
    assert!(AudioFormat::from_param("aiff").is_none());
}

/// Fuzz finding: a WAVE_FORMAT_EXTENSIBLE header whose channel mask makes
/// symphonia 0.5.5 overflow a shift (`fix_channel_mask`, a panic with overflow
/// checks on). The decode guard must turn it into an error. And a FLAC Vorbis
/// comment claiming 4 GiB, which symphonia would allocate (checked before it does).
#[test]
fn fuzz_regressions_answer_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let regress = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regress");
    for entry in std::fs::read_dir(regress).expect("regress dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        // First byte is the fuzz target's hint selector; these cases use "no hint".
        let p = write(dir.path(), "case", &bytes[1..]);
        let cancel = AtomicBool::new(false);
        let opts = TranscodeOptions {
            format: AudioFormat::Wav,
            bitrate_kbps: None,
        };
        assert!(probe(&p, None).is_err(), "{}", path.display());
        assert!(
            transcode(&p, None, &opts, &mut Vec::new(), &cancel).is_err(),
            "{}",
            path.display()
        );
    }
}
