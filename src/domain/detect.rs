//! What a file is: `content_format`, `mime_type` and `content_classification`, decided from the
//! bytes first (magic numbers), then the name's extension, then what the client declared.

use super::model::Classification;

/// The detected kind of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub content_format: String,
    pub mime_type: String,
    pub classification: Classification,
}

impl Detected {
    fn new(format: &str, mime: &str, class: Classification) -> Self {
        Detected {
            content_format: format.into(),
            mime_type: mime.into(),
            classification: class,
        }
    }
}

/// How many leading bytes `detect` looks at.
pub const SNIFF_LEN: usize = 4096;

/// Decides the kind of a file from its first bytes (`head`, up to [`SNIFF_LEN`]), its name and
/// the client's declared MIME type and format. Bytes win: executable bytes stay executable
/// whatever the name says.
pub fn detect(
    head: &[u8],
    name: Option<&str>,
    declared_mime: Option<&str>,
    declared_format: Option<&str>,
) -> Detected {
    if let Some(d) = sniff(head) {
        return d;
    }
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    if let Some(d) = ext.as_deref().and_then(by_extension) {
        return d;
    }
    if let Some(d) = declared_format
        .map(str::to_ascii_lowercase)
        .as_deref()
        .and_then(by_extension)
    {
        return d;
    }
    if let Some(d) = declared_mime.and_then(by_mime) {
        return d;
    }
    if !head.is_empty() && looks_like_text(head) {
        return Detected::new("txt", "text/plain", Classification::Document);
    }
    Detected::new(
        "unknown",
        "application/octet-stream",
        Classification::Unknown,
    )
}

fn sniff(h: &[u8]) -> Option<Detected> {
    use Classification::*;
    let starts = |m: &[u8]| h.starts_with(m);
    let at = |off: usize, m: &[u8]| h.len() >= off + m.len() && &h[off..off + m.len()] == m;
    // Executables first: nothing else may mask them.
    if starts(b"\x7fELF") {
        return Some(Detected::new("elf", "application/x-executable", Executable));
    }
    if starts(b"MZ") {
        return Some(Detected::new(
            "exe",
            "application/vnd.microsoft.portable-executable",
            Executable,
        ));
    }
    for m in [
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
    ] {
        if starts(m) {
            return Some(Detected::new(
                "macho",
                "application/x-mach-binary",
                Executable,
            ));
        }
    }
    if starts(b"\xca\xfe\xba\xbe") {
        return Some(Detected::new(
            "macho",
            "application/x-mach-binary",
            Executable,
        ));
    }
    if starts(b"#!") {
        return Some(Detected::new("script", "text/x-shellscript", Executable));
    }
    if starts(b"\0asm") {
        return Some(Detected::new("wasm", "application/wasm", Executable));
    }
    // Audio and video.
    if starts(b"RIFF") && at(8, b"WAVE") {
        return Some(Detected::new("wav", "audio/x-wav", Media));
    }
    if starts(b"RIFF") && at(8, b"AVI ") {
        return Some(Detected::new("avi", "video/x-msvideo", Media));
    }
    if starts(b"RIFF") && at(8, b"WEBP") {
        return Some(Detected::new("webp", "image/webp", Media));
    }
    if starts(b"ID3") || is_mpeg_audio_frame(h) {
        return Some(Detected::new("mp3", "audio/mpeg", Media));
    }
    if starts(b"OggS") {
        return Some(Detected::new("ogg", "audio/ogg", Media));
    }
    if starts(b"fLaC") {
        return Some(Detected::new("flac", "audio/flac", Media));
    }
    if at(4, b"ftyp") {
        let brand = h.get(8..12).unwrap_or_default();
        return Some(match brand {
            b"M4A " | b"M4B " => Detected::new("mp4", "audio/mp4", Media),
            b"qt  " => Detected::new("mov", "video/quicktime", Media),
            b"heic" | b"heix" | b"mif1" => Detected::new("heic", "image/heic", Media),
            _ => Detected::new("mp4", "video/mp4", Media),
        });
    }
    if starts(b"\x1a\x45\xdf\xa3") {
        return Some(Detected::new("webm", "video/webm", Media));
    }
    if starts(b".snd") {
        return Some(Detected::new("au", "audio/basic", Media));
    }
    if starts(b"FORM") && at(8, b"AIFF") {
        return Some(Detected::new("aiff", "audio/aiff", Media));
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some(Detected::new("png", "image/png", Media));
    }
    if starts(b"\xff\xd8\xff") {
        return Some(Detected::new("jpg", "image/jpeg", Media));
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some(Detected::new("gif", "image/gif", Media));
    }
    // Documents.
    if starts(b"%PDF-") {
        return Some(Detected::new("pdf", "application/pdf", Document));
    }
    if starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Some(Detected::new("doc", "application/msword", Document));
    }
    if starts(b"{\\rtf") {
        return Some(Detected::new("rtf", "application/rtf", Document));
    }
    if starts(b"PK\x03\x04") {
        return Some(zip_kind(h));
    }
    // Archives.
    if starts(b"\x1f\x8b") {
        return Some(Detected::new("gz", "application/gzip", Archive));
    }
    if starts(b"7z\xbc\xaf\x27\x1c") {
        return Some(Detected::new("7z", "application/x-7z-compressed", Archive));
    }
    if starts(b"Rar!\x1a\x07") {
        return Some(Detected::new("rar", "application/vnd.rar", Archive));
    }
    if starts(b"BZh") {
        return Some(Detected::new("bz2", "application/x-bzip2", Archive));
    }
    if starts(b"\xfd7zXZ\0") {
        return Some(Detected::new("xz", "application/x-xz", Archive));
    }
    if starts(b"\x28\xb5\x2f\xfd") {
        return Some(Detected::new("zst", "application/zstd", Archive));
    }
    if at(257, b"ustar") {
        return Some(Detected::new("tar", "application/x-tar", Archive));
    }
    None
}

