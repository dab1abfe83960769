//! One FLAC frame (RFC 9639 §9) from a block of 16-bit samples. For stereo, the cheapest of
//! left/right, left/side, side/right and mid/side is chosen by an estimate from fixed-predictor
//! residuals (as ffmpeg does); each subframe is then the smaller of its best fixed predictor
//! (orders 0-4, by the sum of absolute residuals) and linear prediction (`lpc.rs`), with
//! partitioned Rice coding (partition order and parameters from partition sums, estimated as
//! ffmpeg's encoder does); constant and verbatim subframes where they are smaller.

use super::bits::{crc16, crc8, BitWriter};
use super::lpc::{self, Lpc, Predictor};

/// Highest fixed predictor order (the format's).
const MAX_ORDER: usize = 4;
/// Highest Rice partition order searched (ffmpeg's and the reference encoder's default limit).
const MAX_PARTITION_ORDER: u32 = 8;
/// Highest Rice parameter of the 5-bit coding method (31 is the escape code).
const MAX_RICE: u32 = 30;

/// How the two channels of a stereo frame are coded (the header's channel assignment).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stereo {
    Independent,
    LeftSide,
    SideRight,
    MidSide,
}

/// How a subframe is coded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Constant,
    Fixed(usize),
    Verbatim,
}

/// A channel's samples analysed: the cheapest coding and its estimated size.
#[derive(Clone, Copy, Debug)]
struct Fit {
    kind: Kind,
    bits: u64,
}

/// Reused buffers for encoding frames.
pub(super) struct FrameEncoder {
    out: BitWriter,
    /// Mid and side of a stereo block.
    mid: Vec<i32>,
    side: Vec<i32>,
    scratch: Scratch,
}

/// Buffers for coding one subframe.
#[derive(Default)]
struct Scratch {
    /// Folded residuals of the fixed and the LPC candidate.
    fixed: Vec<u32>,
    lpc_res: Vec<u32>,
    /// Partition sums.
    sums: Vec<u64>,
    lpc: Lpc,
}

