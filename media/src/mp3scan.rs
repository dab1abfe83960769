//! MPEG audio Layer III frame headers: detection and the cheap duration scan
//! `probe` uses instead of decoding (ISO/IEC 11172-3 §2.4.2.3, 13818-3 for the
//! MPEG-2/2.5 low rates; Xing/Info and LAME tags as documented by the LAME project).

use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Layer III bitrates in kbit/s, by bitrate index; row 0 MPEG-1, row 1 MPEG-2/2.5.
#[rustfmt::skip]
const BITRATES: [[u32; 16]; 2] = [
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0],
];
/// MPEG-1 sample rates by index; MPEG-2 halves them, MPEG-2.5 quarters them.
const RATES_MPEG1: [u32; 3] = [44_100, 48_000, 32_000];

/// One parsed Layer III frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub mpeg1: bool,
    pub sample_rate: u32,
    pub bitrate_kbps: u32,
    pub channels: u16,
    /// Whole frame length in bytes, header included.
    pub frame_len: usize,
    /// PCM frames per MPEG frame: 1152 (MPEG-1) or 576.
    pub samples: u32,
}

/// Parses a Layer III header; free-format and reserved values are rejected.
pub(crate) fn parse_header(b: &[u8]) -> Option<FrameHeader> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b[1] >> 3) & 3; // 0 = 2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1
    let layer = (b[1] >> 1) & 3; // 1 = Layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let br_idx = usize::from(b[2] >> 4);
    let sr_idx = usize::from((b[2] >> 2) & 3);
    if br_idx == 0 || br_idx == 15 || sr_idx == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    let bitrate_kbps = BITRATES[usize::from(!mpeg1)][br_idx];
    let sample_rate = match version {
        3 => RATES_MPEG1[sr_idx],
        2 => RATES_MPEG1[sr_idx] / 2,
        _ => RATES_MPEG1[sr_idx] / 4,
    };
    let padding = u32::from((b[2] >> 1) & 1);
    let channels = if b[3] >> 6 == 3 { 1 } else { 2 };
    let (samples, coeff) = if mpeg1 { (1152, 144) } else { (576, 72) };
    let frame_len = (coeff * bitrate_kbps * 1000 / sample_rate + padding) as usize;
    Some(FrameHeader {
        mpeg1,
        sample_rate,
        bitrate_kbps,
        channels,
        frame_len,
        samples,
    })
}

/// True when `head` holds two consecutive valid frame headers within its first 4 KiB,
/// with matching sample rate and channel count (one sync word alone is too common in
/// random data).
pub(crate) fn looks_like_mp3(head: &[u8]) -> bool {
    let limit = head.len().min(4096);
    (0..limit).any(|i| first_frame_at(head, i).is_some())
}

fn first_frame_at(buf: &[u8], i: usize) -> Option<FrameHeader> {
    let h = parse_header(buf.get(i..)?)?;
    let next = buf.get(i + h.frame_len..)?;
    let h2 = parse_header(next)?;
    (h2.sample_rate == h.sample_rate && h2.channels == h.channels).then_some(h)
}

/// Size of a leading ID3v2 tag (header and footer included), 0 when absent.
pub(crate) fn id3v2_len(head: &[u8]) -> u64 {
    if head.len() < 10 || &head[0..3] != b"ID3" {
        return 0;
    }
    // Syncsafe 28-bit size: 7 bits per byte.
    let size = head[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7F));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    10 + size + footer
}

/// What the quick scan found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mp3Scan {
    pub sample_rate: u32,
    pub channels: u16,
    /// Exact PCM frames (gapless when a LAME tag gives delay and padding).
    pub frames: u64,
    /// Bytes of audio frames (tags excluded), for the average bitrate.
    pub audio_bytes: u64,
    /// Nominal bitrate of the first audio frame, kbit/s.
    pub first_bitrate_kbps: u32,
}

/// Most bytes skipped looking for the first frame (after any ID3v2 tag).
const MAX_RESYNC: usize = 64 * 1024;

