//! Pure-Rust telephony codecs: G.711 (A-law, µ-law) and G.722 (64 kbit/s).
//!
//! Every encoder and decoder here is bit-exact with ffmpeg's (`pcm_alaw`,
//! `pcm_mulaw`, `g722` without trellis); the known-answer tests in `tests/`
//! check that against vectors made by `fixtures/make_codec_vectors.sh`.
//!
//! All codecs are streaming: state is carried across calls, so input may be
//! fed in blocks of any size, and output is appended to a caller-owned `Vec`.
#![forbid(unsafe_code)]

pub mod g711;
pub mod g722;
