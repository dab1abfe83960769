//! Building the server's state from the settings, and running it until a signal.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

use tokio::net::TcpSocket;

use crate::config::Config;
use crate::domain::sealing::Sealer;
use crate::domain::signing::LinkSigner;
use crate::store::{self, BlobStore, MetaStore};

/// Shared state of every request: one `Arc`, so the per-request clone axum makes is one
/// reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub meta: Arc<dyn MetaStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub signer: LinkSigner,
    /// Seals external containers' credentials at rest (the key lives with the signing key).
    pub sealer: Sealer,
    /// Clients of customers' own buckets (external containers).
    pub external: Arc<store::external::ExternalStores>,
    /// SHA-256 of the admin token; compared in constant time.
    pub admin_token_hash: [u8; 32],
    /// Base of `publish_uri` and `uri_download`, without a trailing slash.
    pub public_url: Arc<str>,
    pub config: Arc<Config>,
    /// Conversions for `f=`/`br=` and upload-time `desired_format`.
    pub transcoder: Arc<crate::transcode::Transcoder>,
    /// Recently served published files, invalidated by every change to a file.
    pub publish_cache: Arc<crate::http::publish_cache::PublishCache>,
    /// Where file changes are raised; the publish cache and the converted copies hear them.
    pub events: Arc<crate::service::events::Events>,
    /// The other nodes on the same metadata store (PostgreSQL), if any.
    pub cluster: Option<Arc<dyn store::cluster::Cluster>>,
    /// What `/metrics` shows; every layer records into it.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: 32 bytes of the OS's randomness, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Writes a secret file readable by the owner only.
fn write_secret(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Name of the admin token's SHA-256 in the metadata store's secrets.
pub const ADMIN_TOKEN_SECRET: &str = "admin_token_sha256";
/// Name of the link-signing key in the metadata store's secrets.
pub const SIGNING_KEY_SECRET: &str = "link_signing_key";
/// Name of the key sealing external containers' credentials in the metadata store's secrets.
pub const SEALING_KEY_SECRET: &str = "external_sealing_key";

/// The SHA-256 of the admin token this node accepts. `--admin-token` wins on this node (the
/// stored hash is left alone); otherwise the hash every node shares from the metadata store,
/// first stored from an existing data dir's `admin_token` file, else from a new token that is
/// kept in the data dir (mode 0600) and printed once, by the one node whose token was stored.
async fn admin_token_hash(config: &Config, meta: &dyn MetaStore) -> anyhow::Result<[u8; 32]> {
    if let Some(t) = &config.admin_token {
        return Ok(token_hash(t));
    }
    let path = config.data_dir.join("admin_token");
    let (stored, candidate) = match std::fs::read_to_string(&path) {
        Ok(t) => (
            meta.secret_or_insert(ADMIN_TOKEN_SECRET, &token_hash(t.trim()))
                .await?
                .0,
            None,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = new_token();
            let (stored, inserted) = meta
                .secret_or_insert(ADMIN_TOKEN_SECRET, &token_hash(&t))
                .await?;
            (stored, inserted.then_some(t))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(t) = candidate {
        write_secret(&path, t.as_bytes())?;
        // Printed once, to stdout, never logged.
        println!("admin token (kept in {}): {t}", path.display());
    }
    stored
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored admin token hash is not 32 bytes"))
}

/// The key signing `uri_download` links, shared by every node through the metadata store so
/// links survive restarts and work on any node; an existing data dir's `signing_key` file is
/// its first value.
async fn signing_key(config: &Config, meta: &dyn MetaStore) -> anyhow::Result<Vec<u8>> {
    let path = config.data_dir.join("signing_key");
    let candidate = match std::fs::read(&path) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut k = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut k);
            k
        }
        Err(e) => return Err(e.into()),
    };
    let (key, _) = meta
        .secret_or_insert(SIGNING_KEY_SECRET, &candidate)
        .await?;
    if key.len() < 32 {
        anyhow::bail!("the stored link-signing key is shorter than 32 bytes");
    }
    Ok(key)
}

/// The key sealing external containers' credentials, shared by every node through the
/// metadata store like the link-signing key (the first node to start writes it).
async fn sealing_key(meta: &dyn MetaStore) -> anyhow::Result<Sealer> {
    let mut candidate = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut candidate);
    let (key, _) = meta
        .secret_or_insert(SEALING_KEY_SECRET, &candidate)
        .await?;
    Ok(Sealer::new(&key)?)
}

