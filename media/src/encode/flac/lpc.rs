//! Linear prediction for FLAC subframes (RFC 9639 §9.2.6), the way ffmpeg's and the reference
//! encoder's default levels do it: a windowed autocorrelation, Levinson-Durbin for every order up
//! to [`MAX_ORDER`], the order with the smallest expected size, and coefficients quantized to
//! [`PRECISION`] bits with error feedback.
//!
//! [`PRECISION`] is chosen so that the prediction of a 17-bit side channel, 8 taps of 12-bit
//! coefficients, fits 32-bit arithmetic exactly (17 + 12 + 3 = 32, the reference decoder's test
//! for its 32-bit path): the residual here and in every decoder is the same integer.

/// Highest prediction order tried (ffmpeg's default).
pub(super) const MAX_ORDER: usize = 8;
/// Bits of a quantized coefficient, sign included.
pub(super) const PRECISION: u32 = 12;
/// Highest shift the format allows (a 5-bit signed field; negative shifts are not used).
const MAX_SHIFT: i32 = 15;

/// A quantized predictor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Predictor {
    pub order: usize,
    pub shift: u32,
    pub coefs: [i32; MAX_ORDER],
}

/// Reused buffers.
#[derive(Default)]
pub(super) struct Lpc {
    /// The window for blocks of `window.len()` samples.
    window: Vec<f64>,
    windowed: Vec<f64>,
    /// Predictions being accumulated.
    acc: Vec<i32>,
}

