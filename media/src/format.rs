//! Audio formats we read and write, their names, content types and detection.

/// A target (and detected source) audio format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// RIFF/WAVE; we write 16-bit PCM.
    Wav,
    /// MPEG-1/2/2.5 Layer III.
    Mp3,
    /// Ogg Vorbis.
    Ogg,
    /// Native FLAC.
    Flac,
    /// AAC-LC in an MP4/M4A container.
    Mp4,
    /// Raw G.711 A-law, 8 kHz mono, no header.
    Alaw,
    /// Raw G.711 µ-law, 8 kHz mono, no header.
    Ulaw,
    /// Raw G.722, 16 kHz mono, 64 kbit/s, no header.
    G722,
}

impl AudioFormat {
    /// All formats, in the order of the seed's table.
    pub const ALL: [AudioFormat; 8] = [
        AudioFormat::Alaw,
        AudioFormat::Flac,
        AudioFormat::G722,
        AudioFormat::Mp3,
        AudioFormat::Mp4,
        AudioFormat::Ogg,
        AudioFormat::Ulaw,
        AudioFormat::Wav,
    ];

    /// Parses an `f=` / `desired_format` value or a file extension (case-insensitive).
    ///
    /// Accepts the seed's `al alaw flac g722 mp3 mp4 ogg ul ulaw wav`, plus the
    /// aliases `m4a`, `mulaw`, `oga`, `wave`.
    pub fn from_param(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches('.');
        let lower = s.to_ascii_lowercase();
        Some(match lower.as_str() {
            "wav" | "wave" => AudioFormat::Wav,
            "mp3" => AudioFormat::Mp3,
            "ogg" | "oga" => AudioFormat::Ogg,
            "flac" => AudioFormat::Flac,
            "mp4" | "m4a" => AudioFormat::Mp4,
            "al" | "alaw" => AudioFormat::Alaw,
            "ul" | "ulaw" | "mulaw" => AudioFormat::Ulaw,
            "g722" => AudioFormat::G722,
            _ => return None,
        })
    }

    /// The `content_format` string stored on a File.
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Flac => "flac",
            AudioFormat::Mp4 => "mp4",
            AudioFormat::Alaw => "alaw",
            AudioFormat::Ulaw => "ulaw",
            AudioFormat::G722 => "g722",
        }
    }

    /// `Content-Type`, per the seed's table.
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/x-wav",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Ogg => "audio/ogg",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Mp4 => "video/mp4",
            AudioFormat::Alaw | AudioFormat::Ulaw => "audio/basic",
            AudioFormat::G722 => "audio/G722",
        }
    }

    /// Conventional file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Flac => "flac",
            AudioFormat::Mp4 => "mp4",
            AudioFormat::Alaw => "al",
            AudioFormat::Ulaw => "ul",
            AudioFormat::G722 => "g722",
        }
    }

    /// True when output bytes map linearly to samples (a byte range can be computed
    /// from a sample range): wav, alaw, ulaw, g722.
    pub fn is_constant_rate(self) -> bool {
        matches!(
            self,
            AudioFormat::Wav | AudioFormat::Alaw | AudioFormat::Ulaw | AudioFormat::G722
        )
    }

    /// True for the headerless formats, which can only be recognised by a hint.
    pub fn is_raw(self) -> bool {
        matches!(
            self,
            AudioFormat::Alaw | AudioFormat::Ulaw | AudioFormat::G722
        )
    }

    /// True for the lossy formats whose bitrate `br` controls.
    pub fn is_lossy(self) -> bool {
        matches!(self, AudioFormat::Mp3 | AudioFormat::Ogg | AudioFormat::Mp4)
    }
}

impl std::fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Recognises a container from its first bytes (at least 12 wanted).
///
/// MP3 without an ID3 tag is recognised by two consecutive valid frame headers,
/// so a random byte pair that looks like a sync word does not qualify.
pub fn sniff(head: &[u8]) -> Option<AudioFormat> {
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Some(AudioFormat::Wav);
    }
    if head.len() >= 12 && &head[0..4] == b"RF64" && &head[8..12] == b"WAVE" {
        return Some(AudioFormat::Wav);
    }
    if head.starts_with(b"fLaC") {
        return Some(AudioFormat::Flac);
    }
    if head.starts_with(b"OggS") {
        return Some(AudioFormat::Ogg);
    }
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        return Some(AudioFormat::Mp4);
    }
    if head.starts_with(b"ID3") {
        return Some(AudioFormat::Mp3);
    }
    if crate::mp3scan::looks_like_mp3(head) {
        return Some(AudioFormat::Mp3);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip() {
        for f in AudioFormat::ALL {
            assert_eq!(AudioFormat::from_param(f.name()), Some(f));
            assert_eq!(AudioFormat::from_param(f.extension()), Some(f));
        }
        assert_eq!(AudioFormat::from_param("M4A"), Some(AudioFormat::Mp4));
        assert_eq!(AudioFormat::from_param("mulaw"), Some(AudioFormat::Ulaw));
        assert_eq!(AudioFormat::from_param("aiff"), None);
    }

    #[test]
    fn content_types_follow_the_seed() {
        assert_eq!(AudioFormat::Alaw.content_type(), "audio/basic");
        assert_eq!(AudioFormat::G722.content_type(), "audio/G722");
        assert_eq!(AudioFormat::Mp4.content_type(), "video/mp4");
        assert_eq!(AudioFormat::Wav.content_type(), "audio/x-wav");
    }
}
