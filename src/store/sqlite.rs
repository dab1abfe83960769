//! The embedded metadata store: SQLite through sqlx, WAL mode, migrations from `migrations/`.
//!
//! Every write transaction starts with a write, so SQLite takes its write lock first and the
//! reads that follow see the state the transaction commits on (no lost updates, no upgrade
//! deadlocks). Rules (quotas, thresholds) run inside that window.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::meta::{ContainerUpdate, FileQuery, FileUpdate, MetaError, MetaStore, Page};
use crate::domain::model::{
    Classification, Container, Customer, FileRecord, MediaInfo, Publish, ThresholdAction,
    UniqueKeys,
};
use crate::domain::quota::{self, Charge};
use crate::domain::{threshold, DomainError, Timestamp};

/// SQLite-backed [`MetaStore`].
pub struct SqliteMeta {
    pool: SqlitePool,
}

impl SqliteMeta {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`) and runs migrations.
    pub async fn open(url: &str) -> Result<Self, MetaError> {
        let path = url
            .strip_prefix("sqlite://")
            .ok_or_else(|| MetaError::Unsupported(url.to_string()))?;
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| MetaError::Db(sqlx::Error::Io(e)))?;
            }
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed upload survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SqliteMeta { pool })
    }

    /// Begins a transaction holding the write lock (see the module doc).
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE lock_anchor SET n = n + 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

const CUSTOMER_COLS: &str = "id, name, quota_bytes, max_containers, total_bytes, total_files, container_count, date_created, date_modified";

fn customer_row(r: &SqliteRow) -> Result<Customer, MetaError> {
    Ok(Customer {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        quota_bytes: r.try_get("quota_bytes")?,
        max_containers: r.try_get("max_containers")?,
        total_bytes: r.try_get("total_bytes")?,
        total_files: r.try_get("total_files")?,
        container_count: r.try_get("container_count")?,
        date_created: Timestamp(r.try_get("date_created")?),
        date_modified: Timestamp(r.try_get("date_modified")?),
    })
}

fn parse_classes(s: Option<String>) -> Result<Option<Vec<Classification>>, MetaError> {
    let Some(s) = s else { return Ok(None) };
    let names: Vec<String> =
        serde_json::from_str(&s).map_err(|e| MetaError::Corrupt(e.to_string()))?;
    names
        .iter()
        .map(|n| {
            Classification::parse(n)
                .ok_or_else(|| MetaError::Corrupt(format!("classification {n}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn classes_json(c: &Option<Vec<Classification>>) -> Option<String> {
    c.as_ref().map(|list| {
        serde_json::Value::from(list.iter().map(|c| c.as_str()).collect::<Vec<_>>()).to_string()
    })
}

fn keys_row(r: &SqliteRow) -> Result<UniqueKeys, MetaError> {
    Ok(UniqueKeys {
        integer_key_1: r.try_get("integer_key_1")?,
        integer_key_2: r.try_get("integer_key_2")?,
        string_key_1: r.try_get("string_key_1")?,
        string_key_2: r.try_get("string_key_2")?,
        string_key_3: r.try_get("string_key_3")?,
        string_key_4: r.try_get("string_key_4")?,
    })
}

fn container_row(r: &SqliteRow) -> Result<Container, MetaError> {
    let action: String = r.try_get("threshold_action")?;
    let mut c = Container {
        container_sid: r.try_get("sid")?,
        customer_id: r.try_get("customer_id")?,
        is_default: r.try_get::<i64, _>("is_default")? != 0,
        quota_bytes: r.try_get("quota_bytes")?,
        quota_files: r.try_get("quota_files")?,
        total_bytes: r.try_get("total_bytes")?,
        total_files: r.try_get("total_files")?,
        max_file_size: r.try_get("max_file_size")?,
        allowed_classifications: parse_classes(r.try_get("allowed_classifications")?)?,
        blocked_classifications: parse_classes(r.try_get("blocked_classifications")?)?,
        threshold_action: ThresholdAction::parse(&action)
            .ok_or_else(|| MetaError::Corrupt(format!("threshold_action {action}")))?,
        threshold_bytes: r.try_get("threshold_bytes")?,
        threshold_files: r.try_get("threshold_files")?,
        threshold_grace_period: r.try_get("threshold_grace_period")?,
        threshold_bytes_target: r.try_get("threshold_bytes_target")?,
        threshold_files_target: r.try_get("threshold_files_target")?,
        threshold_total_bytes: r.try_get("threshold_total_bytes")?,
        threshold_total_files: r.try_get("threshold_total_files")?,
        threshold_available_bytes_percent: None,
        threshold_available_files_percent: None,
        threshold_reached_at: r
            .try_get::<Option<i64>, _>("threshold_reached_at")?
            .map(Timestamp),
        unique: r.try_get::<i64, _>("is_unique")? != 0,
        keys: keys_row(r)?,
        date_created: Timestamp(r.try_get("date_created")?),
        date_modified: Timestamp(r.try_get("date_modified")?),
    };
    threshold::refresh(&mut c);
    Ok(c)
}

fn file_row(r: &SqliteRow) -> Result<FileRecord, MetaError> {
    let class: String = r.try_get("content_classification")?;
    let publish: String = r.try_get("publish")?;
    let media: Option<String> = r.try_get("media")?;
    Ok(FileRecord {
        file_sid: r.try_get("sid")?,
        container_sid: r.try_get("container_sid")?,
        customer_id: r.try_get("customer_id")?,
        blob_key: r.try_get("blob_key")?,
        owner_id: r.try_get("owner_id")?,
        reference_type: r.try_get("reference_type")?,
        reference_id: r.try_get("reference_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        tag: r.try_get("tag")?,
        size: r.try_get("size")?,
        mime_type: r.try_get("mime_type")?,
        content_format: r.try_get("content_format")?,
        content_classification: Classification::parse(&class)
            .ok_or_else(|| MetaError::Corrupt(format!("classification {class}")))?,
        media: match media {
            Some(m) => Some(
                serde_json::from_str::<MediaInfo>(&m)
                    .map_err(|e| MetaError::Corrupt(e.to_string()))?,
            ),
            None => None,
        },
        checksum_sha256: r.try_get("checksum_sha256")?,
        publish: Publish::parse(&publish)
            .ok_or_else(|| MetaError::Corrupt(format!("publish {publish}")))?,
        file_access_name: r.try_get("file_access_name")?,
        expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp),
        threshold_include: r.try_get::<i64, _>("threshold_include")? != 0,
        unique: r.try_get::<i64, _>("is_unique")? != 0,
        keys: keys_row(r)?,
        kind: r.try_get("type")?,
        desired_format: r.try_get("desired_format")?,
        desired_bitrate: r.try_get("desired_bitrate")?,
        date_last_accessed: r
            .try_get::<Option<i64>, _>("date_last_accessed")?
            .map(Timestamp),
        date_created: Timestamp(r.try_get("date_created")?),
        date_modified: Timestamp(r.try_get("date_modified")?),
    })
}

fn unique_key(unique: bool, keys: &UniqueKeys) -> Option<String> {
    unique.then(|| keys.canonical())
}

fn is_unique_violation(e: &sqlx::Error, index: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation() && db.message().contains(index),
        _ => false,
    }
}

async fn load_customer(
    tx: &mut Transaction<'static, Sqlite>,
    id: &str,
) -> Result<Option<Customer>, MetaError> {
    let row = sqlx::query(&format!(
        "SELECT {CUSTOMER_COLS} FROM customers WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(customer_row).transpose()
}

async fn load_container(
    tx: &mut Transaction<'static, Sqlite>,
    customer_id: &str,
    sid: &str,
) -> Result<Option<Container>, MetaError> {
    let row = sqlx::query("SELECT * FROM containers WHERE sid = ? AND customer_id = ?")
        .bind(sid)
        .bind(customer_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(container_row).transpose()
}

/// The columns of a container that its settings and threshold state decide: written by both
/// the insert and the update, bound by [`bind_settings`] in this order.
const SETTINGS_COLS: [&str; 21] = [
    "quota_bytes",
    "quota_files",
    "max_file_size",
    "allowed_classifications",
    "blocked_classifications",
    "threshold_action",
    "threshold_bytes",
    "threshold_files",
    "threshold_grace_period",
    "threshold_bytes_target",
    "threshold_files_target",
    "threshold_reached_at",
    "is_unique",
    "unique_key",
    "integer_key_1",
    "integer_key_2",
    "string_key_1",
    "string_key_2",
    "string_key_3",
    "string_key_4",
    "date_modified",
];

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds [`SETTINGS_COLS`] of `c`, in order.
fn bind_settings<'q>(q: SqliteQuery<'q>, c: &'q Container) -> SqliteQuery<'q> {
    q.bind(c.quota_bytes)
        .bind(c.quota_files)
        .bind(c.max_file_size)
        .bind(classes_json(&c.allowed_classifications))
        .bind(classes_json(&c.blocked_classifications))
        .bind(c.threshold_action.as_str())
        .bind(c.threshold_bytes)
        .bind(c.threshold_files)
        .bind(c.threshold_grace_period)
        .bind(c.threshold_bytes_target)
        .bind(c.threshold_files_target)
        .bind(c.threshold_reached_at.map(|t| t.0))
        .bind(c.unique as i64)
        .bind(unique_key(c.unique, &c.keys))
        .bind(c.keys.integer_key_1)
        .bind(c.keys.integer_key_2)
        .bind(&c.keys.string_key_1)
        .bind(&c.keys.string_key_2)
        .bind(&c.keys.string_key_3)
        .bind(&c.keys.string_key_4)
        .bind(c.date_modified.0)
}

static INSERT_CONTAINER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO containers (sid, customer_id, is_default, total_bytes, total_files,
            threshold_total_bytes, threshold_total_files, date_created, {})
         VALUES (?,?,?,?,?,?,?,?,{})",
        SETTINGS_COLS.join(", "),
        vec!["?"; SETTINGS_COLS.len()].join(",")
    )
});

static UPDATE_CONTAINER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let set: Vec<String> = SETTINGS_COLS.iter().map(|c| format!("{c} = ?")).collect();
    format!("UPDATE containers SET {} WHERE sid = ?", set.join(", "))
});

async fn insert_container_row(
    tx: &mut Transaction<'static, Sqlite>,
    c: &Container,
) -> Result<(), MetaError> {
    let q = sqlx::query(INSERT_CONTAINER.as_str())
        .bind(&c.container_sid)
        .bind(&c.customer_id)
        .bind(c.is_default as i64)
        .bind(c.total_bytes)
        .bind(c.total_files)
        .bind(c.threshold_total_bytes)
        .bind(c.threshold_total_files)
        .bind(c.date_created.0);
    match bind_settings(q, c).execute(&mut **tx).await {
        Ok(_) => Ok(()),
        Err(e) => Err(container_conflict(tx, e, c).await),
    }
}

/// Writes a container's mutable settings and threshold state back.
async fn save_container(
    tx: &mut Transaction<'static, Sqlite>,
    c: &Container,
) -> Result<(), MetaError> {
    let q = bind_settings(sqlx::query(UPDATE_CONTAINER.as_str()), c).bind(&c.container_sid);
    match q.execute(&mut **tx).await {
        Ok(_) => Ok(()),
        Err(e) => Err(container_conflict(tx, e, c).await),
    }
}

/// Maps a unique-key violation on containers to the contract's error, naming the holder.
async fn container_conflict(
    tx: &mut Transaction<'static, Sqlite>,
    e: sqlx::Error,
    c: &Container,
) -> MetaError {
    if !is_unique_violation(&e, "unique_key") {
        return e.into();
    }
    let existing: Result<Option<String>, _> = sqlx::query_scalar(
        "SELECT sid FROM containers WHERE customer_id = ? AND unique_key = ? AND sid <> ?",
    )
    .bind(&c.customer_id)
    .bind(unique_key(c.unique, &c.keys))
    .bind(&c.container_sid)
    .fetch_optional(&mut **tx)
    .await;
    match existing {
        Ok(existing) => DomainError::Validation {
            field: "unique".into(),
            message: "container with the same set of keys already exists".into(),
            reference_sid: existing,
        }
        .into(),
        Err(e) => e.into(),
    }
}

/// Maps a unique-index violation on files to the contract's error.
async fn file_conflict(
    tx: &mut Transaction<'static, Sqlite>,
    e: sqlx::Error,
    f: &FileRecord,
) -> MetaError {
    if is_unique_violation(&e, "unique_key") {
        let existing: Result<Option<String>, _> = sqlx::query_scalar(
            "SELECT sid FROM files WHERE customer_id = ? AND unique_key = ? AND sid <> ?",
        )
        .bind(&f.customer_id)
        .bind(unique_key(f.unique, &f.keys))
        .bind(&f.file_sid)
        .fetch_optional(&mut **tx)
        .await;
        return match existing {
            Ok(existing) => DomainError::Validation {
                field: "unique".into(),
                message: "file with the same set of keys already exists".into(),
                reference_sid: existing,
            }
            .into(),
            Err(e) => e.into(),
        };
    }
    if is_unique_violation(&e, "file_access_name") {
        return DomainError::Conflict {
            field: "file_access_name".into(),
            message: "this file_access_name is taken".into(),
        }
        .into();
    }
    e.into()
}

/// Applies a threshold state to the container row.
async fn set_threshold_state(
    tx: &mut Transaction<'static, Sqlite>,
    sid: &str,
    st: quota::ThresholdState,
) -> Result<(), MetaError> {
    sqlx::query("UPDATE containers SET threshold_total_bytes = ?, threshold_total_files = ?, threshold_reached_at = ? WHERE sid = ?")
        .bind(st.total_bytes)
        .bind(st.total_files)
        .bind(st.reached_at.map(|t| t.0))
        .bind(sid)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn create_customer(&self, c: &Customer, token_hash: &str) -> Result<(), MetaError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!(
            "INSERT INTO customers ({CUSTOMER_COLS}) VALUES (?,?,?,?,?,?,?,?,?)"
        ))
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.quota_bytes)
        .bind(c.max_containers)
        .bind(c.total_bytes)
        .bind(c.total_files)
        .bind(c.container_count)
        .bind(c.date_created.0)
        .bind(c.date_modified.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO tokens (token_hash, customer_id, date_created) VALUES (?,?,?)")
            .bind(token_hash)
            .bind(&c.id)
            .bind(c.date_created.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLS} FROM customers WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(customer_row).transpose()
    }

    async fn update_customer(
        &self,
        id: &str,
        quota_bytes: Option<i64>,
        max_containers: Option<i64>,
        now: Timestamp,
    ) -> Result<Option<Customer>, MetaError> {
        let mut tx = self.write_tx().await?;
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
        sqlx::query("UPDATE customers SET quota_bytes = ?, max_containers = ?, date_modified = ? WHERE id = ?")
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
        let mut tx = self.write_tx().await?;
        if load_customer(&mut tx, customer_id).await?.is_none() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO tokens (token_hash, customer_id, date_created) VALUES (?,?,?)")
            .bind(token_hash)
            .bind(customer_id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn customer_by_token(&self, token_hash: &str) -> Result<Option<Customer>, MetaError> {
        let row = sqlx::query(
            "SELECT c.id, c.name, c.quota_bytes, c.max_containers, c.total_bytes, c.total_files, c.container_count,
                    c.date_created, c.date_modified
             FROM tokens t JOIN customers c ON c.id = t.customer_id WHERE t.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(customer_row).transpose()
    }

    async fn create_container(&self, c: &Container) -> Result<(), MetaError> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query(
            "UPDATE customers SET container_count = container_count + 1 WHERE id = ? AND container_count < max_containers",
        )
        .bind(&c.customer_id)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            return Err(DomainError::validation(
                "max_containers",
                "the customer's container limit is reached",
            )
            .into());
        }
        insert_container_row(&mut tx, c).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn default_container(
        &self,
        customer_id: &str,
        new: Container,
    ) -> Result<Container, MetaError> {
        if let Some(row) = sqlx::query(
            "SELECT * FROM containers WHERE customer_id = ? ORDER BY is_default DESC, date_created, sid LIMIT 1",
        )
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await?
        {
            return container_row(&row);
        }
        let mut tx = self.write_tx().await?;
        // Re-check under the write lock: a racing upload may have made it meanwhile.
        if let Some(row) = sqlx::query(
            "SELECT * FROM containers WHERE customer_id = ? ORDER BY is_default DESC, date_created, sid LIMIT 1",
        )
        .bind(customer_id)
        .fetch_optional(&mut *tx)
        .await?
        {
            return container_row(&row);
        }
        let taken = sqlx::query(
            "UPDATE customers SET container_count = container_count + 1 WHERE id = ? AND container_count < max_containers",
        )
        .bind(customer_id)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            return Err(DomainError::validation(
                "max_containers",
                "the customer's container limit is reached",
            )
            .into());
        }
        let c = Container {
            is_default: true,
            ..new
        };
        insert_container_row(&mut tx, &c).await?;
        tx.commit().await?;
        Ok(c)
    }

    async fn container(
        &self,
        customer_id: &str,
        sid: &str,
    ) -> Result<Option<Container>, MetaError> {
        let row = sqlx::query("SELECT * FROM containers WHERE sid = ? AND customer_id = ?")
            .bind(sid)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(container_row).transpose()
    }

    async fn list_containers(
        &self,
        customer_id: &str,
        page: i64,
        limit: i64,
    ) -> Result<Page<Container>, MetaError> {
        let rows = sqlx::query(
            "SELECT * FROM containers WHERE customer_id = ? ORDER BY date_created, sid LIMIT ? OFFSET ?",
        )
        .bind(customer_id)
        .bind(limit)
        .bind((page - 1).saturating_mul(limit))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM containers WHERE customer_id = ?")
                .bind(customer_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(Page {
            items: rows.iter().map(container_row).collect::<Result<_, _>>()?,
            total_records: total,
        })
    }

    async fn update_container(
        &self,
        customer_id: &str,
        sid: &str,
        update: ContainerUpdate,
    ) -> Result<Option<Container>, MetaError> {
        let mut tx = self.write_tx().await?;
        let Some(current) = load_container(&mut tx, customer_id, sid).await? else {
            return Ok(None);
        };
        let Some(owner) = load_customer(&mut tx, customer_id).await? else {
            return Ok(None);
        };
        let mut next = update(current, &owner)?;
        // A changed threshold may start or end a "reached" episode.
        next.threshold_reached_at = threshold::reached_at_after(
            &next,
            next.threshold_total_bytes,
            next.threshold_total_files,
            next.date_modified,
        );
        save_container(&mut tx, &next).await?;
        tx.commit().await?;
        Ok(Some(next))
    }

    async fn delete_container(&self, customer_id: &str, sid: &str) -> Result<bool, MetaError> {
        let mut tx = self.write_tx().await?;
        let Some(_) = load_container(&mut tx, customer_id, sid).await? else {
            return Ok(false);
        };
        let files: i64 = sqlx::query_scalar("SELECT count(*) FROM files WHERE container_sid = ?")
            .bind(sid)
            .fetch_one(&mut *tx)
            .await?;
        if files > 0 {
            return Err(DomainError::Conflict {
                field: "container_sid".into(),
                message: "the container still holds files".into(),
            }
            .into());
        }
        sqlx::query("DELETE FROM containers WHERE sid = ?")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE customers SET container_count = container_count - 1 WHERE id = ?")
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_file(&self, f: &FileRecord, now: Timestamp) -> Result<(), MetaError> {
        let mut tx = self.write_tx().await?;
        let customer = load_customer(&mut tx, &f.customer_id)
            .await?
            .ok_or(DomainError::NotFound { what: "customer" })?;
        let container = load_container(&mut tx, &f.customer_id, &f.container_sid)
            .await?
            .ok_or(DomainError::NotFound { what: "container" })?;
        let charge = Charge {
            bytes: f.size,
            files: 1,
            included: f.threshold_include,
        };
        let state = quota::admit(&customer, &container, charge, now)?;
        sqlx::query("UPDATE customers SET total_bytes = total_bytes + ?, total_files = total_files + 1, date_modified = ? WHERE id = ?")
            .bind(f.size)
            .bind(now.0)
            .bind(&f.customer_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE containers SET total_bytes = total_bytes + ?, total_files = total_files + 1 WHERE sid = ?")
            .bind(f.size)
            .bind(&f.container_sid)
            .execute(&mut *tx)
            .await?;
        set_threshold_state(&mut tx, &f.container_sid, state).await?;
        let res = sqlx::query(
            "INSERT INTO files (sid, container_sid, customer_id, blob_key, owner_id, reference_type, reference_id, name,
                description, tag, size, mime_type, content_format, content_classification, media, checksum_sha256,
                publish, file_access_name, expires_at, threshold_include, is_unique, unique_key, integer_key_1,
                integer_key_2, string_key_1, string_key_2, string_key_3, string_key_4, type, desired_format,
                desired_bitrate, date_last_accessed, date_created, date_modified)
             VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        )
        .bind(&f.file_sid)
        .bind(&f.container_sid)
        .bind(&f.customer_id)
        .bind(&f.blob_key)
        .bind(&f.owner_id)
        .bind(&f.reference_type)
        .bind(&f.reference_id)
        .bind(&f.name)
        .bind(&f.description)
        .bind(&f.tag)
        .bind(f.size)
        .bind(&f.mime_type)
        .bind(&f.content_format)
        .bind(f.content_classification.as_str())
        .bind(f.media.as_ref().map(|m| serde_json::to_string(m).unwrap_or_default()))
        .bind(&f.checksum_sha256)
        .bind(f.publish.as_str())
        .bind(&f.file_access_name)
        .bind(f.expires_at.map(|t| t.0))
        .bind(f.threshold_include as i64)
        .bind(f.unique as i64)
        .bind(unique_key(f.unique, &f.keys))
        .bind(f.keys.integer_key_1)
        .bind(f.keys.integer_key_2)
        .bind(&f.keys.string_key_1)
        .bind(&f.keys.string_key_2)
        .bind(&f.keys.string_key_3)
        .bind(&f.keys.string_key_4)
        .bind(&f.kind)
        .bind(&f.desired_format)
        .bind(f.desired_bitrate)
        .bind(f.date_last_accessed.map(|t| t.0))
        .bind(f.date_created.0)
        .bind(f.date_modified.0)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(file_conflict(&mut tx, e, f).await);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn file(&self, customer_id: &str, sid: &str) -> Result<Option<FileRecord>, MetaError> {
        let row = sqlx::query("SELECT * FROM files WHERE sid = ? AND customer_id = ?")
            .bind(sid)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(file_row).transpose()
    }

    async fn file_by_sid(&self, sid: &str) -> Result<Option<FileRecord>, MetaError> {
        let row = sqlx::query("SELECT * FROM files WHERE sid = ?")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(file_row).transpose()
    }

    async fn published_file(&self, key: &str) -> Result<Option<FileRecord>, MetaError> {
        let row = sqlx::query(
            "SELECT * FROM files WHERE (sid = ?1 AND publish = 'file_sid') OR (file_access_name = ?1 AND publish = 'file_access_name')
             ORDER BY publish = 'file_sid' DESC LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_row).transpose()
    }

    async fn list_files(&self, q: &FileQuery) -> Result<Page<FileRecord>, MetaError> {
        let mut filter = String::from(" FROM files WHERE customer_id = ?");
        let mut args: Vec<&str> = vec![&q.customer_id];
        for (col, v) in [
            ("container_sid", &q.container_sid),
            ("tag", &q.tag),
            ("reference_type", &q.reference_type),
            ("reference_id", &q.reference_id),
            ("owner_id", &q.owner_id),
            ("name", &q.name),
        ] {
            if let Some(v) = v {
                filter.push_str(&format!(" AND {col} = ?"));
                args.push(v);
            }
        }
        let count_sql = format!("SELECT count(*){filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        for a in &args {
            count = count.bind(*a);
        }
        let total = count.fetch_one(&self.pool).await?;
        let sql = format!("SELECT *{filter} ORDER BY date_created DESC, sid DESC LIMIT ? OFFSET ?");
        let mut select = sqlx::query(&sql);
        for a in &args {
            select = select.bind(*a);
        }
        let rows = select
            .bind(q.limit)
            .bind((q.page - 1).saturating_mul(q.limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(Page {
            items: rows.iter().map(file_row).collect::<Result<_, _>>()?,
            total_records: total,
        })
    }

    async fn update_file(
        &self,
        customer_id: &str,
        sid: &str,
        update: FileUpdate,
    ) -> Result<Option<FileRecord>, MetaError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT * FROM files WHERE sid = ? AND customer_id = ?")
            .bind(sid)
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = row.as_ref().map(file_row).transpose()? else {
            return Ok(None);
        };
        let was_included = current.threshold_include;
        let next = update(current)?;
        if next.threshold_include != was_included {
            let container = load_container(&mut tx, customer_id, &next.container_sid)
                .await?
                .ok_or_else(|| MetaError::Corrupt(format!("file {sid} without container")))?;
            let state = if next.threshold_include {
                let total_bytes = container.threshold_total_bytes + next.size;
                let total_files = container.threshold_total_files + 1;
                quota::ThresholdState {
                    total_bytes,
                    total_files,
                    reached_at: threshold::reached_at_after(
                        &container,
                        total_bytes,
                        total_files,
                        next.date_modified,
                    ),
                }
            } else {
                quota::release(&container, next.size, true)
            };
            set_threshold_state(&mut tx, &container.container_sid, state).await?;
        }
        let res = sqlx::query(
            "UPDATE files SET owner_id = ?, reference_type = ?, reference_id = ?, name = ?, description = ?, tag = ?,
                mime_type = ?, publish = ?, file_access_name = ?, expires_at = ?, threshold_include = ?, is_unique = ?,
                unique_key = ?, integer_key_1 = ?, integer_key_2 = ?, string_key_1 = ?, string_key_2 = ?,
                string_key_3 = ?, string_key_4 = ?, date_modified = ?
             WHERE sid = ?",
        )
        .bind(&next.owner_id)
        .bind(&next.reference_type)
        .bind(&next.reference_id)
        .bind(&next.name)
        .bind(&next.description)
        .bind(&next.tag)
        .bind(&next.mime_type)
        .bind(next.publish.as_str())
        .bind(&next.file_access_name)
        .bind(next.expires_at.map(|t| t.0))
        .bind(next.threshold_include as i64)
        .bind(next.unique as i64)
        .bind(unique_key(next.unique, &next.keys))
        .bind(next.keys.integer_key_1)
        .bind(next.keys.integer_key_2)
        .bind(&next.keys.string_key_1)
        .bind(&next.keys.string_key_2)
        .bind(&next.keys.string_key_3)
        .bind(&next.keys.string_key_4)
        .bind(next.date_modified.0)
        .bind(sid)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(file_conflict(&mut tx, e, &next).await);
        }
        tx.commit().await?;
        Ok(Some(next))
    }

    async fn delete_file(
        &self,
        customer_id: Option<&str>,
        sid: &str,
    ) -> Result<Option<FileRecord>, MetaError> {
        let mut tx = self.write_tx().await?;
        let row =
            sqlx::query("SELECT * FROM files WHERE sid = ? AND (?2 IS NULL OR customer_id = ?2)")
                .bind(sid)
                .bind(customer_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(file) = row.as_ref().map(file_row).transpose()? else {
            return Ok(None);
        };
        let container = load_container(&mut tx, &file.customer_id, &file.container_sid)
            .await?
            .ok_or_else(|| MetaError::Corrupt(format!("file {sid} without container")))?;
        sqlx::query("DELETE FROM files WHERE sid = ?")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE containers SET total_bytes = total_bytes - ?, total_files = total_files - 1 WHERE sid = ?")
            .bind(file.size)
            .bind(&file.container_sid)
            .execute(&mut *tx)
            .await?;
        set_threshold_state(
            &mut tx,
            &file.container_sid,
            quota::release(&container, file.size, file.threshold_include),
        )
        .await?;
        sqlx::query("UPDATE customers SET total_bytes = total_bytes - ?, total_files = total_files - 1, date_modified = ? WHERE id = ?")
            .bind(file.size)
            .bind(Timestamp::now().0)
            .bind(&file.customer_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(file))
    }

    async fn touch_file(&self, sid: &str, now: Timestamp) -> Result<(), MetaError> {
        sqlx::query("UPDATE files SET date_last_accessed = ? WHERE sid = ?")
            .bind(now.0)
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn all_blob_keys(&self) -> Result<Vec<(String, String)>, MetaError> {
        Ok(sqlx::query_as("SELECT sid, blob_key FROM files")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn recompute_totals(&self) -> Result<(), MetaError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE containers SET
                total_bytes = (SELECT coalesce(sum(size), 0) FROM files f WHERE f.container_sid = containers.sid),
                total_files = (SELECT count(*) FROM files f WHERE f.container_sid = containers.sid),
                threshold_total_bytes = (SELECT coalesce(sum(size), 0) FROM files f WHERE f.container_sid = containers.sid AND f.threshold_include = 1),
                threshold_total_files = (SELECT count(*) FROM files f WHERE f.container_sid = containers.sid AND f.threshold_include = 1)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE customers SET
                total_bytes = (SELECT coalesce(sum(size), 0) FROM files f WHERE f.customer_id = customers.id),
                total_files = (SELECT count(*) FROM files f WHERE f.customer_id = customers.id),
                container_count = (SELECT count(*) FROM containers c WHERE c.customer_id = customers.id)",
        )
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
        let rows = sqlx::query("SELECT * FROM files WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?")
            .bind(now.0)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(file_row).collect()
    }

    async fn containers_over_threshold(&self) -> Result<Vec<Container>, MetaError> {
        let rows = sqlx::query(
            "SELECT * FROM containers WHERE threshold_action = 'delete_lru'
               AND ((threshold_bytes IS NOT NULL AND threshold_total_bytes >= threshold_bytes)
                 OR (threshold_files IS NOT NULL AND threshold_total_files >= threshold_files))",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(container_row).collect()
    }

    async fn lru_files(
        &self,
        container_sid: &str,
        limit: i64,
    ) -> Result<Vec<FileRecord>, MetaError> {
        let rows = sqlx::query(
            "SELECT * FROM files WHERE container_sid = ? AND threshold_include = 1
             ORDER BY coalesce(date_last_accessed, 0), date_created LIMIT ?",
        )
        .bind(container_sid)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_row).collect()
    }
}
