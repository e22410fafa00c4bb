//! Server name (SNI) matching for TLS rules: exact names and `*.suffix` wildcards.
//!
//! - `www.example.com` matches that name only.
//! - `*.example.com` matches any name ending in `.example.com`, at any depth
//!   (`a.example.com`, `a.b.example.com`), but not `example.com` itself.
//! - Case-insensitive; one trailing dot is ignored, on patterns and names alike.
//!
//! A lookup costs one hash probe for the exact name plus one per label suffix of the name
//! (`a.b.example.com` probes `b.example.com`, `example.com`, `com` among the wildcards): it
//! does not grow with the number of patterns. Lookups lower-case the name into a stack buffer
//! and never allocate.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The longest DNS name, in text form without the trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// The longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a server name pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SniPatternError {
    Empty,
    TooLong(usize),
    EmptyLabel,
    LabelTooLong(usize),
    BadChar { ch: char, at: usize },
    MisplacedWildcard,
    BareWildcard,
}

impl std::fmt::Display for SniPatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SniPatternError::Empty => f.write_str("empty server name pattern"),
            SniPatternError::TooLong(n) => {
                write!(f, "server name pattern is {n} characters long, the limit is {MAX_NAME_LEN}")
            }
            SniPatternError::EmptyLabel => f.write_str("empty label (two dots in a row, or a leading dot)"),
            SniPatternError::LabelTooLong(n) => {
                write!(f, "a label is {n} characters long, the limit is {MAX_LABEL_LEN}")
            }
            SniPatternError::BadChar { ch, at } => write!(
                f,
                "invalid character {ch:?} at position {at}: use letters, digits, '-', '_' and '.', \
                 or '*' as the whole leftmost label"
            ),
            SniPatternError::MisplacedWildcard => {
                f.write_str("'*' must be the whole leftmost label, as in *.example.com")
            }
            SniPatternError::BareWildcard => f.write_str("a wildcard needs a suffix, as in *.example.com"),
        }
    }
}

impl std::error::Error for SniPatternError {}

/// A parsed pattern: lower-cased, without trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// The suffix after `*.`.
    Wildcard(String),
}

fn parse_pattern(pattern: &str) -> Result<Pattern, SniPatternError> {
    let p = pattern.strip_suffix('.').unwrap_or(pattern);
    if p.is_empty() {
        return Err(SniPatternError::Empty);
    }
    if p.len() > MAX_NAME_LEN {
        return Err(SniPatternError::TooLong(p.len()));
    }
    let mut at = 0usize;
    for (i, label) in p.split('.').enumerate() {
        if label.is_empty() {
            return Err(SniPatternError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(SniPatternError::LabelTooLong(label.len()));
        }
        if label != "*" || i > 0 {
            for (j, ch) in label.chars().enumerate() {
                match ch {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => {}
                    '*' => return Err(SniPatternError::MisplacedWildcard),
                    _ => return Err(SniPatternError::BadChar { ch, at: at + j }),
                }
            }
        }
        at += label.len() + 1;
    }
    let lower = p.to_ascii_lowercase();
    match lower.strip_prefix("*.") {
        Some(suffix) => Ok(Pattern::Wildcard(suffix.to_string())),
        None if lower == "*" => Err(SniPatternError::BareWildcard),
        None => Ok(Pattern::Exact(lower)),
    }
}

/// Check a server name pattern (`www.example.com`, `*.example.com`).
pub fn validate_pattern(pattern: &str) -> Result<(), SniPatternError> {
    parse_pattern(pattern).map(|_| ())
}

/// A pattern refused while building a [`SniMatcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniBuildError {
    /// Position of the pattern in the input.
    pub index: usize,
    pub pattern: String,
    pub error: SniPatternError,
}

impl std::fmt::Display for SniBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.pattern, self.error)
    }
}

impl std::error::Error for SniBuildError {}

/// FxHash-style hasher: the keys come from rules (not from the traffic), so a fast
/// non-keyed hash is safe here; probes by attacker-chosen names only compare.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        if !rest.is_empty() {
            if let Some(t) = tail.get_mut(..rest.len()) {
                t.copy_from_slice(rest);
            }
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type FxMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<FxHasher>>;

/// Matches server names against exact and wildcard patterns, each tagged with a rule id.
#[derive(Clone, Debug, Default)]
pub struct SniMatcher {
    exact: FxMap<Box<[u32]>>,
    wildcard: FxMap<Box<[u32]>>,
    patterns: usize,
}

