//! The fuzz targets' checks (`mediastore::fuzz`) on stable: every input kept in
//! `fuzz/regressions/<target>/` (findings of past runs), then fixed-seed inputs, half random
//! bytes and half strings built from each parser's own tokens, so a failure replays exactly.
#![allow(clippy::unwrap_used)]

use mediastore::fuzz;

/// Inputs per target and run: a few seconds in a debug build.
const CASES: usize = 20_000;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `CASES` inputs for a parser whose grammar is made of `tokens`, from a fixed seed.
fn inputs<'a>(seed: u64, tokens: &'a [&'a str]) -> impl Iterator<Item = Vec<u8>> + 'a {
    let mut rng = XorShift(seed);
    (0..CASES).map(move |_| {
        let mut out = rng.next().to_le_bytes().to_vec();
        if rng.next() & 1 == 0 {
            let n = rng.below(64);
            out.extend((0..n).map(|_| rng.next() as u8));
        } else {
            for _ in 0..rng.below(24) {
                out.extend_from_slice(tokens[rng.below(tokens.len())].as_bytes());
            }
        }
        out
    })
}

fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/fuzz/regressions/{target}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn check(target: &str, seed: u64, tokens: &[&str], f: fn(&[u8])) {
    for input in regressions(target) {
        f(&input);
    }
    for input in inputs(seed, tokens) {
        let ok = std::panic::catch_unwind(|| f(&input));
        assert!(ok.is_ok(), "{target} failed on {input:?}");
    }
}

#[test]
fn range_header_parser_keeps_its_invariants() {
    let tokens = [
        "bytes=",
        "BYTES=",
        "items=",
        "0",
        "1",
        "9",
        "18446744073709551615",
        "99999999999999999999",
        "-",
        ",",
        " ",
        "\t",
        "=",
        "-0",
        "0-",
        ", ",
    ];
    check("range_header", 0x5eed_0001, &tokens, fuzz::range_header);
}

#[test]
fn conditional_header_parsers_keep_their_invariants() {
    let tokens = [
        "\"abc-1\"",
        "W/\"abc-1\"",
        "\"x\"",
        "*",
        ",",
        " ",
        "\n",
        "W/",
        "\"",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ];
    check(
        "conditional_headers",
        0x5eed_0002,
        &tokens,
        fuzz::conditional_headers,
    );
}

#[test]
fn query_override_parsers_keep_their_invariants() {
    let tokens = [
        "disposition=",
        "disposition_name=",
        "content_type=",
        "cache_headers=",
        "cache_control=",
        "f=",
        "br=",
        "&",
        "=",
        "inline",
        "attachment",
        "no",
        "60",
        "-1",
        "%",
        "%FF",
        "%22",
        "%0D%0A",
        "+",
        "mp3",
        "wav",
        "32",
        "public",
        "no-store",
        "\u{e9}",
        "\"",
        ";",
        "/",
    ];
    check(
        "query_overrides",
        0x5eed_0003,
        &tokens,
        fuzz::query_overrides,
    );
}

#[test]
fn file_object_parser_keeps_its_invariants() {
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"name\"",
        "\"tag\"",
        "\"expires_at\"",
        "\"publish\"",
        "\"desired_format\"",
        "\"desired_bitrate\"",
        "\"type\"",
        "\"audio\"",
        "\"unique\"",
        "\"integer_key_1\"",
        "\"x\"",
        "1",
        "-1",
        "1e999",
        "null",
        "true",
        "\"\\u0000\"",
        "\"2999-01-01T00:00:00Z\"",
        "name=",
        "&",
    ];
    check("file_object", 0x5eed_0004, &tokens, fuzz::file_object);
}

#[test]
fn multipart_body_parser_keeps_its_invariants() {
    let tokens = [
        "--X",
        "--X--",
        "\r\n",
        "Content-Disposition: form-data; name=\"file_object\"",
        "Content-Disposition: form-data; name=\"data\"; filename=\"a.wav\"",
        "Content-Type: application/json",
        "{\"name\":\"a\"}",
        "--",
        "X",
        ";",
        "\"",
    ];
    check("multipart_body", 0x5eed_0005, &tokens, fuzz::multipart_body);
}
