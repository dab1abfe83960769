//! Storage behind two small traits: metadata ([`meta::MetaStore`]) and bytes ([`blob::BlobStore`]),
//! with the embedded implementations (SQLite, local files) as the default, PostgreSQL and
//! S3-compatible object stores for a cluster of nodes, and Google Cloud Storage for customers'
//! own buckets.

pub mod blob;
pub mod blob_cache;
pub mod cluster;
pub mod external;
pub mod fs;
pub mod gcs;
pub mod meta;
pub mod postgres;
pub mod remote;
mod rows;
pub mod s3;
mod sql_store;
pub mod sqlite;
mod tee;
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

/// The coordination of the nodes sharing the metadata store named by `url`: `None` for the
/// embedded store, which has one node.
pub fn open_cluster(url: &str) -> Result<Option<Arc<dyn cluster::Cluster>>, MetaError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Some(Arc::new(cluster::PgCluster::connect_lazy(url)?)));
    }
    Ok(None)
}

/// Opens the metadata store named by `url` read-only and as it is (no migration): the source
/// of `mediastore migrate`.
pub async fn open_meta_read_only(url: &str) -> Result<Arc<dyn MetaStore>, MetaError> {
    if url.starts_with("sqlite://") {
        return Ok(Arc::new(sqlite::SqliteMeta::open_read_only(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PgMeta::open_read_only(url).await?));
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

/// Opens the blob store named by `url` to read it only: a local store is not swept or created
/// (the source of `mediastore migrate`).
pub fn open_blobs_read_only(
    url: &str,
    settings: &BlobSettings,
) -> Result<Arc<dyn BlobStore>, BlobError> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Arc::new(fs::FsBlobs::existing(std::path::Path::new(path))?));
    }
    open_blobs(url, settings)
}
