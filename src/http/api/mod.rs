//! The `/v1` API: one file per resource; handlers parse, call a service, and shape the answer.

pub mod account;
pub mod containers;
pub mod customers;
pub mod files;

use serde::Serialize;

use crate::service::PageRequest;
use crate::store::meta::Page;

/// The contract's list shape: `{"items": [...], "pagination": {...}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List<T: Serialize> {
    pub items: Vec<T>,
    pub pagination: Pagination,
}

/// Page figures of a list answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub page: i64,
    pub limit: i64,
    pub total_records: i64,
}

impl<T: Serialize> List<T> {
    /// A list answer from a store page.
    pub fn new<U>(page: Page<U>, req: PageRequest, f: impl FnMut(U) -> T) -> Self {
        List {
            items: page.items.into_iter().map(f).collect(),
            pagination: Pagination {
                page: req.page,
                limit: req.limit,
                total_records: page.total_records,
            },
        }
    }
}
