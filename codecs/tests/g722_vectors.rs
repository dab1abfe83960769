//! Known-answer tests: our G.722 against ffmpeg's `g722` encoder (no trellis)
//! and decoder (vectors from `fixtures/make_codec_vectors.sh`).

mod common;

use mediastore_codecs::g722::{Decoder, Encoder};

use common::{fixture, pcm};

const INPUTS: [&str; 3] = ["speech", "noise", "square"];

fn encode_all(x: &[i16], block: usize) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    for chunk in x.chunks(block.max(1)) {
        enc.encode(chunk, &mut out);
    }
    enc.finish(&mut out);
    out
}

fn decode_all(data: &[u8], block: usize) -> Vec<i16> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for chunk in data.chunks(block.max(1)) {
        dec.decode(chunk, &mut out);
    }
    out
}

fn assert_same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at {i}: got {:?}, want {:?}",
            &got[i..(i + 4).min(got.len())],
            &want[i..(i + 4).min(want.len())]
        );
    }
}

#[test]
fn encode_matches_ffmpeg() {
    for input in INPUTS {
        let x = pcm(&format!("{input}_16000.s16"));
        let got = encode_all(&x, x.len());
        assert_same(&got, &fixture(&format!("{input}.g722")), input);
    }
}

#[test]
fn decode_matches_ffmpeg() {
    for input in INPUTS {
        let got = decode_all(&fixture(&format!("{input}.g722")), usize::MAX);
        assert_same(&got, &pcm(&format!("{input}.g722.dec.s16")), input);
    }
}

#[test]
fn odd_length_input_matches_ffmpeg() {
    // ffmpeg encodes a final lone sample paired with a copy of itself;
    // Encoder::finish does the same.
    let x = pcm("odd_16000.s16");
    assert_eq!(x.len() % 2, 1);
    let want = fixture("odd.g722");
    for block in [1, 7, 160, 333, x.len()] {
        assert_same(
            &encode_all(&x, block),
            &want,
            &format!("odd, block {block}"),
        );
    }
    // And the choice matters: zero padding would give a different last byte.
    let mut padded = x.clone();
    padded.push(0);
    let zero_padded = encode_all(&padded, padded.len());
    assert_ne!(zero_padded.last(), want.last());
}

#[test]
fn streaming_any_block_size_matches_one_call() {
    for input in INPUTS {
        let x = pcm(&format!("{input}_16000.s16"));
        let whole = encode_all(&x, x.len());
        let whole_dec = decode_all(&whole, whole.len());
        for block in [1, 7, 160, 333] {
            assert_same(
                &encode_all(&x, block),
                &whole,
                &format!("{input} enc {block}"),
            );
            assert_same(
                &decode_all(&whole, block),
                &whole_dec,
                &format!("{input} dec {block}"),
            );
        }
    }
}

#[test]
fn pending_sample_is_carried_not_emitted() {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(&[100], &mut out);
    assert!(out.is_empty());
    assert!(enc.has_pending_sample());
    enc.encode(&[], &mut out);
    assert!(out.is_empty());
    enc.encode(&[200, 300], &mut out);
    assert_eq!(out.len(), 1);
    assert!(enc.has_pending_sample());
    enc.finish(&mut out);
    assert_eq!(out.len(), 2);
    assert!(!enc.has_pending_sample());
    enc.finish(&mut out);
    assert_eq!(out.len(), 2, "finish with nothing pending appends nothing");
}

#[test]
fn round_trip_preserves_speech() {
    // Sanity: encode + decode of speech gives back the input, delayed by the
    // two 24-tap QMFs, with a high SNR. Search the delay rather than hard-code it.
    let x = pcm("speech_16000.s16");
    let y = decode_all(&encode_all(&x, 320), 1000);
    assert_eq!(y.len(), x.len());
    let best = (0..40)
        .map(|delay| {
            let (mut sig, mut err) = (0f64, 0f64);
            for (a, b) in x.iter().zip(&y[delay..]) {
                let (a, b) = (f64::from(*a), f64::from(*b));
                sig += a * a;
                err += (a - b) * (a - b);
            }
            (10.0 * (sig / err.max(1.0)).log10(), delay)
        })
        .fold((f64::MIN, 0), |m, v| if v.0 > m.0 { v } else { m });
    eprintln!("round-trip SNR {:.1} dB at delay {}", best.0, best.1);
    assert!(
        best.0 > 20.0,
        "round-trip SNR {:.1} dB at delay {}",
        best.0,
        best.1
    );
}

#[test]
fn every_byte_value_decodes_without_panic() {
    let data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let out = decode_all(&data, 33);
    assert_eq!(out.len(), 2 * data.len());
}
