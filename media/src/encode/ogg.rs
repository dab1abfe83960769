//! Ogg Vorbis via `vorbis_rs` (aoTuV/Lancer libvorbis built from source).
//!
//! Bitrate mode: true VBR (bitrate management off: `vorbis_encode_setup_managed`,
//! then `OV_ECTL_RATEMANAGE2_SET NULL`), as ffmpeg's `-c:a libvorbis -b:a` does,
//! but with the VBR target calibrated per stream so that `br` is honoured (±10%).
//!
//! Why VBR: managed ABR (`Abr`) tracks the request within ~3% but codes every
//! packet's residue at all 15 bitrate-ladder levels so the manager can pick one:
//! ~5x the CPU (3 min of 44.1 kHz stereo at 128k: 7.2 s vs 1.5 s).
//!
//! Why calibrate: VBR's target only picks a quality from libvorbis's per-rate
//! table of *nominal* bitrates; what that quality spends depends on the
//! material, and on easy material it lands well below `br` (30-s fixtures,
//! uncalibrated: music 64k at 22.05 kHz gave 44 kbit/s, -31%; ffmpeg's own
//! libvorbis 42). So the first [`WINDOW_SECS`] of PCM are buffered and
//! trial-encoded: a trial at the nominal target measures what this material
//! spends (audio pages only, headers apart), the target is corrected on a
//! power-law model (interpolating once trials bracket `br`: the table has steps
//! where the bitrate jumps), and the trial closest to `br` of at most
//! [`MAX_TRIALS`] carries on as the real encoder, stopping at the first within
//! [`KEEP_TOLERANCE`]. Calibration usually costs one extra encode of the window,
//! none when the nominal target already fits. Output starts once the window is
//! full (or at `finish` for shorter inputs, calibrated on what there is; under
//! [`MIN_CALIBRATION_SECS`] the nominal target is used), memory stays bounded by
//! the window, and the choice depends only on the input, so output stays
//! byte-identical run to run.
//!
//! Limits: the window stands for the whole stream, so material that changes
//! character later drifts accordingly (a quiet intro raises the target, by
//! [`MAX_CORRECTION`] at most). Silence and near-silence cannot reach `br` even
//! at the top quality and stay below it: the target is clamped to the highest
//! libvorbis accepts for the rate and channels. The ±10% holds for real speech
//! and music. The rate is chosen to suit the bitrate, and moved if libvorbis
//! refuses the pair.

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

/// PCM buffered to calibrate the VBR target (it also delays the first output byte).
const WINDOW_SECS: u32 = 10;
/// Shorter inputs than this are encoded at the nominal target: too few packets
/// to measure anything but the stream's edges.
const MIN_CALIBRATION_SECS: u32 = 1;
/// A trial whose audio bitrate is within this fraction of `br` becomes the real encoder.
const KEEP_TOLERANCE: f64 = 0.03;
/// Encodes of the window at most (the best is kept, not encoded again).
const MAX_TRIALS: usize = 3;
/// How the achieved bitrate grows with the VBR target, as `achieved ∝ target^γ`:
/// the first correction assumes this γ (0.7–1.1 on the fixtures' curves, speech
/// lowest) ...
const GAMMA_FIRST: f64 = 0.8;
/// ... and later ones estimate it from two trials, within this range.
const GAMMA_RANGE: (f64, f64) = (0.6, 1.2);
/// The calibrated target stays within this factor of `br` either way. Real
/// material needs up to ~1.5x (speech and easy music at low rates); the cap
/// bounds the damage when the window is unlike the rest, e.g. a quiet intro
/// that would otherwise set the whole stream to the top quality.
const MAX_CORRECTION: f64 = 2.0;
/// Frames per `encode_audio_block` call: libvorbis slows down on huge blocks.
const CHUNK_FRAMES: usize = 4096;