/// Scans an MP3: a Xing/Info/VBRI tag answers at once; otherwise every frame header
/// is read and its body skipped (no decoding).
pub(crate) fn scan<R: Read + Seek>(src: R, file_len: u64) -> io::Result<Option<Mp3Scan>> {
    let mut r = BufReader::with_capacity(64 * 1024, src);
    let mut head = [0u8; 10];
    let got = read_up_to(&mut r, &mut head)?;
    let skip = id3v2_len(&head[..got]);
    if skip >= file_len {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(skip))?;

    // Find the first frame confirmed by a second one.
    let mut window = vec![0u8; MAX_RESYNC + 4096];
    let n = read_up_to(&mut r, &mut window)?;
    let window = &window[..n];
    let Some((off, first)) =
        (0..n.min(MAX_RESYNC)).find_map(|i| first_frame_at(window, i).map(|h| (i, h)))
    else {
        return Ok(None);
    };
    let start = skip + off as u64;

    if let Some(tag) = window
        .get(off..off + first.frame_len)
        .and_then(|f| read_info_tag(f, &first))
    {
        if let Some(n_frames) = tag.frames {
            let total = u64::from(n_frames) * u64::from(first.samples);
            let trimmed = total.saturating_sub(u64::from(tag.delay) + u64::from(tag.padding));
            let audio_bytes = tag
                .bytes
                .map(u64::from)
                .unwrap_or(file_len.saturating_sub(start))
                .saturating_sub(first.frame_len as u64);
            return Ok(Some(Mp3Scan {
                sample_rate: first.sample_rate,
                channels: first.channels,
                frames: trimmed,
                audio_bytes,
                first_bitrate_kbps: first.bitrate_kbps,
            }));
        }
    }

    // No usable tag: walk the headers.
    r.seek(SeekFrom::Start(start))?;
    let mut pos = start;
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut hdr = [0u8; 4];
    loop {
        if pos + 4 > file_len || read_up_to(&mut r, &mut hdr)? < 4 {
            break;
        }
        let Some(h) = parse_header(&hdr) else { break };
        if h.sample_rate != first.sample_rate || pos + h.frame_len as u64 > file_len + 1 {
            break;
        }
        frames += u64::from(h.samples);
        bytes += h.frame_len as u64;
        pos += h.frame_len as u64;
        r.seek_relative(h.frame_len as i64 - 4)?;
    }
    Ok(Some(Mp3Scan {
        sample_rate: first.sample_rate,
        channels: first.channels,
        frames,
        audio_bytes: bytes,
        first_bitrate_kbps: first.bitrate_kbps,
    }))
}

struct InfoTag {
    frames: Option<u32>,
    bytes: Option<u32>,
    delay: u32,
    padding: u32,
}

/// Reads a Xing/Info tag (and its LAME extension) or a VBRI tag from the first frame.
fn read_info_tag(frame: &[u8], h: &FrameHeader) -> Option<InfoTag> {
    let side_info = match (h.mpeg1, h.channels) {
        (true, 1) => 17,
        (true, _) => 32,
        (false, 1) => 9,
        (false, _) => 17,
    };
    let x = 4 + side_info;
    let be32 = |o: usize| -> Option<u32> {
        frame
            .get(o..o + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match frame.get(x..x + 4) {
        Some(b"Xing") | Some(b"Info") => {
            let flags = be32(x + 4)?;
            let mut o = x + 8;
            let frames = if flags & 1 != 0 {
                o += 4;
                be32(o - 4)
            } else {
                None
            };
            let bytes = if flags & 2 != 0 {
                o += 4;
                be32(o - 4)
            } else {
                None
            };
            if flags & 4 != 0 {
                o += 100;
            }
            if flags & 8 != 0 {
                o += 4;
            }
            // LAME extension: 9-byte encoder string, then at +21 the 12-bit delay and padding.
            let (delay, padding) = match frame.get(o + 21..o + 24) {
                Some(d)
                    if frame.get(o..o + 4) == Some(b"LAME")
                        || frame.get(o..o + 4) == Some(b"Lavf")
                        || frame.get(o..o + 4) == Some(b"Lavc") =>
                {
                    let delay = (u32::from(d[0]) << 4) | (u32::from(d[1]) >> 4);
                    let padding = ((u32::from(d[1]) & 0x0F) << 8) | u32::from(d[2]);
                    (delay, padding)
                }
                _ => (0, 0),
            };
            Some(InfoTag {
                frames,
                bytes,
                delay,
                padding,
            })
        }
        _ => {
            // VBRI sits 32 bytes after the header, frames count at +14.
            if frame.get(36..40) == Some(b"VBRI") {
                Some(InfoTag {
                    frames: be32(36 + 14),
                    bytes: be32(36 + 10),
                    delay: 0,
                    padding: 0,
                })
            } else {
                None
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mpeg1_128k_header() {
        // 0xFFFB9064: MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo.
        let h = parse_header(&[0xFF, 0xFB, 0x90, 0x64]).expect("valid header");
        assert_eq!(
            (h.sample_rate, h.bitrate_kbps, h.channels, h.frame_len),
            (44_100, 128, 2, 417)
        );
    }

    #[test]
    fn rejects_reserved_values() {
        assert!(parse_header(&[0xFF, 0xFB, 0xF0, 0x64]).is_none());
        assert!(parse_header(&[0xFF, 0xEB, 0x90, 0x64]).is_none());
        assert!(parse_header(&[0xFF, 0xFB, 0x9C, 0x64]).is_none());
    }
}
