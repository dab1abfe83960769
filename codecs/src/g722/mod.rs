//! ITU-T G.722 sub-band ADPCM at 64 kbit/s: 16 kHz mono 16-bit PCM, two
//! samples per byte.
//!
//! * `qmf` — the quadrature mirror filters splitting/merging the two bands.
//! * `adpcm` — per-band ADPCM: **the quantisers** (`Band::quantise_low`,
//!   `Band::quantise_high`), inverse quantisers, scale adaptation, predictor.
//! * `tables` — the spec's constant tables.
//!
//! Each byte is `IH << 6 | IL`: the 2-bit higher-band code word in the top
//! bits, the 6-bit lower-band code word below (the bit order ffmpeg, RTP
//! (RFC 3551) and `.g722` files use).
//!
//! Both [`Encoder`] and [`Decoder`] are bit-exact with ffmpeg's `g722` codec
//! (encoder without trellis search).

mod adpcm;
mod qmf;
mod tables;

use adpcm::Band;
use qmf::QmfHistory;

/// Streaming G.722 encoder (64 kbit/s mode).
///
/// Feed 16 kHz mono samples in blocks of any size; every two samples produce
/// one byte. An odd trailing sample is held back and paired with the first
/// sample of the next call, so the output does not depend on how the input is
/// split. At the end of the stream, [`Encoder::finish`] flushes a held sample.
#[derive(Clone, Debug)]
pub struct Encoder {
    qmf: QmfHistory,
    low: Band,
    high: Band,
    /// Odd sample left over from the previous call.
    pending: Option<i16>,
}

impl Encoder {
    /// Creates an encoder in the G.722 reset state.
    pub fn new() -> Self {
        Encoder {
            qmf: QmfHistory::new(),
            low: Band::new_low(),
            high: Band::new_high(),
            pending: None,
        }
    }

    /// Encodes `pcm` (16 kHz mono), appending one byte per two samples to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        let mut pcm = pcm;
        if let Some(first) = self.pending {
            let Some((&second, rest)) = pcm.split_first() else {
                return;
            };
            self.pending = None;
            out.push(self.encode_pair(first, second));
            pcm = rest;
        }
        let pairs = pcm.chunks_exact(2);
        self.pending = pairs.remainder().first().copied();
        out.reserve(pairs.len());
        out.extend(pairs.map(|p| self.encode_pair(p[0], p[1])));
    }

    /// Ends the stream: if an odd sample is held back, encodes it paired with
    /// a copy of itself and appends that byte to `out`.
    ///
    /// Duplicating the last sample (rather than padding with 0) is what ffmpeg
    /// does with an odd-length final frame, so `encode` + `finish` reproduces
    /// `ffmpeg -c:a g722` byte for byte on odd-length input. Calling `finish`
    /// with nothing held back appends nothing. The encoder state is not reset;
    /// any later `encode` continues the same stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(last) = self.pending.take() {
            out.push(self.encode_pair(last, last));
        }
    }

    /// Whether an odd sample is held back waiting for its partner.
    pub fn has_pending_sample(&self) -> bool {
        self.pending.is_some()
    }

    #[inline(always)]
    fn encode_pair(&mut self, x0: i16, x1: i16) -> u8 {
        let (xlow, xhigh) = self.qmf.analyse(x0, x1);
        let il = self.low.quantise_low(xlow);
        let ih = self.high.quantise_high(xhigh);
        let dh = self.high.dequantise_high(ih);
        self.high.update_high(dh, ih);
        self.low.update_low(il);
        (ih << 6) | il
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Streaming G.722 decoder (64 kbit/s mode).
///
/// Every byte decodes to two 16 kHz samples, so there is never a partial unit
/// to carry; the ADPCM and QMF state carry across calls.
#[derive(Clone, Debug)]
pub struct Decoder {
    qmf: QmfHistory,
    low: Band,
    high: Band,
}

impl Decoder {
    /// Creates a decoder in the G.722 reset state.
    pub fn new() -> Self {
        Decoder {
            qmf: QmfHistory::new(),
            low: Band::new_low(),
            high: Band::new_high(),
        }
    }

    /// Decodes `data`, appending two samples per byte to `out`.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<i16>) {
        // Grow once and fill in place: no per-sample capacity checks.
        let start = out.len();
        out.resize(start + 2 * data.len(), 0);
        for (pair, &byte) in out[start..].chunks_exact_mut(2).zip(data) {
            let (a, b) = self.decode_byte(byte);
            pair[0] = a;
            pair[1] = b;
        }
    }

    #[inline(always)]
    fn decode_byte(&mut self, byte: u8) -> (i16, i16) {
        let ih = byte >> 6;
        let il = byte & 63;
        // Blocks INVQBL + RECONS (lower) and INVQAH + RECONS (higher); the
        // reconstructed signals are limited to the 15-bit range (block LIMIT).
        let rlow = (self.low.dequantise_low6(il) + self.low.predicted).clamp(-16384, 16383);
        self.low.update_low(il);
        let dh = self.high.dequantise_high(ih);
        let rhigh = (dh + self.high.predicted).clamp(-16384, 16383);
        self.high.update_high(dh, ih);
        self.qmf.synthesise(rlow, rhigh)
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}
