//! G.711 decoders on arbitrary bytes: one sample per byte, and every decoded
//! level re-encodes to the code it came from (µ-law "-0", 0x7F, becomes 0xFF).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediastore_codecs::g711;

fuzz_target!(|data: &[u8]| {
    let mut a = Vec::new();
    g711::decode_alaw(data, &mut a);
    let mut u = Vec::new();
    g711::decode_ulaw(data, &mut u);
    assert_eq!(a.len(), data.len());
    assert_eq!(u.len(), data.len());

    let mut back = Vec::new();
    g711::encode_alaw(&a, &mut back);
    assert_eq!(back, data);
    back.clear();
    g711::encode_ulaw(&u, &mut back);
    for (&b, &c) in back.iter().zip(data) {
        assert_eq!(b, if c == 0x7F { 0xFF } else { c });
    }
});
