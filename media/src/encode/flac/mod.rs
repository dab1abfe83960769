//! FLAC, 16-bit, fixed 4096-frame blocks, streamed frame by frame. The frames are coded by our
//! own encoder (`frame.rs`: stereo decorrelation, fixed and linear prediction, partitioned Rice
//! coding) on the caller's thread, for less CPU than ffmpeg's default level (see media/README.md).
//!
//! STREAMINFO goes out first. It states the total length when the pipeline
//! promises one (the source's declared length, which the pipeline then delivers
//! exactly: players show the duration and can seek from the first byte); frame
//! sizes and MD5 stay "unknown" (allowed by the format: they need the encoded
//! audio). Seekable outputs get it patched with the real figures at the end.

mod bits;
mod frame;
mod lpc;

use std::io::Write;

use super::{to_i16, BlockEncoder, Patch, Plan};
use crate::MediaError;

/// Frames per FLAC block; 4096 is the reference encoder's default for 44.1/48 kHz.
const BLOCK: usize = 4096;
/// The format's channel limit.
const MAX_CHANNELS: usize = 8;

pub(crate) struct FlacEncoder {
    frames: frame::FrameEncoder,
    channels: usize,
    rate: u32,
    /// The block being filled, one buffer per channel (16-bit samples widened to i32).
    pending: Vec<Vec<i32>>,
    /// Blocks written so far (the next frame's number).
    written: u32,
    total: u64,
    min_frame: u32,
    max_frame: u32,
    /// The frame count the pipeline promises, stated in the first STREAMINFO.
    expected: Option<u64>,
    header_written: bool,
}

/// The STREAMINFO metadata block (header included) as FLAC §8.2 lays it out.
/// `total` is the stream's length in frames (0: unknown); frame sizes of 0 mean
/// unknown; the MD5 is left "not computed".
fn streaminfo(rate: u32, channels: usize, min_frame: u32, max_frame: u32, total: u64) -> [u8; 38] {
    let mut b = [0u8; 38];
    b[0] = 0x80; // last metadata block, type 0 = STREAMINFO
    b[1..4].copy_from_slice(&[0, 0, 34]);
    // With fixed-size blocks only the last may be shorter, and it does not count
    // towards the minimum unless it is the only one (§8.2).
    let min_block = if total > 0 && total < BLOCK as u64 {
        total as u16
    } else {
        BLOCK as u16
    };
    b[4..6].copy_from_slice(&min_block.to_be_bytes());
    b[6..8].copy_from_slice(&(BLOCK as u16).to_be_bytes());
    b[8..11].copy_from_slice(&min_frame.to_be_bytes()[1..4]);
    b[11..14].copy_from_slice(&max_frame.to_be_bytes()[1..4]);
    // 20 bits rate, 3 bits channels-1, 5 bits bps-1, 36 bits total samples.
    let packed: u64 = (u64::from(rate) << 44)
        | (((channels as u64) - 1) << 41)
        | (15u64 << 36)
        | (total & 0xF_FFFF_FFFF);
    b[14..22].copy_from_slice(&packed.to_be_bytes());
    // 16 bytes MD5 left zero: "not computed".
    b
}

