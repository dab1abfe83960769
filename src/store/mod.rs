//! Storage behind two small traits: metadata ([`meta::MetaStore`]) and bytes ([`blob::BlobStore`]),
//! with the embedded implementations (SQLite, local files) as the default, and PostgreSQL and
//! S3-compatible object stores for a cluster of nodes.

pub mod blob;
pub mod blob_cache;
pub mod fs;
pub mod meta;
pub mod postgres;
mod rows;
pub mod s3;
mod sql_store;
pub mod sqlite;
pub mod upload;

use std::sync::Arc;

pub use blob::{BlobError, BlobStore};
pub use meta::{MetaError, MetaStore};

use self::blob_cache::BlobCache;

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

/// How a remote blob store is set up beyond its URL.
#[derive(Debug, Clone)]
pub struct BlobSettings {
    /// Size of one part of a multipart upload (and the most buffered before it is sent).
    pub part_size: usize,
    /// The node's cache of remote blobs on local disk.
    pub cache: Arc<BlobCache>,
}

/// Opens the blob store named by `url`.
pub fn open_blobs(url: &str, settings: &BlobSettings) -> Result<Arc<dyn BlobStore>, BlobError> {
    if url.starts_with("file://") {
        return Ok(Arc::new(fs::FsBlobs::from_url(url)?));
    }
    if url.starts_with("s3://") {
        return Ok(Arc::new(s3::S3Blobs::from_url(
            url,
            settings.part_size,
            Arc::clone(&settings.cache),
        )?));
    }
    Err(BlobError::Unsupported(url.to_string()))
}