/// ZIP containers: Office Open XML and OpenDocument are documents, Java archives executables.
fn zip_kind(h: &[u8]) -> Detected {
    use Classification::*;
    let contains = |needle: &[u8]| h.windows(needle.len()).any(|w| w == needle);
    if contains(b"mimetypeapplication/vnd.oasis.opendocument") {
        return Detected::new("odf", "application/vnd.oasis.opendocument", Document);
    }
    if contains(b"word/") {
        return Detected::new(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Document,
        );
    }
    if contains(b"xl/") {
        return Detected::new(
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Document,
        );
    }
    if contains(b"ppt/") {
        return Detected::new(
            "pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            Document,
        );
    }
    if contains(b"[Content_Types].xml") {
        return Detected::new(
            "ooxml",
            "application/vnd.openxmlformats-officedocument",
            Document,
        );
    }
    if contains(b"META-INF/MANIFEST.MF") || contains(b"classes.dex") {
        return Detected::new("jar", "application/java-archive", Executable);
    }
    Detected::new("zip", "application/zip", Archive)
}

/// An MPEG audio frame header (layer I–III) at the very start, with a sane bitrate and rate.
fn is_mpeg_audio_frame(h: &[u8]) -> bool {
    if h.len() < 4 || h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return false;
    }
    let version = (h[1] >> 3) & 3;
    let layer = (h[1] >> 1) & 3;
    let bitrate = h[2] >> 4;
    let rate = (h[2] >> 2) & 3;
    version != 1 && layer != 0 && bitrate != 0 && bitrate != 15 && rate != 3
}