impl FlacEncoder {
    /// An encoder for `plan`; `expected` is the exact frame count it will be given,
    /// when known, and goes into the STREAMINFO written up front.
    pub(crate) fn new(plan: &Plan, expected: Option<u64>) -> Result<Self, MediaError> {
        let channels = usize::from(plan.channels);
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(MediaError::encoder(format!(
                "flac: {channels} channels (1-{MAX_CHANNELS} allowed)"
            )));
        }
        if plan.rate == 0 || plan.rate >= 1 << 20 {
            return Err(MediaError::encoder(format!(
                "flac: sample rate {} Hz",
                plan.rate
            )));
        }
        Ok(FlacEncoder {
            frames: frame::FrameEncoder::new(),
            channels,
            rate: plan.rate,
            pending: (0..channels).map(|_| Vec::with_capacity(BLOCK)).collect(),
            written: 0,
            total: 0,
            min_frame: u32::MAX,
            max_frame: 0,
            expected,
            header_written: false,
        })
    }

    fn write_header(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        if !self.header_written {
            out.write_all(b"fLaC")?;
            // 36 bits of total samples: longer streams (over 19 days at 96 kHz)
            // say "unknown" rather than a wrapped length.
            let total = self.expected.filter(|&n| n < 1 << 36).unwrap_or(0);
            out.write_all(&streaminfo(self.rate, self.channels, 0, 0, total))?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Encodes and writes the pending block.
    fn flush_block(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        let frames = self.pending[0].len();
        if frames == 0 {
            return Ok(());
        }
        // Fixed-size blocks number frames up to 2^31 (over 16 years at 192 kHz).
        if self.written >= 1 << 31 {
            return Err(MediaError::encoder("flac: stream too long"));
        }
        let bytes = self.frames.encode(self.written, self.rate, &self.pending);
        out.write_all(bytes)?;
        let len = bytes.len() as u32;
        self.min_frame = self.min_frame.min(len);
        self.max_frame = self.max_frame.max(len);
        self.written += 1;
        self.total += frames as u64;
        for ch in &mut self.pending {
            ch.clear();
        }
        Ok(())
    }
}

impl BlockEncoder for FlacEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        self.write_header(out)?;
        let mut rest = pcm;
        while !rest.is_empty() {
            let room = (BLOCK - self.pending[0].len()) * self.channels;
            let (now, later) = rest.split_at(room.min(rest.len()));
            if self.channels == 1 {
                self.pending[0].extend(now.iter().map(|&s| i32::from(to_i16(s))));
            } else {
                for frame in now.chunks_exact(self.channels) {
                    for (ch, &s) in self.pending.iter_mut().zip(frame) {
                        ch.push(i32::from(to_i16(s)));
                    }
                }
            }
            rest = later;
            if self.pending[0].len() == BLOCK {
                self.flush_block(out)?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        self.write_header(out)?;
        self.flush_block(out)?;
        let min_frame = if self.min_frame == u32::MAX {
            0
        } else {
            self.min_frame
        };
        let total = if self.total < 1 << 36 { self.total } else { 0 };
        let si = streaminfo(self.rate, self.channels, min_frame, self.max_frame, total);
        Ok(Some(Patch {
            offset: 4,
            bytes: si.to_vec(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AudioFormat;

    /// (min block, max block, rate, channels, bits, total samples) from a STREAMINFO block.
    fn fields(si: &[u8]) -> (u16, u16, u32, u32, u32, u64) {
        let packed = u64::from_be_bytes(si[14..22].try_into().expect("8 bytes"));
        (
            u16::from_be_bytes([si[4], si[5]]),
            u16::from_be_bytes([si[6], si[7]]),
            (packed >> 44) as u32,
            ((packed >> 41) & 7) as u32 + 1,
            ((packed >> 36) & 31) as u32 + 1,
            packed & 0xF_FFFF_FFFF,
        )
    }

    fn encode(channels: u16, frames: usize, expected: Option<u64>) -> (Vec<u8>, Patch) {
        let plan = Plan {
            format: AudioFormat::Flac,
            rate: 44_100,
            channels,
            bitrate_kbps: None,
        };
        let mut enc: Box<dyn BlockEncoder> =
            Box::new(FlacEncoder::new(&plan, expected).expect("encoder"));
        let pcm: Vec<f32> = (0..frames * usize::from(channels))
            .map(|i| (i as f32 * 0.01).sin() * 0.3)
            .collect();
        let mut out = Vec::new();
        for part in pcm.chunks(1000 * usize::from(channels)) {
            enc.encode(part, &mut out).expect("encode");
        }
        let patch = enc.finish(&mut out).expect("finish").expect("a patch");
        (out, patch)
    }

    #[test]
    fn streaminfo_states_the_promised_length_up_front() {
        for (channels, frames) in [(2u16, 44_100 * 3 + 17), (1, 4096), (1, 100), (2, 8192)] {
            let (out, patch) = encode(channels, frames, Some(frames as u64));
            assert_eq!(&out[..4], b"fLaC");
            let min_block = if frames < BLOCK { frames as u16 } else { 4096 };
            let up_front = fields(&out[4..42]);
            assert_eq!(
                up_front,
                (
                    min_block,
                    4096,
                    44_100,
                    u32::from(channels),
                    16,
                    frames as u64
                ),
                "{channels} ch, {frames} frames"
            );
            // The end-of-stream figures agree on everything but the frame sizes,
            // which only the encoded audio tells.
            assert_eq!(patch.offset, 4);
            assert_eq!(fields(&patch.bytes), up_front);
            assert_eq!(out[12..18], [0; 6], "frame sizes unknown up front");
            assert_ne!(patch.bytes[8..14], [0; 6]);
        }
    }

    #[test]
    fn unknown_length_says_zero_samples() {
        let (out, patch) = encode(1, 5000, None);
        assert_eq!(fields(&out[4..42]).5, 0);
        assert_eq!(fields(&patch.bytes).5, 5000);
    }

    #[test]
    fn lengths_beyond_36_bits_say_unknown() {
        let (out, _) = encode(1, 10, Some(1 << 36));
        assert_eq!(fields(&out[4..42]).5, 0);
    }
}
