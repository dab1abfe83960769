//! Customers' own buckets (external containers): a client per container built from its
//! settings, reused across requests and rebuilt when the settings change, and a wrapper that
//! reports every failure of such a bucket as the container's (502 at the HTTP edge).
//!
//! Safety: every connection's addresses pass the endpoint rule
//! ([`EndpointPolicy`](crate::domain::endpoint::EndpointPolicy)) inside the HTTP client's DNS
//! resolution ([`GuardedDns`]), so a name that resolves to a private address later (DNS
//! rebinding) is refused at connection time, not only when the container was created.
//!
//! Start-up repair never lists or sweeps a customer's bucket: [`ExternalBlobs::list`] is empty
//! and [`ExternalBlobs::sweep_incomplete`] does nothing. What a crash leaves there (an object
//! no file describes) stays, under our own key names only.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{DnsFuture, DnsResolver};
use object_store::{ClientOptions, RetryConfig};

use super::blob::{BlobEntry, BlobError, BlobStore, BlobWriter, ByteStream, LocalCopy, OpenBlob};
use super::blob_cache::BlobCache;
use super::gcs::{GcsBlobs, GcsSettings, ServiceAccount};
use super::s3::{ObjectBackend, S3Blobs};
use crate::domain::endpoint::{is_public, Endpoint, EndpointPolicy};
use crate::domain::external::{ContainerType, Location, Secret};

/// How long an unused client is kept.
const IDLE: Duration = Duration::from_secs(15 * 60);
/// Most clients kept at once.
const CLIENTS: u64 = 10_000;
/// A customer's bucket that fails is reported quickly rather than retried for minutes.
const RETRIES: usize = 2;
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);
/// A GCS endpoint that takes longer than this to accept a connection is reported as failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client is built from: a container's settings with its secret opened.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub container_sid: &'a str,
    pub kind: ContainerType,
    pub location: &'a Location,
    pub secret: &'a Secret,
}

/// A fingerprint of a container's stored settings: a cached client is reused while it matches.
pub type Fingerprint = [u8; 32];

/// The node's clients of external containers, and the containers known to be internal.
pub struct ExternalStores {
    policy: Arc<EndpointPolicy>,
    part_size: usize,
    cache: Arc<BlobCache>,
    clients: moka::future::Cache<String, (Fingerprint, Arc<dyn BlobStore>)>,
    /// A container's type never changes: once seen internal, its files need no lookup.
    internal: moka::sync::Cache<String, ()>,
}

impl ExternalStores {
    /// Clients checked against `policy`, uploading in `part_size` parts, reading through the
    /// node's blob `cache`.
    pub fn new(policy: EndpointPolicy, part_size: usize, cache: Arc<BlobCache>) -> Self {
        ExternalStores {
            policy: Arc::new(policy),
            part_size,
            cache,
            clients: moka::future::Cache::builder()
                .max_capacity(CLIENTS)
                .time_to_idle(IDLE)
                .build(),
            internal: moka::sync::Cache::builder().max_capacity(100_000).build(),
        }
    }

    /// The operator's endpoint rule.
    pub fn policy(&self) -> &EndpointPolicy {
        &self.policy
    }

    /// Whether `container_sid` was seen to be internal.
    pub fn known_internal(&self, container_sid: &str) -> bool {
        self.internal.contains_key(container_sid)
    }

    /// Records that `container_sid` is internal.
    pub fn note_internal(&self, container_sid: &str) {
        // Every upload to an internal container passes here: no write once it is known.
        if !self.internal.contains_key(container_sid) {
            self.internal.insert(container_sid.to_string(), ());
        }
    }

    /// Drops the client of a container that went.
    pub async fn forget(&self, container_sid: &str) {
        self.clients.invalidate(container_sid).await;
    }

    /// The cached client of `container_sid` for settings `fingerprint`, else one made by
    /// `make` (then kept). Every failure of the client is reported as the container's.
    pub async fn client<F>(
        &self,
        container_sid: &str,
        fingerprint: Fingerprint,
        make: F,
    ) -> Result<Arc<dyn BlobStore>, BlobError>
    where
        F: std::future::Future<Output = Result<Arc<dyn BlobStore>, BlobError>>,
    {
        if let Some((fp, store)) = self.clients.get(container_sid).await {
            if fp == fingerprint {
                return Ok(store);
            }
        }
        let inner = make
            .await
            .map_err(|e| ExternalBlobs::report(container_sid, e, Stage::Read))?;
        let store: Arc<dyn BlobStore> = Arc::new(ExternalBlobs {
            inner,
            container_sid: container_sid.to_string(),
        });
        self.clients
            .insert(container_sid.to_string(), (fingerprint, Arc::clone(&store)))
            .await;
        Ok(store)
    }

