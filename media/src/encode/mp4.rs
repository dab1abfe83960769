//! AAC-LC in MP4 via `fdk-aac` (Fraunhofer FDK built from source) and the `mp4`
//! crate's muxer.
//!
//! MP4 needs its index (`moov`) before the data for browsers to start playback
//! while downloading, and the index is only known at the end. So AAC frames go
//! to an anonymous temp file through `mp4::Mp4Writer`; at the end the `moov` is
//! read back, its chunk offsets moved past itself, an edit list added (dropping
//! the encoder's priming samples and the zero padding, for an exact gapless
//! length) and the file is emitted as `ftyp, moov, mdat`. Memory stays bounded
//! (sample tables: 8 bytes per 1024 frames); output starts only when encoding ends.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use fdk_aac::enc::{
    AudioObjectType as FdkAot, BitRate, ChannelMode, Encoder, EncoderParams, Transport,
};
use mp4::{
    AacConfig, AudioObjectType, ChannelConfig, FourCC, MediaConfig, Mp4Config, Mp4Reader,
    Mp4Sample, Mp4Writer, SampleFreqIndex, TrackConfig, TrackType, WriteBox,
};

use super::{to_i16, BlockEncoder, Patch, Plan};
use crate::MediaError;

/// AAC frame length in PCM frames (AAC-LC).
const AAC_FRAME: u64 = 1024;
/// Rate suited to an AAC-LC bitrate: low bitrates get a narrower band (as fdk's
/// own bandwidth tables do), and the rate must be high enough to carry the
/// bitrate (AAC-LC tops at 6144 bits per 1024-frame channel frame: 6 bit/frame).
pub(crate) fn choose_rate(kbps: u32, channels: u16, input: u32) -> u32 {
    let per_ch = kbps / u32::from(channels.max(1));
    let cap = match per_ch {
        0..=11 => 8_000,
        12..=19 => 16_000,
        20..=31 => 24_000,
        32..=47 => 32_000,
        _ => 48_000,
    };
    let want = input.min(cap);
    let min_for_bitrate = per_ch * 1000 / 6 + 1;
    // AAC-LC signals the MPEG rates with a frequency index.
    super::mpeg_rate_at_or_above(want.max(min_for_bitrate))
}

fn freq_index(rate: u32) -> Result<SampleFreqIndex, MediaError> {
    Ok(match rate {
        8_000 => SampleFreqIndex::Freq8000,
        11_025 => SampleFreqIndex::Freq11025,
        12_000 => SampleFreqIndex::Freq12000,
        16_000 => SampleFreqIndex::Freq16000,
        22_050 => SampleFreqIndex::Freq22050,
        24_000 => SampleFreqIndex::Freq24000,
        32_000 => SampleFreqIndex::Freq32000,
        44_100 => SampleFreqIndex::Freq44100,
        48_000 => SampleFreqIndex::Freq48000,
        r => {
            return Err(MediaError::encoder(format!(
                "aac: no frequency index for {r} Hz"
            )))
        }
    })
}

fn aac_err(e: impl std::fmt::Debug) -> MediaError {
    MediaError::encoder(format!("aac: {e:?}"))
}

fn mp4_err(e: mp4::Error) -> MediaError {
    match e {
        mp4::Error::IoError(e) => MediaError::Io(e),
        other => MediaError::encoder(format!("mp4: {other}")),
    }
}

pub(crate) struct Mp4Encoder {
    aac: Encoder,
    writer: Option<Mp4Writer<BufWriter<File>>>,
    channels: usize,
    delay: u64,
    pcm: Vec<i16>,
    au: Vec<u8>,
    input_frames: u64,
    aus: u64,
}

