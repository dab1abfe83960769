//! ITU-T G.711 A-law and µ-law companding.
//!
//! Both laws map a 16-bit linear sample to an 8-bit code made of a sign bit,
//! a 3-bit segment (exponent) and a 4-bit step (mantissa).
//!
//! Decoding uses the reconstruction levels of ITU-T G.711 Tables 1a/1b (A-law)
//! and 2a/2b (µ-law), scaled to 16 bits (the level at the middle of each step).
//!
//! Encoding picks the reconstruction level nearest to the input, working in the
//! 14-bit domain `sample >> 2`. That is what ffmpeg's `pcm_alaw`/`pcm_mulaw`
//! encoders do, and we reproduce their exact decision thresholds (including
//! how negative inputs are floored) so our output is byte-identical to
//! `ffmpeg -f alaw` / `-f mulaw`. The thresholds are computed once at compile
//! time into 8 KiB magnitude -> code tables (one per law), so encoding is a
//! shift, a compare and a lookup.

/// G.711 A-law transmits every even bit inverted (Table 1a, "even bit inversion").
const ALAW_XOR: u8 = 0x55;
/// G.711 µ-law transmits the whole code inverted (Table 2a).
const ULAW_XOR: u8 = 0xFF;
/// Bias added before the µ-law segment search (G.711 Table 2a, 33 in 14-bit units).
const ULAW_BIAS: i32 = 0x84;

/// Number of distinct magnitudes in the 14-bit domain (`|sample| >> 2`).
const MAGNITUDES: usize = 8192;

/// Linear value (16-bit scale) of A-law code `code`.
const fn alaw_level(code: u8) -> i32 {
    let c = code ^ ALAW_XOR;
    let step = (c & 0x0F) as i32;
    let seg = ((c & 0x70) >> 4) as i32;
    // Segment 0 has no implied leading one; the "+1" centres the level in its step.
    let mag = if seg == 0 {
        (2 * step + 1) << 3
    } else {
        (2 * step + 1 + 32) << (seg + 2)
    };
    // A-law: sign bit set (after inversion) means positive.
    if c & 0x80 != 0 {
        mag
    } else {
        -mag
    }
}

/// Linear value (16-bit scale) of µ-law code `code`.
const fn ulaw_level(code: u8) -> i32 {
    let c = code ^ ULAW_XOR;
    let step = (c & 0x0F) as i32;
    let seg = ((c & 0x70) >> 4) as i32;
    let mag = (((step << 3) + ULAW_BIAS) << seg) - ULAW_BIAS;
    // µ-law: sign bit set (after inversion) means negative.
    if c & 0x80 != 0 {
        -mag
    } else {
        mag
    }
}

/// Builds the table `magnitude (14-bit) -> code index 0..=127`, where index `i`
/// is the `i`-th positive level in increasing order.
///
/// Decision threshold between levels `i` and `i + 1` is their midpoint in the
/// 14-bit domain, rounded half up: `(l_i + l_{i+1} + 4) >> 3`.
const fn magnitude_table(is_alaw: bool) -> [u8; MAGNITUDES] {
    let mut table = [0u8; MAGNITUDES];
    let mut m = 0usize;
    let mut i = 0u8;
    while i < 128 {
        let threshold = if i == 127 {
            MAGNITUDES
        } else if is_alaw {
            let a = alaw_level(i ^ 0xD5);
            let b = alaw_level((i + 1) ^ 0xD5);
            ((a + b + 4) >> 3) as usize
        } else {
            let a = ulaw_level(i ^ 0xFF);
            let b = ulaw_level((i + 1) ^ 0xFF);
            ((a + b + 4) >> 3) as usize
        };
        while m < threshold {
            table[m] = i;
            m += 1;
        }
        i += 1;
    }
    table
}

