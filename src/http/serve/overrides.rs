//! Query overrides of the publish URI and signed links (`disposition`, `disposition_name`,
//! `content_type`, `cache_headers`, `cache_control`), parsed into typed values before any store
//! access. Every value that reaches a header is validated or encoded here, so no query value can
//! add a header or split a response.

use axum::http::HeaderValue;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;

/// Longest `disposition_name` accepted, in bytes (a header line must stay reasonable).
pub const MAX_DISPOSITION_NAME: usize = 1024;
/// Longest `content_type` accepted, in bytes.
pub const MAX_CONTENT_TYPE: usize = 255;

/// `inline` or `attachment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    #[default]
    Inline,
    Attachment,
}

impl Disposition {
    fn as_str(self) -> &'static str {
        match self {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        }
    }
}

/// Header overrides from the query. `Default` is what a request without parameters gets.
///
/// Conversion parameters (`f`, `br`) are not read here: `transcode::Requested` parses them and
/// `publish.rs` picks a converted [`super::Representation`], to which these apply unchanged.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub disposition: Disposition,
    /// File name for `Content-Disposition`; the representation's name when absent.
    pub disposition_name: Option<String>,
    /// Replaces the representation's `Content-Type`.
    pub content_type: Option<HeaderValue>,
    /// `Cache-Control`; no header when absent.
    pub cache_control: Option<HeaderValue>,
}

impl Overrides {
    /// Parses the query. A bad value answers 400 naming the parameter; unknown parameters (and
    /// `expires`, `signature`, `f`, `br`) are left to others.
    pub fn parse(q: &QueryPairs) -> Result<Self, ApiError> {
        let mut ov = Overrides::default();
        if let Some(d) = q.get("disposition") {
            ov.disposition = if d.eq_ignore_ascii_case("inline") {
                Disposition::Inline
            } else if d.eq_ignore_ascii_case("attachment") {
                Disposition::Attachment
            } else {
                return Err(ApiError::bad_request(
                    "disposition",
                    "must be inline or attachment",
                ));
            };
        }
        if let Some(name) = q.get("disposition_name") {
            if name.is_empty() {
                return Err(ApiError::bad_request(
                    "disposition_name",
                    "must not be empty",
                ));
            }
            if name.len() > MAX_DISPOSITION_NAME {
                return Err(ApiError::bad_request(
                    "disposition_name",
                    format!("must be at most {MAX_DISPOSITION_NAME} bytes"),
                ));
            }
            ov.disposition_name = Some(name.to_string());
        }
        if let Some(ct) = q.get("content_type") {
            ov.content_type = Some(parse_content_type(ct).ok_or_else(|| {
                ApiError::bad_request("content_type", "must be a media type such as audio/mpeg")
            })?);
        }
        // Both are validated; `cache_headers` wins when both are given (seed).
        let control = match q.get("cache_control") {
            Some(v) => Some(parse_cache_control(v).ok_or_else(|| {
                ApiError::bad_request(
                    "cache_control",
                    "must be one of max-age=N, max-stale, max-stale=N, min-fresh=N, no-cache, no-store, no-transform, only-if-cached",
                )
            })?),
            None => None,
        };
        let headers = match q.get("cache_headers") {
            Some(v) => Some(parse_cache_headers(v).ok_or_else(|| {
                ApiError::bad_request("cache_headers", "must be no or a number of seconds")
            })?),
            None => None,
        };
        ov.cache_control = headers.or(control);
        Ok(ov)
    }

    /// `Content-Disposition` for a representation named `default_name`.
    pub fn content_disposition(&self, default_name: &str) -> HeaderValue {
        let name = self.disposition_name.as_deref().unwrap_or(default_name);
        content_disposition(self.disposition, name)
    }
}

