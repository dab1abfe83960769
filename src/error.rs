//! The service layer's error: a domain rule, or a failure of a layer below.

use mediastore_media::MediaError;

use crate::domain::DomainError;
use crate::metrics::Refusal;
use crate::store::{BlobError, MetaError};

/// Anything a service operation can fail with. `http::error` maps it to a status, once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Meta(MetaError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The transcoding pool is full; the client should retry later.
    #[error("transcoding capacity is full")]
    Busy,
    /// The media layer could not convert audio. `field` names the parameter that asked for the
    /// conversion; whether it is the input's fault is the media layer's to say
    /// ([`MediaError::is_client_fault`]), so the kind travels unchanged to `http::error`.
    #[error("{field}: {source}")]
    Media {
        field: &'static str,
        source: MediaError,
    },
    /// Too many operations of one kind are in progress for one customer (uploads or
    /// conversions); the client should retry later.
    #[error("{what} in progress for this customer at the limit of {limit}")]
    CustomerBusy { what: &'static str, limit: usize },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The client went away or sent a broken body mid-upload.
    #[error("request body: {0}")]
    Body(String),
}

impl From<MetaError> for Error {
    fn from(e: MetaError) -> Self {
        match e {
            // A rule refused inside a transaction is still the client's fault.
            MetaError::Rule(d) => Error::Domain(d),
            other => Error::Meta(other),
        }
    }
}

/// Result of a service operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a rule refused an upload, for `mediastore_upload_refusals_total`; `None` for errors that
/// are not such a refusal (bad input, a missing container, a server fault).
pub fn refusal(e: &DomainError) -> Option<Refusal> {
    match e {
        DomainError::TooLarge { .. } => Some(Refusal::Size),
        DomainError::QuotaExceeded { field, .. } if field == "threshold" => {
            Some(Refusal::Threshold)
        }
        DomainError::QuotaExceeded { .. } => Some(Refusal::Quota),
        DomainError::Validation { field, .. } if field == "content_classification" => {
            Some(Refusal::Classification)
        }
        _ => None,
    }
}
