//! Files: upload (receive the bytes → detect → commit metadata), read, change, delete.

use mediastore_media::AudioFormat;
use serde::Serialize;

use crate::app::AppState;
use crate::domain::container::admits_classification;
use crate::domain::detect::detect;
use crate::domain::events::FileChange;
use crate::domain::file::{FileChanges, FileMode};
use crate::domain::input::Fields;
use crate::domain::model::{Classification, Container, Customer, FileRecord, MediaInfo, Publish};
use crate::domain::quota;
use crate::domain::signing::LinkError;
use crate::domain::{DomainError, Timestamp};
use crate::error::Result;
use crate::store::meta::{FileQuery, Page};
use crate::store::BlobStore;
use std::sync::Arc;

use super::convert::{convert_upload, Desired};
use super::receive::{Limit, Received};
use super::{containers, external, PageRequest};

fn not_found() -> crate::error::Error {
    DomainError::NotFound { what: "file" }.into()
}

/// A file as the API shows it: the record plus its links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = File)]
pub struct FileView {
    #[serde(flatten)]
    pub file: FileRecord,
    pub publish_uri: Option<String>,
    pub uri_download: String,
    pub date_download_expire: Timestamp,
}

/// Adds the publish URI and a fresh signed download link to a record.
pub fn view(state: &AppState, file: FileRecord, now: Timestamp) -> FileView {
    let publish_uri = match file.publish {
        Publish::No => None,
        Publish::FileSid => Some(format!("{}/f/{}", state.public_url, file.file_sid)),
        Publish::FileAccessName => {
            Some(format!("{}/f/{}", state.public_url, file.file_access_name))
        }
    };
    let ttl = i64::try_from(state.config.download_link_ttl.as_secs()).unwrap_or(i64::MAX);
    let expire = Timestamp(now.unix_seconds().saturating_add(ttl).saturating_mul(1000));
    let expires = expire.unix_seconds();
    let signature = state.signer.sign(&file.file_sid, expires);
    let uri_download = format!(
        "{}/download/{}?expires={expires}&signature={signature}",
        state.public_url, file.file_sid
    );
    FileView {
        file,
        publish_uri,
        uri_download,
        date_download_expire: expire,
    }
}

/// Where an upload goes and how large it may be.
#[derive(Clone)]
pub struct Target {
    pub container: Container,
    pub limit: Limit,
    /// The store of the container's files: ours, or the customer's bucket.
    pub blobs: Arc<dyn BlobStore>,
}

/// Resolves the container of an upload and the most bytes it may send: `max_file_size` (413),
/// else the server maximum (413), else what the quotas leave (429).
pub async fn target(state: &AppState, owner: &Customer, changes: &FileChanges) -> Result<Target> {
    let container = containers::for_upload(state, owner, changes.container_sid.as_deref()).await?;
    let limit = to_limit(quota::upload_limit(
        owner,
        Some(&container),
        state.config.max_file_size,
    ));
    let blobs = external::store_of(state, &container).await?;
    Ok(Target {
        container,
        limit,
        blobs,
    })
}

/// The limit of a body whose container is not known yet: the server's maximum and what the
/// customer's quota leaves, unless the customer has an external container (which the body may
/// be for, and which no quota of ours bounds): then the server's maximum alone. The container's
/// own limits, and the quotas (atomically, with the file), are checked once it is known.
pub async fn server_limit(state: &AppState, owner: &Customer) -> Result<Limit> {
    if state.meta.has_external_container(&owner.id).await? {
        return Ok(to_limit(quota::size_limit(state.config.max_file_size)));
    }
    Ok(to_limit(quota::upload_limit(
        owner,
        None,
        state.config.max_file_size,
    )))
}

fn to_limit(l: quota::UploadLimit) -> Limit {
    Limit {
        max_bytes: l.max_bytes,
        exceeded: l.exceeded,
    }
}