impl Lpc {
    /// The best predictor for `x` (a `bps`-bit channel), or `None` when it has no use (silence,
    /// too short a block).
    pub(super) fn predictor(&mut self, x: &[i32], bps: u32) -> Option<Predictor> {
        let n = x.len();
        if n < 4 * MAX_ORDER {
            return None;
        }
        if self.window.len() != n {
            // Welch window (ffmpeg's for its Levinson-Durbin path).
            let c = (n - 1) as f64 / 2.0;
            self.window = (0..n)
                .map(|i| {
                    let t = (i as f64 - c) / (c + 1.0);
                    1.0 - t * t
                })
                .collect();
        }
        self.windowed.clear();
        self.windowed
            .extend(x.iter().zip(&self.window).map(|(&s, &w)| f64::from(s) * w));
        let r = autocorrelation(&self.windowed);
        if r[0] <= 0.0 {
            return None;
        }
        let (coefs, errors) = levinson(&r);
        // Expected bits: the residual's (half a bit per sample per halving of its energy, as
        // Laplacian coding goes) plus the warm-up samples and coefficients.
        let order = (1..=MAX_ORDER)
            .map(|p| {
                let per_sample = (errors[p].max(1e-9) / n as f64).log2() * 0.5;
                let bits =
                    (n - p) as f64 * per_sample.max(0.0) + p as f64 * f64::from(bps + PRECISION);
                (p, bits)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(MAX_ORDER, |(p, _)| p);
        quantize(&coefs[order][..order])
    }

    /// `x`'s residual under `p` from sample `p.order` on, folded to unsigned (zigzag), into `out`.
    pub(super) fn fold_residual(&mut self, x: &[i32], p: &Predictor, out: &mut Vec<u32>) {
        let m = x.len() - p.order;
        self.acc.clear();
        self.acc.resize(m, 0);
        // Tap by tap over the whole block: a loop the compiler vectorizes. Sums stay within
        // 32 bits (see the module doc).
        for (j, &q) in p.coefs[..p.order].iter().enumerate() {
            let past = &x[p.order - 1 - j..p.order - 1 - j + m];
            for (a, &s) in self.acc.iter_mut().zip(past) {
                *a += q * s;
            }
        }
        out.clear();
        out.extend(
            x[p.order..]
                .iter()
                .zip(&self.acc)
                .map(|(&s, &a)| super::frame::fold(s - (a >> p.shift))),
        );
    }
}

/// Autocorrelation at lags 0..=MAX_ORDER, with independent partial sums so the loops vectorize.
fn autocorrelation(y: &[f64]) -> [f64; MAX_ORDER + 1] {
    let mut r = [0.0; MAX_ORDER + 1];
    for (lag, out) in r.iter_mut().enumerate() {
        let (a, b) = (&y[lag..], &y[..y.len() - lag]);
        let mut part = [0.0f64; 4];
        let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (u, v) in ca.zip(cb) {
            for i in 0..4 {
                part[i] += u[i] * v[i];
            }
        }
        let tail: f64 = ta.iter().zip(tb).map(|(u, v)| u * v).sum();
        *out = part.iter().sum::<f64>() + tail;
    }
    r
}

/// Levinson-Durbin: the predictor of each order `p` (`coefs[p][..p]`, `x[n] ≈ Σ c[j]·x[n-1-j]`)
/// and its residual energy (`errors[p]`).
#[allow(clippy::type_complexity)]
fn levinson(r: &[f64; MAX_ORDER + 1]) -> ([[f64; MAX_ORDER]; MAX_ORDER + 1], [f64; MAX_ORDER + 1]) {
    let mut coefs = [[0.0; MAX_ORDER]; MAX_ORDER + 1];
    let mut errors = [r[0]; MAX_ORDER + 1];
    let mut a = [0.0f64; MAX_ORDER];
    let mut err = r[0];
    for p in 1..=MAX_ORDER {
        if err <= 0.0 {
            // A perfect predictor already: higher orders repeat it.
            coefs[p] = a;
            errors[p] = 0.0;
            continue;
        }
        let mut acc = r[p];
        for j in 0..p - 1 {
            acc -= a[j] * r[p - 1 - j];
        }
        let k = acc / err;
        let prev = a;
        a[p - 1] = k;
        for j in 0..p - 1 {
            a[j] = prev[j] - k * prev[p - 2 - j];
        }
        err *= 1.0 - k * k;
        coefs[p] = a;
        errors[p] = err;
    }
    (coefs, errors)
}

/// Coefficients quantized to [`PRECISION`] bits with the largest shift that fits, rounding
/// with error feedback (the reference encoder's method); `None` when they do not fit at all.
fn quantize(c: &[f64]) -> Option<Predictor> {
    let cmax = c.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
    if cmax <= 0.0 || !cmax.is_finite() {
        return None;
    }
    let qmax = (1i32 << (PRECISION - 1)) - 1;
    // The largest shift with cmax·2^shift ≤ qmax.
    let shift = (f64::from(qmax) / cmax).log2().floor() as i32;
    if shift < 0 {
        return None;
    }
    let shift = shift.min(MAX_SHIFT);
    let scale = f64::from(1u32 << shift);
    let mut coefs = [0i32; MAX_ORDER];
    let mut error = 0.0;
    for (q, &v) in coefs.iter_mut().zip(c) {
        error += v * scale;
        let r = (error.round() as i32).clamp(-qmax - 1, qmax);
        error -= f64::from(r);
        *q = r;
    }
    Some(Predictor {
        order: c.len(),
        shift: shift as u32,
        coefs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_is_predicted_almost_exactly() {
        let x: Vec<i32> = (0..4096)
            .map(|i| (10_000.0 * (i as f64 * 0.05).sin()).round() as i32)
            .collect();
        let mut lpc = Lpc::default();
        let p = lpc.predictor(&x, 16).expect("a predictor");
        let mut folded = Vec::new();
        lpc.fold_residual(&x, &p, &mut folded);
        let mean = folded.iter().map(|&u| f64::from(u)).sum::<f64>() / folded.len() as f64;
        assert!(mean < 8.0, "order {} mean folded residual {mean}", p.order);
    }

    #[test]
    fn silence_has_no_predictor() {
        assert_eq!(Lpc::default().predictor(&[0; 4096], 16), None);
    }
}
