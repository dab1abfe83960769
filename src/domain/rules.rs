//! Field rules from the contract: names, tags, descriptions, expiry, bitrates.

use super::error::DomainError;
use super::time::Timestamp;

/// Bitrates (kbit/s) accepted for `desired_bitrate` and `br`.
pub const BITRATES_KBPS: [i64; 16] = [
    8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];

/// An `expires_at` must lie at least this far ahead.
pub const MIN_EXPIRY_AHEAD_SECS: i64 = 3600;

/// `name`: 1–255 characters, no `/`, `\`, NUL or control characters.
pub fn check_name(field: &str, name: &str) -> Result<(), DomainError> {
    let chars = name.chars().count();
    if chars == 0 || chars > 255 {
        return Err(DomainError::invalid(field, "must be 1 to 255 characters"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(DomainError::invalid(
            field,
            "must not contain '/', '\\', NUL or control characters",
        ));
    }
    Ok(())
}

/// `tag`: under 50 characters, no control characters.
pub fn check_tag(tag: &str) -> Result<(), DomainError> {
    if tag.chars().count() >= 50 || tag.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "tag",
            "must be under 50 characters, without control characters",
        ));
    }
    Ok(())
}

/// `description`: under 255 characters.
pub fn check_description(description: &str) -> Result<(), DomainError> {
    if description.chars().count() >= 255 {
        return Err(DomainError::invalid(
            "description",
            "must be under 255 characters",
        ));
    }
    Ok(())
}

/// `expires_at`: RFC 3339, at least an hour after `now`.
pub fn parse_expires_at(value: &str, now: Timestamp) -> Result<Timestamp, DomainError> {
    let at = Timestamp::parse_rfc3339(value)
        .ok_or_else(|| DomainError::invalid("expires_at", "must be an RFC 3339 date-time"))?;
    if at < now.plus_seconds(MIN_EXPIRY_AHEAD_SECS) {
        return Err(DomainError::invalid(
            "expires_at",
            "must be at least one hour in the future",
        ));
    }
    Ok(at)
}

/// A bitrate from the contract's list, named by `field` (`desired_bitrate` or `br`).
pub fn check_bitrate(field: &str, kbps: i64) -> Result<(), DomainError> {
    if BITRATES_KBPS.contains(&kbps) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be one of 8 16 24 32 40 48 64 80 96 112 128 160 192 224 256 320",
        ))
    }
}

/// Target loudness a client may ask for (`norm`, `desired_loudness`), LUFS.
pub const LOUDNESS_RANGE_LUFS: std::ops::RangeInclusive<f64> = -40.0..=-5.0;

/// A target loudness from [`LOUDNESS_RANGE_LUFS`], named by `field`, in tenths of a LU
/// (finer targets are rounded: no meter or ear tells them apart).
pub fn check_loudness(field: &str, lufs: f64) -> Result<i16, DomainError> {
    if lufs.is_finite() && LOUDNESS_RANGE_LUFS.contains(&lufs) {
        Ok((lufs * 10.0).round() as i16)
    } else {
        Err(DomainError::invalid(
            field,
            format!(
                "must be a loudness in LUFS from {} to {}",
                LOUDNESS_RANGE_LUFS.start(),
                LOUDNESS_RANGE_LUFS.end()
            ),
        ))
    }
}

/// Formats a client may name in `desired_format` or `f`, as the contract lists them.
pub const TARGET_FORMATS: [&str; 10] = [
    "al", "alaw", "flac", "g722", "mp3", "mp4", "ogg", "ul", "ulaw", "wav",
];

/// A target format from [`TARGET_FORMATS`], named by `field` (`desired_format` or `f`).
pub fn check_target_format(field: &str, name: &str) -> Result<(), DomainError> {
    if TARGET_FORMATS.contains(&name) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be one of {}", TARGET_FORMATS.join(" ")),
        ))
    }
}

/// `file_access_name`: 1–255 URL-safe characters, so it can stand in `/f/{name}` as is.
pub fn check_access_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && name != "."
        && name != "..";
    if !ok {
        return Err(DomainError::invalid(
            "file_access_name",
            "must be 1 to 255 characters of A-Z a-z 0-9 - _ . ~",
        ));
    }
    // `/f/{key}` serves sids and access names: a name shaped like a sid could shadow a file.
    if uuid::Uuid::parse_str(name).is_ok() {
        return Err(DomainError::invalid(
            "file_access_name",
            "must not have the shape of a file_sid",
        ));
    }
    Ok(())
}

/// A MIME type safe to send back as a header: `type/subtype` with optional parameters, ASCII.
pub fn check_mime_type(field: &str, mime: &str) -> Result<(), DomainError> {
    let ok = mime.len() <= 255
        && mime.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"')
        && mime
            .split(';')
            .next()
            .and_then(|essence| essence.trim().split_once('/'))
            .is_some_and(|(t, s)| is_token(t) && is_token(s));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be a MIME type such as audio/mpeg",
        ))
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A free-form identifier (`owner_id`, `reference_id`, keys): at most 255 characters, no control characters.
pub fn check_identifier(field: &str, value: &str) -> Result<(), DomainError> {
    if value.chars().count() > 255 || value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must be at most 255 characters, without control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("name", "greeting.wav").is_ok());
        assert!(check_name("name", "a/b").is_err());
        assert!(check_name("name", "a\\b").is_err());
        assert!(check_name("name", "a\0b").is_err());
        assert!(check_name("name", "a\nb").is_err());
        assert!(check_name("name", "").is_err());
        assert!(check_name("name", &"é".repeat(255)).is_ok());
        assert!(check_name("name", &"é".repeat(256)).is_err());
    }

    #[test]
    fn tags_and_descriptions() {
        assert!(check_tag(&"x".repeat(49)).is_ok());
        assert!(check_tag(&"x".repeat(50)).is_err());
        assert!(check_description(&"x".repeat(254)).is_ok());
        assert!(check_description(&"x".repeat(255)).is_err());
    }

    #[test]
    fn expiry_at_least_an_hour_ahead() {
        let now = Timestamp::parse_rfc3339("2026-11-24T10:00:00Z").expect("date");
        assert!(parse_expires_at("2026-11-24T11:00:00Z", now).is_ok());
        assert!(parse_expires_at("2026-11-24T10:59:59Z", now).is_err());
        assert!(parse_expires_at("tomorrow", now).is_err());
    }

    #[test]
    fn access_names() {
        assert!(check_access_name("welcome-message").is_ok());
        assert!(check_access_name("has space").is_err());
        assert!(check_access_name("..").is_err());
        assert!(check_access_name("9cf10d17-1433-4971-890a-67c784d86ae8").is_err());
    }

    #[test]
    fn bitrates_and_mime() {
        assert!(check_bitrate("br", 32).is_ok());
        assert!(check_bitrate("br", 33).is_err());
        assert!(check_mime_type("mime_type", "audio/mpeg").is_ok());
        assert!(check_mime_type("mime_type", "text/plain; charset=utf-8").is_ok());
        assert!(check_mime_type("mime_type", "audio/mpeg\r\nX: y").is_err());
        assert!(check_mime_type("mime_type", "nonsense").is_err());
    }
}
