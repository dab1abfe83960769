//! Known-answer tests: our G.711 against ffmpeg's `-f alaw` / `-f mulaw`
//! (vectors from `fixtures/make_codec_vectors.sh`).

mod common;

use mediastore_codecs::g711;

use common::{fixture, pcm};

type Enc = fn(&[i16], &mut Vec<u8>);
type Dec = fn(&[u8], &mut Vec<i16>);

const LAWS: [(&str, Enc, Dec); 2] = [
    ("alaw", g711::encode_alaw, g711::decode_alaw),
    ("ulaw", g711::encode_ulaw, g711::decode_ulaw),
];
const INPUTS: [&str; 3] = ["speech", "noise", "square"];

#[test]
fn encode_matches_ffmpeg() {
    for (law, enc, _) in LAWS {
        for input in INPUTS {
            let x = pcm(&format!("{input}_8000.s16"));
            let mut out = Vec::new();
            enc(&x, &mut out);
            let want = fixture(&format!("{input}.{law}"));
            assert_eq!(out.len(), want.len(), "{law} {input}");
            let first_diff = out.iter().zip(&want).position(|(a, b)| a != b);
            assert_eq!(first_diff, None, "{law} {input}: first differing byte");
        }
    }
}

#[test]
fn decode_matches_ffmpeg() {
    for (law, _, dec) in LAWS {
        for input in INPUTS {
            let coded = fixture(&format!("{input}.{law}"));
            let mut out = Vec::new();
            dec(&coded, &mut out);
            assert_eq!(out, pcm(&format!("{input}.{law}.dec.s16")), "{law} {input}");
        }
    }
}

#[test]
fn streaming_any_block_size_matches_one_call() {
    let x = pcm("speech_8000.s16");
    for (law, enc, dec) in LAWS {
        let mut whole = Vec::new();
        enc(&x, &mut whole);
        let mut whole_dec = Vec::new();
        dec(&whole, &mut whole_dec);
        for block in [1, 7, 160, 333] {
            let mut out = Vec::new();
            for chunk in x.chunks(block) {
                enc(chunk, &mut out);
            }
            assert_eq!(out, whole, "{law} encode, block {block}");
            let mut pcm_out = Vec::new();
            for chunk in whole.chunks(block) {
                dec(chunk, &mut pcm_out);
            }
            assert_eq!(pcm_out, whole_dec, "{law} decode, block {block}");
        }
    }
}

#[test]
fn all_256_codes_decode_like_ffmpeg_and_round_trip() {
    // ffmpeg's decoded references cover the codes that occur in the vectors;
    // check every code that occurs there agrees, and that every code's level
    // re-encodes to itself (G.711 levels are fixed points of the encoder).
    for (law, enc, dec) in LAWS {
        let codes: Vec<u8> = (0..=255).collect();
        let mut levels = Vec::new();
        dec(&codes, &mut levels);
        let mut seen = [false; 256];
        for input in INPUTS {
            let coded = fixture(&format!("{input}.{law}"));
            let decoded = pcm(&format!("{input}.{law}.dec.s16"));
            for (&c, &v) in coded.iter().zip(&decoded) {
                assert_eq!(levels[usize::from(c)], v, "{law} code {c:#04x}");
                seen[usize::from(c)] = true;
            }
        }
        assert!(
            seen.iter().filter(|&&s| s).count() > 200,
            "{law}: vectors cover few codes"
        );
        let mut back = Vec::new();
        enc(&levels, &mut back);
        for (c, b) in codes.iter().zip(&back) {
            // µ-law has two zeros; 0x7F ("-0") encodes back as 0xFF ("+0").
            let want = if law == "ulaw" && *c == 0x7F {
                0xFF
            } else {
                *c
            };
            assert_eq!(*b, want, "{law} code {c:#04x}");
        }
    }
}

#[test]
fn round_trip_error_is_within_half_a_step() {
    // Exhaustive over all 65536 inputs: the decoded value must be within half
    // of the local quantiser step (plus the 14-bit flooring of the input), once
    // the input is clamped to the law's largest level (overload).
    for s in i16::MIN..=i16::MAX {
        for (law, top) in [("alaw", 32256i32), ("ulaw", 32124)] {
            let d = if law == "alaw" {
                g711::alaw_decode(g711::alaw_encode(s))
            } else {
                g711::ulaw_decode(g711::ulaw_encode(s))
            };
            let clamped = i32::from(s).clamp(-top, top);
            let err = (i32::from(d) - clamped).abs();
            // Step size grows with magnitude: 1/16 of the segment, >= 16.
            let step = (clamped.abs() / 16).clamp(16, 1024);
            assert!(err <= step / 2 + 8, "{law}: {s} -> {d}");
        }
    }
}