impl Mp4Encoder {
    pub(crate) fn new(plan: &Plan) -> Result<Self, MediaError> {
        let kbps = plan.bitrate_kbps.unwrap_or(128);
        let aac = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(kbps * 1000),
            sample_rate: plan.rate,
            transport: Transport::Raw,
            channels: if plan.channels == 1 {
                ChannelMode::Mono
            } else {
                ChannelMode::Stereo
            },
            audio_object_type: FdkAot::Mpeg4LowComplexity,
        })
        .map_err(aac_err)?;
        let info = aac.info().map_err(aac_err)?;
        let tmp = tempfile::tempfile()?;
        let config = Mp4Config {
            major_brand: brand("isom")?,
            minor_version: 512,
            compatible_brands: vec![brand("isom")?, brand("iso2")?, brand("mp41")?],
            timescale: plan.rate,
        };
        let mut writer = Mp4Writer::write_start(BufWriter::with_capacity(64 * 1024, tmp), &config)
            .map_err(mp4_err)?;
        writer
            .add_track(&TrackConfig {
                track_type: TrackType::Audio,
                timescale: plan.rate,
                language: "und".into(),
                media_conf: MediaConfig::AacConfig(AacConfig {
                    bitrate: kbps * 1000,
                    profile: AudioObjectType::AacLowComplexity,
                    freq_index: freq_index(plan.rate)?,
                    chan_conf: if plan.channels == 1 {
                        ChannelConfig::Mono
                    } else {
                        ChannelConfig::Stereo
                    },
                }),
            })
            .map_err(mp4_err)?;
        Ok(Mp4Encoder {
            aac,
            writer: Some(writer),
            channels: usize::from(plan.channels),
            delay: u64::from(info.nDelay),
            pcm: Vec::new(),
            au: vec![0; (info.maxOutBufBytes as usize).max(8192)],
            input_frames: 0,
            aus: 0,
        })
    }

    /// Pushes `self.pcm` through the encoder, muxing every access unit produced.
    fn pump(&mut self) -> Result<(), MediaError> {
        let mut pos = 0;
        let mut stalls = 0;
        while pos < self.pcm.len() {
            let info = self
                .aac
                .encode(&self.pcm[pos..], &mut self.au)
                .map_err(aac_err)?;
            pos += info.input_consumed;
            if info.output_size > 0 {
                self.mux(info.output_size)?;
            }
            if info.input_consumed == 0 && info.output_size == 0 {
                stalls += 1;
                if stalls > 4 {
                    return Err(MediaError::encoder("aac: encoder made no progress"));
                }
            } else {
                stalls = 0;
            }
        }
        self.pcm.clear();
        Ok(())
    }

    fn mux(&mut self, len: usize) -> Result<(), MediaError> {
        let sample = Mp4Sample {
            start_time: self.aus * AAC_FRAME,
            duration: AAC_FRAME as u32,
            rendering_offset: 0,
            is_sync: true,
            bytes: bytes::Bytes::copy_from_slice(&self.au[..len]),
        };
        self.writer
            .as_mut()
            .ok_or_else(|| MediaError::encoder("mp4: writer already closed"))?
            .write_sample(1, &sample)
            .map_err(mp4_err)?;
        self.aus += 1;
        Ok(())
    }
}

fn brand(s: &str) -> Result<FourCC, MediaError> {
    s.parse::<FourCC>().map_err(mp4_err)
}

impl BlockEncoder for Mp4Encoder {
    fn encode(&mut self, pcm: &[f32], _out: &mut dyn Write) -> Result<(), MediaError> {
        self.input_frames += (pcm.len() / self.channels) as u64;
        self.pcm.extend(pcm.iter().map(|&s| to_i16(s)));
        self.pump()
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        // The wrapper cannot signal end-of-stream to fdk, so flush with silence until
        // every real sample (after the encoder delay) is inside a frame.
        let needed = (self.delay + self.input_frames).div_ceil(AAC_FRAME);
        let mut guard = 0;
        while self.aus < needed {
            self.pcm.resize(AAC_FRAME as usize * self.channels, 0);
            self.pump()?;
            guard += 1;
            if guard > 64 {
                return Err(MediaError::encoder("aac: flush did not complete"));
            }
        }
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| MediaError::encoder("mp4: writer already closed"))?;
        writer.write_end().map_err(mp4_err)?;
        let mut file = writer
            .into_writer()
            .into_inner()
            .map_err(|e| MediaError::Io(e.into_error()))?;
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;

