//! The cluster metadata store: PostgreSQL through sqlx, migrations from `migrations/postgres/`
//! (run at start under sqlx's advisory lock, so nodes starting together migrate once).
//!
//! Concurrency: every write runs in a READ COMMITTED transaction that first locks the rows whose
//! figures its rule reads, with `SELECT … FOR NO KEY UPDATE`, always in the same order: the
//! customer, then the container, then the file. Racing writers on one customer (on any node)
//! therefore queue on the customer's row and each one evaluates the quota and threshold rules
//! (the same domain functions as SQLite's store) on totals no one else can change until it
//! commits; one fixed order means no deadlock. Row locks were chosen over SERIALIZABLE with
//! retries because every write here touches a known handful of rows: waiting on them costs no
//! retried work, and no request can fail for a serialization conflict. Unique keys are unique
//! indexes; a violation aborts the transaction, so the holder's sid is read on the pool (it is
//! committed: PostgreSQL reports the violation only once the other insert has committed).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::meta::{
    ContainerUpdate, CustomerDump, FileQuery, FileUpdate, MetaError, MetaStore, Page, Secret,
};
use super::rows::{self, select, Violation};
use crate::domain::model::{Container, Customer, FileRecord};
use crate::domain::quota::{self, Charge};
use crate::domain::{DomainError, Timestamp};

type Tx = Transaction<'static, Postgres>;

/// PostgreSQL-backed [`MetaStore`], shared by every node of a cluster.
pub struct PgMeta {
    pool: PgPool,
}

impl PgMeta {
    /// Connects to `url` (`postgres://` or `postgresql://`) and runs migrations.
    pub async fn open(url: &str) -> Result<Self, MetaError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgMeta { pool })
    }

    /// The customer's default (else oldest) container, if any.
    async fn first_container(&self, customer_id: &str) -> Result<Option<Container>, MetaError> {
        let row = sqlx::query(select::FIRST_CONTAINER)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::container_row).transpose()
    }

    /// Locks the customer, the container and the file `sid` (in that order, see the module doc)
    /// and returns the file as it is now; `None` if it is gone or not `customer_id`'s.
    async fn lock_file(
        &self,
        tx: &mut Tx,
        customer_id: Option<&str>,
        sid: &str,
    ) -> Result<Option<(FileRecord, Container)>, MetaError> {
        // Where the file lives never changes, so an unlocked read names the rows to lock.
        let row = sqlx::query(select::FILE_BY_SID)
            .bind(sid)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(seen) = row.as_ref().map(rows::file_row).transpose()? else {
            return Ok(None);
        };
        if customer_id.is_some_and(|c| c != seen.customer_id) {
            return Ok(None);
        }
        load_customer(tx, &seen.customer_id).await?;
        let container = load_container(tx, &seen.customer_id, &seen.container_sid)
            .await?
            .ok_or_else(|| MetaError::Corrupt(format!("file {sid} without container")))?;
        let row = sqlx::query(&format!("{}{LOCK}", select::FILE_BY_SID))
            .bind(sid)
            .fetch_optional(&mut **tx)
            .await?;
        let file = row.as_ref().map(rows::file_row).transpose()?;
        Ok(file.map(|f| (f, container)))
    }
}

/// How a transaction locks a row it reads to change (see the module doc).
const LOCK: &str = " FOR NO KEY UPDATE";

rows::tx_steps!(Tx, PgPool, LOCK);