/// Refuses up front a body whose declared length is already over the limit.
pub fn check_declared_length(target: &Target, len: Option<u64>) -> Result<()> {
    match len {
        Some(n) if n > target.limit.max_bytes => Err(target.limit.exceeded.clone().into()),
        _ => Ok(()),
    }
}

/// Parses upload fields.
pub fn parse_upload_fields(f: Fields) -> Result<FileChanges> {
    Ok(FileChanges::parse(f, FileMode::Upload, Timestamp::now())?)
}

/// Describes a received upload as a new file: detects its kind, converts it when asked, checks
/// the container's rules and commits the metadata (quotas checked atomically there). On any
/// failure nothing remains: not the bytes, not the metadata, not a change in the totals.
pub async fn create(
    state: &AppState,
    owner: &Customer,
    changes: FileChanges,
    target: Target,
    received: Received,
    filename: Option<String>,
) -> Result<FileRecord> {
    // Bytes streamed before the fields named an external container move there first.
    let mut received = if received.is_in(&target.blobs) {
        received
    } else {
        received.relocate(&target.blobs, &target.limit).await?
    };
    let outcome = describe(state, owner, changes, target, &mut received, filename).await;
    match outcome {
        Ok(file) => {
            received.keep();
            Ok(file)
        }
        Err(e) => {
            received.discard().await;
            Err(e)
        }
    }
}

/// [`create`]'s work on the received blob (replaced by its conversion when one is asked for).
async fn describe(
    state: &AppState,
    owner: &Customer,
    changes: FileChanges,
    target: Target,
    received: &mut Received,
    filename: Option<String>,
) -> Result<FileRecord> {
    if received.stored.size > target.limit.max_bytes {
        return Err(target.limit.exceeded.into());
    }
    let container = target.container;
    let now = Timestamp::now();
    let file_sid = uuid::Uuid::new_v4().to_string();
    let name = match changes.name.clone().value() {
        Some(n) => n,
        None => filename
            .as_deref()
            .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
            .filter(|n| crate::domain::rules::check_name("name", n).is_ok())
            .unwrap_or_else(|| file_sid.clone()),
    };
    let declared_mime = changes.mime_type.clone().value();
    let mut detected = detect(
        &received.stored.head,
        Some(&name),
        declared_mime.as_deref(),
        changes.content_format.as_deref(),
    );
    let mut name = name;
    // Only with "type": "audio" is the upload converted; otherwise it is stored as sent.
    if changes.kind.as_deref() == Some("audio")
        && (changes.desired_format.is_some()
            || changes.desired_bitrate.is_some()
            || changes.desired_loudness.is_some())
    {
        let desired = Desired {
            format: changes
                .desired_format
                .as_deref()
                .and_then(AudioFormat::from_param),
            bitrate_kbps: changes.desired_bitrate.and_then(|b| u32::try_from(b).ok()),
            loudness: changes.desired_loudness,
        };
        let blobs = Arc::clone(received.store());
        if let Some(converted) = convert_upload(
            state,
            &blobs,
            &owner.id,
            &received.stored,
            &detected.content_format,
            desired,
        )
        .await?
        {
            std::mem::replace(received, converted).discard().await;
            if received.stored.size > target.limit.max_bytes {
                return Err(target.limit.exceeded.into());
            }
            // The stored name follows the stored format.
            if let Some(f) = desired.format {
                let stem = name
                    .rsplit_once('.')
                    .map_or(name.as_str(), |(s, _)| s)
                    .to_string();
                name = format!("{stem}.{}", f.extension());
            }
            detected = detect(&received.stored.head, Some(&name), None, None);
        }
    }
    // A client may declare a classification, but executable bytes stay executable.
    let classification = match changes.content_classification {
        Some(c) if detected.classification != Classification::Executable => c,
        _ => detected.classification,
    };
    admits_classification(&container, classification)?;
    let media = if classification == Classification::Media {
        probe_audio(
            received.store().as_ref(),
            &received.stored.key,
            &detected.content_format,
        )
        .await
    } else {
        None
    };

    let stored = &received.stored;
    let file = FileRecord {
        file_sid,
        container_sid: container.container_sid.clone(),
        customer_id: owner.id.clone(),
        blob_key: stored.key.clone(),
        owner_id: changes.owner_id.value(),
        reference_type: changes
            .reference_type
            .value()
            .unwrap_or_else(|| "none".into()),
        reference_id: changes.reference_id.value(),
        name,
        description: changes.description.value(),
        tag: changes.tag.value(),
        size: stored.size as i64,
        mime_type: detected.mime_type,
        content_format: detected.content_format,
        content_classification: classification,
        media,
        checksum_sha256: stored.sha256.clone(),
        publish: changes.publish.value().unwrap_or(Publish::No),
        file_access_name: changes
            .file_access_name
            .value()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        expires_at: changes.expires_at.value(),
        threshold_include: changes.threshold_include.value().unwrap_or(true),
        unique: changes.unique.value().unwrap_or(false),
        keys: {
            let mut k = Default::default();
            changes.keys.apply(&mut k);
            k
        },
        kind: changes.kind,
        desired_format: changes.desired_format,
        desired_bitrate: changes.desired_bitrate,
        desired_loudness: changes.desired_loudness.map(|t| f64::from(t) / 10.0),
        loudness: None,
        date_last_accessed: None,
        date_created: now,
        date_modified: now,
    };
    state.meta.insert_file(&file, now).await?;
    Ok(file)
}

