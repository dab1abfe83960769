//! G.722 throughput in (16 kHz) samples per second: two samples per byte.
//!
//! Input: the committed 2 s speech vector (real signal statistics for the
//! quantiser search), encoded/decoded per iteration into a reused buffer with
//! a fresh codec state, in 320-sample (20 ms) blocks as a VoIP pipeline feeds it.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mediastore_codecs::g722::{Decoder, Encoder};

fn speech() -> Vec<i16> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/codecs/speech_16000.s16"
    );
    std::fs::read(path)
        .expect("fixtures/codecs/speech_16000.s16 (run fixtures/make_codec_vectors.sh)")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn bench(c: &mut Criterion) {
    let pcm = speech();
    let mut g = c.benchmark_group("g722");
    g.throughput(Throughput::Elements(pcm.len() as u64));

    let mut bytes = Vec::with_capacity(pcm.len() / 2);
    g.bench_function("encode", |b| {
        b.iter(|| {
            bytes.clear();
            let mut enc = Encoder::new();
            for block in black_box(&pcm).chunks(320) {
                enc.encode(block, &mut bytes);
            }
            enc.finish(&mut bytes);
        })
    });

    let mut coded = Vec::new();
    let mut enc = Encoder::new();
    enc.encode(&pcm, &mut coded);
    let mut out = Vec::with_capacity(pcm.len());
    g.bench_function("decode", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = Decoder::new();
            for block in black_box(&coded).chunks(160) {
                dec.decode(block, &mut out);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
