//! Just enough ISO-BMFF parsing to read an audio track's edit list, which
//! symphonia 0.5 parses but does not apply: AAC encoders put their priming
//! samples before the edit, and a gapless decode must drop them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::format::AudioFormat;

/// Samples to drop at the start and the duration to keep, in the track's sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EditTrim {
    pub skip_frames: u64,
    pub keep_frames: Option<u64>,
}

impl EditTrim {
    /// Frames left of a stream of `n` once the edit is applied.
    pub(crate) fn apply(&self, n: u64) -> u64 {
        let n = n.saturating_sub(self.skip_frames);
        self.keep_frames.map_or(n, |k| k.min(n))
    }
}

/// The edit of the file at `path` when it is an MP4, read through a handle of its own
/// (symphonia's stream assumes it owns the other handle's position); `None` for other formats.
pub(crate) fn edit_trim_of(
    path: &Path,
    format: AudioFormat,
    file_len: u64,
    rate: u32,
) -> std::io::Result<Option<EditTrim>> {
    if format != AudioFormat::Mp4 {
        return Ok(None);
    }
    let mut f = File::open(path)?;
    Ok(read_edit_trim(&mut f, file_len, rate))
}

/// Deepest box nesting we walk (moov/trak/edts/elst is 4).
const MAX_BOXES: usize = 4096;

/// Finds the first track's single edit (if any) and converts it to frames at `rate`.
/// Any parse trouble answers `None`: the edit list is an optimisation, not a requirement.
pub(crate) fn read_edit_trim<R: Read + Seek>(
    r: &mut R,
    file_len: u64,
    rate: u32,
) -> Option<EditTrim> {
    let moov = find_child(r, 0, file_len, b"moov")?;
    let mvhd = find_child(r, moov.0, moov.1, b"mvhd")?;
    let movie_scale = read_timescale(r, mvhd.0)?;
    let trak = find_child(r, moov.0, moov.1, b"trak")?;
    let mdia = find_child(r, trak.0, trak.1, b"mdia")?;
    let mdhd = find_child(r, mdia.0, mdia.1, b"mdhd")?;
    let media_scale = read_timescale(r, mdhd.0)?;
    let edts = find_child(r, trak.0, trak.1, b"edts")?;
    let elst = find_child(r, edts.0, edts.1, b"elst")?;
    r.seek(SeekFrom::Start(elst.0)).ok()?;
    let mut vf = [0u8; 8];
    r.read_exact(&mut vf).ok()?;
    let version = vf[0];
    let count = u32::from_be_bytes([vf[4], vf[5], vf[6], vf[7]]);
    if count != 1 || movie_scale == 0 || media_scale == 0 {
        return None;
    }
    let (seg, media_time) = if version == 1 {
        let mut b = [0u8; 16];
        r.read_exact(&mut b).ok()?;
        let seg = u64::from_be_bytes(b[0..8].try_into().ok()?);
        let mt = i64::from_be_bytes(b[8..16].try_into().ok()?);
        (seg, mt)
    } else {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).ok()?;
        let seg = u64::from(u32::from_be_bytes(b[0..4].try_into().ok()?));
        let mt = i64::from(i32::from_be_bytes(b[4..8].try_into().ok()?));
        (seg, mt)
    };
    if media_time < 0 {
        return None;
    }
    let to_frames = |v: u64, scale: u32| -> u64 {
        (u128::from(v) * u128::from(rate) / u128::from(scale)).min(u128::from(u64::MAX)) as u64
    };
    Some(EditTrim {
        skip_frames: to_frames(media_time as u64, media_scale),
        keep_frames: (seg > 0).then(|| to_frames(seg, movie_scale)),
    })
}

/// Returns (payload start, payload end) of the first child box named `name`
/// inside the byte range [start, end).
fn find_child<R: Read + Seek>(
    r: &mut R,
    start: u64,
    end: u64,
    name: &[u8; 4],
) -> Option<(u64, u64)> {
    find_box(r, start, end, name).map(|(_, payload, box_end)| (payload, box_end))
}

/// Returns (box start, payload start, box end) of the first box named `name`
/// among the boxes laid end to end in the byte range [start, end).
pub(crate) fn find_box<R: Read + Seek>(
    r: &mut R,
    start: u64,
    end: u64,
    name: &[u8; 4],
) -> Option<(u64, u64, u64)> {
    let mut pos = start;
    for _ in 0..MAX_BOXES {
        if pos.checked_add(8)? > end {
            return None;
        }
        r.seek(SeekFrom::Start(pos)).ok()?;
        let mut h = [0u8; 8];
        r.read_exact(&mut h).ok()?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (size, header) = match size32 {
            0 => (end - pos, 8),
            1 => {
                let mut b = [0u8; 8];
                r.read_exact(&mut b).ok()?;
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header || pos.checked_add(size)? > end {
            return None;
        }
        if &h[4..8] == name {
            return Some((pos, pos + header, pos + size));
        }
        pos += size;
    }
    None
}

/// Timescale of an mvhd/mdhd full box whose payload starts at `at`.
fn read_timescale<R: Read + Seek>(r: &mut R, at: u64) -> Option<u32> {
    r.seek(SeekFrom::Start(at)).ok()?;
    let mut v = [0u8; 4];
    r.read_exact(&mut v).ok()?;
    // version 1: 8-byte creation and modification times; version 0: 4-byte.
    let skip = if v[0] == 1 { 16 } else { 8 };
    r.seek(SeekFrom::Current(skip)).ok()?;
    let mut t = [0u8; 4];
    r.read_exact(&mut t).ok()?;
    Some(u32::from_be_bytes(t))
}
