//! Which converted copy a request asks for: `f`, `br` and `norm` checked against the stored
//! file.

use mediastore_media::{AudioFormat, MediaError, WaveformOptions};

use crate::error::Error;

use crate::domain::model::{FileRecord, LoudnessInfo};
use crate::domain::rules::{check_bitrate, check_loudness, check_target_format};
use crate::domain::DomainError;

/// A converted copy of a stored file. The blob key changes with the content, so a key never
/// names stale bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VariantKey {
    pub blob_key: String,
    pub format: AudioFormat,
    pub bitrate_kbps: Option<u32>,
    /// A waveform of the audio (`waveform=`) instead of converted audio.
    pub waveform: Option<WaveformOptions>,
    /// Loudness normalised to this target (`norm=`), tenths of a LUFS.
    pub norm: Option<i16>,
}

impl VariantKey {
    /// The normalisation target, LUFS.
    pub fn norm_lufs(&self) -> Option<f64> {
        self.norm.map(|t| f64::from(t) / 10.0)
    }
}

/// Everything needed to produce and describe a converted copy.
#[derive(Debug, Clone)]
pub struct Variant {
    pub key: VariantKey,
    /// The source's `content_format`, the decoder's hint for raw audio.
    pub source_hint: String,
    /// Strong ETag of this copy: the source's, qualified by format and bitrate.
    pub etag: String,
    pub content_type: &'static str,
    /// The file's name with the target's extension.
    pub filename: String,
    /// Whose audio it is: conversions are shared out per customer.
    pub customer_id: String,
    /// The source's loudness, when measured before (a normalised copy needs it).
    pub loudness: Option<LoudnessInfo>,
}

impl Variant {
    /// The series of this copy's conversion metrics: the target format, or `None` for a
    /// waveform.
    pub fn metrics_format(&self) -> Option<AudioFormat> {
        if self.key.waveform.is_some() {
            None
        } else {
            Some(self.key.format)
        }
    }

    /// The query parameter that asked for this copy, named by its errors.
    pub fn field(&self) -> &'static str {
        if self.key.waveform.is_some() {
            "waveform"
        } else if self.key.norm.is_some() {
            "norm"
        } else {
            "f"
        }
    }

    /// A media error of this copy's conversion, its kind kept for `http::error`.
    pub fn media_error(&self, source: MediaError) -> Error {
        Error::Media {
            field: self.field(),
            source,
        }
    }
}

/// The `f`, `br` and `norm` of a request, checked (400 naming the parameter) before any store
/// access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requested {
    pub format: Option<AudioFormat>,
    pub bitrate_kbps: Option<u32>,
    /// Target loudness, tenths of a LUFS.
    pub norm: Option<i16>,
}

impl Requested {
    /// Parses `f`, `br` and `norm`; `None` when none is given.
    pub fn parse(
        f: Option<&str>,
        br: Option<&str>,
        norm: Option<&str>,
    ) -> Result<Option<Self>, DomainError> {
        if f.is_none() && br.is_none() && norm.is_none() {
            return Ok(None);
        }
        let norm = match norm {
            None => None,
            Some(n) => Some(check_loudness(
                "norm",
                n.parse::<f64>().unwrap_or(f64::NAN),
            )?),
        };
        let format = match f {
            None => None,
            Some(f) => {
                check_target_format("f", f)?;
                // Every listed name is one the media layer knows.
                AudioFormat::from_param(f)
            }
        };
        let bitrate_kbps = match br {
            None => None,
            Some(b) => {
                let n: i64 = b
                    .parse()
                    .map_err(|_| DomainError::invalid("br", "must be a bitrate in kbit/s"))?;
                check_bitrate("br", n)?;
                Some(n as u32)
            }
        };
        Ok(Some(Requested {
            format,
            bitrate_kbps,
            norm,
        }))
    }

    /// The copy of `file` this asks for, or `None` when the stored file already is it. A file
    /// that is not audio answers 415; `br` not below the stored bitrate is ignored.
    pub fn variant_of(self, file: &FileRecord) -> Result<Option<Variant>, DomainError> {
        let not_audio = || DomainError::NotAudio {
            field: if self.format.is_some() {
                "f".into()
            } else if self.norm.is_some() {
                "norm".into()
            } else {
                "br".into()
            },
            message: "the file is not audio this server can convert".into(),
        };
        let media = file.media.as_ref().ok_or_else(not_audio)?;
        let source = AudioFormat::from_param(&file.content_format);
        let format = match (self.format, source) {
            (Some(f), _) => f,
            (None, Some(s)) => s,
            (None, None) => return Err(not_audio()),
        };
        let bitrate_kbps = match conversion(source, media.bitrate, format, self.bitrate_kbps) {
            Some(b) => b,
            // Normalising converts even to the stored format and bitrate.
            None if self.norm.is_some() => None,
            None => return Ok(None),
        };
        let base = file.etag();
        let inner = base.trim_matches('"');
        let mut etag = match bitrate_kbps {
            Some(b) => format!("{inner}-{}-{b}", format.name()),
            None => format!("{inner}-{}", format.name()),
        };
        if let Some(n) = self.norm {
            etag = format!("{etag}-n{n}");
        }
        let etag = format!("\"{etag}\"");
        let stem = file
            .name
            .rsplit_once('.')
            .map_or(file.name.as_str(), |(s, _)| s);
        Ok(Some(Variant {
            key: VariantKey {
                blob_key: file.blob_key.clone(),
                format,
                bitrate_kbps,
                waveform: None,
                norm: self.norm,
            },
            source_hint: file.content_format.clone(),
            etag,
            content_type: format.content_type(),
            filename: format!("{stem}.{}", format.extension()),
            customer_id: file.customer_id.clone(),
            loudness: file.loudness,
        }))
    }
}

/// The one rule of whether audio `source` at `source_bps` must be converted to become `target`
/// at `bitrate_kbps`: `None` when it already is; otherwise the bitrate to encode with, which is
/// the asked one only when the target is lossy and it is lower than the source's (a higher one
/// would add bytes, not quality).
pub fn conversion(
    source: Option<AudioFormat>,
    source_bps: u32,
    target: AudioFormat,
    bitrate_kbps: Option<u32>,
) -> Option<Option<u32>> {
    let bitrate =
        bitrate_kbps.filter(|&b| target.is_lossy() && u64::from(b) * 1000 < u64::from(source_bps));
    (Some(target) != source || bitrate.is_some()).then_some(bitrate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_f_and_br() {
        assert_eq!(Requested::parse(None, None, None), Ok(None));
        let r = Requested::parse(Some("al"), Some("32"), None)
            .expect("valid")
            .expect("some");
        assert_eq!(r.format, Some(AudioFormat::Alaw));
        assert_eq!(r.bitrate_kbps, Some(32));
        for bad in ["wave", "m4a", "MP3", "", "exe"] {
            assert!(Requested::parse(Some(bad), None, None).is_err(), "{bad}");
        }
        for bad in ["33", "x", "-8", "1000"] {
            assert!(Requested::parse(None, Some(bad), None).is_err(), "{bad}");
        }
        let n = Requested::parse(None, None, Some("-23.5"))
            .expect("valid")
            .expect("some");
        assert_eq!(n.norm, Some(-235));
        for bad in ["-41", "-4.9", "0", "x", "", "NaN", "-inf", "16"] {
            assert!(Requested::parse(None, None, Some(bad)).is_err(), "{bad}");
        }
    }
}
