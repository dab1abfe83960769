//! Resource limits applied to every decode, as named values the server can override.

/// Most channels we decode; more is rejected as a limit rather than mixed down.
pub const MAX_CHANNELS: u16 = 8;
/// Highest input sample rate accepted.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Longest input we decode (6 hours), whatever its headers claim.
pub const MAX_DURATION_MS: u64 = 6 * 3600 * 1000;
/// Largest single decoded packet we accept, in frames; guards against headers
/// that claim absurd block sizes.
pub const MAX_PACKET_FRAMES: usize = 1 << 20;

/// Limits for one probe/decode/transcode call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_CHANNELS`].
    pub max_channels: u16,
    /// See [`MAX_SAMPLE_RATE`].
    pub max_sample_rate: u32,
    /// See [`MAX_DURATION_MS`]; decoding stops with [`crate::MediaError::Limit`] past it.
    pub max_duration_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_channels: MAX_CHANNELS,
            max_sample_rate: MAX_SAMPLE_RATE,
            max_duration_ms: MAX_DURATION_MS,
        }
    }
}

impl Limits {
    /// Most frames at `rate` that fit in the duration limit.
    pub fn max_frames(&self, rate: u32) -> u64 {
        self.max_duration_ms.saturating_mul(u64::from(rate)) / 1000
    }
}