/// Reads the audio facts of a received blob off the async runtime; `None` when it is not audio
/// the pipeline can read (an image, a video, a corrupt file: stored as sent, without `media`).
async fn probe_audio(
    blobs: &dyn BlobStore,
    blob_key: &str,
    content_format: &str,
) -> Option<MediaInfo> {
    let local = match blobs.local_copy(blob_key).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the upload back to probe it");
            return None;
        }
    };
    let hint = content_format.to_string();
    let probed =
        tokio::task::spawn_blocking(move || mediastore_media::probe(local.path(), Some(&hint)))
            .await;
    match probed {
        Ok(Ok(info)) => Some(MediaInfo {
            codec: info.codec,
            sample_rate: info.sample_rate,
            channels: info.channels,
            duration_ms: info.duration_ms,
            bitrate: info.bitrate,
        }),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "upload is not readable audio");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "probe task failed");
            None
        }
    }
}

/// One of the caller's files.
pub async fn get(state: &AppState, owner: &Customer, sid: &str) -> Result<FileRecord> {
    state.meta.file(&owner.id, sid).await?.ok_or_else(not_found)
}

/// The caller's files matching the filters.
pub async fn list(
    state: &AppState,
    owner: &Customer,
    mut query: FileQuery,
    page: PageRequest,
) -> Result<Page<FileRecord>> {
    query.customer_id = owner.id.clone();
    query.page = page.page;
    query.limit = page.limit;
    Ok(state.meta.list_files(&query).await?)
}

/// Changes a file's fields.
pub async fn update(
    state: &AppState,
    owner: &Customer,
    sid: &str,
    f: Fields,
) -> Result<FileRecord> {
    let now = Timestamp::now();
    let changes = FileChanges::parse(f, FileMode::Patch, now)?;
    let update = Box::new(move |file: FileRecord| Ok(changes.apply(file, now)));
    let updated = state
        .meta
        .update_file(&owner.id, sid, update)
        .await?
        .ok_or_else(not_found)?;
    state.events.raise(FileChange::Updated {
        file_sid: updated.file_sid.clone(),
        blob_key: updated.blob_key.clone(),
    });
    Ok(updated)
}

/// Who removes a file: its owner's request, or the cleanup (expiry, `delete_lru`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Request,
    Cleanup,
}