impl FrameEncoder {
    pub(super) fn new() -> Self {
        FrameEncoder {
            out: BitWriter::new(),
            mid: Vec::new(),
            side: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// The frame `number` of a fixed-blocksize stream at `rate` Hz, from one slice of 16-bit
    /// samples per channel (all the same length, 1..=65535). The bytes stay valid until the next
    /// call.
    pub(super) fn encode(&mut self, number: u32, rate: u32, channels: &[Vec<i32>]) -> &[u8] {
        let n = channels.first().map_or(0, Vec::len);
        self.out.clear();
        if channels.len() == 2 {
            self.mid.clear();
            self.side.clear();
            for (&l, &r) in channels[0].iter().zip(&channels[1]) {
                self.mid.push((l + r) >> 1);
                self.side.push(l - r);
            }
            let (l, r) = (&channels[0], &channels[1]);
            let (fl, fr) = (fit(l, 16), fit(r, 16));
            let (fm, fs) = (fit(&self.mid, 16), fit(&self.side, 17));
            let (m, s) = (&self.mid, &self.side);
            let choices = [
                (Stereo::Independent, [(l, 16, fl), (r, 16, fr)]),
                (Stereo::LeftSide, [(l, 16, fl), (s, 17, fs)]),
                (Stereo::SideRight, [(s, 17, fs), (r, 16, fr)]),
                (Stereo::MidSide, [(m, 16, fm), (s, 17, fs)]),
            ];
            let best = choices
                .into_iter()
                .min_by_key(|(_, pair)| pair[0].2.bits + pair[1].2.bits);
            if let Some((stereo, pair)) = best {
                write_header(&mut self.out, number, rate, n, 2, stereo);
                for (x, bps, f) in pair {
                    write_subframe(&mut self.out, &mut self.scratch, x, bps, f);
                }
                return self.finish();
            }
        }
        write_header(
            &mut self.out,
            number,
            rate,
            n,
            channels.len(),
            Stereo::Independent,
        );
        for x in channels {
            let f = fit(x, 16);
            write_subframe(&mut self.out, &mut self.scratch, x, 16, f);
        }
        self.finish()
    }

    /// Ends the frame: byte alignment and the CRC-16.
    fn finish(&mut self) -> &[u8] {
        self.out.align();
        let crc = crc16(&self.out.bytes);
        self.out.bytes.extend_from_slice(&crc.to_be_bytes());
        &self.out.bytes
    }
}

/// The frame header (§9.1), CRC-8 included.
fn write_header(w: &mut BitWriter, number: u32, rate: u32, n: usize, channels: usize, s: Stereo) {
    let start = w.bytes.len();
    w.put(15, 0b111_1111_1111_1100); // sync code, reserved 0
    w.put(1, 0); // fixed block size
    let (size_code, size_extra) = match n {
        4096 => (0b1100, None),
        1..=256 => (0b0110, Some((8, n - 1))),
        _ => (0b0111, Some((16, n - 1))),
    };
    w.put(4, size_code);
    let (rate_code, rate_extra) = rate_code(rate);
    w.put(4, rate_code);
    let assignment = match s {
        Stereo::Independent => channels as u32 - 1,
        Stereo::LeftSide => 0b1000,
        Stereo::SideRight => 0b1001,
        Stereo::MidSide => 0b1010,
    };
    w.put(4, assignment);
    w.put(3, 0b100); // 16 bits per sample
    w.put(1, 0);
    write_coded_number(w, number);
    if let Some((bits, v)) = size_extra {
        w.put(bits, v as u32);
    }
    if let Some((bits, v)) = rate_extra {
        w.put(bits, v);
    }
    w.align();
    let crc = crc8(&w.bytes[start..]);
    w.put(8, u32::from(crc));
}

/// The header's sample rate code and the value that follows it, if any (§9.1.2).
fn rate_code(rate: u32) -> (u32, Option<(u32, u32)>) {
    match rate {
        88_200 => (0b0001, None),
        176_400 => (0b0010, None),
        192_000 => (0b0011, None),
        8_000 => (0b0100, None),
        16_000 => (0b0101, None),
        22_050 => (0b0110, None),
        24_000 => (0b0111, None),
        32_000 => (0b1000, None),
        44_100 => (0b1001, None),
        48_000 => (0b1010, None),
        96_000 => (0b1011, None),
        r if r % 1000 == 0 && r / 1000 <= 255 => (0b1100, Some((8, r / 1000))),
        r if r <= 65_535 => (0b1101, Some((16, r))),
        r if r % 10 == 0 && r / 10 <= 65_535 => (0b1110, Some((16, r / 10))),
        // Taken from STREAMINFO.
        _ => (0b0000, None),
    }
}

/// The frame number in the UTF-8-like coding of §9.1.5 (31 bits at most).
fn write_coded_number(w: &mut BitWriter, v: u32) {
    if v < 0x80 {
        w.put(8, v);
        return;
    }
    let extra = match v {
        0..=0x7FF => 1,
        0x800..=0xFFFF => 2,
        0x1_0000..=0x1F_FFFF => 3,
        0x20_0000..=0x3FF_FFFF => 4,
        _ => 5,
    };
    // Leading byte: extra+1 one bits, a zero, then the value's top bits.
    let lead_ones = (0xFF00u32 >> (extra + 1)) & 0xFF;
    w.put(8, lead_ones | (v >> (6 * extra)));
    for i in (0..extra).rev() {
        w.put(8, 0x80 | ((v >> (6 * i)) & 0x3F));
    }
}

/// Sums of absolute residuals of orders 0..=4, over the samples every order predicts.
fn residual_sums(x: &[i32]) -> [u64; MAX_ORDER + 1] {
    let mut s = [0u64; MAX_ORDER + 1];
    if x.len() <= MAX_ORDER {
        return s;
    }
    let m = x.len() - MAX_ORDER;
    let (x0, x1, x2, x3, x4) = (&x[4..], &x[3..3 + m], &x[2..2 + m], &x[1..1 + m], &x[..m]);
    // In chunks, so the 32-bit sums (|e| < 2^22 for 17-bit input) cannot overflow.
    for start in (0..m).step_by(512) {
        let end = (start + 512).min(m);
        let mut c = [0u32; MAX_ORDER + 1];
        for i in start..end {
            let (a, b, cc, d, e) = (x0[i], x1[i], x2[i], x3[i], x4[i]);
            c[0] += a.unsigned_abs();
            c[1] += (a - b).unsigned_abs();
            c[2] += (a - 2 * b + cc).unsigned_abs();
            c[3] += (a - 3 * b + 3 * cc - d).unsigned_abs();
            c[4] += (a - 4 * b + 6 * cc - 4 * d + e).unsigned_abs();
        }
        for (t, v) in s.iter_mut().zip(c) {
            *t += u64::from(v);
        }
    }
    s
}

/// The best fixed order for `x` and the subframe's estimated size.
fn fit(x: &[i32], bps: u32) -> Fit {
    let verbatim = Fit {
        kind: Kind::Verbatim,
        bits: 8 + x.len() as u64 * u64::from(bps),
    };
    if is_constant(x) {
        return Fit {
            kind: Kind::Constant,
            bits: 8 + u64::from(bps),
        };
    }
    if x.len() <= MAX_ORDER {
        return verbatim;
    }
    let sums = residual_sums(x);
    let (order, sum) = sums
        .iter()
        .enumerate()
        .min_by_key(|&(_, &s)| s)
        .map_or((0, 0), |(o, &s)| (o, s));
    // The folded residual averages about twice the absolute one.
    let n = (x.len() - MAX_ORDER) as u64;
    let k = rice_parameter(2 * sum, n);
    let bits = 8 + 6 + 4 + order as u64 * u64::from(bps) + rice_bits(2 * sum, n, k);
    if bits < verbatim.bits {
        Fit {
            kind: Kind::Fixed(order),
            bits,
        }
    } else {
        verbatim
    }
}

fn is_constant(x: &[i32]) -> bool {
    x.first().is_some_and(|&v| x.iter().all(|&s| s == v))
}

/// ffmpeg's estimate of the best Rice parameter for `n` folded residuals summing to `sum`.
#[inline]
fn rice_parameter(sum: u64, n: u64) -> u32 {
    if n == 0 || sum <= n >> 1 {
        return 0;
    }
    let mean = (sum - (n >> 1)) / n;
    (63 - mean.max(1).leading_zeros()).min(MAX_RICE)
}

/// Estimated bits of `n` folded residuals summing to `sum`, Rice-coded with parameter `k`.
#[inline]
fn rice_bits(sum: u64, n: u64, k: u32) -> u64 {
    n * u64::from(k + 1) + (sum.saturating_sub(n >> 1) >> k)
}

/// A subframe (§9.2): constant, verbatim, or the smaller of fixed and linear prediction, with
/// partitioned Rice residuals.
fn write_subframe(w: &mut BitWriter, sc: &mut Scratch, x: &[i32], bps: u32, f: Fit) {
    let order = match f.kind {
        Kind::Constant => {
            w.put(8, 0b0000_0000);
            w.put_signed(bps, x[0]);
            return;
        }
        Kind::Verbatim => {
            w.put(8, 0b0000_0010);
            for &s in x {
                w.put_signed(bps, s);
            }
            return;
        }
        Kind::Fixed(order) => order,
    };
    let n = x.len();
    fold_residual(x, order, &mut sc.fixed);
    let (fixed_bits, fixed_p) = plan_residual(&sc.fixed, &mut sc.sums, n, order);
    let fixed_bits = fixed_bits + order as u64 * u64::from(bps);
    let lpc = sc.lpc.predictor(x, bps).and_then(|p| {
        sc.lpc.fold_residual(x, &p, &mut sc.lpc_res);
        let (bits, part) = plan_residual(&sc.lpc_res, &mut sc.sums, n, p.order);
        let bits = bits + p.order as u64 * u64::from(bps + lpc::PRECISION) + 9;
        (bits < fixed_bits).then_some((p, part))
    });
    match lpc {
        Some((p, part)) => {
            write_lpc_header(w, x, bps, &p);
            write_residual(w, &sc.lpc_res, &mut sc.sums, n, p.order, part);
        }
        None => {
            w.put(8, (0b001000 | order as u32) << 1);
            for &s in &x[..order] {
                w.put_signed(bps, s);
            }
            write_residual(w, &sc.fixed, &mut sc.sums, n, order, fixed_p);
        }
    }
}

/// An LPC subframe's header, warm-up samples, precision, shift and coefficients (§9.2.6).
fn write_lpc_header(w: &mut BitWriter, x: &[i32], bps: u32, p: &Predictor) {
    w.put(8, (0b10_0000 | (p.order as u32 - 1)) << 1);
    for &s in &x[..p.order] {
        w.put_signed(bps, s);
    }
    w.put(4, lpc::PRECISION - 1);
    w.put(5, p.shift);
    for &c in &p.coefs[..p.order] {
        w.put_signed(lpc::PRECISION, c);
    }
}

/// A residual folded to unsigned (zigzag: 0, -1, 1, -2, … → 0, 1, 2, 3, …), as Rice codes take it.
#[inline]
pub(super) fn fold(e: i32) -> u32 {
    ((e << 1) ^ (e >> 31)) as u32
}

/// The zigzag-folded residual of fixed order `order` for `x[order..]`.
fn fold_residual(x: &[i32], order: usize, out: &mut Vec<u32>) {
    out.clear();
    let m = x.len() - order;
    match order {
        0 => out.extend(x.iter().map(|&a| fold(a))),
        1 => out.extend(x[1..].iter().zip(&x[..m]).map(|(&a, &b)| fold(a - b))),
        2 => out.extend((0..m).map(|i| fold(x[i + 2] - 2 * x[i + 1] + x[i]))),
        3 => out.extend((0..m).map(|i| fold(x[i + 3] - 3 * x[i + 2] + 3 * x[i + 1] - x[i]))),
        _ => out.extend(
            (0..m).map(|i| fold(x[i + 4] - 4 * x[i + 3] + 6 * x[i + 2] - 4 * x[i + 1] + x[i])),
        ),
    }
}

/// The finest partition order the block allows for a predictor of order `order`: equal
/// partitions, each longer than the warm-up.
fn finest_partition_order(n: usize, order: usize) -> u32 {
    let mut p = 0;
    while p < MAX_PARTITION_ORDER && n % (2 << p) == 0 && (n >> (p + 1)) > order {
        p += 1;
    }
    p
}

/// Sums of `folded` over the partitions of order `p` (the first one short of the warm-up).
fn partition_sums(folded: &[u32], n: usize, order: usize, p: u32, sums: &mut Vec<u64>) {
    sums.clear();
    let len = n >> p;
    let mut pos = 0;
    for i in 0..1usize << p {
        let end = (i + 1) * len - order;
        sums.push(folded[pos..end].iter().map(|&u| u64::from(u)).sum());
        pos = end;
    }
}

/// The partition order (§9.2.7) with the smallest estimated size, and that size in bits:
/// partition sums at the finest order, merged pairwise for each coarser one.
fn plan_residual(folded: &[u32], sums: &mut Vec<u64>, n: usize, order: usize) -> (u64, u32) {
    let max_p = finest_partition_order(n, order);
    partition_sums(folded, n, order, max_p, sums);
    let mut best = (u64::MAX, 0u32);
    for p in (0..=max_p).rev() {
        let len = (n >> p) as u64;
        let bits: u64 = sums
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let count = if i == 0 { len - order as u64 } else { len };
                5 + rice_bits(s, count, rice_parameter(s, count))
            })
            .sum();
        if bits <= best.0 {
            best = (bits, p);
        }
        if p > 0 {
            for i in 0..sums.len() / 2 {
                sums[i] = sums[2 * i] + sums[2 * i + 1];
            }
            sums.truncate(sums.len() / 2);
        }
    }
    (best.0 + 6, best.1)
}

