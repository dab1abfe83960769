//! Customers and their tokens (admin operations).

use crate::app::{new_token, token_hash, AppState};
use crate::domain::input::Fields;
use crate::domain::model::{Customer, DEFAULT_CUSTOMER_QUOTA_BYTES, DEFAULT_MAX_CONTAINERS};
use crate::domain::rules::check_name;
use crate::domain::{DomainError, Timestamp};
use crate::error::Result;

/// Creates a customer from `{"name", "quota_bytes"?, "max_containers"?}`; returns it and its token.
pub async fn create(state: &AppState, mut f: Fields) -> Result<(Customer, String)> {
    let name = f
        .string("name")?
        .value()
        .ok_or_else(|| DomainError::invalid("name", "is required"))?;
    check_name("name", &name)?;
    let quota_bytes = f
        .int("quota_bytes", 0, i64::MAX)?
        .value()
        .unwrap_or(DEFAULT_CUSTOMER_QUOTA_BYTES);
    let max_containers = f
        .int("max_containers", 0, 1_000_000)?
        .value()
        .unwrap_or(DEFAULT_MAX_CONTAINERS);
    f.finish()?;
    let now = Timestamp::now();
    let customer = Customer {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        quota_bytes,
        max_containers,
        total_bytes: 0,
        total_files: 0,
        container_count: 0,
        date_created: now,
        date_modified: now,
    };
    let token = new_token();
    state
        .meta
        .create_customer(&customer, &hex::encode(token_hash(&token)))
        .await?;
    Ok((customer, token))
}

/// Admin changes to a customer's `quota_bytes` and `max_containers`.
pub async fn update(state: &AppState, id: &str, mut f: Fields) -> Result<Customer> {
    let quota_bytes = f.int("quota_bytes", 0, i64::MAX)?.value();
    let max_containers = f.int("max_containers", 0, 1_000_000)?.value();
    f.finish()?;
    state
        .meta
        .update_customer(id, quota_bytes, max_containers, Timestamp::now())
        .await?
        .ok_or_else(|| DomainError::NotFound { what: "customer" }.into())
}

/// A further token for a customer.
pub async fn add_token(state: &AppState, id: &str) -> Result<String> {
    let token = new_token();
    if state
        .meta
        .add_token(id, &hex::encode(token_hash(&token)), Timestamp::now())
        .await?
    {
        Ok(token)
    } else {
        Err(DomainError::NotFound { what: "customer" }.into())
    }
}
