//! MP3 via LAME (`mp3lame-encoder`, LAME 3.100 built from source), CBR.
//!
//! The output rate follows LAME's own choice for the bitrate (its
//! `optimum_bandwidth`/`optimum_samplefreq` in lame.c, ported below) so that we
//! resample once, with rubato, instead of letting LAME resample again; it is then
//! raised or lowered only as far as the MPEG version's bitrate table requires for
//! `br` to be honoured exactly.
//!
//! On seekable outputs LAME reserves its first frame for the Xing/Info+LAME tag
//! and we patch it at the end, giving decoders the exact (gapless) length. On
//! plain streams no tag is written: an empty reserved frame would be worse.

use std::io::Write;
use std::num::NonZeroU32;

use mp3lame_encoder::{
    Bitrate, Builder, Encoder, FlushGap, InterleavedPcm, Mode, MonoPcm, VbrMode,
};

use super::{BlockEncoder, Patch, Plan};
use crate::MediaError;

/// CBR bitrates LAME accepts, kbit/s.
const BITRATES: [u32; 16] = [
    8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];

/// Nearest bitrate LAME can produce (ties go down).
pub(crate) fn nearest_bitrate(kbps: u32) -> u32 {
    BITRATES
        .iter()
        .copied()
        .min_by_key(|&b| (b.abs_diff(kbps), b))
        .unwrap_or(128)
}

fn lame_bitrate(kbps: u32) -> Bitrate {
    match kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        _ => Bitrate::Kbps320,
    }
}

/// LAME 3.100 `optimum_bandwidth`: lowpass (Hz) for a CBR bitrate.
fn lame_lowpass(kbps: u32) -> u32 {
    #[rustfmt::skip]
    const MAP: [(u32, u32); 17] = [
        (8, 2000), (16, 3700), (24, 3900), (32, 5500), (40, 7000), (48, 7500), (56, 10000),
        (64, 11000), (80, 13500), (96, 15100), (112, 15600), (128, 17000), (160, 17500),
        (192, 18600), (224, 19400), (256, 19700), (320, 20500),
    ];
    MAP.iter()
        .min_by_key(|(b, _)| b.abs_diff(kbps))
        .map_or(17000, |&(_, f)| f)
}

/// LAME 3.100 `optimum_samplefreq`.
fn lame_samplefreq(lowpass: u32, input: u32) -> u32 {
    let mut suggested = match lowpass {
        0..=3970 => 8_000,
        3971..=4510 => 11_025,
        4511..=5420 => 12_000,
        5421..=7230 => 16_000,
        7231..=9970 => 22_050,
        9971..=11220 => 24_000,
        11221..=15250 => 32_000,
        15251..=15960 => 44_100,
        _ => 48_000,
    };
    if lowpass > 15960 {
        suggested = 44_100;
    }
    if input < suggested {
        // LAME picks the valid MPEG rate at or just above the input rate.
        return super::mpeg_rate_at_or_above(input);
    }
    suggested
}

/// Output rate for `kbps` CBR with `channels` channels from an `input`-Hz source.
pub(crate) fn choose_rate(kbps: u32, channels: u16, input: u32) -> u32 {
    let mut lowpass = lame_lowpass(kbps);
    if channels == 1 {
        lowpass = lowpass * 3 / 2; // lame.c: mono gets 1.5x the bandwidth
    }
    let rate = lame_samplefreq(lowpass, input);
    // Bitrate tables: MPEG-2.5 (8-12 kHz) tops at 64, MPEG-2 (16-24 kHz) at 160,
    // MPEG-1 (32-48 kHz) starts at 32.
    match rate {
        r if r <= 12_000 && kbps > 64 => {
            if kbps > 160 {
                32_000
            } else {
                16_000
            }
        }
        r if r <= 24_000 && kbps > 160 => 32_000,
        r if r >= 32_000 && kbps < 32 => 24_000,
        r => r,
    }
}

pub(crate) struct Mp3Encoder {
    enc: Encoder,
    channels: u16,
    tagged: bool,
    buf: Vec<u8>,
}

fn lame_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::encoder(format!("lame: {e}"))
}

impl Mp3Encoder {
    pub(crate) fn new(plan: &Plan, seekable: bool) -> Result<Self, MediaError> {
        let kbps = plan.bitrate_kbps.unwrap_or(128);
        let mut b = Builder::new().ok_or_else(|| lame_err("cannot allocate encoder"))?;
        b.set_num_channels(plan.channels as u8).map_err(lame_err)?;
        b.set_sample_rate(plan.rate).map_err(lame_err)?;
        b.set_output_sample_rate(NonZeroU32::new(plan.rate))
            .map_err(lame_err)?;
        b.set_brate(lame_bitrate(kbps)).map_err(lame_err)?;
        b.set_vbr_mode(VbrMode::Off).map_err(lame_err)?;
        b.set_mode(if plan.channels == 1 {
            Mode::Mono
        } else {
            Mode::JointStereo
        })
        .map_err(lame_err)?;
        b.set_to_write_vbr_tag(seekable).map_err(lame_err)?;
        let enc = b.build().map_err(lame_err)?;
        Ok(Mp3Encoder {
            enc,
            channels: plan.channels,
            tagged: seekable,
            buf: Vec::new(),
        })
    }
}

impl BlockEncoder for Mp3Encoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        // LAME's float entry points take [-1, 1]; one call per block, no copies.
        for part in pcm.chunks(16_384 * usize::from(self.channels)) {
            let frames = part.len() / usize::from(self.channels);
            self.buf.clear();
            self.buf
                .reserve(mp3lame_encoder::max_required_buffer_size(frames));
            if self.channels == 1 {
                self.enc
                    .encode_to_vec(MonoPcm(part), &mut self.buf)
                    .map_err(lame_err)?;
            } else {
                self.enc
                    .encode_to_vec(InterleavedPcm(part), &mut self.buf)
                    .map_err(lame_err)?;
            }
            out.write_all(&self.buf)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        self.buf.clear();
        self.buf
            .reserve(mp3lame_encoder::max_required_buffer_size(0) + 7200);
        self.enc
            .flush_to_vec::<FlushGap>(&mut self.buf)
            .map_err(lame_err)?;
        out.write_all(&self.buf)?;
        if !self.tagged {
            return Ok(None);
        }
        let mut tag = Vec::with_capacity(2048);
        Ok(self.enc.lame_tag_encode_to_vec(&mut tag).map(|_| Patch {
            offset: 0,
            bytes: tag,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_lame() {
        assert_eq!(choose_rate(32, 1, 8_000), 8_000);
        assert_eq!(choose_rate(32, 1, 16_000), 16_000);
        assert_eq!(choose_rate(64, 2, 44_100), 24_000);
        assert_eq!(choose_rate(128, 2, 44_100), 44_100);
        assert_eq!(choose_rate(32, 1, 44_100), 22_050);
        // br must stay legal: 128 kbit/s cannot be carried at 8 kHz.
        assert_eq!(choose_rate(128, 1, 8_000), 16_000);
        assert_eq!(choose_rate(16, 2, 48_000), 8_000);
    }
}
