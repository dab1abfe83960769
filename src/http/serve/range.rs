//! `Range: bytes=...`: syntax from the `http-range-header` crate, resolution against the
//! representation's length here, because the crate's `validate` differs from RFC 9110 where it
//! matters to us (a suffix longer than the content is the whole content, not an error; an
//! unsatisfiable spec among satisfiable ones is dropped, not fatal; overlapping specs are
//! coalesced, not refused).

use http_range_header::{parse_range_header, EndPosition, StartPosition};

/// Most range-specs honoured in one header. RFC 9110 §14.2 lets a server ignore a Range with many
/// small ranges (a denial-of-service pattern); past this we serve the whole representation.
pub const MAX_RANGES: usize = 32;

/// A satisfiable byte range: `len` bytes from `start`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    /// The last byte's offset (inclusive, as in `Content-Range`).
    pub fn last(&self) -> u64 {
        self.start + self.len - 1
    }

    /// `bytes a-b/len` for `Content-Range`.
    pub fn content_range(&self, total: u64) -> String {
        let mut b = itoa::Buffer::new();
        let mut s = String::with_capacity(6 + 3 * 20 + 2);
        s.push_str("bytes ");
        s.push_str(b.format(self.start));
        s.push('-');
        s.push_str(b.format(self.last()));
        s.push('/');
        s.push_str(b.format(total));
        s
    }
}

/// What a Range header asks of a representation of a known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Absent, malformed, another unit or too many specs: serve the whole representation (200).
    Ignored,
    /// Satisfiable, pairwise disjoint and non-adjacent ranges, in the order to send them.
    Satisfiable(Vec<ByteRange>),
    /// Well-formed, but no spec overlaps the content: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value against a representation of `len` bytes.
///
/// Overlapping or adjacent ranges are coalesced (RFC 9110 §14.2 allows it); then the parts are
/// sent in ascending order. Otherwise the client's order is kept, as §14.6 asks.
pub fn resolve(header: &str, len: u64) -> Ranges {
    let Some((unit, set)) = header.split_once('=') else {
        return Ranges::Ignored;
    };
    // Range units are case-insensitive (§14.1); the parser only knows lowercase `bytes=`.
    if !unit.eq_ignore_ascii_case("bytes") {
        return Ranges::Ignored;
    }
    // `-0` is well-formed but never satisfiable (§14.1.1), and positions beyond u64 are still
    // well-formed; the parser rejects the whole header for either, so such specs are rewritten
    // first (the common header needs no rewrite and is parsed as it is, without allocating).
    let (mut specs, mut zero_suffixes, mut huge) = (0, 0, false);
    for s in set.split(',') {
        if s.trim() == "-0" {
            zero_suffixes += 1;
        } else {
            specs += 1;
            huge |= s.split('-').any(is_huge);
        }
    }
    if specs + zero_suffixes > MAX_RANGES {
        return Ranges::Ignored;
    }
    if specs == 0 {
        return if zero_suffixes > 0 {
            Ranges::Unsatisfiable
        } else {
            Ranges::Ignored
        };
    }
    let parsed = if unit == "bytes" && zero_suffixes == 0 && !huge {
        parse_range_header(header)
    } else {
        parse_range_header(&rewritten(set))
    };
    let Ok(parsed) = parsed else {
        return Ranges::Ignored;
    };
    let mut out = Vec::with_capacity(parsed.ranges.len());
    for r in &parsed.ranges {
        let (start, last) = match (r.start, r.end) {
            (StartPosition::Index(a), EndPosition::Index(b)) => {
                // last-pos < first-pos makes the spec invalid (§14.1.1), so the header is.
                if b < a {
                    return Ranges::Ignored;
                }
                (a, b)
            }
            (StartPosition::Index(a), EndPosition::LastByte) => (a, u64::MAX),
            // A suffix longer than the content selects all of it (§14.1.1).
            (StartPosition::FromLast(n), _) => (len.saturating_sub(n), u64::MAX),
        };
        if start >= len {
            continue; // this spec is unsatisfiable; others may not be
        }
        let last = last.min(len - 1);
        out.push(ByteRange {
            start,
            len: last - start + 1,
        });
    }
    if out.is_empty() {
        return Ranges::Unsatisfiable;
    }
    Ranges::Satisfiable(coalesce(out))
}

/// A position of digits only that does not fit a u64.
fn is_huge(n: &str) -> bool {
    let t = n.trim();
    // u64::MAX has 20 digits: anything shorter fits (leading zeros only make it longer).
    t.len() >= 20 && t.bytes().all(|b| b.is_ascii_digit()) && t.parse::<u64>().is_err()
}

