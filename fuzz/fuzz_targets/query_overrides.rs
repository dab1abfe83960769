#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mediastore::fuzz::query_overrides(data));
