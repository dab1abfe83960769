//! Pure-Rust telephony codecs: G.711 and G.722.
