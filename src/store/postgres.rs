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
//! The operations are written once for both SQL stores, in `sql_store.rs`; this file says how
//! to connect, begin and lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

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

    /// Connects to `url` in read-only sessions, without migrating: the source of a migration,
    /// which must not change.
    pub async fn open_read_only(url: &str) -> Result<Self, MetaError> {
        let opts = sqlx::postgres::PgConnectOptions::from_str(url)?
            .options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        Ok(PgMeta { pool })
    }

    /// Begins a transaction; its writes lock what they read (see the module doc).
    async fn write_tx(&self) -> Result<Tx, MetaError> {
        Ok(self.pool.begin().await?)
    }
}

/// How a transaction locks a row it reads to change (see the module doc).
const LOCK: &str = " FOR NO KEY UPDATE";

super::sql_store::sql_meta_store!(PgMeta, PgPool, Tx, LOCK);
