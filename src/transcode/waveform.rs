//! `waveform=json|dat` (with `samples_per_pixel`, `bits`, `split_channels`): the audio's peaks
//! as a variant of the file, produced, cached and served like any converted copy.
//!
//! The work one request can ask for is bounded: `samples_per_pixel` 32–65536, and at most
//! [`MAX_WAVEFORM_POINTS`] points (pixels × series), checked against the stored duration
//! before any work (400 naming `samples_per_pixel`) and enforced again while computing.

use mediastore_media::waveform::{MAX_WAVEFORM_POINTS, SAMPLES_PER_PIXEL_RANGE};
use mediastore_media::{AudioFormat, WaveformFormat, WaveformOptions};

use super::{Variant, VariantKey};
use crate::domain::model::FileRecord;
use crate::domain::DomainError;

/// Parses the waveform parameters of a query (`get` looks one up); `None` without `waveform`.
/// Checked before any store access: a bad value is a 400 naming its parameter, and `f` or `br`
/// with `waveform` a 400 naming them.
pub fn parse<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<WaveformOptions>, DomainError> {
    let Some(w) = get("waveform") else {
        return Ok(None);
    };
    for other in ["f", "br", "norm"] {
        if get(other).is_some() {
            return Err(DomainError::invalid(
                other,
                "cannot be combined with waveform",
            ));
        }
    }
    let format = WaveformFormat::from_param(w)
        .ok_or_else(|| DomainError::invalid("waveform", "must be json or dat"))?;
    let mut opts = WaveformOptions {
        format,
        ..WaveformOptions::default()
    };
    if let Some(s) = get("samples_per_pixel") {
        opts.samples_per_pixel = s
            .parse::<u32>()
            .ok()
            .filter(|n| SAMPLES_PER_PIXEL_RANGE.contains(n))
            .ok_or_else(|| {
                DomainError::invalid(
                    "samples_per_pixel",
                    format!(
                        "must be an integer from {} to {}",
                        SAMPLES_PER_PIXEL_RANGE.start(),
                        SAMPLES_PER_PIXEL_RANGE.end()
                    ),
                )
            })?;
    }
    if let Some(b) = get("bits") {
        opts.bits = match b {
            "8" => 8,
            "16" => 16,
            _ => return Err(DomainError::invalid("bits", "must be 8 or 16")),
        };
    }
    if let Some(s) = get("split_channels") {
        opts.split_channels = match s {
            "true" => true,
            "false" => false,
            _ => {
                return Err(DomainError::invalid(
                    "split_channels",
                    "must be true or false",
                ))
            }
        };
    }
    Ok(Some(opts))
}

/// The waveform variant of `file`. A file that is not audio answers 415; one whose stored
/// duration would give more than [`MAX_WAVEFORM_POINTS`] points a 400 naming
/// `samples_per_pixel`.
pub fn variant_of(file: &FileRecord, opts: WaveformOptions) -> Result<Variant, DomainError> {
    let media = file.media.as_ref().ok_or_else(|| DomainError::NotAudio {
        field: "waveform".into(),
        message: "the file is not audio this server can read".into(),
    })?;
    let frames = media
        .duration_ms
        .saturating_mul(u64::from(media.sample_rate))
        / 1000;
    let series = if opts.split_channels {
        u64::from(media.channels.max(1))
    } else {
        1
    };
    let points = frames
        .div_ceil(u64::from(opts.samples_per_pixel))
        .saturating_mul(series);
    if points > MAX_WAVEFORM_POINTS {
        return Err(DomainError::invalid(
            "samples_per_pixel",
            format!(
                "too small for this recording: the waveform would have {points} points, at most {MAX_WAVEFORM_POINTS} are served"
            ),
        ));
    }
    let base = file.etag();
    let inner = base.trim_matches('"');
    let ext = opts.format.name();
    let split = if opts.split_channels { "s" } else { "m" };
    let etag = format!(
        "\"{inner}-wf{ext}-{}-{}{split}\"",
        opts.samples_per_pixel, opts.bits
    );
    let stem = file
        .name
        .rsplit_once('.')
        .map_or(file.name.as_str(), |(s, _)| s);
    Ok(Variant {
        key: VariantKey {
            blob_key: file.blob_key.clone(),
            // Only named in logs: the waveform option is what tells the copy apart.
            format: AudioFormat::from_param(&file.content_format).unwrap_or(AudioFormat::Wav),
            bitrate_kbps: None,
            waveform: Some(opts),
            norm: None,
        },
        source_hint: file.content_format.clone(),
        etag,
        content_type: opts.format.content_type(),
        filename: format!("{stem}.{ext}"),
        customer_id: file.customer_id.clone(),
        loudness: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_q(q: &[(&'static str, &'static str)]) -> Result<Option<WaveformOptions>, DomainError> {
        parse(|k| q.iter().find(|(n, _)| *n == k).map(|(_, v)| *v))
    }

    fn field(e: DomainError) -> String {
        match e {
            DomainError::InvalidInput { field, .. } => field,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn parses_and_names_bad_fields() {
        assert_eq!(parse_q(&[("f", "mp3")]), Ok(None));
        let o = parse_q(&[
            ("waveform", "dat"),
            ("bits", "16"),
            ("split_channels", "true"),
        ])
        .expect("valid")
        .expect("some");
        assert_eq!(o.format, WaveformFormat::Dat);
        assert_eq!(
            (o.samples_per_pixel, o.bits, o.split_channels),
            (256, 16, true)
        );
        let bad: [(&[(&str, &str)], &str); 6] = [
            (&[("waveform", "png")], "waveform"),
            (
                &[("waveform", "json"), ("samples_per_pixel", "31")],
                "samples_per_pixel",
            ),
            (
                &[("waveform", "json"), ("samples_per_pixel", "65537")],
                "samples_per_pixel",
            ),
            (&[("waveform", "json"), ("bits", "12")], "bits"),
            (&[("waveform", "json"), ("f", "mp3")], "f"),
            (&[("waveform", "json"), ("br", "32")], "br"),
        ];
        for (q, want) in bad {
            let e =
                parse(|k| q.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)).expect_err("refused");
            assert_eq!(field(e), want, "{q:?}");
        }
    }
}
