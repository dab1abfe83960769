//! The one error type of the media layer.
//!
//! Variants keep client faults (unsupported format, malformed input, a limit
//! reached) apart from server faults (I/O, encoder failure) so the HTTP layer
//! can map them to 415/422 versus 5xx without string matching.

use std::io;

/// Everything that can go wrong while probing, decoding or transcoding.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The format (requested target, hint, or detected input) is not one we handle.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// The input claims to be a format we handle but cannot be decoded.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// The input exceeds a configured limit (channels, sample rate, duration, header size).
    #[error("limit reached: {0}")]
    Limit(String),
    /// Reading the input or writing the output failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The caller asked us to stop.
    #[error("cancelled")]
    Cancelled,
    /// An encoder rejected its configuration or failed mid-stream (a server fault).
    #[error("encoder failure: {0}")]
    Encoder(String),
}

impl MediaError {
    /// True when the error is the input's or the request's fault rather than ours.
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            MediaError::Unsupported(_) | MediaError::Malformed(_) | MediaError::Limit(_)
        )
    }

    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        MediaError::Malformed(msg.into())
    }

    pub(crate) fn encoder(msg: impl std::fmt::Display) -> Self {
        MediaError::Encoder(msg.to_string())
    }
}

/// A copy for every request waiting on one shared conversion. `io::Error` is not `Clone`: the
/// copy keeps its kind and message, which is all a caller looks at.
impl Clone for MediaError {
    fn clone(&self) -> Self {
        match self {
            MediaError::Unsupported(m) => MediaError::Unsupported(m.clone()),
            MediaError::Malformed(m) => MediaError::Malformed(m.clone()),
            MediaError::Limit(m) => MediaError::Limit(m.clone()),
            MediaError::Io(e) => MediaError::Io(io::Error::new(e.kind(), e.to_string())),
            MediaError::Cancelled => MediaError::Cancelled,
            MediaError::Encoder(m) => MediaError::Encoder(m.clone()),
        }
    }
}

/// Maps symphonia's error kinds onto ours, keeping limit and unsupported apart
/// from plain corruption.
impl From<symphonia::core::errors::Error> for MediaError {
    fn from(e: symphonia::core::errors::Error) -> Self {
        use symphonia::core::errors::Error as S;
        match e {
            // An I/O error from symphonia's reader is almost always "ran off the end of a
            // truncated file"; real disk errors surface from our own reads first.
            S::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                MediaError::Malformed("unexpected end of file".into())
            }
            S::IoError(e) => MediaError::Io(e),
            S::DecodeError(m) => MediaError::Malformed(m.to_string()),
            S::SeekError(k) => MediaError::Malformed(format!("seek failed: {k:?}")),
            S::Unsupported(m) => MediaError::Unsupported(m.to_string()),
            S::LimitError(m) => MediaError::Limit(m.to_string()),
            S::ResetRequired => MediaError::Malformed("stream changed parameters mid-way".into()),
        }
    }
}