/// Deletes a file's metadata (and totals) first, then its bytes, and tells every cache: a
/// crash in between leaves only orphan bytes, which start-up repair removes. In a customer's
/// own bucket, which start-up repair never sweeps, a request removes the bytes first: a failing
/// bucket answers 502 and the file stays whole. The cleanup cannot wait for a customer's bucket
/// (a revoked key would stop every expiry behind it), so there the file goes as due and bytes
/// the bucket refuses to remove stay in it, reported in the log. `customer_id` limits it to
/// that customer's files. False when there is no such file.
pub async fn remove(
    state: &AppState,
    customer_id: Option<&str>,
    sid: &str,
    why: Removal,
) -> Result<bool> {
    let found = match customer_id {
        Some(c) => state.meta.file(c, sid).await?,
        None => state.meta.file_by_sid(sid).await?,
    };
    match found {
        Some(found) => remove_found(state, customer_id, &found, why).await,
        None => Ok(false),
    }
}

/// [`remove`] of a file already read (the cleanup's batches): false when it went meanwhile.
pub async fn remove_found(
    state: &AppState,
    customer_id: Option<&str>,
    found: &FileRecord,
    why: Removal,
) -> Result<bool> {
    let sid = found.file_sid.as_str();
    let store = match external::store_of_file(state, found).await {
        Ok(store) => Some(store),
        Err(e) if why == Removal::Cleanup => {
            tracing::warn!(file_sid = sid, error = %e, "external bucket unavailable: its bytes stay there");
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(store) = store.as_ref().filter(|s| s.external) {
        match store.blobs.delete(&found.blob_key).await {
            Ok(()) => {}
            Err(e) if why == Removal::Cleanup => {
                tracing::warn!(file_sid = sid, error = %e, "external bucket refused the delete: its bytes stay there");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Some(file) = state.meta.delete_file(customer_id, sid).await? else {
        return Ok(false);
    };
    state.events.raise(FileChange::Deleted {
        file_sid: file.file_sid.clone(),
        blob_key: file.blob_key.clone(),
    });
    if let Some(store) = store.filter(|s| !s.external) {
        if let Err(e) = store.blobs.delete(&file.blob_key).await {
            tracing::warn!(file_sid = sid, error = %e, "bytes left behind; removed at a later start");
        }
    }
    super::copies::drop_copies(state, &file.blob_key).await?;
    Ok(true)
}

/// Deletes one of the caller's files.
pub async fn delete(state: &AppState, owner: &Customer, sid: &str) -> Result<()> {
    if remove(state, Some(&owner.id), sid, Removal::Request).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// A caller's file for `GET /v1/files/{sid}/data`, recording the access.
pub async fn for_download(state: &AppState, owner: &Customer, sid: &str) -> Result<FileRecord> {
    let file = get(state, owner, sid).await?;
    state
        .meta
        .touch_file(&file.file_sid, Timestamp::now())
        .await?;
    Ok(file)
}

/// The file published under `key`, if its `publish` lets that way in.
pub async fn published(state: &AppState, key: &str) -> Result<FileRecord> {
    state.meta.published_file(key).await?.ok_or_else(not_found)
}

/// Checks a signed link's `expires` and `signature` for `sid`: both present, not expired, the
/// HMAC matching. `Err` is the reason to give the client.
pub fn check_link(
    state: &AppState,
    sid: &str,
    expires: Option<&str>,
    signature: Option<&str>,
) -> std::result::Result<(), &'static str> {
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err("expires and signature are required");
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return Err("expires must be a Unix time");
    };
    match state
        .signer
        .verify(sid, expires, signature, Timestamp::now().unix_seconds())
    {
        Err(LinkError::Expired) => Err("the link has expired"),
        Err(LinkError::BadSignature) => Err("the signature does not match"),
        Ok(()) => Ok(()),
    }
}

/// The file `sid`, whoever owns it: what a checked signed link grants.
pub async fn by_sid(state: &AppState, sid: &str) -> Result<FileRecord> {
    state.meta.file_by_sid(sid).await?.ok_or_else(not_found)
}
