//! Raw G.722 (16 kHz mono, 64 kbit/s), via `mediastore-codecs`.
//!
//! The codec's encoder holds an odd sample back for the next block, so block boundaries never
//! change the output, and ends the stream as ffmpeg does (a final odd sample paired with itself).

use std::io::Write;

use mediastore_codecs::g722;

use super::{fill_i16, BlockEncoder, Patch};
use crate::MediaError;

pub(crate) struct G722Encoder {
    enc: g722::Encoder,
    pcm: Vec<i16>,
    bytes: Vec<u8>,
}

impl G722Encoder {
    pub(crate) fn new() -> Self {
        G722Encoder {
            enc: g722::Encoder::new(),
            pcm: Vec::new(),
            bytes: Vec::new(),
        }
    }
}

impl BlockEncoder for G722Encoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        fill_i16(pcm, &mut self.pcm);
        self.bytes.clear();
        self.enc.encode(&self.pcm, &mut self.bytes);
        out.write_all(&self.bytes)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        self.bytes.clear();
        self.enc.finish(&mut self.bytes);
        out.write_all(&self.bytes)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::to_i16;
    use super::*;

    /// Odd block lengths and an odd total: the same bytes as the codec's own `encode` + `finish`,
    /// whose ending is the one checked against ffmpeg's vectors.
    #[test]
    fn blocks_and_the_odd_last_sample_end_as_the_codec_does() {
        let pcm: Vec<f32> = (0..1001).map(|i| ((i as f32) * 0.05).sin() * 0.5).collect();
        let mut ours = Vec::new();
        let mut enc: Box<dyn BlockEncoder> = Box::new(G722Encoder::new());
        for block in pcm.chunks(77) {
            enc.encode(block, &mut ours).expect("encode");
        }
        enc.finish(&mut ours).expect("finish");

        let ints: Vec<i16> = pcm.iter().map(|&s| to_i16(s)).collect();
        let mut codec = g722::Encoder::new();
        let mut theirs = Vec::new();
        codec.encode(&ints, &mut theirs);
        codec.finish(&mut theirs);
        assert_eq!(ours.len(), 501);
        assert_eq!(ours, theirs);
    }
}
