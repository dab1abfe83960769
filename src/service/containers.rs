//! Containers of the calling customer.

use crate::app::AppState;
use crate::domain::container::{new_container, ContainerChanges};
use crate::domain::external::ContainerType;
use crate::domain::input::Fields;
use crate::domain::model::{Container, Customer};
use crate::domain::{DomainError, Timestamp};
use crate::error::Result;
use crate::store::meta::Page;

use super::{external, PageRequest};

fn not_found() -> crate::error::Error {
    DomainError::NotFound { what: "container" }.into()
}

/// Creates a container from a body (`{}` for defaults). An external one's settings are checked
/// against its bucket first.
pub async fn create(state: &AppState, owner: &Customer, f: Fields) -> Result<Container> {
    let mut changes = ContainerChanges::parse(f)?;
    let now = Timestamp::now();
    let mut base = new_container(uuid::Uuid::new_v4().to_string(), owner, now);
    base.kind = changes.kind.unwrap_or(ContainerType::Internal);
    if let Some(raw) = changes.external.take() {
        changes.sealed = Some(external::checked(state, &base.container_sid, base.kind, raw).await?);
    }
    let c = changes.apply(base, owner, now)?;
    state.meta.create_container(&c).await?;
    Ok(c)
}

/// One of the caller's containers.
pub async fn get(state: &AppState, owner: &Customer, sid: &str) -> Result<Container> {
    state
        .meta
        .container(&owner.id, sid)
        .await?
        .ok_or_else(not_found)
}

/// The caller's containers.
pub async fn list(
    state: &AppState,
    owner: &Customer,
    page: PageRequest,
) -> Result<Page<Container>> {
    Ok(state
        .meta
        .list_containers(&owner.id, page.page, page.limit)
        .await?)
}

/// Changes a container's settings (rules checked against the current row, atomically). New
/// external settings are checked against the bucket first, as at creation.
pub async fn update(state: &AppState, owner: &Customer, sid: &str, f: Fields) -> Result<Container> {
    let mut changes = ContainerChanges::parse(f)?;
    if let Some(raw) = changes.external.take() {
        // The type never changes, so the row read now tells how to read `external`.
        let kind = get(state, owner, sid).await?.kind;
        changes.sealed = Some(external::checked(state, sid, kind, raw).await?);
    }
    let now = Timestamp::now();
    let update = Box::new(move |c: Container, owner: &Customer| changes.apply(c, owner, now));
    state
        .meta
        .update_container(&owner.id, sid, update)
        .await?
        .ok_or_else(not_found)
}

/// Deletes an empty container.
pub async fn delete(state: &AppState, owner: &Customer, sid: &str) -> Result<()> {
    if state.meta.delete_container(&owner.id, sid).await? {
        state.external.forget(sid).await;
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The container an upload goes to: the named one, or the default (made on first use).
pub async fn for_upload(
    state: &AppState,
    owner: &Customer,
    sid: Option<&str>,
) -> Result<Container> {
    match sid {
        Some(sid) => state
            .meta
            .container(&owner.id, sid)
            .await?
            .ok_or_else(|| DomainError::NotFound { what: "container" }.into()),
        None => {
            let now = Timestamp::now();
            let fresh = new_container(uuid::Uuid::new_v4().to_string(), owner, now);
            Ok(state.meta.default_container(&owner.id, fresh).await?)
        }
    }
}
