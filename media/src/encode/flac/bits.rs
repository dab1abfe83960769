//! MSB-first bit writing and the two CRCs of a FLAC frame (RFC 9639 §9.1.8, §9.3).

use symphonia::core::checksum::{Crc16Ansi, Crc8Ccitt};
use symphonia::core::io::Monitor;

/// Appends bits, most significant first, to a byte vector.
pub(super) struct BitWriter {
    pub(super) bytes: Vec<u8>,
    /// Pending bits, right-aligned; fewer than 32 between calls.
    acc: u64,
    n: u32,
}

impl BitWriter {
    pub(super) fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    /// Empties the writer, keeping its buffer.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.acc = 0;
        self.n = 0;
    }

    /// Writes the low `bits` (≤ 32) bits of `value`.
    #[inline]
    pub(super) fn put(&mut self, bits: u32, value: u32) {
        debug_assert!(bits <= 32);
        debug_assert!(bits == 32 || value >> bits == 0);
        self.acc = (self.acc << bits) | u64::from(value);
        self.n += bits;
        if self.n >= 32 {
            self.n -= 32;
            self.bytes
                .extend_from_slice(&((self.acc >> self.n) as u32).to_be_bytes());
        }
    }

    /// Writes a signed value in `bits` (≤ 32) bits, two's complement.
    #[inline]
    pub(super) fn put_signed(&mut self, bits: u32, value: i32) {
        let mask = if bits == 32 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        };
        self.put(bits, value as u32 & mask);
    }

    /// Writes `u` (a folded residual) as a Rice code with parameter `k` (≤ 30): the quotient
    /// in unary (zeros ended by a one), then the `k` low bits.
    #[inline]
    pub(super) fn put_rice(&mut self, k: u32, u: u32) {
        let mut q = u >> k;
        while q >= 32 {
            self.put(32, 0);
            q -= 32;
        }
        // q zeros and the stop bit, then k bits: at most 31 + 1 + 30 bits, in two writes
        // when they do not fit one.
        let low = u & ((1u32 << k) - 1);
        if q + 1 + k <= 32 {
            self.put(q + 1 + k, (1 << k) | low);
        } else {
            self.put(q + 1, 1);
            self.put(k, low);
        }
    }

    /// Pads with zero bits to a byte boundary and writes out what is pending.
    pub(super) fn align(&mut self) {
        let pad = (8 - self.n % 8) % 8;
        self.put(pad, 0);
        while self.n >= 8 {
            self.n -= 8;
            self.bytes.push((self.acc >> self.n) as u8);
        }
    }
}

/// CRC-8, polynomial x^8 + x^2 + x + 1, initial 0 (the frame header's): symphonia's, the one
/// its FLAC reader checks our frames with.
pub(super) fn crc8(data: &[u8]) -> u8 {
    let mut c = Crc8Ccitt::new(0);
    c.process_buf_bytes(data);
    c.crc()
}

/// CRC-16, polynomial x^16 + x^15 + x^2 + 1, initial 0 (the whole frame's), symphonia's too.
pub(super) fn crc16(data: &[u8]) -> u16 {
    let mut c = Crc16Ansi::new(0);
    c.process_buf_bytes(data);
    c.crc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crcs_match_the_standard_check_values() {
        // CRC-8/SMBUS and CRC-16/UMTS (a.k.a. BUYPASS) of "123456789".
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0xFEE8);
    }

    #[test]
    fn bits_come_out_msb_first() {
        let mut w = BitWriter::new();
        w.put(3, 0b101);
        w.put_signed(5, -1);
        w.put(32, 0xDEAD_BEEF);
        w.put_rice(2, 9); // q = 2: 0 0 1, then 01
        w.align();
        assert_eq!(w.bytes, [0b1011_1111, 0xDE, 0xAD, 0xBE, 0xEF, 0b0010_1000]);
        let mut w = BitWriter::new();
        w.put_rice(0, 40); // 40 zeros, then the stop bit
        w.align();
        assert_eq!(w.bytes, [0, 0, 0, 0, 0, 0b1000_0000]);
    }
}