fn by_extension(ext: &str) -> Option<Detected> {
    use Classification::*;
    let d = match ext {
        "wav" => Detected::new("wav", "audio/x-wav", Media),
        "mp3" => Detected::new("mp3", "audio/mpeg", Media),
        "ogg" | "oga" | "opus" => Detected::new("ogg", "audio/ogg", Media),
        "flac" => Detected::new("flac", "audio/flac", Media),
        "mp4" | "m4a" => Detected::new("mp4", "video/mp4", Media),
        "g722" => Detected::new("g722", "audio/G722", Media),
        "al" | "alaw" => Detected::new("alaw", "audio/basic", Media),
        "ul" | "ulaw" | "mulaw" => Detected::new("ulaw", "audio/basic", Media),
        "png" => Detected::new("png", "image/png", Media),
        "jpg" | "jpeg" => Detected::new("jpg", "image/jpeg", Media),
        "pdf" => Detected::new("pdf", "application/pdf", Document),
        "txt" => Detected::new("txt", "text/plain", Document),
        "csv" => Detected::new("csv", "text/csv", Document),
        "json" => Detected::new("json", "application/json", Document),
        "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "odt" | "ods" | "odp" | "rtf" => {
            Detected::new(ext, "application/octet-stream", Document)
        }
        "zip" | "tar" | "gz" | "tgz" | "7z" | "rar" | "bz2" | "xz" => {
            Detected::new(ext, "application/octet-stream", Archive)
        }
        "exe" | "dll" | "msi" | "sh" | "bat" | "cmd" | "com" | "bin" | "elf" | "so" | "jar"
        | "apk" => Detected::new(ext, "application/octet-stream", Executable),
        _ => return None,
    };
    Some(d)
}

fn by_mime(mime: &str) -> Option<Detected> {
    use Classification::*;
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let format = match essence.as_str() {
        "audio/x-wav" | "audio/wav" | "audio/wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "audio/g722" => "g722",
        "video/mp4" | "audio/mp4" => "mp4",
        _ => {
            let class = if essence.starts_with("audio/")
                || essence.starts_with("video/")
                || essence.starts_with("image/")
            {
                Media
            } else if essence.starts_with("text/") {
                Document
            } else {
                return None;
            };
            return Some(Detected::new("unknown", mime, class));
        }
    };
    Some(Detected::new(format, mime, Media))
}

fn looks_like_text(h: &[u8]) -> bool {
    std::str::from_utf8(h).is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()))
        || h.iter()
            .all(|&b| b == b'\t' || b == b'\n' || b == b'\r' || (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(head: &[u8], name: &str) -> Classification {
        detect(head, Some(name), None, None).classification
    }

    #[test]
    fn bytes_win_over_the_name() {
        assert_eq!(
            class(b"\x7fELF\x02\x01\x01", "greeting.wav"),
            Classification::Executable
        );
        assert_eq!(class(b"MZ\x90\0", "song.mp3"), Classification::Executable);
        assert_eq!(
            class(b"#!/bin/sh\necho", "a.txt"),
            Classification::Executable
        );
    }

    #[test]
    fn audio_formats() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        wav.extend_from_slice(&[0; 16]);
        assert_eq!(detect(&wav, None, None, None).content_format, "wav");
        assert_eq!(detect(b"ID3\x04", None, None, None).content_format, "mp3");
        assert_eq!(
            detect(b"\xff\xfb\x90\x64", None, None, None).content_format,
            "mp3"
        );
        assert_eq!(detect(b"fLaC", None, None, None).content_format, "flac");
        assert_eq!(detect(b"OggS", None, None, None).content_format, "ogg");
        assert_eq!(
            detect(b"\0\0\0\x20ftypM4A ", None, None, None).content_format,
            "mp4"
        );
    }

    #[test]
    fn raw_audio_by_extension_or_declared_format() {
        let raw = [0x55u8, 0xd5, 0x13, 0x99];
        assert_eq!(
            detect(&raw, Some("call.g722"), None, None).mime_type,
            "audio/G722"
        );
        assert_eq!(
            detect(&raw, Some("x"), None, Some("alaw")).content_format,
            "alaw"
        );
        assert_eq!(detect(&raw, None, None, None).content_format, "unknown");
    }

    #[test]
    fn documents_and_archives() {
        assert_eq!(class(b"%PDF-1.7", "x"), Classification::Document);
        assert_eq!(
            class(b"PK\x03\x04....word/document.xml", "x"),
            Classification::Document
        );
        assert_eq!(class(b"PK\x03\x04....other", "x"), Classification::Archive);
        assert_eq!(class(b"\x1f\x8b\x08", "x"), Classification::Archive);
        assert_eq!(class(b"hello world\n", "notes"), Classification::Document);
    }
}
