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

/// The route's one path parameter, percent-decoded. axum's own `Path` rejects a parameter that
/// is not UTF-8 once decoded (`%FF`) with a plain-text 400; this answers in the contract's form,
/// naming the parameter.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParam(v)),
            Err(e) => {
                let field = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .and_then(|m| param_name(m.as_str()))
                    .unwrap_or("path")
                    .to_string();
                Err(ApiError::bad_request(&field, e.body_text()))
            }
        }
    }
}

/// The name of the last `{param}` of a route pattern.
fn param_name(route: &str) -> Option<&str> {
    let open = route.rfind('{')?;
    let close = route[open..].find('}')? + open;
    Some(&route[open + 1..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_route_parameter() {
        assert_eq!(
            param_name("/v1/containers/{container_sid}"),
            Some("container_sid")
        );
        assert_eq!(param_name("/v1/files/{file_sid}/data"), Some("file_sid"));
        assert_eq!(param_name("/healthz"), None);
    }
}
