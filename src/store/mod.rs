//! Storage behind two small traits: metadata ([`meta::MetaStore`]) and bytes ([`blob::BlobStore`]),
//! with the embedded implementations (SQLite, local files) as the default and PostgreSQL for a
//! cluster of nodes.

pub mod blob;
pub mod fs;
pub mod meta;
pub mod postgres;
mod rows;
mod sql_store;
pub mod sqlite;

use std::sync::Arc;

pub use blob::{BlobError, BlobStore};
pub use meta::{MetaError, MetaStore};

/// Opens the metadata store named by `url`.
pub async fn open_meta(url: &str) -> Result<Arc<dyn MetaStore>, MetaError> {
    if url.starts_with("sqlite://") {
        return Ok(Arc::new(sqlite::SqliteMeta::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PgMeta::open(url).await?));
    }
    Err(MetaError::Unsupported(url.to_string()))
}

/// Opens the blob store named by `url`.
pub fn open_blobs(url: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    if url.starts_with("file://") {
        return Ok(Arc::new(fs::FsBlobs::from_url(url)?));
    }
    Err(BlobError::Unsupported(url.to_string()))
}
