//! Containers of the calling customer.

use crate::app::AppState;
use crate::domain::container::{new_container, ContainerChanges};
use crate::domain::input::Fields;
use crate::domain::model::{Container, Customer};
use crate::domain::{DomainError, Timestamp};
use crate::error::Result;
use crate::store::meta::Page;

use super::PageRequest;

fn not_found() -> crate::error::Error {
    DomainError::NotFound { what: "container" }.into()
}

/// Creates a container from a body (`{}` for defaults).
pub async fn create(state: &AppState, owner: &Customer, f: Fields) -> Result<Container> {
    let changes = ContainerChanges::parse(f)?;
    let now = Timestamp::now();
    let base = new_container(uuid::Uuid::new_v4().to_string(), owner, now);
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

/// Changes a container's settings (rules checked against the current row, atomically).
pub async fn update(state: &AppState, owner: &Customer, sid: &str, f: Fields) -> Result<Container> {
    let changes = ContainerChanges::parse(f)?;
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
