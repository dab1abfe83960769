//! Ogg Vorbis via `vorbis_rs` (aoTuV/Lancer libvorbis built from source).
//!
//! Bitrate mode: VBR at the quality libvorbis maps to `br` (bitrate management
//! off: `vorbis_encode_setup_managed` + `OV_ECTL_RATEMANAGE2_SET NULL`), exactly
//! what ffmpeg's `-c:a libvorbis -b:a` does. Managed ABR (`Abr`) tracks the
//! request within ~3% but codes every packet's residue at all 15 bitrate-ladder
//! levels so the manager can pick one: ~5x the CPU (3 min of 44.1 kHz stereo at
//! 128k: 7.2 s vs 1.5 s). VBR lands below `br` on easy material, like ffmpeg's
//! (30-s fixtures, ours / ffmpeg's reference libvorbis at the same rate: music
//! 128k 124 / 117, music 64k at 22.05 kHz 50 / 48, speech 32k 32 / 31 kbit/s).
//! libvorbis only supports some bitrates per rate and channel count, so the rate
//! is chosen to suit the bitrate and moved if the library refuses.

use std::cell::RefCell;
use std::io::{self, Write};
use std::num::{NonZeroU32, NonZeroU8};
use std::rc::Rc;

use vorbis_rs::{VorbisBitrateManagementStrategy, VorbisEncoder, VorbisEncoderBuilder};

use super::{BlockEncoder, Patch, Plan};
use crate::MediaError;

/// Fixed Ogg stream serial: output must be byte-identical run to run (caching,
/// ETags, ranges), which a random serial would break.
const STREAM_SERIAL: i32 = 0x6d73_7472; // "mstr"

/// Rate suited to a Vorbis bitrate (kbit/s, whole stream).
pub(crate) fn choose_rate(kbps: u32, channels: u16, input: u32) -> u32 {
    let per_ch = kbps / u32::from(channels.max(1));
    let cap = match per_ch {
        0..=15 => 8_000,
        16..=23 => 16_000,
        24..=39 => 22_050,
        40..=55 => 32_000,
        _ => 48_000,
    };
    // Never upsample: the extra band would carry nothing.
    input.min(cap).max(8_000)
}

/// A `Write` whose bytes we can take out between encoder calls.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) struct OggEncoder {
    enc: VorbisEncoder<Shared>,
    sink: Shared,
    channels: usize,
    planar: Vec<Vec<f32>>,
}

fn vorbis_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::encoder(format!("vorbis: {e}"))
}

impl OggEncoder {
    pub(crate) fn new(plan: &Plan) -> Result<Self, MediaError> {
        let rate = NonZeroU32::new(plan.rate).ok_or_else(|| vorbis_err("rate 0"))?;
        let ch = NonZeroU8::new(plan.channels as u8).ok_or_else(|| vorbis_err("no channels"))?;
        let br = NonZeroU32::new(plan.bitrate_kbps.unwrap_or(128) * 1000)
            .ok_or_else(|| vorbis_err("bitrate 0"))?;
        let sink = Shared::default();
        let enc = VorbisEncoderBuilder::new_with_serial(rate, ch, sink.clone(), STREAM_SERIAL)
            .bitrate_management_strategy(VorbisBitrateManagementStrategy::Vbr {
                target_bitrate: br,
            })
            .build()
            .map_err(vorbis_err)?;
        Ok(OggEncoder {
            enc,
            sink,
            channels: usize::from(ch.get()),
            planar: vec![Vec::new(); usize::from(ch.get())],
        })
    }

    fn drain(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        let mut b = self.sink.0.borrow_mut();
        if !b.is_empty() {
            out.write_all(&b)?;
            b.clear();
        }
        Ok(())
    }
}

/// Whether libvorbis accepts this rate/channels/bitrate combination.
pub(crate) fn accepts(rate: u32, channels: u16, kbps: u32) -> bool {
    let plan = Plan {
        format: crate::AudioFormat::Ogg,
        rate,
        channels,
        bitrate_kbps: Some(kbps),
    };
    OggEncoder::new(&plan).is_ok()
}

impl BlockEncoder for OggEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        let ch = self.channels;
        for (c, p) in self.planar.iter_mut().enumerate() {
            p.clear();
            p.extend(pcm.iter().skip(c).step_by(ch));
        }
        // libvorbis slows down on huge blocks; 4096 frames per call is plenty.
        let frames = self.planar[0].len();
        let mut start = 0;
        while start < frames {
            let end = (start + 4096).min(frames);
            let block: Vec<&[f32]> = self.planar.iter().map(|p| &p[start..end]).collect();
            self.enc.encode_audio_block(&block).map_err(vorbis_err)?;
            start = end;
        }
        self.drain(out)
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        let sink = self.sink.clone();
        let OggEncoder { enc, .. } = *self;
        enc.finish().map_err(vorbis_err)?;
        let b = sink.0.borrow();
        out.write_all(&b)?;
        Ok(None)
    }
}