/// The residual section (§9.2.7) at partition order `p`: one Rice parameter per partition.
fn write_residual(
    w: &mut BitWriter,
    folded: &[u32],
    sums: &mut Vec<u64>,
    n: usize,
    order: usize,
    p: u32,
) {
    partition_sums(folded, n, order, p, sums);
    let count = |i: usize| (n >> p) - if i == 0 { order } else { 0 };
    let k = |i: usize, s: u64| rice_parameter(s, count(i) as u64);
    let wide = sums.iter().enumerate().any(|(i, &s)| k(i, s) > 14);
    w.put(2, u32::from(wide));
    w.put(4, p);
    let mut pos = 0;
    for (i, &s) in sums.iter().enumerate() {
        let k = k(i, s);
        w.put(if wide { 5 } else { 4 }, k);
        for &u in &folded[pos..pos + count(i)] {
            w.put_rice(k, u);
        }
        pos += count(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_use_the_utf8_like_coding() {
        for (v, want) in [
            (0u32, vec![0x00]),
            (0x7F, vec![0x7F]),
            (0x80, vec![0xC2, 0x80]),
            (0x7FF, vec![0xDF, 0xBF]),
            (0x800, vec![0xE0, 0xA0, 0x80]),
            (0xFFFF, vec![0xEF, 0xBF, 0xBF]),
            (0x10000, vec![0xF0, 0x90, 0x80, 0x80]),
        ] {
            let mut w = BitWriter::new();
            write_coded_number(&mut w, v);
            w.align();
            assert_eq!(w.bytes, want, "{v:#x}");
        }
    }

    #[test]
    fn residual_sums_pick_the_order_that_predicts_a_polynomial() {
        let ramp: Vec<i32> = (0..100).map(|i| 3 * i - 50).collect();
        let s = residual_sums(&ramp);
        assert_eq!(s[2], 0);
        assert_eq!(fit(&ramp, 16).kind, Kind::Fixed(2));
        let cubic: Vec<i32> = (0..100).map(|i| (i * i * i) / 64 - 2000).collect();
        assert!(matches!(fit(&cubic, 16).kind, Kind::Fixed(3 | 4)));
        assert_eq!(fit(&[5; 64], 16).kind, Kind::Constant);
    }
}
