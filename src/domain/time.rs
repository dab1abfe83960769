//! Timestamps: milliseconds since the Unix epoch, shown as RFC 3339 with milliseconds.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// Milliseconds added to the system clock: zero in production, moved forward only by the
/// `--test-clock` admin call, so tests can watch expiry and grace periods pass.
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Moves the server's clock forward by `ms` (test clock only).
pub fn advance_clock(ms: i64) {
    CLOCK_OFFSET_MS.fetch_add(ms.max(0), Ordering::SeqCst);
}

/// A UTC instant with millisecond precision, as stored in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis() + CLOCK_OFFSET_MS.load(Ordering::Relaxed))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (HTTP dates have second resolution).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant plus `secs` seconds.
    pub fn plus_seconds(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// Parses an RFC 3339 date-time such as `2026-11-24T10:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Timestamp(d.with_timezone(&Utc).timestamp_millis()))
    }

    /// `2026-11-24T10:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The instant as a `SystemTime`, for HTTP date headers.
    pub fn to_system_time(self) -> std::time::SystemTime {
        let ms = self.0.max(0) as u64;
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }
}

/// In the API: an RFC 3339 UTC time with milliseconds.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples(["2026-11-24T10:00:00.123Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let t = Timestamp(1_795_514_400_123);
        assert_eq!(t.to_rfc3339(), "2026-11-24T10:00:00.123Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-24T10:00:00.123Z"),
            Some(t)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-24T11:00:00.123+01:00"),
            Some(t)
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