        // Locate the top-level boxes the writer produced: ftyp, mdat, moov.
        let (mdat_pos, _, mdat_end) = crate::isobmff::find_box(&mut file, 0, len, b"mdat")
            .ok_or_else(|| MediaError::encoder("mp4: muxer output lacks an mdat box"))?;
        let mdat_len = mdat_end - mdat_pos;
        file.seek(SeekFrom::Start(0))?;
        let reader = Mp4Reader::read_header(BufReader::new(&mut file), len).map_err(mp4_err)?;
        let ftyp = reader.ftyp.clone();
        let mut moov = reader.moov.clone();
        drop(reader);

        let keep = self.input_frames;
        moov.mvhd.duration = keep;
        for trak in &mut moov.traks {
            trak.tkhd.duration = keep;
            // The mp4 crate does not re-export its edts/elst types, so build them
            // through Default and fill the public fields.
            let edts = trak.edts.get_or_insert_with(Default::default);
            let elst = edts.elst.get_or_insert_with(Default::default);
            elst.version = 0;
            elst.flags = 0;
            elst.entries.clear();
            elst.entries.push(Default::default());
            let entry = &mut elst.entries[0];
            entry.segment_duration = keep;
            entry.media_time = self.delay;
            entry.media_rate = 1;
            entry.media_rate_fraction = 0;
        }
        let ftyp_len = mp4::Mp4Box::box_size(&ftyp);
        let moov_len = mp4::Mp4Box::box_size(&moov);
        let new_mdat_pos = ftyp_len + moov_len;
        for trak in &mut moov.traks {
            if let Some(stco) = &mut trak.mdia.minf.stbl.stco {
                for e in stco.entries.iter_mut() {
                    let moved = u64::from(*e) + new_mdat_pos - mdat_pos;
                    *e = u32::try_from(moved)
                        .map_err(|_| MediaError::encoder("mp4: output over 4 GiB"))?;
                }
            }
            if let Some(co64) = &mut trak.mdia.minf.stbl.co64 {
                for e in co64.entries.iter_mut() {
                    *e = *e + new_mdat_pos - mdat_pos;
                }
            }
        }
        let mut head = Vec::with_capacity((ftyp_len + moov_len) as usize);
        ftyp.write_box(&mut head).map_err(mp4_err)?;
        moov.write_box(&mut head).map_err(mp4_err)?;
        fix_sl_config(&mut head);
        out.write_all(&head)?;
        file.seek(SeekFrom::Start(mdat_pos))?;
        let copied = io::copy(&mut (&mut file).take(mdat_len), out)?;
        if copied != mdat_len {
            return Err(MediaError::encoder("mp4: temp file shorter than its mdat"));
        }
        Ok(None)
    }
}

/// The mp4 crate writes the esds SLConfigDescriptor as `06 00 00` (length 0, then a
/// stray byte); ISO/IEC 14496-14 wants `06 01 02` (length 1, predefined = 2, "MP4"),
/// and strict demuxers (symphonia) reject anything else. Same length, so patch in place.
fn fix_sl_config(moov: &mut [u8]) {
    let Some(esds) = moov.windows(4).position(|w| w == b"esds") else {
        return;
    };
    let Some(size_at) = esds.checked_sub(4) else {
        return;
    };
    let size = u32::from_be_bytes([
        moov[size_at],
        moov[size_at + 1],
        moov[size_at + 2],
        moov[size_at + 3],
    ]) as usize;
    let end = (size_at + size).min(moov.len());
    if end < 3 {
        return;
    }
    if moov[end - 3..end] == [0x06, 0x00, 0x00] {
        moov[end - 2] = 0x01;
        moov[end - 1] = 0x02;
    }
}
