//! G.711 throughput in samples per second (one sample = one byte).
//!
//! Input: 1 s of 8 kHz pseudo-random PCM (so no branch predictor luck),
//! encoded/decoded per iteration into a reused buffer.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mediastore_codecs::g711;

/// Deterministic speech-like-amplitude test signal (xorshift noise).
fn signal(n: usize) -> Vec<i16> {
    let mut s = 0x2545_f491_u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 16) as i16
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pcm = signal(8000);
    let mut g = c.benchmark_group("g711");
    g.throughput(Throughput::Elements(pcm.len() as u64));

    let mut bytes = Vec::with_capacity(pcm.len());
    g.bench_function("alaw_encode", |b| {
        b.iter(|| {
            bytes.clear();
            g711::encode_alaw(black_box(&pcm), &mut bytes);
        })
    });
    g.bench_function("ulaw_encode", |b| {
        b.iter(|| {
            bytes.clear();
            g711::encode_ulaw(black_box(&pcm), &mut bytes);
        })
    });

    let mut alaw = Vec::new();
    g711::encode_alaw(&pcm, &mut alaw);
    let mut ulaw = Vec::new();
    g711::encode_ulaw(&pcm, &mut ulaw);
    let mut out = Vec::with_capacity(pcm.len());
    g.bench_function("alaw_decode", |b| {
        b.iter(|| {
            out.clear();
            g711::decode_alaw(black_box(&alaw), &mut out);
        })
    });
    g.bench_function("ulaw_decode", |b| {
        b.iter(|| {
            out.clear();
            g711::decode_ulaw(black_box(&ulaw), &mut out);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