/// Rate suited to a Vorbis bitrate (kbit/s, whole stream): the preferred one, or the nearest
/// rate libvorbis has a setup for at this bitrate and channel count.
pub(crate) fn choose_rate(kbps: u32, channels: u16, input: u32) -> Result<u32, MediaError> {
    let per_ch = kbps / u32::from(channels.max(1));
    let cap = match per_ch {
        0..=15 => 8_000,
        16..=23 => 16_000,
        24..=39 => 22_050,
        40..=55 => 32_000,
        _ => 48_000,
    };
    // Never upsample: the extra band would carry nothing.
    let preferred = input.min(cap).max(8_000);
    let mut rates: [u32; 8] = [
        preferred, 8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000,
    ];
    // Stable: the preferred rate is tried first.
    rates.sort_by_key(|r| r.abs_diff(preferred));
    rates
        .into_iter()
        .find(|&r| accepts(r, channels, kbps))
        .ok_or_else(|| MediaError::Unsupported(format!("ogg vorbis cannot encode {kbps} kbit/s")))
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

fn vorbis_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::encoder(format!("vorbis: {e}"))
}

/// Rate and channel count of the stream being encoded.
#[derive(Clone, Copy)]
struct Format {
    rate: NonZeroU32,
    channels: NonZeroU8,
}

/// A VBR encoder at `target` bit/s writing into `sink`.
fn build<W: Write>(f: Format, target: u32, sink: W) -> Result<VorbisEncoder<W>, MediaError> {
    let target = NonZeroU32::new(target).ok_or_else(|| vorbis_err("bitrate 0"))?;
    VorbisEncoderBuilder::new_with_serial(f.rate, f.channels, sink, STREAM_SERIAL)
        .bitrate_management_strategy(VorbisBitrateManagementStrategy::Vbr {
            target_bitrate: target,
        })
        .build()
        .map_err(vorbis_err)
}

/// Feeds planar PCM to `enc` in chunks.
fn feed<W: Write>(enc: &mut VorbisEncoder<W>, planar: &[Vec<f32>]) -> Result<(), MediaError> {
    let frames = planar.first().map_or(0, Vec::len);
    let mut start = 0;
    while start < frames {
        let end = (start + CHUNK_FRAMES).min(frames);
        let block: Vec<&[f32]> = planar.iter().map(|p| &p[start..end]).collect();
        enc.encode_audio_block(&block).map_err(vorbis_err)?;
        start = end;
    }
    Ok(())
}

/// Audio bytes and frames covered by the complete Ogg pages in `bytes` after
/// the first `header_len` bytes (the header pages): bytes through the last page
/// that ends a packet, and that page's granule position. `None` until one does.
fn audio_extent(bytes: &[u8], header_len: usize) -> Option<(u64, u64)> {
    let mut pos = header_len;
    let mut found = None;
    while let Some(h) = bytes.get(pos..pos + 27) {
        if &h[..4] != b"OggS" {
            break;
        }
        let nseg = usize::from(h[26]);
        let Some(lacing) = bytes.get(pos + 27..pos + 27 + nseg) else {
            break;
        };
        let end = pos + 27 + nseg + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
        if end > bytes.len() {
            break;
        }
        let mut g = [0u8; 8];
        g.copy_from_slice(&h[6..14]);
        // -1 (no packet ends on this page) reads as a huge u64: skip it.
        let granule = i64::from_le_bytes(g);
        if granule > 0 {
            found = Some(((end - header_len) as u64, granule as u64));
        }
        pos = end;
    }
    found
}

/// Audio bitrate (bit/s) of `bytes` over `frames` at `rate`.
fn bitrate(bytes: u64, frames: u64, rate: u32) -> f64 {
    bytes as f64 * 8.0 * f64::from(rate) / frames as f64
}

/// An encoder that has consumed the calibration window, with its output so far.
struct Trial {
    enc: VorbisEncoder<Shared>,
    sink: Shared,
}

/// Builds an encoder at `target` and feeds it the window.
fn trial(f: Format, target: u32, window: &[Vec<f32>]) -> Result<(Trial, usize), MediaError> {
    let sink = Shared::default();
    let mut enc = build(f, target, sink.clone())?;
    let header_len = sink.0.borrow().len();
    feed(&mut enc, window)?;
    Ok((Trial { enc, sink }, header_len))
}

