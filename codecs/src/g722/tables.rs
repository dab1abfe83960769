//! Constant tables of ITU-T G.722 (SB-ADPCM, 64 kbit/s), named after the
//! functional blocks of the spec's "computational details" clauses
//! (`QUANTL`, `INVQAL`, `LOGSCL`, `SCALEL`, ... ) and expressed in the
//! fixed-point scale used by the rest of this module.
//!
//! Scale notes: the spec's step size `DETL`/`DETH` appears here as
//! `scale` with `DET = scale << 2` in the 15-bit domain, so inverse-quantiser
//! outputs are `scale * table >> 10`. The tables below already fold in that
//! scaling; their values are the spec's, reordered to be indexed directly by
//! the transmitted code word.

/// QMF coefficients `h0..h11` (transmit and receive QMF, G.722 Table 11).
/// The 24-tap filter is symmetric, `h(23-i) = h(i)`, so only the first half
/// is stored.
#[rustfmt::skip]
pub(crate) const QMF: [i16; 12] = [
    3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11,
];

/// Lower sub-band 6-bit quantiser decision levels (block `QUANTL`, the
/// `Q6` table), scaled by 8 to the 12-bit magnitude domain: the `n`-th entry
/// is the upper edge of magnitude interval `n`. Interval 29 is open-ended.
#[rustfmt::skip]
pub(crate) const LOW_DECISION: [i32; 29] = [
      35,   72,  110,  150,  190,  233,  276,  323,
     370,  422,  473,  530,  587,  650,  714,  786,
     858,  940, 1023, 1121, 1219, 1339, 1458, 1612,
    1765, 1980, 2195, 2557, 2919,
];

/// Lower sub-band 6-bit inverse quantiser outputs (block `INVQBL`, table
/// `QQ6` with sign from `SIL`), indexed by the 6-bit code word `IL`.
/// Codes 0..=3 are never produced by an encoder; decoders map them to the
/// smallest negative level.
#[rustfmt::skip]
pub(crate) const LOW_INV_QUANT6: [i32; 64] = [
     -17,   -17,   -17,   -17, -3101, -2738, -2376, -2088,
   -1873, -1689, -1535, -1399, -1279, -1170, -1072,  -982,
    -899,  -822,  -750,  -682,  -618,  -558,  -501,  -447,
    -396,  -347,  -300,  -254,  -211,  -170,  -130,   -91,
    3101,  2738,  2376,  2088,  1873,  1689,  1535,  1399,
    1279,  1170,  1072,   982,   899,   822,   750,   682,
     618,   558,   501,   447,   396,   347,   300,   254,
     211,   170,   130,    91,    54,    17,   -54,   -17,
];

/// Lower sub-band 4-bit inverse quantiser (block `INVQAL`, table `QQ4`),
/// indexed by `IL >> 2`. Only this truncated value drives the predictor and the
/// scale adaptation, which is what makes the 56/48 kbit/s modes decodable.
#[rustfmt::skip]
pub(crate) const LOW_INV_QUANT4: [i32; 16] = [
       0, -2557, -1612, -1121,  -786,  -530,  -323,  -150,
    2557,  1612,  1121,   786,   530,   323,   150,     0,
];

/// Lower sub-band log scale factor increments (block `LOGSCL`, table `WL`
/// via the `RIL` mapping), indexed by `IL >> 2`.
#[rustfmt::skip]
pub(crate) const LOW_LOG_STEP: [i32; 16] = [
     -60, 3042, 1198,  538,  334,  172,   58,  -30,
    3042, 1198,  538,  334,  172,   58,  -30,  -60,
];

/// Higher sub-band 2-bit inverse quantiser (block `INVQAH`, table `QQ2` with
/// sign), indexed by the 2-bit code word `IH`.
#[rustfmt::skip]
pub(crate) const HIGH_INV_QUANT: [i32; 4] = [-926, -202, 926, 202];

/// Higher sub-band log scale factor increments (block `LOGSCH`, table `WH`),
/// indexed by `IH & 1` (outer vs inner level, whatever the sign).
#[rustfmt::skip]
pub(crate) const HIGH_LOG_STEP: [i32; 2] = [798, -214];

/// Inverse log2 mantissas (blocks `SCALEL`/`SCALEH`, table `ILB`):
/// `2048 * 2^(i/32)`, rounded, for `i` in `0..32`.
#[rustfmt::skip]
pub(crate) const INV_LOG2: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383,
    2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
    3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_log2_is_2048_times_2_pow_i_over_32() {
        for (i, &v) in INV_LOG2.iter().enumerate() {
            let exact = 2048.0 * 2f64.powf(i as f64 / 32.0);
            assert!(
                (exact - f64::from(v)).abs() <= 1.0,
                "ILB[{i}] = {v}, exact {exact}"
            );
        }
    }

    #[test]
    fn decision_levels_increase() {
        assert!(LOW_DECISION.windows(2).all(|w| w[0] < w[1]));
    }
}
