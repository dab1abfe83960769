//! The quota rule: an upload enters only if every total stays within its quota, and a `reject`
//! threshold (past its grace period) refuses included files. The metadata store evaluates this
//! inside the transaction that adds the file, so racing uploads cannot overshoot.

use super::error::DomainError;
use super::model::{Container, Customer, FileRecord};
use super::threshold::{self, Admission};
use super::time::Timestamp;

/// A change to a container's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub bytes: i64,
    pub files: i64,
    /// Whether the file counts toward the container's threshold.
    pub included: bool,
}

impl Charge {
    /// What storing file `f` adds.
    pub fn of(f: &FileRecord) -> Charge {
        Charge {
            bytes: f.size,
            files: 1,
            included: f.threshold_include,
        }
    }
}

/// The container's threshold figures after an admitted charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdState {
    pub total_bytes: i64,
    pub total_files: i64,
    pub reached_at: Option<Timestamp>,
}

/// Decides whether `charge` may enter `container` of `customer` now.
pub fn admit(
    customer: &Customer,
    container: &Container,
    charge: Charge,
    now: Timestamp,
) -> Result<ThresholdState, DomainError> {
    // The customer's own bucket: no quota of ours applies (its thresholds still do).
    if !container.is_external() {
        if customer.total_bytes.saturating_add(charge.bytes) > customer.quota_bytes {
            return Err(DomainError::quota(
                "quota_bytes",
                "the customer's storage quota would be exceeded",
            ));
        }
        if container.total_bytes.saturating_add(charge.bytes) > container.quota_bytes {
            return Err(DomainError::quota(
                "quota_bytes",
                "the container's storage quota would be exceeded",
            ));
        }
        if let Some(q) = container.quota_files {
            if container.total_files.saturating_add(charge.files) > q {
                return Err(DomainError::quota(
                    "quota_files",
                    "the container's file quota would be exceeded",
                ));
            }
        }
    }
    if !charge.included {
        return Ok(unchanged(container));
    }
    enter_threshold(container, charge.bytes, charge.files, now)
}

/// The threshold figures as they are.
fn unchanged(container: &Container) -> ThresholdState {
    ThresholdState {
        total_bytes: container.threshold_total_bytes,
        total_files: container.threshold_total_files,
        reached_at: container.threshold_reached_at,
    }
}

/// Adds `bytes`/`files` to the threshold totals, unless a `reject` threshold past its grace
/// period refuses them (429, the same answer for an upload and for a re-included file).
fn enter_threshold(
    container: &Container,
    bytes: i64,
    files: i64,
    now: Timestamp,
) -> Result<ThresholdState, DomainError> {
    if threshold::admit(container, now) == Admission::Refuse {
        return Err(DomainError::quota(
            "threshold",
            "the container's threshold is reached; uploads are rejected",
        ));
    }
    let total_bytes = container.threshold_total_bytes + bytes;
    let total_files = container.threshold_total_files + files;
    Ok(ThresholdState {
        total_bytes,
        total_files,
        reached_at: threshold::reached_at_after(container, total_bytes, total_files, now),
    })
}

/// The threshold figures after a stored file of `bytes` changes its `threshold_include` to
/// `include`: re-including it is admitted as an upload would be (a `reject` threshold past its
/// grace period refuses it); excluding it releases it. The quotas are not involved: the bytes
/// are already counted.
pub fn set_included(
    container: &Container,
    bytes: i64,
    include: bool,
    now: Timestamp,
) -> Result<ThresholdState, DomainError> {
    if include {
        enter_threshold(container, bytes, 1, now)
    } else {
        Ok(release(container, bytes, true))
    }
}

/// The threshold figures after an included file of `bytes` leaves.
pub fn release(container: &Container, bytes: i64, included: bool) -> ThresholdState {
    if !included {
        return unchanged(container);
    }
    let total_bytes = (container.threshold_total_bytes - bytes).max(0);
    let total_files = (container.threshold_total_files - 1).max(0);
    ThresholdState {
        total_bytes,
        total_files,
        // Falling below the threshold ends the episode; the next reach starts a new grace period.
        reached_at: if threshold::is_reached(container, total_bytes, total_files) {
            container.threshold_reached_at
        } else {
            None
        },
    }
}

/// The most bytes an upload may send and the error when it sends more.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadLimit {
    pub max_bytes: u64,
    pub exceeded: DomainError,
}

/// What limits an upload of `customer`: the smallest of the server's maximum, the container's
/// `max_file_size` (413) and the room the quotas leave (429). Without a container yet (a body
/// streamed before its fields), only the server's maximum and the customer's quota apply.
pub fn upload_limit(
    customer: &Customer,
    container: Option<&Container>,
    server_max: u64,
) -> UploadLimit {
    let mut room = customer.quota_bytes - customer.total_bytes;
    let mut size_max = server_max;
    if let Some(c) = container {
        room = if c.is_external() {
            i64::MAX
        } else {
            room.min(c.quota_bytes - c.total_bytes)
        };
        if let Some(m) = c.max_file_size {
            size_max = (m.max(0) as u64).min(server_max);
        }
    }
    let room = room.max(0) as u64;
    if room < size_max {
        return UploadLimit {
            max_bytes: room,
            exceeded: DomainError::quota("quota_bytes", "the storage quota would be exceeded"),
        };
    }
    match container {
        Some(_) => UploadLimit {
            max_bytes: size_max,
            exceeded: DomainError::TooLarge {
                field: "max_file_size".into(),
                message: format!("files in this container may have at most {size_max} bytes"),
            },
        },
        None => size_limit(size_max),
    }
}