/// Code index (0..=127, increasing magnitude) for each 14-bit magnitude, A-law.
static ALAW_MAG: [u8; MAGNITUDES] = magnitude_table(true);
/// Code index (0..=127, increasing magnitude) for each 14-bit magnitude, µ-law.
static ULAW_MAG: [u8; MAGNITUDES] = magnitude_table(false);

const fn level_table(is_alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut c = 0usize;
    while c < 256 {
        t[c] = if is_alaw {
            alaw_level(c as u8) as i16
        } else {
            ulaw_level(c as u8) as i16
        };
        c += 1;
    }
    t
}

/// Decoded value of every A-law code.
static ALAW_DECODE: [i16; 256] = level_table(true);
/// Decoded value of every µ-law code.
static ULAW_DECODE: [i16; 256] = level_table(false);

/// Splits a sample into (is_negative, 14-bit magnitude index).
///
/// ffmpeg indexes its table with `(sample + 32768) >> 2`, i.e. it floors
/// towards minus infinity. For negative samples that means `-1..=-4` share
/// magnitude 1, `-5..=-8` magnitude 2, and so on; `-32768` is clamped to the
/// largest magnitude. Zero and small positives are magnitude 0.
#[inline(always)]
fn split(sample: i16) -> (bool, usize) {
    let idx = ((i32::from(sample) + 32768) >> 2) as usize; // 0..=16383
    if idx >= MAGNITUDES {
        (false, idx - MAGNITUDES)
    } else {
        // idx 0 would be magnitude 8192, one past the table; ffmpeg maps it
        // to the same code as idx 1.
        (true, (MAGNITUDES - idx).min(MAGNITUDES - 1))
    }
}

/// Encodes one 16-bit linear sample to an A-law byte.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let (neg, mag) = split(sample);
    // Positive codes are `i ^ 0xD5`, negative ones `i ^ 0x55` (sign bit clear
    // before the even-bit inversion).
    let i = ALAW_MAG[mag];
    if neg {
        i ^ ALAW_XOR
    } else {
        i ^ (ALAW_XOR | 0x80)
    }
}

/// Decodes one A-law byte to a 16-bit linear sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Encodes one 16-bit linear sample to a µ-law byte.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let (neg, mag) = split(sample);
    let i = ULAW_MAG[mag];
    if neg {
        i ^ (ULAW_XOR & 0x7F)
    } else {
        i ^ ULAW_XOR
    }
}

/// Decodes one µ-law byte to a 16-bit linear sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Encodes `pcm` to A-law, appending one byte per sample to `out`.
///
/// G.711 is memoryless, so any split of the input into calls gives the same bytes.
pub fn encode_alaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| alaw_encode(s)));
}

/// Decodes A-law bytes, appending one sample per byte to `out`.
pub fn decode_alaw(data: &[u8], out: &mut Vec<i16>) {
    out.extend(data.iter().map(|&c| alaw_decode(c)));
}

/// Encodes `pcm` to µ-law, appending one byte per sample to `out`.
///
/// G.711 is memoryless, so any split of the input into calls gives the same bytes.
pub fn encode_ulaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| ulaw_encode(s)));
}

/// Decodes µ-law bytes, appending one sample per byte to `out`.
pub fn decode_ulaw(data: &[u8], out: &mut Vec<i16>) {
    out.extend(data.iter().map(|&c| ulaw_decode(c)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_levels() {
        // G.711 Table 1/2 end points, 16-bit scale.
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
    }

    #[test]
    fn tables_are_monotonic() {
        for t in [&ALAW_MAG, &ULAW_MAG] {
            assert_eq!(t[0], 0);
            assert_eq!(t[MAGNITUDES - 1], 127);
            assert!(t.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
        }
    }

    #[test]
    fn every_code_is_a_fixed_point() {
        // Re-encoding a decoded level must give the same code back, except
        // µ-law's negative zero (0x7F), which encodes as positive zero.
        for c in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(c)), c, "alaw {c:#04x}");
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw_encode(ulaw_decode(c)), expect, "ulaw {c:#04x}");
        }
    }
}
