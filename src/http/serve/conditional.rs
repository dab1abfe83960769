//! Conditional requests (RFC 9110 §13): entity-tag lists with their strong and weak comparisons,
//! HTTP dates compared to the second, evaluated in the order of §13.2.2.

use axum::http::{header, HeaderMap, HeaderName, Method};

/// The validators of what is served.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// Strong entity-tag, quoted (`"abc"`).
    pub etag: &'a str,
    /// Last modification, whole seconds since the epoch.
    pub last_modified: i64,
}

/// What the preconditions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on (Range and If-Range are evaluated next).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// One entity-tag: its opaque part with the quotes, and whether it is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// Parses one entity-tag at the start of `s`; returns it and the rest.
    fn parse_prefix(s: &'a str) -> Option<(Self, &'a str)> {
        let (weak, s) = match s.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let inner = s.strip_prefix('"')?;
        let close = inner.find('"')?;
        let opaque = &s[..close + 2];
        // etagc = %x21 / %x23-7E / obs-text: no controls, spaces or DEL inside.
        if !opaque[1..opaque.len() - 1]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        Some((EntityTag { weak, opaque }, &s[close + 2..]))
    }

    /// Parses a whole value holding exactly one entity-tag.
    fn parse(s: &'a str) -> Option<Self> {
        match Self::parse_prefix(s.trim())? {
            (tag, "") => Some(tag),
            _ => None,
        }
    }

    /// Strong comparison (§8.8.3.2): both strong and the same characters.
    fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: the same characters, weakness aside.
    fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// An `If-Match` / `If-None-Match` value: `*` or a list of entity-tags.
#[derive(Debug, PartialEq, Eq)]
enum TagList<'a> {
    Any,
    Tags(Vec<EntityTag<'a>>),
}

impl<'a> TagList<'a> {
    /// Parses every field line of `name`. `None` when absent; a malformed member is skipped (it
    /// can match nothing), which makes a wholly malformed If-Match fail and a wholly malformed
    /// If-None-Match pass — the safe reading of a broken precondition either way.
    fn from_headers(headers: &'a HeaderMap, name: &HeaderName) -> Option<Self> {
        let mut tags = Vec::new();
        let mut present = false;
        for value in headers.get_all(name) {
            present = true;
            let Ok(mut s) = value.to_str() else { continue };
            loop {
                s = s.trim_start_matches([',', ' ', '\t']);
                if s.is_empty() {
                    break;
                }
                if let Some(rest) = s.strip_prefix('*') {
                    if rest.trim().is_empty() {
                        return Some(TagList::Any);
                    }
                }
                match EntityTag::parse_prefix(s) {
                    Some((tag, rest)) => {
                        tags.push(tag);
                        s = rest;
                    }
                    // Skip to the next member.
                    None => s = s.find(',').map_or("", |i| &s[i..]),
                }
            }
        }
        present.then_some(TagList::Tags(tags))
    }

    fn matches(&self, current: &EntityTag<'_>, strong: bool) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| {
                if strong {
                    t.strong_eq(current)
                } else {
                    t.weak_eq(current)
                }
            }),
        }
    }
}

/// A date header as whole seconds since the epoch; `None` when absent, repeated or invalid (a
/// recipient must then ignore it, §13.1.3/§13.1.4).
fn date_header(headers: &HeaderMap, name: &HeaderName) -> Option<i64> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    http_date_secs(value.to_str().ok()?)
}

/// Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime) to whole seconds since the epoch.
pub fn http_date_secs(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in the order of
/// RFC 9110 §13.2.2 (If-Range is separate: it only decides whether Range applies).
pub fn evaluate(method: &Method, headers: &HeaderMap, v: Validators<'_>) -> Precondition {
    // Most requests carry no entity-tag condition: then our tag need not be parsed.
    if !headers.contains_key(header::IF_MATCH) && !headers.contains_key(header::IF_NONE_MATCH) {
        return evaluate_without_tag(method, headers, v.last_modified);
    }
    let Some(current) = EntityTag::parse(v.etag) else {
        // Our own ETag is always well-formed; without one, no tag can match.
        return evaluate_without_tag(method, headers, v.last_modified);
    };
    // Step 1 / 2.
    if let Some(list) = TagList::from_headers(headers, &header::IF_MATCH) {
        if !list.matches(&current, true) {
            return Precondition::Failed;
        }
    } else if let Some(since) = date_header(headers, &header::IF_UNMODIFIED_SINCE) {
        if v.last_modified > since {
            return Precondition::Failed;
        }
    }
    // Step 3 / 4.
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(list) = TagList::from_headers(headers, &header::IF_NONE_MATCH) {
        if list.matches(&current, false) {
            return if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if get_or_head {
        if let Some(since) = date_header(headers, &header::IF_MODIFIED_SINCE) {
            if v.last_modified <= since {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

fn evaluate_without_tag(method: &Method, headers: &HeaderMap, last_modified: i64) -> Precondition {
    if headers.contains_key(header::IF_MATCH) {
        return Precondition::Failed;
    }
    if let Some(since) = date_header(headers, &header::IF_UNMODIFIED_SINCE) {
        if last_modified > since {
            return Precondition::Failed;
        }
    }
    if !headers.contains_key(header::IF_NONE_MATCH)
        && (method == Method::GET || method == Method::HEAD)
    {
        if let Some(since) = date_header(headers, &header::IF_MODIFIED_SINCE) {
            if last_modified <= since {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether a Range may be honoured given `If-Range` (§13.1.5): true without the header; with an
/// entity-tag, a strong match; with a date, exactly equal to Last-Modified (to the second). An
/// invalid value matches nothing, so the whole representation is sent.
pub fn if_range_allows(headers: &HeaderMap, v: Validators<'_>) -> bool {
    let mut values = headers.get_all(header::IF_RANGE).iter();
    let Some(value) = values.next() else {
        return true;
    };
    if values.next().is_some() {
        return false;
    }
    let Ok(s) = value.to_str() else { return false };
    let s = s.trim();
    if s.starts_with('"') || s.starts_with("W/") {
        match (EntityTag::parse(s), EntityTag::parse(v.etag)) {
            (Some(theirs), Some(ours)) => theirs.strong_eq(&ours),
            _ => false,
        }
    } else {
        http_date_secs(s) == Some(v.last_modified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const V: Validators<'static> = Validators {
        etag: "\"abc\"",
        last_modified: 1_000_000_000,
    };
    const LM: &str = "Sun, 09 Sep 2001 01:46:40 GMT"; // 1_000_000_000
    const EARLIER: &str = "Sun, 09 Sep 2001 01:46:39 GMT";
    const LATER: &str = "Sun, 09 Sep 2001 01:46:41 GMT";

    fn h(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(k.clone(), HeaderValue::from_str(v).expect("test header"));
        }
        m
    }

    fn eval(pairs: &[(HeaderName, &str)]) -> Precondition {
        evaluate(&Method::GET, &h(pairs), V)
    }

    #[test]
    fn the_test_dates_are_right() {
        assert_eq!(http_date_secs(LM), Some(V.last_modified));
    }

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(eval(&[]), Precondition::Proceed);
    }

    #[test]
    fn if_match_is_strong() {
        assert_eq!(
            eval(&[(header::IF_MATCH, "\"abc\"")]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(&[(header::IF_MATCH, "\"x\", \"abc\"")]),
            Precondition::Proceed
        );
        assert_eq!(eval(&[(header::IF_MATCH, "*")]), Precondition::Proceed);
        assert_eq!(
            eval(&[(header::IF_MATCH, "W/\"abc\"")]),
            Precondition::Failed
        );
        assert_eq!(
            eval(&[(header::IF_MATCH, "\"other\"")]),
            Precondition::Failed
        );
        assert_eq!(eval(&[(header::IF_MATCH, "garbage")]), Precondition::Failed);
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(
            eval(&[(header::IF_UNMODIFIED_SINCE, LM)]),
            Precondition::Proceed
        );
        assert_eq!(
            eval(&[(header::IF_UNMODIFIED_SINCE, EARLIER)]),
            Precondition::Failed
        );
        assert_eq!(
            eval(&[(header::IF_UNMODIFIED_SINCE, "not a date")]),
            Precondition::Proceed
        );
        // If-Match takes precedence.
        assert_eq!(
            eval(&[
                (header::IF_MATCH, "\"abc\""),
                (header::IF_UNMODIFIED_SINCE, EARLIER)
            ]),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_none_match_is_weak() {
        assert_eq!(
            eval(&[(header::IF_NONE_MATCH, "\"abc\"")]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(&[(header::IF_NONE_MATCH, "W/\"abc\"")]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(&[(header::IF_NONE_MATCH, "\"a,b\", W/\"abc\"")]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(&[(header::IF_NONE_MATCH, "*")]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(&[(header::IF_NONE_MATCH, "\"other\"")]),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&Method::POST, &h(&[(header::IF_NONE_MATCH, "\"abc\"")]), V),
            Precondition::Failed
        );
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(
            eval(&[(header::IF_MODIFIED_SINCE, LM)]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(&[(header::IF_MODIFIED_SINCE, LATER)]),
            Precondition::NotModified
        );
        assert_eq!(
            eval(&[(header::IF_MODIFIED_SINCE, EARLIER)]),
            Precondition::Proceed
        );
        // If-None-Match takes precedence.
        assert_eq!(
            eval(&[
                (header::IF_NONE_MATCH, "\"other\""),
                (header::IF_MODIFIED_SINCE, LM)
            ]),
            Precondition::Proceed
        );
    }

    #[test]
    fn failed_if_match_wins_over_not_modified() {
        assert_eq!(
            eval(&[
                (header::IF_MATCH, "\"other\""),
                (header::IF_NONE_MATCH, "\"abc\"")
            ]),
            Precondition::Failed
        );
    }

    #[test]
    fn if_range() {
        assert!(if_range_allows(&h(&[]), V));
        assert!(if_range_allows(&h(&[(header::IF_RANGE, "\"abc\"")]), V));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, "W/\"abc\"")]), V));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, "\"other\"")]), V));
        assert!(if_range_allows(&h(&[(header::IF_RANGE, LM)]), V));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, EARLIER)]), V));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, LATER)]), V));
        assert!(!if_range_allows(&h(&[(header::IF_RANGE, "garbage")]), V));
    }
}
