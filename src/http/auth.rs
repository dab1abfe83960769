//! Bearer tokens: the admin token, or a customer's token (looked up by its hash).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::app::{token_hash, AppState};
use crate::domain::model::Customer;

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The caller holds the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if is_admin(&parts.headers, state) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// Whether `headers` carry the admin token.
pub fn is_admin(headers: &HeaderMap, state: &AppState) -> bool {
    bearer_of(headers).is_some_and(|t| bool::from(token_hash(t).ct_eq(&state.admin_token_hash)))
}

/// The caller is a customer, authenticated by one of its tokens.
pub struct Caller(pub Customer);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        // The lookup is by SHA-256 of the token: timing reveals nothing about the token itself.
        let hash = hex::encode(token_hash(token));
        match state.meta.customer_by_token(&hash).await {
            Ok(Some(c)) => Ok(Caller(c)),
            Ok(None) => Err(ApiError::unauthorized()),
            Err(e) => Err(crate::error::Error::from(e).into()),
        }
    }
}
