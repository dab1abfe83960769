//! Bearer tokens: the admin token, or a customer's token (looked up by its hash).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::app::{token_hash, AppState};
use crate::domain::model::Customer;

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
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
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        if bool::from(token_hash(token).ct_eq(&state.admin_token_hash)) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized())
        }
    }
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
