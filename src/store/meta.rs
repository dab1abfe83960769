//! The metadata store: customers, tokens, containers and files. One trait, so SQLite (embedded
//! default) and PostgreSQL implement the same operations; every rule that must hold
//! under concurrency runs inside the implementation's transaction through a domain function.

use async_trait::async_trait;

use crate::domain::model::{Container, Customer, FileRecord, LoudnessInfo};
use crate::domain::{DomainError, Timestamp};

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A domain rule refused the change inside the transaction (client's fault).
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// The database failed (server's fault).
    #[error("metadata database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed at start.
    #[error("metadata migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back (server's fault).
    #[error("corrupt metadata row: {0}")]
    Corrupt(String),
    /// The metadata URL names a backend this build does not have.
    #[error("unsupported metadata url: {0}")]
    Unsupported(String),
}

/// Filters and page of `GET /v1/files`.
#[derive(Debug, Clone, Default)]
pub struct FileQuery {
    pub customer_id: String,
    pub container_sid: Option<String>,
    pub tag: Option<String>,
    pub reference_type: Option<String>,
    pub reference_id: Option<String>,
    pub owner_id: Option<String>,
    pub name: Option<String>,
    pub page: i64,
    pub limit: i64,
}

/// A page of results and the total count matching the filters.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total_records: i64,
}

/// A change computed from the current row by a domain function, inside the store's transaction.
pub type ContainerUpdate =
    Box<dyn FnOnce(Container, &Customer) -> Result<Container, DomainError> + Send>;
/// A change computed from the current file row, inside the store's transaction.
pub type FileUpdate = Box<dyn FnOnce(FileRecord) -> Result<FileRecord, DomainError> + Send>;

/// What a cleanup pass removed, so the caller can delete the bytes.
#[derive(Debug, Clone)]
pub struct Removed {
    pub file_sid: String,
    pub blob_key: String,
}

/// A token as stored: its hash, whose it is, when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub customer_id: String,
    pub date_created: Timestamp,
}

/// A customer with its tokens, as a migration copies it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerDump {
    /// The row verbatim, totals and dates included.
    pub customer: Customer,
    pub tokens: Vec<TokenRecord>,
}

/// A named secret of the deployment (admin token hash, link-signing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub value: Vec<u8>,
}

/// Everything a metadata store holds, in a stable order (customers by id, containers and files
/// by sid, secrets by name): what [`MetaStore::export`] reads and [`MetaStore::import`] writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetaDump {
    pub customers: Vec<CustomerDump>,
    pub containers: Vec<Container>,
    pub files: Vec<FileRecord>,
    pub secrets: Vec<Secret>,
}

/// Files per page when [`MetaStore::export`] reads the whole store.
const EXPORT_PAGE: i64 = 500;

