//! Headerless telephony audio: raw G.711 (A-law, µ-law; 8 kHz mono, one byte a
//! sample) and raw G.722 (16 kHz mono, one byte per two samples).

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};

use mediastore_codecs::{g711, g722};

use crate::decode::{PcmSource, StreamSpec};
use crate::format::AudioFormat;
use crate::limits::Limits;
use crate::MediaError;

/// Bytes of coded input per block: 8 kHz A-law gives 1 s, G.722 0.5 s.
const BLOCK_BYTES: usize = 8192;
/// i16 → f32 scale.
const SCALE: f32 = 1.0 / 32768.0;

enum Codec {
    Alaw,
    Ulaw,
    G722(Box<g722::Decoder>),
}

/// Decoder for raw al/ul/g722 files.
pub(crate) struct RawSource {
    reader: BufReader<File>,
    codec: Codec,
    spec: StreamSpec,
    bytes: Vec<u8>,
    pcm: Vec<i16>,
    done: bool,
}

/// Rate and frames-per-byte of a raw format.
pub(crate) fn raw_params(format: AudioFormat) -> (u32, u64) {
    match format {
        AudioFormat::G722 => (16_000, 2),
        _ => (8_000, 1),
    }
}

impl RawSource {
    pub(crate) fn new(
        file: File,
        format: AudioFormat,
        file_len: u64,
        limits: &Limits,
    ) -> Result<Self, MediaError> {
        let (rate, per_byte) = raw_params(format);
        let frames = file_len * per_byte;
        if frames > limits.max_frames(rate) {
            return Err(MediaError::Limit(
                "input longer than the decode duration limit".into(),
            ));
        }
        let codec = match format {
            AudioFormat::Alaw => Codec::Alaw,
            AudioFormat::Ulaw => Codec::Ulaw,
            AudioFormat::G722 => Codec::G722(Box::new(g722::Decoder::new())),
            other => {
                return Err(MediaError::Unsupported(format!(
                    "{other} is not a raw format"
                )))
            }
        };
        Ok(RawSource {
            reader: BufReader::with_capacity(BLOCK_BYTES, file),
            codec,
            spec: StreamSpec {
                rate,
                channels: 1,
                frames: Some(frames),
            },
            bytes: vec![0; BLOCK_BYTES],
            pcm: Vec::with_capacity(BLOCK_BYTES * 2),
            done: false,
        })
    }
}

impl PcmSource for RawSource {
    fn spec(&self) -> StreamSpec {
        self.spec
    }

    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<bool, MediaError> {
        if self.done {
            return Ok(false);
        }
        let n = crate::mp3scan::read_up_to(&mut self.reader, &mut self.bytes)?;
        if n == 0 {
            self.done = true;
            return Ok(false);
        }
        self.pcm.clear();
        let data = &self.bytes[..n];
        match &mut self.codec {
            Codec::Alaw => g711::decode_alaw(data, &mut self.pcm),
            Codec::Ulaw => g711::decode_ulaw(data, &mut self.pcm),
            Codec::G722(d) => d.decode(data, &mut self.pcm),
        }
        out.extend(self.pcm.iter().map(|&s| f32::from(s) * SCALE));
        Ok(true)
    }

    /// Exact for G.711 (one byte a frame, each decoded on its own). G.722 is not
    /// offered: its ADPCM predictor would restart, so the samples would differ
    /// from a decode from the start.
    fn seek_exact(&mut self, frame: u64) -> Result<bool, MediaError> {
        if matches!(self.codec, Codec::G722(_)) {
            return Ok(false);
        }
        self.reader.seek(SeekFrom::Start(frame))?;
        self.done = false;
        Ok(true)
    }
}
