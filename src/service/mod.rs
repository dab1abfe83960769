//! Operations behind the HTTP handlers: each checks the rules (domain) and drives the stores.

pub mod containers;
pub mod convert;
pub mod copies;
pub mod customers;
pub mod events;
pub mod external;
pub mod files;
pub mod loudness;
pub mod receive;

/// A page request: `page` ≥ 1 and `limit` 1–100 (400 otherwise).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub limit: i64,
}

impl PageRequest {
    /// Parses `page` and `limit` query values (defaults 1 and 20).
    pub fn parse(
        page: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Self, crate::domain::DomainError> {
        use crate::domain::DomainError;
        let page = match page {
            None => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=1_000_000_000).contains(p))
                .ok_or_else(|| DomainError::invalid("page", "must be an integer of at least 1"))?,
        };
        let limit = match limit {
            None => 20,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| DomainError::invalid("limit", "must be an integer from 1 to 100"))?,
        };
        Ok(PageRequest { page, limit })
    }
}
