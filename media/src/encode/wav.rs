//! 16-bit PCM WAV, written as a stream.
//!
//! The header is written by hand rather than with `hound`, whose writer needs
//! `Seek` to fill in sizes at the end: we stream, so sizes come from the exact
//! frame count the pipeline promises (or a patch on seekable outputs).

use std::io::Write;

use super::{fill_i16, BlockEncoder, Patch, Plan};
use crate::MediaError;

/// Length of the canonical RIFF/WAVE header we write.
pub(crate) const HEADER_LEN: u64 = 44;

pub(crate) struct WavEncoder {
    channels: u16,
    rate: u32,
    header_written: bool,
    expected_frames: Option<u64>,
    frames: u64,
    buf: Vec<i16>,
    bytes: Vec<u8>,
}

/// The 44-byte header for `data_len` bytes of 16-bit PCM.
pub(crate) fn header(rate: u32, channels: u16, data_len: u64) -> [u8; 44] {
    // Sizes over 4 GiB cannot be expressed; clamp as other streaming writers do.
    let data = u32::try_from(data_len).unwrap_or(u32::MAX - 36);
    let riff = data.saturating_add(36);
    let block_align = channels * 2;
    let byte_rate = rate * u32::from(block_align);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

impl WavEncoder {
    pub(crate) fn new(plan: &Plan, expected_frames: Option<u64>) -> Self {
        WavEncoder {
            channels: plan.channels,
            rate: plan.rate,
            header_written: false,
            expected_frames,
            frames: 0,
            buf: Vec::new(),
            bytes: Vec::new(),
        }
    }

    fn write_header(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        if !self.header_written {
            // Unknown length: the largest size, which readers treat as "to end of file".
            let data_len = self.expected_frames.map_or(u64::from(u32::MAX - 36), |f| {
                f * u64::from(self.channels) * 2
            });
            out.write_all(&header(self.rate, self.channels, data_len))?;
            self.header_written = true;
        }
        Ok(())
    }
}

impl BlockEncoder for WavEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        self.write_header(out)?;
        fill_i16(pcm, &mut self.buf);
        self.bytes.clear();
        self.bytes.reserve(self.buf.len() * 2);
        for s in &self.buf {
            self.bytes.extend_from_slice(&s.to_le_bytes());
        }
        out.write_all(&self.bytes)?;
        self.frames += (pcm.len() / usize::from(self.channels)) as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        self.write_header(out)?;
        let data_len = self.frames * u64::from(self.channels) * 2;
        Ok(Some(Patch {
            offset: 0,
            bytes: header(self.rate, self.channels, data_len).to_vec(),
        }))
    }
}