/// `want` if libvorbis accepts it for this format, otherwise the accepted
/// target nearest to it on the way from `ok` (which is accepted).
fn clamp_target(f: Format, ok: u32, want: u32) -> u32 {
    let accepted = |t: u32| build(f, t, io::sink()).is_ok();
    if accepted(want) {
        return want;
    }
    // Bisect the boundary between `ok` and `want` to within 0.5%.
    let (mut good, mut bad) = (ok, want);
    while good.abs_diff(bad) > good / 200 + 1 {
        let mid = good / 2 + bad / 2;
        if accepted(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}

/// Next target to try after `tried` (target, achieved audio bit/s), modelling
/// achieved as `target^γ` locally. Once one trial lies below `br` and one
/// above, interpolates between the nearest two (inside that bracket: libvorbis's
/// quality table has steps where the bitrate jumps, and a bracket never jumps
/// past them). Otherwise extrapolates from the last trial, with γ from the last
/// two clamped to [`GAMMA_RANGE`] (two close trials can sit on a flat stretch)
/// or [`GAMMA_FIRST`], and by a factor of 4 at most.
fn next_target(br: f64, tried: &[(f64, f64)]) -> f64 {
    let Some(&(t1, a1)) = tried.last() else {
        return br;
    };
    if a1 <= 0.0 {
        // Nothing was coded (silence, headers only): aim as high as allowed.
        return t1 * 4.0;
    }
    let below = tried
        .iter()
        .filter(|&&(_, a)| a > 0.0 && a < br)
        .max_by(|x, y| x.1.total_cmp(&y.1));
    let above = tried
        .iter()
        .filter(|&&(_, a)| a >= br)
        .min_by(|x, y| x.1.total_cmp(&y.1));
    if let (Some(&(tl, al)), Some(&(th, ah))) = (below, above) {
        let g = (ah / al).ln() / (th / tl).ln();
        return if g.is_finite() && g > 0.0 {
            tl * (br / al).powf(1.0 / g)
        } else {
            (tl * th).sqrt()
        };
    }
    let gamma = match tried {
        [.., (t0, a0), _] if *a0 > 0.0 && *t0 != t1 => {
            let g = (a1 / a0).ln() / (t1 / t0).ln();
            if g.is_finite() {
                g.clamp(GAMMA_RANGE.0, GAMMA_RANGE.1)
            } else {
                GAMMA_FIRST
            }
        }
        _ => GAMMA_FIRST,
    };
    (t1 * (br / a1).powf(1.0 / gamma)).clamp(t1 / 4.0, t1 * 4.0)
}

/// Measures a trial's audio bitrate from its finished pages. A trial with no
/// finished page yet (a quiet window codes very little) is finished to be
/// measured whole, and comes back `None`: it would have to be rebuilt.
fn measure(t: Trial, header_len: usize, rate: u32) -> Result<(f64, Option<Trial>), MediaError> {
    let extent = audio_extent(&t.sink.0.borrow(), header_len);
    if let Some((bytes, frames)) = extent {
        return Ok((bitrate(bytes, frames, rate), Some(t)));
    }
    let Trial { enc, sink } = t;
    enc.finish().map_err(vorbis_err)?;
    let b = sink.0.borrow();
    let achieved =
        audio_extent(&b, header_len).map_or(0.0, |(bytes, frames)| bitrate(bytes, frames, rate));
    Ok((achieved, None))
}

/// Picks the VBR target for `window` so that its audio comes out at `br` bit/s,
/// and returns the encoder at that target having consumed the window: the
/// trial closest to `br` (in ratio) of at most [`MAX_TRIALS`], stopping at the
/// first within [`KEEP_TOLERANCE`].
fn calibrate(f: Format, br: u32, window: &[Vec<f32>]) -> Result<Trial, MediaError> {
    let frames = window.first().map_or(0, Vec::len);
    let rate = f.rate.get();
    if (frames as u64) < u64::from(MIN_CALIBRATION_SECS) * u64::from(rate) {
        return Ok(trial(f, br, window)?.0);
    }
    let br_f = f64::from(br);
    let mut tried: Vec<(f64, f64)> = Vec::with_capacity(MAX_TRIALS);
    // (distance from br as |ln(achieved / br)|, target, the encoder if still open)
    let mut best: Option<(f64, u32, Option<Trial>)> = None;
    let mut target = br;
    for _ in 0..MAX_TRIALS {
        let (t, header_len) = trial(f, target, window)?;
        let (achieved, open) = measure(t, header_len, rate)?;
        tried.push((f64::from(target), achieved));
        let miss = (achieved / br_f).ln().abs();
        if best.as_ref().is_none_or(|b| miss < b.0) {
            best = Some((miss, target, open));
        }
        if miss <= (1.0 + KEEP_TOLERANCE).ln() {
            break;
        }
        let want = next_target(br_f, &tried).clamp(br_f / MAX_CORRECTION, br_f * MAX_CORRECTION);
        // In range: `br` ≤ 320 kbit/s.
        let want = want as u32;
        target = clamp_target(f, target, want);
        if tried.iter().any(|&(t, _)| t == f64::from(target)) {
            // Clamped back onto a target already measured: nothing new to learn.
            break;
        }
    }
    match best {
        Some((_, _, Some(t))) => Ok(t),
        Some((_, target, None)) => Ok(trial(f, target, window)?.0),
        None => Ok(trial(f, br, window)?.0),
    }
}

pub(crate) struct OggEncoder {
    format: Format,
    /// Requested bitrate, bit/s.
    br: u32,
    channels: usize,
    /// Deinterleaved input block, reused.
    planar: Vec<Vec<f32>>,
    /// Planar PCM kept for calibration, until `live` exists.
    window: Vec<Vec<f32>>,
    window_frames: usize,
    /// The real encoder, once calibrated.
    live: Option<Trial>,
}

impl OggEncoder {
    pub(crate) fn new(plan: &Plan) -> Result<Self, MediaError> {
        let rate = NonZeroU32::new(plan.rate).ok_or_else(|| vorbis_err("rate 0"))?;
        let channels = u8::try_from(plan.channels)
            .ok()
            .and_then(NonZeroU8::new)
            .ok_or_else(|| vorbis_err("channels"))?;
        let format = Format { rate, channels };
        let br = plan.bitrate_kbps.unwrap_or(128).saturating_mul(1000);
        // Refuse now what libvorbis refuses, not after a window of input.
        build(format, br, io::sink())?;
        let ch = usize::from(channels.get());
        Ok(OggEncoder {
            format,
            br,
            channels: ch,
            planar: vec![Vec::new(); ch],
            window: vec![Vec::new(); ch],
            window_frames: usize::try_from(u64::from(WINDOW_SECS) * u64::from(plan.rate))
                .unwrap_or(usize::MAX),
            live: None,
        })
    }

    /// Calibrates on the window, which is then dropped.
    fn start(&mut self) -> Result<(), MediaError> {
        let window = std::mem::take(&mut self.window);
        self.live = Some(calibrate(self.format, self.br, &window)?);
        Ok(())
    }

    fn drain(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        if let Some(t) = &self.live {
            let mut b = t.sink.0.borrow_mut();
            if !b.is_empty() {
                out.write_all(&b)?;
                b.clear();
            }
        }
        Ok(())
    }
}

/// Whether libvorbis has a setup for this rate/channels/bitrate combination.
fn accepts(rate: u32, channels: u16, kbps: u32) -> bool {
    let (Some(rate), Some(channels)) = (
        NonZeroU32::new(rate),
        u8::try_from(channels).ok().and_then(NonZeroU8::new),
    ) else {
        return false;
    };
    build(
        Format { rate, channels },
        kbps.saturating_mul(1000),
        io::sink(),
    )
    .is_ok()
}

impl BlockEncoder for OggEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        let ch = self.channels;
        for (c, p) in self.planar.iter_mut().enumerate() {
            p.clear();
            p.extend(pcm.iter().skip(c).step_by(ch));
        }
        let frames = self.planar.first().map_or(0, Vec::len);
        let mut used = 0;
        if self.live.is_none() {
            let have = self.window.first().map_or(0, Vec::len);
            used = frames.min(self.window_frames.saturating_sub(have));
            for (w, p) in self.window.iter_mut().zip(&self.planar) {
                w.extend_from_slice(&p[..used]);
            }
            if have + used < self.window_frames {
                return Ok(());
            }
            self.start()?;
        }
        if let Some(t) = &mut self.live {
            if used < frames {
                if used > 0 {
                    for p in &mut self.planar {
                        p.drain(..used);
                    }
                }
                feed(&mut t.enc, &self.planar)?;
            }
        }
        self.drain(out)
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        if self.live.is_none() {
            self.start()?;
        }
        self.drain(out)?;
        if let Some(Trial { enc, sink }) = self.live.take() {
            enc.finish().map_err(vorbis_err)?;
            let b = sink.0.borrow();
            out.write_all(&b)?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: u32, channels: u16, kbps: u32) -> Plan {
        Plan {
            format: crate::AudioFormat::Ogg,
            rate,
            channels,
            bitrate_kbps: Some(kbps),
        }
    }

    /// Deterministic test material, interleaved: a few partials whose loudness
    /// moves, over quiet noise (an LCG, so no dependency and no randomness).
    fn material(rate: u32, channels: usize, secs: f32) -> Vec<f32> {
        let frames = (rate as f32 * secs) as usize;
        let mut seed = 0x1234_5678u32;
        let mut out = Vec::with_capacity(frames * channels);
        for i in 0..frames {
            let t = i as f32 / rate as f32;
            let env = 0.5 + 0.5 * (t * 1.7).sin();
            let tone = [220.0f32, 331.0, 440.0, 1250.0]
                .iter()
                .map(|f| (std::f32::consts::TAU * f * t).sin())
                .sum::<f32>()
                * 0.1
                * env;
            for c in 0..channels {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                out.push(tone * (1.0 - 0.2 * c as f32) + noise * 0.02 * env);
            }
        }
        out
    }

    fn encode_blocks(p: &Plan, pcm: &[f32], block_frames: usize) -> Vec<u8> {
        let mut enc: Box<dyn BlockEncoder> = Box::new(OggEncoder::new(p).expect("encoder"));
        let mut out = Vec::new();
        for b in pcm.chunks(block_frames * usize::from(p.channels)) {
            enc.encode(b, &mut out).expect("encode");
        }
        enc.finish(&mut out).expect("finish");
        out
    }

    /// Plain VBR at the nominal target, uncalibrated.
    fn nominal(p: &Plan, pcm: &[f32]) -> Vec<u8> {
        let f = Format {
            rate: NonZeroU32::new(p.rate).expect("rate"),
            channels: NonZeroU8::new(p.channels as u8).expect("channels"),
        };
        let sink = Shared::default();
        let mut enc = build(f, p.bitrate_kbps.expect("br") * 1000, sink.clone()).expect("build");
        let ch = usize::from(p.channels);
        let planar: Vec<Vec<f32>> = (0..ch)
            .map(|c| pcm.iter().skip(c).step_by(ch).copied().collect())
            .collect();
        feed(&mut enc, &planar).expect("feed");
        enc.finish().expect("finish");
        let b = sink.0.borrow().clone();
        b
    }

    /// Whole-stream audio bitrate in kbit/s (headers excluded) and the final granule.
    fn audio_kbps(bytes: &[u8], rate: u32) -> (f64, u64) {
        // The header pages end where the first page with a positive granule begins.
        let mut header_len = 0;
        while let Some(h) = bytes.get(header_len..header_len + 27) {
            let mut g = [0u8; 8];
            g.copy_from_slice(&h[6..14]);
            if i64::from_le_bytes(g) != 0 {
                break;
            }
            let nseg = usize::from(h[26]);
            let body: usize = bytes[header_len + 27..header_len + 27 + nseg]
                .iter()
                .map(|&l| usize::from(l))
                .sum();
            header_len += 27 + nseg + body;
        }
        let (b, frames) = audio_extent(bytes, header_len).expect("audio pages");
        (bitrate(b, frames, rate) / 1000.0, frames)
    }

    #[test]
    fn empty_input_is_a_valid_stream() {
        let p = plan(44_100, 2, 128);
        let a = encode_blocks(&p, &[], 4096);
        assert!(a.starts_with(b"OggS"));
        assert_eq!(a, nominal(&p, &[]));
    }

    #[test]
    fn input_under_a_second_is_encoded_at_the_nominal_target() {
        let p = plan(22_050, 1, 48);
        let pcm = material(22_050, 1, 0.6);
        assert_eq!(encode_blocks(&p, &pcm, 1000), nominal(&p, &pcm));
    }

    #[test]
    fn input_shorter_than_the_window_is_calibrated_at_finish_and_complete() {
        let p = plan(44_100, 2, 128);
        let pcm = material(44_100, 2, 3.0);
        let out = encode_blocks(&p, &pcm, 4096);
        let (_, frames) = audio_kbps(&out, 44_100);
        assert_eq!(frames, (pcm.len() / 2) as u64);
        assert_eq!(out, encode_blocks(&p, &pcm, 4096));
    }

    #[test]
    fn output_is_deterministic_across_the_window_boundary() {
        // 12 s: the window fills mid-block, the rest streams through the kept encoder.
        let p = plan(22_050, 2, 64);
        let pcm = material(22_050, 2, 12.0);
        let a = encode_blocks(&p, &pcm, 3000);
        assert_eq!(a, encode_blocks(&p, &pcm, 3000));
        let (_, frames) = audio_kbps(&a, 22_050);
        assert_eq!(frames, (pcm.len() / 2) as u64);
    }

    #[test]
    fn calibration_brings_the_bitrate_to_the_request() {
        for (rate, ch, kbps) in [(22_050, 2, 64), (44_100, 2, 128), (16_000, 1, 32)] {
            let p = plan(rate, ch, kbps);
            let pcm = material(rate, usize::from(ch), 14.0);
            let (plain, _) = audio_kbps(&nominal(&p, &pcm), rate);
            let (ours, _) = audio_kbps(&encode_blocks(&p, &pcm, 4096), rate);
            eprintln!("{rate} Hz x{ch} @ {kbps}: nominal {plain:.1}, calibrated {ours:.1}");
            let k = f64::from(kbps);
            assert!(
                (ours - k).abs() <= k * 0.05,
                "{rate} x{ch} @ {kbps}: {ours:.1}"
            );
        }
    }

    #[test]
    fn silence_cannot_reach_the_request_and_is_clamped() {
        let p = plan(44_100, 2, 128);
        let pcm = vec![0.0f32; 44_100 * 2 * 12];
        let out = encode_blocks(&p, &pcm, 4096);
        let (kbps, frames) = audio_kbps(&out, 44_100);
        assert_eq!(frames, 44_100 * 12);
        assert!(kbps < 128.0);
        assert_eq!(out, encode_blocks(&p, &pcm, 4096));
    }

    #[test]
    fn next_target_follows_a_power_law() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b;
        // One trial: the default exponent.
        assert!(close(
            next_target(100.0, &[(100.0, 90.0)]),
            100.0 * (100.0f64 / 90.0).powf(1.0 / GAMMA_FIRST)
        ));
        // Two trials on a = 0.8 t (γ = 1): straight to the request.
        assert!(close(
            next_target(100.0, &[(100.0, 80.0), (120.0, 96.0)]),
            125.0
        ));
        // Two trials on a flat stretch: γ is held at its floor, not extrapolated.
        let g = GAMMA_RANGE.0;
        assert!(close(
            next_target(100.0, &[(100.0, 80.0), (120.0, 81.0)]),
            120.0 * (100.0f64 / 81.0).powf(1.0 / g)
        ));
        // A bracket: interpolates inside it, even where a lone slope would not.
        let t = next_target(100.0, &[(100.0, 90.0), (120.0, 93.0), (125.0, 110.0)]);
        assert!(t > 120.0 && t < 125.0, "{t}");
        // Nothing coded, or far off: up by the step limit.
        assert!(close(next_target(100.0, &[(100.0, 0.0)]), 400.0));
        assert!(close(next_target(100.0, &[(100.0, 1.0)]), 400.0));
    }
}
