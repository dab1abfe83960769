//! G.722 decoder on arbitrary bytes. Besides "no panic" (fuzz builds keep
//! overflow checks on, so any arithmetic overflow is a finding), checks that
//! decoding in two calls split at a fuzzer-chosen point equals one call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediastore_codecs::g722::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let mut whole = Vec::new();
    Decoder::new().decode(data, &mut whole);
    assert_eq!(whole.len(), 2 * data.len());

    let at = usize::from(split).min(data.len());
    let mut dec = Decoder::default();
    let mut parts = Vec::new();
    dec.decode(&data[..at], &mut parts);
    dec.decode(&data[at..], &mut parts);
    assert_eq!(parts, whole);
});