    /// A client of the bucket `spec` names, errors as the provider gave them (creation maps
    /// them to the field at fault). Checks the endpoint rule; makes no request.
    pub async fn connect(&self, spec: &Spec<'_>) -> Result<Arc<dyn BlobStore>, BlobError> {
        let endpoint = spec
            .location
            .endpoint
            .as_deref()
            .map(|e| self.policy.check_url(spec.kind, e))
            .transpose()
            .map_err(|e| BlobError::Config(e.to_string()))?;
        let options = self.client_options(endpoint.as_ref());
        let build = |e: object_store::Error| BlobError::Config(e.to_string());
        let client: Arc<dyn ObjectBackend> = match spec.kind {
            ContainerType::Aws => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(spec.location.bucket.clone().unwrap_or_default())
                    .with_region(spec.location.region.clone().unwrap_or_default())
                    .with_access_key_id(spec.location.access_key_id.clone().unwrap_or_default())
                    .with_secret_access_key(spec.secret.expose())
                    .with_client_options(options)
                    .with_retry(retry());
                if let Some(e) = &endpoint {
                    // Path-style requests: the bucket in the path, the host as listed.
                    b = b
                        .with_endpoint(e.url.clone())
                        .with_virtual_hosted_style_request(false);
                }
                Arc::new(b.build().map_err(build)?)
            }
            ContainerType::Azure => {
                let mut b = MicrosoftAzureBuilder::new()
                    .with_account(spec.location.account.clone().unwrap_or_default())
                    .with_container_name(spec.location.container.clone().unwrap_or_default())
                    .with_access_key(spec.secret.expose())
                    .with_client_options(options)
                    .with_retry(retry());
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e.url.clone());
                }
                Arc::new(b.build().map_err(build)?)
            }
            ContainerType::Gcp => {
                return gcp(
                    &self.policy,
                    spec,
                    endpoint.as_ref(),
                    self.part_size,
                    Arc::clone(&self.cache),
                )
                .await
            }
            ContainerType::Internal => {
                return Err(BlobError::Config(
                    "an internal container has no bucket".into(),
                ))
            }
        };
        // S3 and Azure Blob share the object-store layer (multipart uploads, ranged reads,
        // the node's cache under a scope of the container's own).
        Ok(Arc::new(S3Blobs::new(
            client,
            &spec.location.prefix,
            self.part_size,
            Arc::clone(&self.cache),
            &format!("external:{}", spec.container_sid),
        )))
    }

    fn client_options(&self, endpoint: Option<&Endpoint>) -> ClientOptions {
        let http = endpoint.is_some_and(|e| e.listed && e.url.starts_with("http://"));
        ClientOptions::new()
            .with_allow_http(http)
            .with_dns_resolver(Arc::new(GuardedDns {
                policy: Arc::clone(&self.policy),
            }))
    }
}

fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: RETRIES,
        retry_timeout: RETRY_TIMEOUT,
        ..Default::default()
    }
}

/// Google Cloud Storage, through the JSON-API backend of [`super::gcs`]. Its HTTP client (the
/// token grant's too) resolves names through [`GuardedDns`], and the key's `token_uri` passes
/// the same endpoint rule as the storage endpoint: a key cannot send us to a private address.
async fn gcp(
    policy: &Arc<EndpointPolicy>,
    spec: &Spec<'_>,
    endpoint: Option<&Endpoint>,
    chunk_size: usize,
    cache: Arc<BlobCache>,
) -> Result<Arc<dyn BlobStore>, BlobError> {
    let account = ServiceAccount::from_json(spec.secret.expose())?;
    policy
        .check_url(ContainerType::Gcp, account.token_uri())
        .map_err(|e| BlobError::Config(format!("service_account_json: token_uri: {e}")))?;
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .dns_resolver(Arc::new(GuardedDns {
            policy: Arc::clone(policy),
        }))
        .build()
        .map_err(|e| BlobError::Config(format!("http client: {e}")))?;
    let settings = GcsSettings {
        bucket: spec.location.bucket.clone().unwrap_or_default(),
        prefix: spec.location.prefix.clone(),
        service_account_json: spec.secret.expose().to_string(),
        endpoint: endpoint.map(|e| e.url.clone()),
        chunk_size,
    };
    Ok(Arc::new(
        GcsBlobs::connect_with_client(settings, cache, client).await?,
    ))
}

/// Resolves names for the clients of external containers, keeping only the addresses the
/// endpoint rule admits: any for a listed host, public ones otherwise.
#[derive(Debug)]
struct GuardedDns {
    policy: Arc<EndpointPolicy>,
}

impl DnsResolver for GuardedDns {
    fn resolve(&self, host: &str) -> DnsFuture {
        let listed = self.policy.lists_host(host);
        let host = host.to_string();
        Box::pin(async move {
            let found: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect();
            let allowed: Vec<IpAddr> = found
                .into_iter()
                .filter(|ip| listed || is_public(*ip))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves to no address an external container may reach"
                )
                .into());
            }
            Ok(allowed)
        })
    }
}

