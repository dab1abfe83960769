//! The quota rule: an upload enters only if every total stays within its quota, and a `reject`
//! threshold (past its grace period) refuses included files. The metadata store evaluates this
//! inside the transaction that adds the file, so racing uploads cannot overshoot.

use super::error::DomainError;
use super::model::{Container, Customer};
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
    if !charge.included {
        return Ok(ThresholdState {
            total_bytes: container.threshold_total_bytes,
            total_files: container.threshold_total_files,
            reached_at: container.threshold_reached_at,
        });
    }
    if threshold::admit(container, now) == Admission::Refuse {
        return Err(DomainError::quota(
            "threshold",
            "the container's threshold is reached; uploads are rejected",
        ));
    }
    let total_bytes = container.threshold_total_bytes + charge.bytes;
    let total_files = container.threshold_total_files + charge.files;
    Ok(ThresholdState {
        total_bytes,
        total_files,
        reached_at: threshold::reached_at_after(container, total_bytes, total_files, now),
    })
}

/// The threshold figures after an included file of `bytes` leaves.
pub fn release(container: &Container, bytes: i64, included: bool) -> ThresholdState {
    if !included {
        return ThresholdState {
            total_bytes: container.threshold_total_bytes,
            total_files: container.threshold_total_files,
            reached_at: container.threshold_reached_at,
        };
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
