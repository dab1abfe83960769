//! External containers in the service: which store holds a container's (or a file's) bytes,
//! and checking new settings against the bucket itself before they are kept, sealed.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::domain::external::{field, ContainerType, External, ExternalInput, Secret};
use crate::domain::model::{Container, FileRecord};
use crate::domain::DomainError;
use crate::error::Result;
use crate::store::external::{Fingerprint, Spec};
use crate::store::{BlobError, BlobStore};

/// The store of a file's bytes, and whether it is the customer's own bucket.
#[derive(Clone)]
pub struct FileStore {
    pub blobs: Arc<dyn BlobStore>,
    pub external: bool,
}

/// The store holding container `c`'s files: ours, or a client of its bucket (made on first use,
/// kept while the settings stay the same).
pub async fn store_of(state: &AppState, c: &Container) -> Result<Arc<dyn BlobStore>> {
    let Some(ext) = &c.external else {
        state.external.note_internal(&c.container_sid);
        return Ok(Arc::clone(&state.blobs));
    };
    let sid = c.container_sid.as_str();
    let make = async {
        let secret = state
            .sealer
            .open(sid, &ext.sealed_secret)
            .map_err(|e| BlobError::Config(e.to_string()))?;
        let secret =
            Secret::new(String::from_utf8(secret).map_err(|e| BlobError::Config(e.to_string()))?);
        state
            .external
            .connect(&Spec {
                container_sid: sid,
                kind: ext.kind,
                location: &ext.location,
                secret: &secret,
            })
            .await
    };
    Ok(state.external.client(sid, fingerprint(ext), make).await?)
}

/// The store holding `file`'s bytes. A file of an internal container costs no lookup once its
/// container was seen (a container's type never changes).
pub async fn store_of_file(state: &AppState, file: &FileRecord) -> Result<FileStore> {
    if state.external.known_internal(&file.container_sid) {
        return Ok(FileStore {
            blobs: Arc::clone(&state.blobs),
            external: false,
        });
    }
    let c = state
        .meta
        .container(&file.customer_id, &file.container_sid)
        .await?
        .ok_or(DomainError::NotFound { what: "file" })?;
    Ok(FileStore {
        blobs: store_of(state, &c).await?,
        external: c.is_external(),
    })
}

/// What a client is keyed by: the stored settings (a fresh seal per change, so any change of
/// the settings, on any node, makes a new client).
fn fingerprint(ext: &External) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(ext.kind.as_str());
    h.update(serde_json::to_vec(&ext.location).unwrap_or_default());
    h.update(&ext.sealed_secret);
    h.finalize().into()
}

/// Reads `external` for container `sid` of type `kind`, checks its endpoint (400) and its
/// credentials by writing and removing a small object in the bucket (422 naming the field at
/// fault), and seals the secret.
pub async fn checked(
    state: &AppState,
    sid: &str,
    kind: ContainerType,
    raw: serde_json::Value,
) -> Result<External> {
    let input = ExternalInput::parse(kind, raw)?;
    if let Some(endpoint) = &input.location.endpoint {
        check_endpoint(state, kind, endpoint).await?;
    }
    let spec = Spec {
        container_sid: sid,
        kind,
        location: &input.location,
        secret: &input.secret,
    };
    let store = state
        .external
        .connect(&spec)
        .await
        .map_err(|e| refused(kind, e))?;
    probe(store.as_ref()).await.map_err(|e| refused(kind, e))?;
    let sealed_secret = state
        .sealer
        .seal(sid, input.secret.expose().as_bytes())
        .map_err(|e| crate::error::Error::Io(std::io::Error::other(e)))?;
    Ok(External {
        kind,
        location: input.location,
        sealed_secret,
    })
}

/// The endpoint rule with the name resolved now: every address must be admitted (400), and a
/// name that does not resolve is an unreachable bucket (422).
async fn check_endpoint(state: &AppState, kind: ContainerType, endpoint: &str) -> Result<()> {
    let policy = state.external.policy();
    let e = policy.check_url(kind, endpoint)?;
    if e.listed {
        return Ok(());
    }
    let host = e
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), e.port))
        .await
        .map_err(|_| {
            DomainError::validation(field("endpoint"), format!("{host} does not resolve"))
        })?
        .collect();
    if addrs.iter().any(|a| !policy.admits(&e, a.ip())) {
        return Err(DomainError::invalid(
            field("endpoint"),
            format!("{host} resolves to a loopback, link-local or private address; only hosts listed in --external-endpoints may"),
        )
        .into());
    }
    Ok(())
}

/// Writes and removes a small object: the credentials may write, read back nothing, delete.
async fn probe(store: &dyn BlobStore) -> std::result::Result<(), BlobError> {
    let key = format!("mediastore-probe-{}", uuid::Uuid::new_v4().simple());
    let mut w = store.begin(&key).await?;
    if let Err(e) = w
        .write(bytes::Bytes::from_static(b"mediastore probe"))
        .await
    {
        w.abort().await;
        return Err(e);
    }
    w.commit().await?;
    store.delete(&key).await
}

/// A failed check as the contract's 422, naming the field at fault.
fn refused(kind: ContainerType, e: BlobError) -> crate::error::Error {
    tracing::info!(kind = kind.as_str(), error = %e, "external bucket check failed");
    let (name, message) = match &e {
        // S3 says which half of a key pair it does not know; otherwise the secret is named.
        BlobError::Denied(m) if m.contains("InvalidAccessKeyId") => (
            field(kind.credential_field()),
            "the bucket does not know this access key".to_string(),
        ),
        BlobError::Denied(_) => (
            field(kind.secret_field()),
            "the bucket refused these credentials".to_string(),
        ),
        BlobError::NoBucket(_) | BlobError::NotFound(_) => (
            field(kind.bucket_field()),
            "no such bucket for these credentials".to_string(),
        ),
        BlobError::Unsupported(m) => ("type".to_string(), m.clone()),
        BlobError::Config(_) => (
            field(kind.secret_field()),
            "these credentials cannot be used".to_string(),
        ),
        _ => (
            field(if kind == ContainerType::Azure {
                "account"
            } else {
                kind.bucket_field()
            }),
            "the bucket could not be reached to check the credentials".to_string(),
        ),
    };
    DomainError::validation(name, message).into()
}
