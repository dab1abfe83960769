//! Raw G.711 A-law / µ-law (8 kHz mono), via `mediastore-codecs`.

use std::io::Write;

use mediastore_codecs::g711;

use super::{fill_i16, BlockEncoder, Patch};
use crate::MediaError;

pub(crate) struct G711Encoder {
    alaw: bool,
    pcm: Vec<i16>,
    bytes: Vec<u8>,
}

impl G711Encoder {
    pub(crate) fn new(alaw: bool) -> Self {
        G711Encoder {
            alaw,
            pcm: Vec::new(),
            bytes: Vec::new(),
        }
    }
}

impl BlockEncoder for G711Encoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        fill_i16(pcm, &mut self.pcm);
        self.bytes.clear();
        if self.alaw {
            g711::encode_alaw(&self.pcm, &mut self.bytes);
        } else {
            g711::encode_ulaw(&self.pcm, &mut self.bytes);
        }
        out.write_all(&self.bytes)?;
        Ok(())
    }

    fn finish(self: Box<Self>, _out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        Ok(None)
    }
}
