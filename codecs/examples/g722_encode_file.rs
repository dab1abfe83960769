//! Encodes a raw 16 kHz s16le mono file to raw G.722, like
//! `ffmpeg -f s16le -ar 16000 -ac 1 -i IN -c:a g722 -f g722 OUT`.
//! Used to compare end-to-end time and output with ffmpeg (see README).
//!
//! Usage: cargo run --release -p mediastore-codecs --example g722_encode_file -- IN OUT

use mediastore_codecs::g722::Encoder;
use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: g722_encode_file IN.s16 OUT.g722");
        std::process::exit(2);
    };
    let mut reader = std::io::BufReader::new(std::fs::File::open(input)?);
    let mut writer = std::io::BufWriter::new(std::fs::File::create(output)?);
    let mut enc = Encoder::new();
    let mut raw = vec![0u8; 64 * 1024];
    let mut pcm = Vec::with_capacity(raw.len() / 2);
    let mut coded = Vec::with_capacity(raw.len() / 4 + 1);
    let mut carry: Option<u8> = None; // odd byte split across reads
    loop {
        let n = reader.read(&mut raw)?;
        if n == 0 {
            break;
        }
        pcm.clear();
        let mut bytes = &raw[..n];
        if let Some(lo) = carry.take() {
            pcm.push(i16::from_le_bytes([lo, bytes[0]]));
            bytes = &bytes[1..];
        }
        let chunks = bytes.chunks_exact(2);
        carry = chunks.remainder().first().copied();
        pcm.extend(chunks.map(|b| i16::from_le_bytes([b[0], b[1]])));
        coded.clear();
        enc.encode(&pcm, &mut coded);
        writer.write_all(&coded)?;
    }
    coded.clear();
    enc.finish(&mut coded);
    writer.write_all(&coded)?;
    writer.flush()
}
