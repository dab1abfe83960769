//! Container thresholds: what counts, when it is reached, and what the cleanup must free.

use super::model::{Container, ThresholdAction};
use super::time::Timestamp;

/// Recomputes the read-only `threshold_available_*_percent` figures from the totals.
pub fn refresh(c: &mut Container) {
    c.threshold_available_bytes_percent =
        available_percent(c.threshold_total_bytes, c.threshold_bytes);
    c.threshold_available_files_percent =
        available_percent(c.threshold_total_files, c.threshold_files);
}

/// Percentage of the threshold still free (0 when reached or passed), `None` without a threshold.
pub fn available_percent(total: i64, threshold: Option<i64>) -> Option<f64> {
    let t = threshold?;
    if t <= 0 {
        return Some(0.0);
    }
    let free = (t - total).max(0) as f64;
    Some((free * 100.0 / t as f64 * 100.0).round() / 100.0)
}

/// True once either threshold is reached by the included files.
pub fn is_reached(c: &Container, total_bytes: i64, total_files: i64) -> bool {
    c.threshold_bytes.is_some_and(|t| total_bytes >= t)
        || c.threshold_files.is_some_and(|t| total_files >= t)
}

/// The decision for one more included upload under a `reject` threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Below the threshold.
    Below,
    /// Reached, but within the grace period that started at `since`.
    Grace { since: Timestamp },
    /// Reached and the grace period is over (or there is none): refuse.
    Refuse,
}

/// Whether an upload may enter `c` now under its threshold. The grace period counts from the
/// moment the threshold was first reached (`threshold_reached_at`, set when totals reach it).
pub fn admit(c: &Container, now: Timestamp) -> Admission {
    if c.threshold_action != ThresholdAction::Reject
        || !is_reached(c, c.threshold_total_bytes, c.threshold_total_files)
    {
        return Admission::Below;
    }
    let since = c.threshold_reached_at.unwrap_or(now);
    let grace = c.threshold_grace_period.unwrap_or(0);
    if now < since.plus_seconds(grace) {
        Admission::Grace { since }
    } else {
        Admission::Refuse
    }
}

/// The new `threshold_reached_at` after the included totals changed to the given figures.
pub fn reached_at_after(
    c: &Container,
    total_bytes: i64,
    total_files: i64,
    now: Timestamp,
) -> Option<Timestamp> {
    if is_reached(c, total_bytes, total_files) {
        Some(c.threshold_reached_at.unwrap_or(now))
    } else {
        None
    }
}

/// How much the LRU cleanup must free so both targets hold: (bytes, files), or `None` when the
/// threshold is not reached.
pub fn lru_excess(c: &Container) -> Option<(i64, i64)> {
    if c.threshold_action != ThresholdAction::DeleteLru
        || !is_reached(c, c.threshold_total_bytes, c.threshold_total_files)
    {
        return None;
    }
    let bytes = c
        .threshold_bytes_target
        .map_or(0, |t| (c.threshold_total_bytes - t).max(0));
    let files = c
        .threshold_files_target
        .map_or(0, |t| (c.threshold_total_files - t).max(0));
    Some((bytes, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_exact_to_two_places() {
        assert_eq!(available_percent(0, Some(90)), Some(100.0));
        assert_eq!(available_percent(30, Some(90)), Some(66.67));
        assert_eq!(available_percent(95, Some(90)), Some(0.0));
        assert_eq!(available_percent(5, None), None);
    }
}
