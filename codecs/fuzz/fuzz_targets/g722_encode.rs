//! G.722 encoder on arbitrary i16 samples: no panic/overflow, exactly
//! ceil(n/2) bytes after `finish`, streaming in fuzzer-chosen block sizes
//! equals one call, and the decoder accepts the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediastore_codecs::g722::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&block, data)) = data.split_first() else {
        return;
    };
    let pcm: Vec<i16> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();

    let mut whole = Vec::new();
    let mut enc = Encoder::new();
    enc.encode(&pcm, &mut whole);
    enc.finish(&mut whole);
    assert_eq!(whole.len(), pcm.len().div_ceil(2));

    let mut enc = Encoder::default();
    let mut parts = Vec::new();
    for chunk in pcm.chunks(usize::from(block) + 1) {
        enc.encode(chunk, &mut parts);
    }
    enc.finish(&mut parts);
    assert_eq!(parts, whole);

    let mut out = Vec::new();
    Decoder::new().decode(&whole, &mut out);
    assert_eq!(out.len(), 2 * whole.len());
});
