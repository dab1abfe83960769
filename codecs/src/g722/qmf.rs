//! The 24-tap quadrature mirror filter pair that splits 16 kHz audio into two
//! 8 kHz sub-bands (transmit side) and merges them back (receive side).
//!
//! Both sides need, for each pair of samples, the 24 most recent values split
//! by phase: even-indexed taps are weighted with `h0..h11`, odd-indexed ones
//! with `h11..h0` (the filter is symmetric). We keep the two phases in two
//! fixed 12-element shift registers, so there is no allocation and no
//! buffer wrap-around to handle; the dot products vectorise.

use super::tables::QMF;

/// QMF delay line: the last 24 input values, oldest first, split by phase.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QmfHistory {
    /// The first value of each of the last 12 pairs (even window positions),
    /// oldest first.
    even: [i16; 12],
    /// The second value of each of the last 12 pairs (odd window positions),
    /// oldest first.
    odd: [i16; 12],
}

impl QmfHistory {
    /// All-zero delay line (codec reset state).
    pub(crate) const fn new() -> Self {
        QmfHistory {
            even: [0; 12],
            odd: [0; 12],
        }
    }

    /// Pushes one pair of values (`first` earlier in time) and returns the two
    /// filter accumulators `(odd_sum, even_sum)`:
    /// `odd_sum = Σ w[2i+1]·h(11-i)`, `even_sum = Σ w[2i]·h(i)` over the window.
    #[inline(always)]
    fn push(&mut self, first: i16, second: i16) -> (i32, i32) {
        self.even.copy_within(1.., 0);
        self.even[11] = first;
        self.odd.copy_within(1.., 0);
        self.odd[11] = second;
        let mut even_sum = 0i32;
        let mut odd_sum = 0i32;
        for i in 0..12 {
            even_sum += i32::from(self.even[i]) * i32::from(QMF[i]);
            odd_sum += i32::from(self.odd[i]) * i32::from(QMF[11 - i]);
        }
        (odd_sum, even_sum)
    }

    /// Transmit QMF: consumes two 16 kHz input samples and returns the lower
    /// and higher sub-band samples `(xL, xH)` at 8 kHz.
    #[inline(always)]
    pub(crate) fn analyse(&mut self, x0: i16, x1: i16) -> (i32, i32) {
        let (a, b) = self.push(x0, x1);
        // Sum and difference of the two phases; >> 14 undoes the 2^13 scale of
        // the coefficients and the factor 2 of the sum.
        ((a + b) >> 14, (a - b) >> 14)
    }

    /// Receive QMF: consumes the reconstructed sub-band samples and returns two
    /// 16 kHz output samples, saturated to 16 bits.
    #[inline(always)]
    pub(crate) fn synthesise(&mut self, rlow: i32, rhigh: i32) -> (i16, i16) {
        // rlow, rhigh are limited to [-16384, 16383], so both fit in 16 bits.
        let (a, b) = self.push((rlow + rhigh) as i16, (rlow - rhigh) as i16);
        (sat_i16(a >> 11), sat_i16(b >> 11))
    }
}

#[inline(always)]
fn sat_i16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}