/// Opens the stores, repairs what a crash may have left, and builds the state.
pub async fn build(config: Config, public_url: String) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)?;
    let meta = store::open_meta(&config.metadata_url).await?;
    let admin_token_hash = admin_token_hash(&config, meta.as_ref()).await?;
    let key = signing_key(&config, meta.as_ref()).await?;
    let sealer = sealing_key(meta.as_ref()).await?;
    let blob_settings = store::BlobSettings {
        part_size: config.blob_part_size,
        cache: Arc::new(store::blob_cache::BlobCache::new(
            &config.data_dir.join("blob-cache"),
            config.blob_cache_bytes,
            config.blob_cache_keep_bytes,
        )?),
    };
    let blobs = store::open_blobs(&config.blob_url, &blob_settings)?;
    let external = Arc::new(store::external::ExternalStores::new(
        config.external_endpoints.clone(),
        config.blob_part_size,
        Arc::clone(&blob_settings.cache),
    ));
    crate::jobs::reconcile(meta.as_ref(), blobs.as_ref(), config.upload_grace).await?;
    let metrics = Arc::new(crate::metrics::Metrics::new(config.metrics));
    let mut transcoder = crate::transcode::Transcoder::new(
        &config.data_dir.join("transcode"),
        config.transcode_workers,
        config.transcode_cache_bytes,
        Arc::clone(&metrics),
    )?;
    transcoder = transcoder.on_measured(crate::service::loudness::recorder(
        Arc::clone(&meta),
        tokio::runtime::Handle::current(),
    ));
    if blobs.is_shared() {
        transcoder = transcoder.on_kept(crate::service::copies::sharer(
            Arc::clone(&blobs),
            Arc::clone(&meta),
            tokio::runtime::Handle::current(),
        ));
    }
    transcoder.limit_per_customer(config.conversions_per_customer);
    let transcoder = Arc::new(transcoder);
    let publish_cache = Arc::new(crate::http::publish_cache::PublishCache::new(
        config.http_threads,
        Arc::clone(&metrics),
    ));
    let events = Arc::new(crate::service::events::Events::new(vec![
        Arc::clone(&publish_cache) as Arc<dyn crate::domain::events::Subscriber>,
        Arc::clone(&transcoder) as Arc<dyn crate::domain::events::Subscriber>,
    ]));
    let cluster = store::open_cluster(&config.metadata_url)?;
    if cluster.is_some() {
        // Until the node listens to the others, nothing cached is served.
        events.set_out_of_touch(true);
    }
    Ok(AppState(Arc::new(Shared {
        transcoder,
        publish_cache,
        events,
        cluster,
        metrics,
        meta,
        blobs,
        signer: LinkSigner::new(key),
        sealer,
        external,
        admin_token_hash,
        public_url: public_url.into(),
        config: Arc::new(config),
    })))
}

/// A listening socket on `addr` that other threads may also bind (`SO_REUSEPORT`), so the kernel
/// spreads connections over them.
fn reusable_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// Runs `mediastore serve` until SIGINT or SIGTERM, then finishes in-flight requests.
///
/// HTTP is served thread-per-core, as nginx does: one single-threaded runtime per CPU, each
/// accepting on its own `SO_REUSEPORT` socket, so a request never costs a wake-up of another
/// thread. Blocking and codec work still goes to each runtime's blocking pool. This (control)
/// runtime starts them, runs the cleanup, and waits for the signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let first = reusable_socket(config.listen)?;
    let addr = first.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let threads = config.http_threads;
    let idle_timeout = config.idle_timeout;
    let state = build(config, public_url).await?;
    let cleanup = tokio::spawn(crate::jobs::cleanup_loop(state.clone()));
    let follow = state.cluster.clone().map(|cluster| {
        tokio::spawn(crate::service::events::follow(
            cluster,
            Arc::clone(&state.events),
        ))
    });
    let dispatch =
        crate::http::server::Dispatch::new(state.clone(), crate::http::routes::router(state));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(reusable_socket(addr)?);
    }
    let mut handles = Vec::with_capacity(threads);
    for (i, socket) in sockets.into_iter().enumerate() {
        let (dispatch, mut stop, ready) = (dispatch.clone(), stop_rx.clone(), ready_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("mediastore-http-{i}"))
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(|| {
                        crate::logbuf::flush_this_thread();
                        crate::http::publish_cache::sweep_this_thread();
                    })
                    .build()?;
                crate::logbuf::buffer_this_thread();
                let result = rt.block_on(async move {
                    let listener = match socket.listen(1024) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                            return Err(e.into());
                        }
                    };
                    let _ = ready.send(Ok(()));
                    let stop = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    crate::http::server::run(listener, dispatch, idle_timeout, stop).await?;
                    Ok(())
                });
                crate::logbuf::flush_this_thread();
                result
            })?;
        handles.push(handle);
    }
    drop(ready_tx);
    // Announce the address only once every thread listens.
    for _ in 0..threads {
        ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("an HTTP thread died at start"))??;
    }
    println!("mediastore listening on http://{addr}");
    tracing::info!(%addr, threads, "listening");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    })
    .await?;
    cleanup.abort();
    if let Some(f) = follow {
        f.abort();
    }
    for result in joined {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "HTTP thread failed"),
            Err(_) => tracing::error!("HTTP thread panicked"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