/// `bytes=` and the specs of `set` without `-0` suffixes, positions too large for a u64 made
/// u64::MAX (RFC 9110 puts no bound on them): `bytes=<huge>-` is then unsatisfiable and
/// `bytes=-<huge>` the whole content.
fn rewritten(set: &str) -> String {
    let specs: Vec<String> = set
        .split(',')
        .filter(|s| s.trim() != "-0")
        .map(|spec| {
            spec.split('-')
                .map(|n| {
                    if is_huge(n) {
                        u64::MAX.to_string()
                    } else {
                        n.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect();
    format!("bytes={}", specs.join(","))
}

/// Merges overlapping or adjacent ranges. When none touch, the client's order is kept.
fn coalesce(ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    if ranges.len() < 2 {
        return ranges;
    }
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    // `r.last() + 1 >= next.start` cannot overflow: `last` < `len` <= u64::MAX.
    if !sorted.windows(2).any(|w| w[0].last() + 1 >= w[1].start) {
        return ranges;
    }
    let mut merged: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match merged.last_mut() {
            Some(m) if m.last() + 1 >= r.start => {
                let last = m.last().max(r.last());
                m.len = last - m.start + 1;
            }
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn br(start: u64, last: u64) -> ByteRange {
        ByteRange {
            start,
            len: last - start + 1,
        }
    }

    fn sat(v: &[(u64, u64)]) -> Ranges {
        Ranges::Satisfiable(v.iter().map(|&(a, b)| br(a, b)).collect())
    }

    #[test]
    fn single_forms() {
        assert_eq!(resolve("bytes=20-499", 1000), sat(&[(20, 499)]));
        assert_eq!(resolve("bytes=20-", 1000), sat(&[(20, 999)]));
        assert_eq!(resolve("bytes=-100", 1000), sat(&[(900, 999)]));
        assert_eq!(resolve("bytes=0-0", 1000), sat(&[(0, 0)]));
    }

    #[test]
    fn end_past_the_content_is_clamped() {
        assert_eq!(resolve("bytes=990-5000", 1000), sat(&[(990, 999)]));
    }

    #[test]
    fn suffix_longer_than_content_is_whole_content() {
        assert_eq!(resolve("bytes=-5000", 1000), sat(&[(0, 999)]));
    }

    #[test]
    fn unit_is_case_insensitive() {
        assert_eq!(resolve("Bytes=1-2", 10), sat(&[(1, 2)]));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(resolve("bytes=1000-", 1000), Ranges::Unsatisfiable);
        assert_eq!(resolve("bytes=1000-2000", 1000), Ranges::Unsatisfiable);
        assert_eq!(resolve("bytes=-0", 1000), Ranges::Unsatisfiable);
        assert_eq!(resolve("bytes=0-", 0), Ranges::Unsatisfiable);
        assert_eq!(resolve("bytes=-5", 0), Ranges::Unsatisfiable);
    }

    #[test]
    fn unsatisfiable_specs_among_satisfiable_ones_are_dropped() {
        assert_eq!(resolve("bytes=5000-6000,0-9", 1000), sat(&[(0, 9)]));
        assert_eq!(resolve("bytes=-0,0-9", 1000), sat(&[(0, 9)]));
    }

    #[test]
    fn malformed_is_ignored() {
        for h in [
            "",
            "bytes",
            "bytes=",
            "bytes=abc",
            "bytes=1-2-3",
            "bytes= 1-2",
            "items=0-1",
            "bytes=5-2",
            "bytes=0-1,,4-5",
            "bytes=+1-2",
            "bytes=01-2",
        ] {
            assert_eq!(resolve(h, 1000), Ranges::Ignored, "{h:?}");
        }
    }

    #[test]
    fn disjoint_ranges_keep_the_clients_order() {
        assert_eq!(
            resolve("bytes=500-599, 0-99", 1000),
            sat(&[(500, 599), (0, 99)])
        );
    }

    #[test]
    fn overlapping_and_adjacent_ranges_are_coalesced() {
        assert_eq!(resolve("bytes=50-150,0-99", 1000), sat(&[(0, 150)]));
        assert_eq!(
            resolve("bytes=0-9,10-19,30-39", 1000),
            sat(&[(0, 19), (30, 39)])
        );
        assert_eq!(resolve("bytes=0-,0-,0-", 1000), sat(&[(0, 999)]));
        assert_eq!(resolve("bytes=-10,990-999", 1000), sat(&[(990, 999)]));
    }

    #[test]
    fn too_many_ranges_are_ignored() {
        let many: Vec<String> = (0..=MAX_RANGES as u64)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        assert_eq!(
            resolve(&format!("bytes={}", many.join(",")), 10_000),
            Ranges::Ignored
        );
        let ok: Vec<String> = (0..MAX_RANGES as u64)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        assert!(
            matches!(resolve(&format!("bytes={}", ok.join(",")), 10_000), Ranges::Satisfiable(v) if v.len() == MAX_RANGES)
        );
    }

    #[test]
    fn content_range_format() {
        assert_eq!(br(20, 499).content_range(189952), "bytes 20-499/189952");
    }

    #[test]
    fn positions_beyond_u64_saturate() {
        assert!(matches!(
            resolve("bytes=99999999999999999999-", 100),
            Ranges::Unsatisfiable
        ));
        match resolve("bytes=-99999999999999999999", 100) {
            Ranges::Satisfiable(r) => assert_eq!(r, vec![ByteRange { start: 0, len: 100 }]),
            other => panic!("{other:?}"),
        }
    }
}
