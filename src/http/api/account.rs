//! `GET /v1/account`.

use axum::Json;
use serde_json::{json, Value};

use crate::http::auth::Caller;

/// The caller's totals and quota.
pub async fn get(Caller(c): Caller) -> Json<Value> {
    Json(json!({
        "customer_id": c.id,
        "name": c.name,
        "total_file_count": c.total_files,
        "total_file_size": c.total_bytes,
        "quota_bytes": c.quota_bytes,
        "max_containers": c.max_containers,
        "container_count": c.container_count,
        "date_created": c.date_created,
        "date_modified": c.date_modified,
    }))
}
