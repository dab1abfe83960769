//! Errors of the domain rules: every one is the client's fault and names a field.

/// A rule the request broke. The HTTP edge maps each variant to one status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// Malformed or out-of-range input (400).
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// No such object for this caller (404). Someone else's object is reported the same way.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The object's state forbids the change (409).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// The body is larger than allowed (413).
    #[error("{field}: {message}")]
    TooLarge { field: String, message: String },
    /// Audio was needed and this is not audio (415).
    #[error("{field}: {message}")]
    NotAudio { field: String, message: String },
    /// A valid request the object's rules refuse (422).
    #[error("{field}: {message}")]
    Validation {
        field: String,
        message: String,
        reference_sid: Option<String>,
    },
    /// A quota or threshold would be exceeded (429).
    #[error("{field}: {message}")]
    QuotaExceeded { field: String, message: String },
}

impl DomainError {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A 422 naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field: field.into(),
            message: message.into(),
            reference_sid: None,
        }
    }

    /// A 429 naming `field`.
    pub fn quota(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::QuotaExceeded {
            field: field.into(),
            message: message.into(),
        }
    }
}
