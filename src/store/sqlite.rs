//! The embedded metadata store: SQLite through sqlx, WAL mode, migrations from
//! `migrations/sqlite/`.
//!
//! Every write transaction starts with a write, so SQLite takes its write lock first and the
//! reads that follow see the state the transaction commits on (no lost updates, no upgrade
//! deadlocks). The operations themselves, statements and rules included, are the ones
//! PostgreSQL's store runs: `sql_store.rs` writes them once, `rows.rs` reads the rows.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

type Tx = Transaction<'static, Sqlite>;

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
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteMeta { pool })
    }

    /// Opens an existing database read-only, as it is (no migration): the source of a
    /// migration, which must not change. (A reader of a WAL database may still create the
    /// `-wal`/`-shm` side files SQLite keeps beside it; the database itself is not written.)
    pub async fn open_read_only(url: &str) -> Result<Self, MetaError> {
        let path = url
            .strip_prefix("sqlite://")
            .ok_or_else(|| MetaError::Unsupported(url.to_string()))?;
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .read_only(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await?;
        Ok(SqliteMeta { pool })
    }

    /// Begins a transaction holding the write lock (see the module doc).
    async fn write_tx(&self) -> Result<Tx, MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE lock_anchor SET n = n + 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

super::sql_store::sql_meta_store!(SqliteMeta, SqlitePool, Tx, "");
