//! Our extractors: JSON bodies and query strings whose rejections are contract errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

use super::error::ApiError;
use crate::domain::input::Fields;

/// Largest JSON body accepted by the API.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON object body as [`Fields`]; an empty body is `{}`.
pub struct JsonFields(pub Fields);

impl<S: Send + Sync> FromRequest<S> for JsonFields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request("body", format!("cannot read the body: {e}")))?;
        if bytes.len() > MAX_JSON_BODY {
            return Err(ApiError::bad_request(
                "body",
                format!("must be at most {MAX_JSON_BODY} bytes"),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonFields(Fields::from_json(serde_json::json!({}))?));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("body", format!("invalid JSON: {e}")))?;
        Ok(JsonFields(Fields::from_json(value)?))
    }
}

/// The query string as decoded pairs (invalid UTF-8 replaced, never rejected).
#[derive(Debug, Default, Clone)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a raw query string.
    pub fn parse(query: Option<&str>) -> Self {
        QueryPairs(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(QueryPairs::parse(parts.uri.query()))
    }
}