/// What limits a body whose container is not known yet and may be external (no quota of ours
/// bounds it): the server's maximum alone (413).
pub fn size_limit(server_max: u64) -> UploadLimit {
    UploadLimit {
        max_bytes: server_max,
        exceeded: DomainError::TooLarge {
            field: "max_file_size".into(),
            message: format!("files may have at most {server_max} bytes"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::container::new_container;
    use crate::domain::model::ThresholdAction;

    fn customer(quota: i64, used: i64) -> Customer {
        Customer {
            id: "cu".into(),
            name: "acme".into(),
            quota_bytes: quota,
            max_containers: 10,
            total_bytes: used,
            total_files: 0,
            container_count: 1,
            date_created: Timestamp(0),
            date_modified: Timestamp(0),
        }
    }

    /// A `reject` container with a 100-byte threshold, reached at t = 1000 ms with 100 bytes.
    fn reached(grace: Option<i64>) -> Container {
        let mut c = new_container("co".into(), &customer(10_000, 0), Timestamp(0));
        c.threshold_action = ThresholdAction::Reject;
        c.threshold_bytes = Some(100);
        c.threshold_grace_period = grace;
        c.threshold_total_bytes = 100;
        c.threshold_total_files = 1;
        c.threshold_reached_at = Some(Timestamp(1000));
        c
    }

    #[test]
    fn re_including_past_the_grace_period_is_refused_like_an_upload() {
        let c = reached(None);
        let e = set_included(&c, 10, true, Timestamp(2000)).expect_err("refused");
        assert_eq!(
            e,
            admit(
                &customer(10_000, 0),
                &c,
                Charge {
                    bytes: 10,
                    files: 1,
                    included: true
                },
                Timestamp(2000)
            )
            .expect_err("refused")
        );
        assert!(matches!(e, DomainError::QuotaExceeded { ref field, .. } if field == "threshold"));
    }

    #[test]
    fn re_including_within_the_grace_period_adds_and_keeps_the_episode() {
        let c = reached(Some(60));
        let st = set_included(&c, 10, true, Timestamp(2000)).expect("admitted");
        assert_eq!(
            st,
            ThresholdState {
                total_bytes: 110,
                total_files: 2,
                reached_at: Some(Timestamp(1000))
            }
        );
    }

    #[test]
    fn re_including_below_the_threshold_starts_the_episode_when_it_reaches_it() {
        let mut c = reached(None);
        c.threshold_total_bytes = 90;
        c.threshold_reached_at = None;
        let st = set_included(&c, 10, true, Timestamp(5000)).expect("admitted");
        assert_eq!(
            (st.total_bytes, st.reached_at),
            (100, Some(Timestamp(5000)))
        );
    }

    #[test]
    fn excluding_releases_and_ends_the_episode_below_the_threshold() {
        let c = reached(None);
        let st = set_included(&c, 10, false, Timestamp(2000)).expect("released");
        assert_eq!(
            st,
            ThresholdState {
                total_bytes: 90,
                total_files: 0,
                reached_at: None
            }
        );
    }

    #[test]
    fn the_upload_limit_is_the_quota_room_when_smaller_than_the_size_limits() {
        let mut c = new_container("co".into(), &customer(1000, 0), Timestamp(0));
        c.quota_bytes = 500;
        c.total_bytes = 450;
        let l = upload_limit(&customer(1000, 100), Some(&c), 10_000);
        assert_eq!(l.max_bytes, 50);
        assert!(matches!(l.exceeded, DomainError::QuotaExceeded { .. }));
        // The customer's room is smaller than the container's.
        let l = upload_limit(&customer(1000, 980), Some(&c), 10_000);
        assert_eq!(l.max_bytes, 20);
        // Over quota already: nothing, never negative.
        let l = upload_limit(&customer(1000, 2000), None, 10_000);
        assert_eq!(l.max_bytes, 0);
    }

    #[test]
    fn the_upload_limit_is_the_size_limit_when_the_quotas_leave_more() {
        let mut c = new_container("co".into(), &customer(1_000_000, 0), Timestamp(0));
        c.max_file_size = Some(300);
        let l = upload_limit(&customer(1_000_000, 0), Some(&c), 10_000);
        assert_eq!(l.max_bytes, 300);
        assert!(matches!(l.exceeded, DomainError::TooLarge { .. }));
        let l = upload_limit(&customer(1_000_000, 0), None, 10_000);
        assert_eq!(l.max_bytes, 10_000);
        // The server's maximum caps a larger max_file_size.
        c.max_file_size = Some(50_000);
        assert_eq!(
            upload_limit(&customer(1_000_000, 0), Some(&c), 10_000).max_bytes,
            10_000
        );
    }

    #[test]
    fn no_quota_of_ours_applies_to_an_external_container_but_its_threshold_does() {
        let full = customer(1000, 1000);
        let mut c = new_container("co".into(), &full, Timestamp(0));
        c.kind = crate::domain::external::ContainerType::Aws;
        c.quota_bytes = 10;
        c.quota_files = Some(0);
        let charge = Charge {
            bytes: 5000,
            files: 1,
            included: true,
        };
        let st = admit(&full, &c, charge, Timestamp(0)).map_err(|e| e.to_string());
        assert_eq!(st.map(|s| s.total_bytes), Ok(5000));
        assert_eq!(upload_limit(&full, Some(&c), 10_000).max_bytes, 10_000);
        c.threshold_action = ThresholdAction::Reject;
        c.threshold_bytes = Some(100);
        c.threshold_total_bytes = 100;
        c.threshold_reached_at = Some(Timestamp(0));
        assert!(admit(&full, &c, charge, Timestamp(1)).is_err());
    }
}
