//! Blobs in a Google Cloud Storage bucket (a customer's own, for an external container), through
//! GCS's JSON API: resumable uploads, ranged `alt=media` reads, and a service account's OAuth2
//! tokens. (object_store's GCS client speaks the XML API, which emulators such as
//! fake-gcs-server do not take uploads in, and has no JWT-bearer grant to a key's `token_uri`.)
//!
//! Layout: `<prefix>/<key>` per blob. Reads go through [`RemoteReads`] as for every object
//! store (hot blobs made local in the node's cache).

mod api;
mod auth;
mod upload;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use self::api::Bucket;
pub use self::auth::ServiceAccount;
use self::upload::GcsWriter;
pub use self::upload::CHUNK_QUANTUM;
use super::blob::{BlobEntry, BlobError, BlobWriter};
use super::blob_cache::BlobCache;
use super::remote::{ObjectBlobs, ObjectWrites, RemoteReads};

/// GCS's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// Where a GCS store keeps its blobs and how it gets in.
#[derive(Clone)]
pub struct GcsSettings {
    pub bucket: String,
    /// Blobs are kept under `prefix/` (none when empty).
    pub prefix: String,
    /// A service-account key file (JSON, as Google issues it).
    pub service_account_json: String,
    /// The API's base URL; [`DEFAULT_ENDPOINT`] when `None`.
    pub endpoint: Option<String>,
    /// Bytes per chunk of a resumable upload (rounded down to whole 256 KiB, at least one), and
    /// the most an upload buffers before sending.
    pub chunk_size: usize,
}

impl std::fmt::Debug for GcsSettings {
    // The key stays out of every log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsSettings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("service_account_json", &"********")
            .field("endpoint", &self.endpoint)
            .field("chunk_size", &self.chunk_size)
            .finish()
    }
}

/// A Google Cloud Storage [`BlobStore`](super::BlobStore).
pub type GcsBlobs = ObjectBlobs<GcsWrites>;

/// The uploads, deletes and listings of a GCS store.
pub struct GcsWrites {
    bucket: Arc<Bucket>,
    chunk: usize,
}

impl ObjectBlobs<GcsWrites> {
    /// A store on `settings`, with a client of its own; nothing is sent yet (the first request
    /// fetches a token).
    pub async fn connect(
        settings: GcsSettings,
        cache: Arc<BlobCache>,
    ) -> Result<GcsBlobs, BlobError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BlobError::Config(format!("http client: {e}")))?;
        Self::connect_with_client(settings, cache, client).await
    }

    /// A store on `settings` whose requests (the token's too) go through `client` (one that
    /// pins where names resolve, for instance).
    pub async fn connect_with_client(
        settings: GcsSettings,
        cache: Arc<BlobCache>,
        client: reqwest::Client,
    ) -> Result<GcsBlobs, BlobError> {
        let account = ServiceAccount::from_json(&settings.service_account_json)?;
        if settings.bucket.is_empty() {
            return Err(BlobError::Config("bucket: empty".into()));
        }
        let endpoint = settings.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        let base = reqwest::Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
            .ok_or_else(|| BlobError::Config("endpoint: not an http(s) URL".into()))?;
        let prefix = settings.prefix.trim_matches('/');
        let scope = format!("gcs:{}/{}/{prefix}", base.as_str(), settings.bucket);
        let tokens = auth::Tokens::new(account, client.clone());
        let bucket = Arc::new(Bucket::new(client, tokens, base, &settings.bucket, prefix));
        let reads = RemoteReads::new(bucket.clone(), cache, &scope);
        let writes = GcsWrites {
            bucket,
            chunk: upload::chunk_size(settings.chunk_size),
        };
        Ok(ObjectBlobs::from_parts(writes, reads))
    }

    /// Checks that the bucket is there and the credentials are accepted (one small listing).
    pub async fn check(&self) -> Result<(), BlobError> {
        self.writes().bucket.exists().await
    }
}

#[async_trait]
impl ObjectWrites for GcsWrites {
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(GcsWriter::new(
            Arc::clone(&self.bucket),
            key,
            self.chunk,
        )))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.bucket.delete(key).await
    }

    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError> {
        Ok(self
            .bucket
            .list()
            .await?
            .into_iter()
            .map(|o| {
                let modified = o
                    .updated
                    .as_deref()
                    .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok())
                    // Without a date it counts as recent: repair spares what it cannot date.
                    .map_or_else(SystemTime::now, SystemTime::from);
                BlobEntry {
                    key: o.name,
                    modified,
                }
            })
            .collect())
    }

    /// An interrupted resumable upload never becomes an object and GCS drops its session
    /// after a week: there is nothing to sweep.
    async fn sweep_incomplete(&self, _grace: Duration) -> Result<usize, BlobError> {
        Ok(0)
    }
}
