//! The only place errors become HTTP: the contract's JSON body and status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::DomainError;
use crate::error::Error;

/// One entry of the contract's `errors` list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, parameter or header at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// The existing file a `unique` conflict names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_sid: Option<String>,
}

/// An error response: status, headline and field errors.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
    pub content_range_len: Option<u64>,
    /// The rule that refused an upload, if that is what this is (counted by the upload handler).
    pub refusal: Option<crate::metrics::Refusal>,
}

/// Every error's body (the contract's error form).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": 404, "message": "not found",
    "errors": [{"field": "file_sid", "message": "file not found"}]}))]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    status: u16,
    message: String,
    errors: Vec<FieldError>,
}

impl ApiError {
    /// An error with a status and headline and no field.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
            retry_after: None,
            content_range_len: None,
            refusal: None,
        }
    }

    /// Adds a field error.
    pub fn field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: Some(field.into()),
            message: message.into(),
            reference_sid: None,
        });
        self
    }

    /// 400 naming a field.
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request").field(field, message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized")
            .field("Authorization", "a valid Bearer token is required")
    }

    /// 404 for a path that names nothing.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found").field("path", "no such resource")
    }

    /// 403 for a bad or expired signed link.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden").field("signature", message)
    }

    /// 503 with `Retry-After`.
    pub fn busy(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transcoding capacity is full",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 416 with `Content-Range: bytes */len`.
    pub fn unsatisfiable(len: u64) -> Self {
        let mut e = Self::new(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
            .field("Range", "no requested range overlaps the content");
        e.content_range_len = Some(len);
        e
    }

    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let (status, headline) = match &e {
            DomainError::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "bad request"),
            DomainError::NotFound { .. } => (StatusCode::NOT_FOUND, "not found"),
            DomainError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            DomainError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload too large"),
            DomainError::NotAudio { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported media type")
            }
            DomainError::Validation { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "object validation error")
            }
            DomainError::QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota exceeded"),
        };
        let mut out = ApiError::new(status, headline);
        out.refusal = crate::error::refusal(&e);
        match e {
            DomainError::NotFound { what } => out.errors.push(FieldError {
                field: Some(
                    match what {
                        "file" => "file_sid",
                        "container" => "container_sid",
                        "customer" => "customer_id",
                        other => other,
                    }
                    .to_string(),
                ),
                message: format!("{what} not found"),
                reference_sid: None,
            }),
            DomainError::Validation {
                field,
                message,
                reference_sid,
            } => out.errors.push(FieldError {
                field: Some(field),
                message,
                reference_sid,
            }),
            DomainError::InvalidInput { field, message }
            | DomainError::Conflict { field, message }
            | DomainError::TooLarge { field, message }
            | DomainError::NotAudio { field, message }
            | DomainError::QuotaExceeded { field, message } => out.errors.push(FieldError {
                field: Some(field),
                message,
                reference_sid: None,
            }),
        }
        out
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Domain(d) => d.into(),
            Error::Body(msg) => ApiError::bad_request("body", msg),
            Error::Busy => ApiError::busy(1),
            Error::Media { field, source } if source.is_client_fault() => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "object validation error")
                    .field(field, format!("the audio cannot be converted: {source}"))
            }
            Error::CustomerBusy { what, limit } => {
                let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests")
                    .field(
                        what,
                        format!("at most {limit} in progress at once for one customer"),
                    );
                e.retry_after = Some(1);
                e
            }
            other => {
                // Server faults: the detail goes to the log, never to the client.
                tracing::error!(error = %other, "request failed");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: self.status.as_u16(),
            message: self.message,
            errors: self.errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, json).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(len) = self.content_range_len {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        resp
    }
}

impl From<Error> for Response {
    fn from(e: Error) -> Self {
        ApiError::from(e).into_response()
    }
}
