//! What nodes sharing one metadata store agree on beyond its rows: the changes every node must
//! hear (PostgreSQL `LISTEN`/`NOTIFY`, sent by a trigger at commit) and a claim on the cleanup
//! pass (a session advisory lock: released when the pass ends, or by the server when the
//! holder's connection dies with its node). The embedded store has one node and no cluster.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::Connection;

use super::meta::MetaError;
use crate::domain::events::FileChange;

/// The channel the `files_changed` trigger notifies (migrations/postgres).
const CHANNEL: &str = "mediastore_files";
/// The advisory lock key of the cleanup pass ("ms-clean" in ASCII).
const CLEANUP_LOCK: i64 = 0x6d73_2d63_6c65_616e;

/// Changes made by any node, this one included, in commit order. An `Err` item means the
/// channel broke: changes may have been missed, and the feed ends.
pub type ChangeFeed = BoxStream<'static, Result<FileChange, MetaError>>;

/// A held claim on the cleanup pass; dropping it releases the claim.
pub struct CleanupClaim {
    /// The session holding the lock: closed on drop, which releases it.
    _session: Option<sqlx::postgres::PgConnection>,
}

impl std::fmt::Debug for CleanupClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CleanupClaim")
    }
}

impl CleanupClaim {
    /// A claim nobody else can contest (one node).
    pub fn sole() -> Self {
        CleanupClaim { _session: None }
    }

    /// Releases the claim now (dropping it does too, by closing its session).
    pub async fn release(mut self) {
        if let Some(mut conn) = self._session.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(CLEANUP_LOCK)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// Coordination of the nodes sharing a metadata store.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// Starts listening to file changes.
    async fn file_changes(&self) -> Result<ChangeFeed, MetaError>;
    /// Claims this cleanup pass, or `None` when another node is running it.
    async fn claim_cleanup(&self) -> Result<Option<CleanupClaim>, MetaError>;
}

/// The cluster of nodes on one PostgreSQL database.
pub struct PgCluster {
    url: String,
    /// Sessions for cleanup claims, apart from the metadata pool.
    claims: PgPool,
}

impl PgCluster {
    /// Coordination over the database at `url`.
    pub fn connect_lazy(url: &str) -> Result<Self, MetaError> {
        let opts = PgConnectOptions::from_str(url)?;
        let claims = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(opts);
        Ok(PgCluster {
            url: url.to_string(),
            claims,
        })
    }
}

#[async_trait]
impl Cluster for PgCluster {
    async fn file_changes(&self) -> Result<ChangeFeed, MetaError> {
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        // try_recv, not recv: recv reconnects silently and loses what was sent meanwhile;
        // try_recv says the connection was lost (Ok(None)), so the node can drop its caches.
        let feed = futures_util::stream::unfold(Some(listener), |listener| async move {
            let mut listener = listener?;
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match FileChange::parse(n.payload()) {
                        Some(c) => return Some((Ok(c), Some(listener))),
                        None => {
                            tracing::warn!(payload = n.payload(), "unknown change notification");
                            continue;
                        }
                    },
                    Ok(None) => {
                        return Some((
                            Err(MetaError::Corrupt("the change channel was closed".into())),
                            None,
                        ))
                    }
                    Err(e) => return Some((Err(MetaError::Db(e)), None)),
                }
            }
        });
        Ok(Box::pin(feed))
    }

    async fn claim_cleanup(&self) -> Result<Option<CleanupClaim>, MetaError> {
        let mut conn = self.claims.acquire().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(CLEANUP_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        // Detached: the lock belongs to this session, which must not go back to the pool.
        Ok(got.then(|| CleanupClaim {
            _session: Some(conn.detach()),
        }))
    }
}