/// The same rule for the GCS backend's reqwest client (the port is the URL's; reqwest sets it).
impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let found = DnsResolver::resolve(self, name.as_str());
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = Box::new(
                found
                    .await?
                    .into_iter()
                    .map(|ip| std::net::SocketAddr::new(ip, 0)),
            );
            Ok(addrs)
        })
    }
}

/// What was being done when a bucket failed: a missing object means a missing bucket on a
/// write, a missing object on a read.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Read,
    Write,
}

/// A customer's bucket: every failure becomes [`BlobError::External`] naming the container
/// (the detail goes to the log, the client gets a short reason); never listed or swept.
struct ExternalBlobs {
    inner: Arc<dyn BlobStore>,
    container_sid: String,
}

impl ExternalBlobs {
    fn report(container_sid: &str, e: BlobError, stage: Stage) -> BlobError {
        if matches!(e, BlobError::External { .. } | BlobError::BadKey(_)) {
            return e;
        }
        tracing::warn!(container_sid, error = %e, "external bucket failed");
        let reason = match (&e, stage) {
            (BlobError::Denied(_), _) => "the bucket refused the container's credentials",
            (BlobError::NoBucket(_), _) | (BlobError::NotFound(_), Stage::Write) => {
                "the bucket does not exist"
            }
            (BlobError::NotFound(_), Stage::Read) => "the file's object is missing from the bucket",
            (BlobError::Config(_) | BlobError::Unsupported(_), _) => {
                "the container's bucket settings cannot be used"
            }
            _ => "the bucket could not be reached or failed",
        };
        BlobError::External {
            container_sid: container_sid.to_string(),
            reason: reason.into(),
        }
    }

    /// A blob of the bucket opened, its later read failures reported as the container's too.
    fn opened(
        &self,
        r: Result<Arc<dyn OpenBlob>, BlobError>,
    ) -> Result<Arc<dyn OpenBlob>, BlobError> {
        Ok(Arc::new(ExternalBlob {
            inner: self.check(r, Stage::Read)?,
            container_sid: self.container_sid.clone(),
        }))
    }

    /// `r`, a failure reported as the container's.
    fn check<T>(&self, r: Result<T, BlobError>, stage: Stage) -> Result<T, BlobError> {
        r.map_err(|e| Self::report(&self.container_sid, e, stage))
    }
}

#[async_trait]
impl BlobStore for ExternalBlobs {
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        let inner = self.check(self.inner.begin(key).await, Stage::Write)?;
        Ok(Box::new(ExternalWriter {
            inner,
            container_sid: self.container_sid.clone(),
        }))
    }

    async fn open(&self, key: &str) -> Result<Arc<dyn OpenBlob>, BlobError> {
        self.opened(self.inner.open(key).await)
    }

    async fn open_sized(&self, key: &str, len: u64) -> Result<Arc<dyn OpenBlob>, BlobError> {
        self.opened(self.inner.open_sized(key, len).await)
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        self.check(self.inner.read_range(key, offset, len).await, Stage::Read)
    }

    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        self.check(self.inner.read_small(key, offset, len).await, Stage::Read)
    }

    async fn local_copy(&self, key: &str) -> Result<LocalCopy, BlobError> {
        self.check(self.inner.local_copy(key).await, Stage::Read)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.check(self.inner.delete(key).await, Stage::Write)
    }

    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError> {
        Ok(Vec::new())
    }

    async fn sweep_incomplete(&self, _grace: Duration) -> Result<usize, BlobError> {
        Ok(0)
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// An upload into a customer's bucket.
struct ExternalWriter {
    inner: Box<dyn BlobWriter>,
    container_sid: String,
}

#[async_trait]
impl BlobWriter for ExternalWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.inner
            .write(chunk)
            .await
            .map_err(|e| ExternalBlobs::report(&self.container_sid, e, Stage::Write))
    }

    async fn commit(self: Box<Self>) -> Result<(), BlobError> {
        let sid = self.container_sid;
        self.inner
            .commit()
            .await
            .map_err(|e| ExternalBlobs::report(&sid, e, Stage::Write))
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

/// A blob of a customer's bucket opened for reads.
#[derive(Debug)]
struct ExternalBlob {
    inner: Arc<dyn OpenBlob>,
    container_sid: String,
}

#[async_trait]
impl OpenBlob for ExternalBlob {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_now(&self, offset: u64, len: usize) -> Option<Bytes> {
        self.inner.read_now(offset, len)
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        self.inner
            .read_at(offset, len)
            .await
            .map_err(|e| ExternalBlobs::report(&self.container_sid, e, Stage::Read))
    }

    fn stream(self: Arc<Self>, offset: u64, len: u64) -> ByteStream {
        Arc::clone(&self.inner).stream(offset, len)
    }
}
