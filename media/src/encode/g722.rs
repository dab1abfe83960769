//! Raw G.722 (16 kHz mono, 64 kbit/s), via `mediastore-codecs`.
//!
//! G.722 codes sample pairs; an odd sample left at the end of a block is kept
//! for the next one so block boundaries never change the output, and a final
//! odd sample is padded with one zero sample.

use std::io::Write;

use mediastore_codecs::g722;

use super::{to_i16, BlockEncoder, Patch};
use crate::MediaError;

pub(crate) struct G722Encoder {
    enc: g722::Encoder,
    pcm: Vec<i16>,
    carry: Option<i16>,
    bytes: Vec<u8>,
}

impl G722Encoder {
    pub(crate) fn new() -> Self {
        G722Encoder {
            enc: g722::Encoder::new(),
            pcm: Vec::new(),
            carry: None,
            bytes: Vec::new(),
        }
    }
}

impl BlockEncoder for G722Encoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        self.pcm.clear();
        if let Some(c) = self.carry.take() {
            self.pcm.push(c);
        }
        self.pcm.extend(pcm.iter().map(|&s| to_i16(s)));
        if self.pcm.len() % 2 == 1 {
            self.carry = self.pcm.pop();
        }
        self.bytes.clear();
        self.enc.encode(&self.pcm, &mut self.bytes);
        out.write_all(&self.bytes)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        if let Some(c) = self.carry.take() {
            self.bytes.clear();
            self.enc.encode(&[c, 0], &mut self.bytes);
            out.write_all(&self.bytes)?;
        }
        Ok(None)
    }
}