/// Metadata operations. Implementations keep totals exact: every change to files updates the
/// container and customer totals in the same transaction.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Creates a customer with its first token (stored as a hash).
    async fn create_customer(&self, customer: &Customer, token_hash: &str)
        -> Result<(), MetaError>;
    /// A customer by id.
    async fn customer(&self, id: &str) -> Result<Option<Customer>, MetaError>;
    /// Admin changes to a customer's quota and container limit.
    async fn update_customer(
        &self,
        id: &str,
        quota_bytes: Option<i64>,
        max_containers: Option<i64>,
        now: Timestamp,
    ) -> Result<Option<Customer>, MetaError>;
    /// Adds a further token for a customer.
    async fn add_token(
        &self,
        customer_id: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<bool, MetaError>;
    /// The customer a token (by hash) belongs to.
    async fn customer_by_token(&self, token_hash: &str) -> Result<Option<Customer>, MetaError>;

    /// Creates a container, within the customer's `max_containers` and unique keys.
    async fn create_container(&self, container: &Container) -> Result<(), MetaError>;
    /// The customer's default container, created on first use.
    async fn default_container(
        &self,
        customer_id: &str,
        new: Container,
    ) -> Result<Container, MetaError>;
    /// One of the customer's containers.
    async fn container(&self, customer_id: &str, sid: &str)
        -> Result<Option<Container>, MetaError>;
    /// The customer's containers, oldest first.
    async fn list_containers(
        &self,
        customer_id: &str,
        page: i64,
        limit: i64,
    ) -> Result<Page<Container>, MetaError>;
    /// Whether the customer has any external container (aws, gcp, azure).
    async fn has_external_container(&self, customer_id: &str) -> Result<bool, MetaError>;
    /// Changes a container through `update`, atomically.
    async fn update_container(
        &self,
        customer_id: &str,
        sid: &str,
        update: ContainerUpdate,
    ) -> Result<Option<Container>, MetaError>;
    /// Deletes an empty container (409 while it holds files). False when not found.
    async fn delete_container(&self, customer_id: &str, sid: &str) -> Result<bool, MetaError>;

    /// Adds a file: checks the quota and threshold rules and updates every total, atomically.
    async fn insert_file(&self, file: &FileRecord, now: Timestamp) -> Result<(), MetaError>;
    /// One of the customer's files.
    async fn file(&self, customer_id: &str, sid: &str) -> Result<Option<FileRecord>, MetaError>;
    /// Any file by sid (signed links carry their own authority).
    async fn file_by_sid(&self, sid: &str) -> Result<Option<FileRecord>, MetaError>;
    /// The file published under `key`: its sid (publish = file_sid) or access name.
    async fn published_file(&self, key: &str) -> Result<Option<FileRecord>, MetaError>;
    /// Files matching the filters, newest first.
    async fn list_files(&self, query: &FileQuery) -> Result<Page<FileRecord>, MetaError>;
    /// Changes a file through `update`, atomically (threshold totals follow `threshold_include`).
    async fn update_file(
        &self,
        customer_id: &str,
        sid: &str,
        update: FileUpdate,
    ) -> Result<Option<FileRecord>, MetaError>;
    /// Deletes a file's metadata and releases its totals; returns it so its bytes can go.
    async fn delete_file(
        &self,
        customer_id: Option<&str>,
        sid: &str,
    ) -> Result<Option<FileRecord>, MetaError>;
    /// Records a read through `GET /v1/files/{sid}/data`.
    async fn touch_file(&self, sid: &str, now: Timestamp) -> Result<(), MetaError>;

    /// Every file's (sid, blob key) (start-up reconciliation).
    async fn all_blob_keys(&self) -> Result<Vec<(String, String)>, MetaError>;
    /// Recomputes every total from the files (start-up repair after a crash).
    async fn recompute_totals(&self) -> Result<(), MetaError>;
    /// Customers, files and bytes stored, over every customer (for `/metrics`).
    async fn storage_totals(&self) -> Result<crate::metrics::StorageTotals, MetaError>;
    /// Files whose `expires_at` has passed, at most `limit`.
    async fn expired_files(&self, now: Timestamp, limit: i64)
        -> Result<Vec<FileRecord>, MetaError>;
    /// Containers with `delete_lru` whose threshold is reached.
    async fn containers_over_threshold(&self) -> Result<Vec<Container>, MetaError>;
    /// The least recently accessed included files of a container, oldest first, at most `limit`.
    async fn lru_files(
        &self,
        container_sid: &str,
        limit: i64,
    ) -> Result<Vec<FileRecord>, MetaError>;

    /// The secret `name`; when there is none, `candidate` is stored first, atomically, so that
    /// nodes starting together all end up with the first one written. Returns the stored value
    /// and whether it is `candidate` written by this call.
    async fn secret_or_insert(
        &self,
        name: &str,
        candidate: &[u8],
    ) -> Result<(Vec<u8>, bool), MetaError>;

    /// Keeps the measured loudness of the audio in `blob_key` with every file holding it.
    async fn record_loudness(
        &self,
        blob_key: &str,
        loudness: &LoudnessInfo,
    ) -> Result<(), MetaError>;

    // Converted copies kept in a shared blob store (several nodes).

    /// Records a copy of `blob_key` stored under `copy_key`; false if it was already recorded.
    async fn record_copy(
        &self,
        copy_key: &str,
        blob_key: &str,
        size: i64,
        now: Timestamp,
    ) -> Result<bool, MetaError>;
    /// Forgets every copy of `blob_key` (its file is gone) and returns their keys, so their
    /// bytes can go.
    async fn take_copies(&self, blob_key: &str) -> Result<Vec<String>, MetaError>;
    /// Every recorded copy's key (start-up repair must not take them for orphans).
    async fn all_copy_keys(&self) -> Result<Vec<String>, MetaError>;
    /// Forgets the oldest copies (and those whose file is gone) until the rest weigh at most
    /// `limit` bytes; returns the keys forgotten.
    async fn trim_copies(&self, limit: i64) -> Result<Vec<String>, MetaError>;

    // Copying a store (`mediastore migrate`): read every row verbatim, write it verbatim into
    // another store. Imports are idempotent (a row whose key exists is left as it is, and the
    // call returns false), so an interrupted copy resumes by running again. Totals are copied as
    // stored, never recomputed from the imported files: import customers, then containers, then
    // files, then secrets.

    /// Every customer with its tokens, by id.
    async fn export_customers(&self) -> Result<Vec<CustomerDump>, MetaError>;
    /// Every container, by sid.
    async fn export_containers(&self) -> Result<Vec<Container>, MetaError>;
    /// At most `limit` files whose sid comes after `after` (all from the start when `None`), by
    /// sid: page with the last sid of the previous page.
    async fn export_files_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FileRecord>, MetaError>;
    /// Every secret, by name.
    async fn export_secrets(&self) -> Result<Vec<Secret>, MetaError>;
    /// Writes a customer and its tokens as they are; true if the customer was new.
    async fn import_customer(&self, c: &CustomerDump) -> Result<bool, MetaError>;
    /// Writes a container as it is (totals included); true if it was new.
    async fn import_container(&self, c: &Container) -> Result<bool, MetaError>;
    /// Writes a file as it is, leaving every total alone; true if it was new.
    async fn import_file(&self, f: &FileRecord) -> Result<bool, MetaError>;
    /// Writes a secret as it is; true if it was new.
    async fn import_secret(&self, s: &Secret) -> Result<bool, MetaError>;

    /// The whole store in memory (tests and small deployments; a migration of a large store
    /// pages with [`MetaStore::export_files_after`]).
    async fn export(&self) -> Result<MetaDump, MetaError> {
        let mut files = Vec::new();
        loop {
            let after = files.last().map(|f: &FileRecord| f.file_sid.clone());
            let page = self
                .export_files_after(after.as_deref(), EXPORT_PAGE)
                .await?;
            let done = (page.len() as i64) < EXPORT_PAGE;
            files.extend(page);
            if done {
                break;
            }
        }
        Ok(MetaDump {
            customers: self.export_customers().await?,
            containers: self.export_containers().await?,
            files,
            secrets: self.export_secrets().await?,
        })
    }

    /// Imports a whole dump in dependency order; rows already present are kept.
    async fn import(&self, dump: &MetaDump) -> Result<(), MetaError> {
        for c in &dump.customers {
            self.import_customer(c).await?;
        }
        for c in &dump.containers {
            self.import_container(c).await?;
        }
        for f in &dump.files {
            self.import_file(f).await?;
        }
        for s in &dump.secrets {
            self.import_secret(s).await?;
        }
        Ok(())
    }
}
