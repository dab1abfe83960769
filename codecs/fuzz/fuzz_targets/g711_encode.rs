//! G.711 encoders on arbitrary i16 samples: one byte per sample, slice and
//! scalar APIs agree, and the round trip stays within half a quantiser step
//! (after clamping to the law's largest level).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediastore_codecs::g711;

fuzz_target!(|data: &[u8]| {
    let pcm: Vec<i16> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut a = Vec::new();
    g711::encode_alaw(&pcm, &mut a);
    let mut u = Vec::new();
    g711::encode_ulaw(&pcm, &mut u);
    assert_eq!(a.len(), pcm.len());
    assert_eq!(u.len(), pcm.len());
    for ((&s, &ca), &cu) in pcm.iter().zip(&a).zip(&u) {
        assert_eq!(ca, g711::alaw_encode(s));
        assert_eq!(cu, g711::ulaw_encode(s));
        for (decoded, top) in [
            (g711::alaw_decode(ca), 32256),
            (g711::ulaw_decode(cu), 32124),
        ] {
            let clamped = i32::from(s).clamp(-top, top);
            let step = (clamped.abs() / 16).clamp(16, 1024);
            assert!((i32::from(decoded) - clamped).abs() <= step / 2 + 8);
        }
    }
});