/// RFC 8187 `attr-char`s are left as they are; everything else is percent-encoded as UTF-8.
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `<type>; filename*=UTF-8''<percent-encoded>; filename="<ascii>"`.
///
/// `filename*` comes first because the contract spells the header that way; the quoted ASCII
/// `filename` follows for old clients (every current browser prefers `filename*` wherever it is).
/// In the fallback, anything outside printable ASCII, quotes, backslashes and `%` (which some
/// clients decode) become `_`, so the quoted string can hold nothing that breaks out of it.
pub fn content_disposition(d: Disposition, name: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(name, ATTR_CHAR_ESCAPES);
    let ascii: String = name
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && !matches!(c, '"' | '\\' | '%') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = format!(
        "{}; filename*=UTF-8''{encoded}; filename=\"{ascii}\"",
        d.as_str()
    );
    // Only visible ASCII and spaces are left, so this cannot fail; fall back to the bare type.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(match d {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    }))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Validates `type/subtype *( OWS ";" OWS name=value )` (RFC 9110 §8.3.1), values being tokens
/// or quoted strings of visible ASCII.
fn parse_content_type(s: &str) -> Option<HeaderValue> {
    if s.len() > MAX_CONTENT_TYPE {
        return None;
    }
    let mut parts = s.split(';');
    let (ty, sub) = parts
        .next()?
        .trim_end_matches([' ', '\t'])
        .split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    for p in parts {
        let (name, value) = p.trim_matches([' ', '\t']).split_once('=')?;
        if !is_token(name) {
            return None;
        }
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let ok = if quoted {
            let inner = &value[1..value.len() - 1];
            inner
                .bytes()
                .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\')
        } else {
            is_token(value)
        };
        if !ok {
            return None;
        }
    }
    HeaderValue::from_str(s).ok()
}

/// Digits only (no sign, no spaces), as a `u32` of seconds (136 years is enough).
fn seconds(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `no` → `no-cache`; seconds → `public, max-age=N`.
fn parse_cache_headers(s: &str) -> Option<HeaderValue> {
    if s.eq_ignore_ascii_case("no") {
        return Some(HeaderValue::from_static("no-cache"));
    }
    let n = seconds(s)?;
    HeaderValue::from_str(&format!("public, max-age={n}")).ok()
}

/// One of the seed's directives, written back in canonical (lowercase) form.
fn parse_cache_control(s: &str) -> Option<HeaderValue> {
    let lower = s.to_ascii_lowercase();
    let value = match lower.split_once('=') {
        None => match lower.as_str() {
            "max-stale" | "no-cache" | "no-store" | "no-transform" | "only-if-cached" => {
                lower.clone()
            }
            _ => return None,
        },
        Some((name @ ("max-age" | "max-stale" | "min-fresh"), n)) => {
            format!("{name}={}", seconds(n)?)
        }
        Some(_) => return None,
    };
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryPairs {
        QueryPairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn field_of(e: ApiError) -> Option<String> {
        e.errors.first().and_then(|f| f.field.clone())
    }

    #[test]
    fn defaults() {
        let ov = Overrides::parse(&q(&[])).expect("empty query");
        assert_eq!(ov.disposition, Disposition::Inline);
        assert!(ov.cache_control.is_none() && ov.content_type.is_none());
        assert_eq!(
            ov.content_disposition("rec.g722"),
            "inline; filename*=UTF-8''rec.g722; filename=\"rec.g722\""
        );
    }

    #[test]
    fn disposition_values() {
        let ov = Overrides::parse(&q(&[
            ("disposition", "attachment"),
            ("disposition_name", "my_file.wav"),
        ]))
        .expect("ok");
        assert_eq!(
            ov.content_disposition("x"),
            "attachment; filename*=UTF-8''my_file.wav; filename=\"my_file.wav\""
        );
        let e = Overrides::parse(&q(&[("disposition", "download")])).expect_err("bad");
        assert_eq!(field_of(e), Some("disposition".into()));
        let e = Overrides::parse(&q(&[("disposition_name", "")])).expect_err("empty");
        assert_eq!(field_of(e), Some("disposition_name".into()));
    }

    #[test]
    fn disposition_name_is_encoded() {
        assert_eq!(
            content_disposition(Disposition::Inline, "a b\"c\r\nSet-Cookie: x=1;é.wav"),
            "inline; filename*=UTF-8''a%20b%22c%0D%0ASet-Cookie%3A%20x%3D1%3B%C3%A9.wav; filename=\"a b_c__Set-Cookie: x=1;_.wav\""
        );
        assert_eq!(
            content_disposition(Disposition::Attachment, "100%\\€"),
            "attachment; filename*=UTF-8''100%25%5C%E2%82%AC; filename=\"100___\""
        );
    }

    #[test]
    fn content_type_validation() {
        for ok in [
            "audio/G722",
            "audio/mpeg",
            "text/plain; charset=utf-8",
            "a/b;x=\"q r\"",
        ] {
            assert!(parse_content_type(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "audio",
            "audio/",
            "/mpeg",
            "audio/mp eg",
            "audio/mpeg\r\nX: y",
            "audio/mpeg; x",
            "a/b;x=\"q\"r\"",
            "ä/b",
            "audio/mpeg;",
        ] {
            assert!(parse_content_type(bad).is_none(), "{bad:?}");
        }
        let e = Overrides::parse(&q(&[("content_type", "nope")])).expect_err("bad");
        assert_eq!(field_of(e), Some("content_type".into()));
    }

    #[test]
    fn cache_headers_values() {
        assert_eq!(parse_cache_headers("no").expect("no"), "no-cache");
        assert_eq!(
            parse_cache_headers("3600").expect("n"),
            "public, max-age=3600"
        );
        for bad in ["", "-1", "+5", "1.5", "yes", "99999999999", " 5"] {
            assert!(parse_cache_headers(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn cache_control_values() {
        for (input, out) in [
            ("max-age=60", "max-age=60"),
            ("max-stale", "max-stale"),
            ("max-stale=5", "max-stale=5"),
            ("min-fresh=3600", "min-fresh=3600"),
            ("no-cache", "no-cache"),
            ("No-Store", "no-store"),
            ("no-transform", "no-transform"),
            ("only-if-cached", "only-if-cached"),
        ] {
            assert_eq!(parse_cache_control(input).expect(input), out);
        }
        for bad in [
            "",
            "max-age",
            "min-fresh",
            "public",
            "max-age=-1",
            "no-cache=x",
            "max-age=1, public",
            "no-store\r\nX: y",
        ] {
            assert!(parse_cache_control(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn cache_headers_win_over_cache_control() {
        let ov = Overrides::parse(&q(&[
            ("cache_control", "no-store"),
            ("cache_headers", "60"),
        ]))
        .expect("ok");
        assert_eq!(ov.cache_control.expect("set"), "public, max-age=60");
        let ov = Overrides::parse(&q(&[("cache_control", "no-store")])).expect("ok");
        assert_eq!(ov.cache_control.expect("set"), "no-store");
        let e = Overrides::parse(&q(&[("cache_control", "bogus"), ("cache_headers", "60")]))
            .expect_err("bad");
        assert_eq!(field_of(e), Some("cache_control".into()));
    }
}
