//! Probe and fully decode arbitrary bytes, under every hint (first byte picks one).
//! Any panic, hang or runaway allocation is a finding; errors are fine.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use mediastore_media::{open_decoder, probe, Limits};

const HINTS: [Option<&str>; 8] = [None, Some("wav"), Some("mp3"), Some("flac"), Some("ogg"), Some("m4a"), Some("al"), Some("g722")];

fuzz_target!(
    init: {
        // The library contains panics from symphonia with catch_unwind (they become
        // Malformed errors). libfuzzer-sys's hook would abort on those before the
        // unwind reaches our guard, so install a quiet hook: a panic that escapes the
        // library still reaches libfuzzer-sys's own catch_unwind, which aborts and
        // records the input.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let hint = HINTS[usize::from(sel) % HINTS.len()];
    let Ok(mut f) = tempfile::NamedTempFile::new() else { return };
    if f.write_all(body).is_err() {
        return;
    }
    let path = f.path();
    let _ = probe(path, hint);
    // A short duration limit keeps each run fast; the limit path is exercised too.
    let limits = Limits { max_duration_ms: 60_000, ..Limits::default() };
    if let Ok((_, mut src)) = open_decoder(path, hint, &limits) {
        let mut buf = Vec::new();
        while let Ok(true) = src.next_block(&mut buf) {
            buf.clear();
        }
    }
}
);
