#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mediastore::fuzz::file_object(data));