#[async_trait]
impl MetaStore for PgMeta {
    async fn create_customer(&self, c: &Customer, token_hash: &str) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        let inserted = rows::bind_customer!(sqlx::query(rows::INSERT_CUSTOMER.as_str()), c)
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            return Err(sqlx::Error::Protocol(format!("customer {} exists", c.id)).into());
        }
        sqlx::query(rows::INSERT_TOKEN)
            .bind(token_hash)
            .bind(&c.id)
            .bind(c.date_created.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, MetaError> {
        let row = sqlx::query(select::CUSTOMER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::customer_row).transpose()
    }

    async fn update_customer(
        &self,
        id: &str,
        quota_bytes: Option<i64>,
        max_containers: Option<i64>,
        now: Timestamp,
    ) -> Result<Option<Customer>, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some(mut c) = load_customer(&mut tx, id).await? else {
            return Ok(None);
        };
        if let Some(q) = quota_bytes {
            c.quota_bytes = q;
        }
        if let Some(m) = max_containers {
            c.max_containers = m;
        }
        c.date_modified = now;
        sqlx::query("UPDATE customers SET quota_bytes = $1, max_containers = $2, date_modified = $3 WHERE id = $4")
            .bind(c.quota_bytes)
            .bind(c.max_containers)
            .bind(now.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(c))
    }

    async fn add_token(
        &self,
        customer_id: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        if load_customer(&mut tx, customer_id).await?.is_none() {
            return Ok(false);
        }
        sqlx::query(rows::INSERT_TOKEN)
            .bind(token_hash)
            .bind(customer_id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn customer_by_token(&self, token_hash: &str) -> Result<Option<Customer>, MetaError> {
        let row = sqlx::query(select::CUSTOMER_BY_TOKEN)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::customer_row).transpose()
    }

    async fn create_container(&self, c: &Container) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        // The UPDATE locks the customer's row and re-reads the count once it holds it.
        take_container_slot(&mut tx, &c.customer_id).await?;
        insert_container_row(&mut tx, &self.pool, c).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn default_container(
        &self,
        customer_id: &str,
        new: Container,
    ) -> Result<Container, MetaError> {
        if let Some(c) = self.first_container(customer_id).await? {
            return Ok(c);
        }
        let mut tx = self.pool.begin().await?;
        // Racing first uploads queue on the customer's row; the later ones find the container.
        if load_customer(&mut tx, customer_id).await?.is_none() {
            return Err(DomainError::NotFound { what: "customer" }.into());
        }
        if let Some(row) = sqlx::query(select::FIRST_CONTAINER)
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?
        {
            return rows::container_row(&row);
        }
        take_container_slot(&mut tx, customer_id).await?;
        let c = Container {
            is_default: true,
            ..new
        };
        insert_container_row(&mut tx, &self.pool, &c).await?;
        tx.commit().await?;
        Ok(c)
    }

    async fn container(
        &self,
        customer_id: &str,
        sid: &str,
    ) -> Result<Option<Container>, MetaError> {
        let row = sqlx::query(select::CONTAINER)
            .bind(sid)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::container_row).transpose()
    }

    async fn list_containers(
        &self,
        customer_id: &str,
        page: i64,
        limit: i64,
    ) -> Result<Page<Container>, MetaError> {
        let found = sqlx::query(select::CONTAINERS_PAGE)
            .bind(customer_id)
            .bind(limit)
            .bind((page - 1).saturating_mul(limit))
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query_scalar(select::CONTAINER_COUNT)
            .bind(customer_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Page {
            items: found
                .iter()
                .map(rows::container_row)
                .collect::<Result<_, _>>()?,
            total_records: total,
        })
    }

    async fn update_container(
        &self,
        customer_id: &str,
        sid: &str,
        update: ContainerUpdate,
    ) -> Result<Option<Container>, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some(owner) = load_customer(&mut tx, customer_id).await? else {
            return Ok(None);
        };
        let Some(current) = load_container(&mut tx, customer_id, sid).await? else {
            return Ok(None);
        };
        let next = rows::changed_container(current, &owner, update)?;
        save_container(&mut tx, &self.pool, &next).await?;
        tx.commit().await?;
        Ok(Some(next))
    }

    async fn delete_container(&self, customer_id: &str, sid: &str) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        if load_customer(&mut tx, customer_id).await?.is_none() {
            return Ok(false);
        }
        // An upload into it holds (or waits for) the same lock, so the count is final.
        if load_container(&mut tx, customer_id, sid).await?.is_none() {
            return Ok(false);
        }
        let files: i64 = sqlx::query_scalar(select::FILES_IN_CONTAINER)
            .bind(sid)
            .fetch_one(&mut *tx)
            .await?;
        if files > 0 {
            return Err(rows::container_not_empty());
        }
        sqlx::query("DELETE FROM containers WHERE sid = $1")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE customers SET container_count = container_count - 1 WHERE id = $1")
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_file(&self, f: &FileRecord, now: Timestamp) -> Result<(), MetaError> {
        let media = rows::media_json(&f.media)?;
        let mut tx = self.pool.begin().await?;
        let customer = load_customer(&mut tx, &f.customer_id)
            .await?
            .ok_or(DomainError::NotFound { what: "customer" })?;
        let container = load_container(&mut tx, &f.customer_id, &f.container_sid)
            .await?
            .ok_or(DomainError::NotFound { what: "container" })?;
        let state = quota::admit(&customer, &container, Charge::of(f), now)?;
        charge_totals(&mut tx, f, 1, now).await?;
        set_threshold_state(&mut tx, &f.container_sid, state).await?;
        let res = rows::bind_file!(sqlx::query(rows::INSERT_FILE.as_str()), f, media)
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            return Err(file_conflict(&self.pool, e, f).await);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn file(&self, customer_id: &str, sid: &str) -> Result<Option<FileRecord>, MetaError> {
        let row = sqlx::query(select::FILE)
            .bind(sid)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::file_row).transpose()
    }

    async fn file_by_sid(&self, sid: &str) -> Result<Option<FileRecord>, MetaError> {
        let row = sqlx::query(select::FILE_BY_SID)
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::file_row).transpose()
    }

    async fn published_file(&self, key: &str) -> Result<Option<FileRecord>, MetaError> {
        let row = sqlx::query(select::PUBLISHED)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::file_row).transpose()
    }

    async fn list_files(&self, q: &FileQuery) -> Result<Page<FileRecord>, MetaError> {
        let (filter, args) = rows::file_filter(q);
        let count_sql = format!("SELECT count(*){filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        for a in &args {
            count = count.bind(*a);
        }
        let total = count.fetch_one(&self.pool).await?;
        let sql = rows::file_page_sql(&filter, args.len());
        let mut found = sqlx::query(&sql);
        for a in &args {
            found = found.bind(*a);
        }
        let found = found
            .bind(q.limit)
            .bind((q.page - 1).saturating_mul(q.limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(Page {
            items: found.iter().map(rows::file_row).collect::<Result<_, _>>()?,
            total_records: total,
        })
    }

    async fn update_file(
        &self,
        customer_id: &str,
        sid: &str,
        update: FileUpdate,
    ) -> Result<Option<FileRecord>, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some((current, container)) = self.lock_file(&mut tx, Some(customer_id), sid).await?
        else {
            return Ok(None);
        };
        let was_included = current.threshold_include;
        let next = update(current)?;
        if next.threshold_include != was_included {
            let state = quota::set_included(
                &container,
                next.size,
                next.threshold_include,
                next.date_modified,
            )?;
            set_threshold_state(&mut tx, &container.container_sid, state).await?;
        }
        let res = rows::bind_file_changes!(sqlx::query(rows::UPDATE_FILE), next)
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            return Err(file_conflict(&self.pool, e, &next).await);
        }
        tx.commit().await?;
        Ok(Some(next))
    }

    async fn delete_file(
        &self,
        customer_id: Option<&str>,
        sid: &str,
    ) -> Result<Option<FileRecord>, MetaError> {
        let mut tx = self.pool.begin().await?;
        // Locked, so of two racing deletes only one finds the file and releases its totals.
        let Some((file, container)) = self.lock_file(&mut tx, customer_id, sid).await? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM files WHERE sid = $1")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        charge_totals(&mut tx, &file, -1, Timestamp::now()).await?;
        set_threshold_state(
            &mut tx,
            &file.container_sid,
            quota::release(&container, file.size, file.threshold_include),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(file))
    }

    async fn touch_file(&self, sid: &str, now: Timestamp) -> Result<(), MetaError> {
        sqlx::query("UPDATE files SET date_last_accessed = $1 WHERE sid = $2")
            .bind(now.0)
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn all_blob_keys(&self) -> Result<Vec<(String, String)>, MetaError> {
        Ok(sqlx::query_as(select::BLOB_KEYS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn recompute_totals(&self) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        // Other nodes keep serving while this one starts: hold every customer and container
        // (in the writers' order) so no write is in flight while the sums are taken; each
        // statement after the locks reads what they committed.
        sqlx::query(&format!("SELECT id FROM customers ORDER BY id{LOCK}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("SELECT sid FROM containers ORDER BY sid{LOCK}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(rows::RECOMPUTE_CONTAINERS)
            .bind(true)
            .execute(&mut *tx)
            .await?;
        sqlx::query(rows::RECOMPUTE_CUSTOMERS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn expired_files(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<FileRecord>, MetaError> {
        let found = sqlx::query(select::EXPIRED)
            .bind(now.0)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::file_row).collect()
    }

    async fn containers_over_threshold(&self) -> Result<Vec<Container>, MetaError> {
        let found = sqlx::query(select::OVER_THRESHOLD)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::container_row).collect()
    }

    async fn lru_files(
        &self,
        container_sid: &str,
        limit: i64,
    ) -> Result<Vec<FileRecord>, MetaError> {
        let found = sqlx::query(select::LRU)
            .bind(container_sid)
            .bind(true)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::file_row).collect()
    }

    async fn secret_or_insert(
        &self,
        name: &str,
        candidate: &[u8],
    ) -> Result<(Vec<u8>, bool), MetaError> {
        // ON CONFLICT waits for a racing insert to commit, so the SELECT that follows (a new
        // snapshot) sees whichever value was written first.
        let inserted = sqlx::query(rows::INSERT_SECRET)
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1;
        let stored: Vec<u8> = sqlx::query_scalar(select::SECRET)
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok((stored, inserted))
    }

    async fn export_customers(&self) -> Result<Vec<CustomerDump>, MetaError> {
        let customers = sqlx::query(select::ALL_CUSTOMERS)
            .fetch_all(&self.pool)
            .await?;
        let tokens = sqlx::query(select::ALL_TOKENS)
            .fetch_all(&self.pool)
            .await?;
        rows::customer_dumps(&customers, &tokens)
    }

    async fn export_containers(&self) -> Result<Vec<Container>, MetaError> {
        let found = sqlx::query(select::ALL_CONTAINERS)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::container_row).collect()
    }

    async fn export_files_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FileRecord>, MetaError> {
        let found = sqlx::query(select::FILES_AFTER)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::file_row).collect()
    }

    async fn export_secrets(&self) -> Result<Vec<Secret>, MetaError> {
        let found = sqlx::query(select::ALL_SECRETS)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::secret_row).collect()
    }

    async fn import_customer(&self, c: &CustomerDump) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        let new = rows::bind_customer!(sqlx::query(rows::INSERT_CUSTOMER.as_str()), c.customer)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        for t in &c.tokens {
            sqlx::query(rows::INSERT_TOKEN)
                .bind(&t.token_hash)
                .bind(&t.customer_id)
                .bind(t.date_created.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn import_container(&self, c: &Container) -> Result<bool, MetaError> {
        let done = rows::bind_container!(sqlx::query(rows::IMPORT_CONTAINER.as_str()), c)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn import_file(&self, f: &FileRecord) -> Result<bool, MetaError> {
        let media = rows::media_json(&f.media)?;
        let done = rows::bind_file!(sqlx::query(rows::IMPORT_FILE.as_str()), f, media)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn import_secret(&self, s: &Secret) -> Result<bool, MetaError> {
        let done = sqlx::query(rows::INSERT_SECRET)
            .bind(&s.name)
            .bind(&s.value)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