impl SniMatcher {
    /// Build from (pattern, rule id) pairs. A pattern given several times keeps every
    /// distinct rule id, in input order.
    pub fn new<'s>(patterns: impl IntoIterator<Item = (&'s str, u32)>) -> Result<SniMatcher, SniBuildError> {
        let mut exact: HashMap<Box<[u8]>, Vec<u32>, BuildHasherDefault<FxHasher>> = HashMap::default();
        let mut wildcard: HashMap<Box<[u8]>, Vec<u32>, BuildHasherDefault<FxHasher>> = HashMap::default();
        let mut count = 0;
        for (index, (pattern, rule)) in patterns.into_iter().enumerate() {
            let parsed =
                parse_pattern(pattern).map_err(|error| SniBuildError { index, pattern: pattern.to_string(), error })?;
            let (map, key) = match parsed {
                Pattern::Exact(k) => (&mut exact, k),
                Pattern::Wildcard(k) => (&mut wildcard, k),
            };
            let rules = map.entry(key.into_bytes().into_boxed_slice()).or_default();
            if !rules.contains(&rule) {
                rules.push(rule);
            }
            count += 1;
        }
        let freeze = |m: HashMap<Box<[u8]>, Vec<u32>, BuildHasherDefault<FxHasher>>| -> FxMap<Box<[u32]>> {
            m.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect()
        };
        Ok(SniMatcher { exact: freeze(exact), wildcard: freeze(wildcard), patterns: count })
    }

    /// Patterns given to [`SniMatcher::new`].
    pub fn len(&self) -> usize {
        self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Call `f` with the rule id of every pattern matching `name`: the exact match first,
    /// then wildcards from the longest suffix to the shortest (a rule with several matching
    /// patterns is reported once per pattern). Names that are empty, longer
    /// than 253 characters (trailing dot aside) match nothing.
    #[inline]
    pub fn for_each_match(&self, name: impl AsRef<[u8]>, mut f: impl FnMut(u32)) {
        let name = name.as_ref();
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return;
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        let Some(lower) = buf.get_mut(..name.len()) else { return };
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let lower: &[u8] = lower;
        if let Some(rules) = self.exact.get(lower) {
            rules.iter().copied().for_each(&mut f);
        }
        if self.wildcard.is_empty() {
            return;
        }
        for (i, &b) in lower.iter().enumerate() {
            if b == b'.' {
                if let Some(rules) = lower.get(i + 1..).and_then(|suffix| self.wildcard.get(suffix)) {
                    rules.iter().copied().for_each(&mut f);
                }
            }
        }
    }

    /// Write the matching rule ids into `out` (as [`SniMatcher::for_each_match`] orders
    /// them); returns how many matched, which may exceed `out.len()` (the rest are dropped).
    pub fn matching_rules(&self, name: impl AsRef<[u8]>, out: &mut [u32]) -> usize {
        let mut n = 0;
        self.for_each_match(name, |r| {
            if let Some(slot) = out.get_mut(n) {
                *slot = r;
            }
            n += 1;
        });
        n
    }

    /// The smallest matching rule id (rule ids in priority order make this the winner).
    pub fn min_rule(&self, name: impl AsRef<[u8]>) -> Option<u32> {
        let mut best: Option<u32> = None;
        self.for_each_match(name, |r| best = Some(best.map_or(r, |b| b.min(r))));
        best
    }

    pub fn is_match(&self, name: impl AsRef<[u8]>) -> bool {
        let mut any = false;
        self.for_each_match(name, |_| any = true);
        any
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(m: &SniMatcher, name: &str) -> Vec<u32> {
        let mut out = [0u32; 16];
        let n = m.matching_rules(name, &mut out);
        let mut v = out[..n.min(16)].to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn exact_and_wildcards() {
        let m = SniMatcher::new([
            ("www.example.com", 1),
            ("*.example.com", 2),
            ("*.b.example.com", 3),
            ("Example.ORG.", 4),
            ("*.example.com", 5),
            ("*.example.com", 2),
        ])
        .unwrap();
        assert_eq!(m.len(), 6);
        assert_eq!(rules(&m, "www.example.com"), [1, 2, 5]);
        assert_eq!(rules(&m, "WWW.Example.Com."), [1, 2, 5]);
        assert_eq!(rules(&m, "a.example.com"), [2, 5]);
        assert_eq!(rules(&m, "x.y.b.example.com"), [2, 3, 5]);
        assert_eq!(rules(&m, "b.example.com"), [2, 5]);
        assert_eq!(rules(&m, "example.com"), [] as [u32; 0]);
        assert_eq!(rules(&m, "badexample.com"), [] as [u32; 0]);
        assert_eq!(rules(&m, "example.org"), [4]);
        assert_eq!(rules(&m, "www.example.org"), [] as [u32; 0]);
        assert_eq!(rules(&m, ""), [] as [u32; 0]);
        assert_eq!(rules(&m, "."), [] as [u32; 0]);
        assert_eq!(rules(&m, "bücher.example.com"), [2, 5]);
        assert_eq!(m.min_rule("www.example.com"), Some(1));
        assert!(!m.is_match("example.com"));
        let long = format!("{}.example.com", "a".repeat(250));
        assert!(!m.is_match(&long));
        let mut one = [0u32; 1];
        assert_eq!(m.matching_rules("www.example.com", &mut one), 3);
        assert_eq!(one, [1]);
    }

    #[test]
    fn pattern_errors() {
        let err = |p: &str| validate_pattern(p).unwrap_err().to_string();
        assert_eq!(err(""), "empty server name pattern");
        assert_eq!(err("."), "empty server name pattern");
        assert_eq!(err("a..b"), "empty label (two dots in a row, or a leading dot)");
        assert_eq!(err(".a"), "empty label (two dots in a row, or a leading dot)");
        assert_eq!(err("*"), "a wildcard needs a suffix, as in *.example.com");
        assert_eq!(err("a.*.com"), "'*' must be the whole leftmost label, as in *.example.com");
        assert_eq!(err("*foo.com"), "'*' must be the whole leftmost label, as in *.example.com");
        assert_eq!(err("**.com"), "'*' must be the whole leftmost label, as in *.example.com");
        assert_eq!(
            err("exa mple.com"),
            "invalid character ' ' at position 3: use letters, digits, '-', '_' and '.', or '*' as the whole leftmost label"
        );
        assert!(err("a.bü.com").starts_with("invalid character 'ü' at position 3"));
        assert_eq!(err(&"a".repeat(64)), "a label is 64 characters long, the limit is 63");
        let max = ["a"; 127].join(".");
        assert_eq!(max.len(), 253);
        assert!(validate_pattern(&max).is_ok());
        assert!(validate_pattern(&format!("{max}.")).is_ok());
        assert_eq!(err(&format!("{max}b")), "server name pattern is 254 characters long, the limit is 253");
    }

    #[test]
    fn build_error_names_the_pattern() {
        let e = SniMatcher::new([("ok.com", 1), ("bad name", 2)]).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(e.to_string(), "\"bad name\": invalid character ' ' at position 3: use letters, digits, '-', '_' and '.', or '*' as the whole leftmost label");
    }

    /// The reference: a linear scan with string operations.
    fn naive(patterns: &[(String, u32)], name: &str) -> Vec<u32> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return vec![];
        }
        let mut out: Vec<u32> = patterns
            .iter()
            .filter(|(p, _)| {
                let p = p.strip_suffix('.').unwrap_or(p).to_ascii_lowercase();
                match p.strip_prefix('*') {
                    Some(dot_suffix) => name.ends_with(dot_suffix),
                    None => name == p,
                }
            })
            .map(|(_, r)| *r)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn label() -> impl Strategy<Value = String> {
        prop_oneof![Just("a".to_string()), Just("B".to_string()), Just("com".to_string()), Just("x-y".to_string())]
    }

    fn name() -> impl Strategy<Value = String> {
        (proptest::collection::vec(label(), 1..5), any::<bool>()).prop_map(|(l, dot)| {
            if dot {
                l.join(".") + "."
            } else {
                l.join(".")
            }
        })
    }

    fn pattern() -> impl Strategy<Value = String> {
        (name(), any::<bool>()).prop_map(|(n, wild)| if wild { format!("*.{n}") } else { n })
    }

    proptest! {
        #[test]
        fn matches_the_naive_scan(
            patterns in proptest::collection::vec((pattern(), 0u32..20), 0..30),
            names in proptest::collection::vec(name(), 1..20),
        ) {
            let m = SniMatcher::new(patterns.iter().map(|(p, r)| (p.as_str(), *r))).unwrap();
            for n in &names {
                let mut got = Vec::new();
                m.for_each_match(n, |r| got.push(r));
                got.sort_unstable();
                got.dedup();
                prop_assert_eq!(got, naive(&patterns, n), "name {}", n);
            }
        }
    }
}
