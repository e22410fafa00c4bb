//! Top talkers on the control side: the workers' sketches (`pipeline::talkers`) merged into
//! one ranking per kind, rates over the last interval, the `/v1/top` query and its JSON.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::time::Instant;

use serde_json::json;

use crate::pipeline::talkers::{Source, SpaceSaving, Talkers, TopBy, TOP_ENTRIES};

/// Rows shown when the query gives no `limit`.
pub const DEFAULT_LIMIT: usize = 10;

/// One source in the merged ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct TopRow {
    pub source: Source,
    /// Never below the true count (over all workers).
    pub count: u64,
    /// `count - error` is never above the true count.
    pub error: u64,
    /// Per second over the last interval (see [`TopBoard::update`]).
    pub rate: f64,
    /// Server names (hellos only), most counted first, with their counts.
    pub snis: Vec<(String, u64)>,
}

/// Merges the sketches of several workers (Agarwal et al., "Mergeable summaries", 2012): a
/// source's count is the sum over the workers of its count where held, and where not, of
/// that worker's floor (the most it may have counted there unseen), which is also added to
/// its error. The result keeps both guarantees of one sketch. Ranked by count (then
/// address), the first [`TOP_ENTRIES`] kept.
pub fn merge(sketches: &[&SpaceSaving]) -> Vec<TopRow> {
    let floors: u64 = sketches.iter().map(|s| s.floor()).sum();
    let mut merged: HashMap<Source, Merging> = HashMap::new();
    for s in sketches {
        for (i, c) in s.entries().iter().enumerate() {
            let m = merged.entry(c.source).or_default();
            m.count += c.count;
            m.error += c.error;
            m.held_floors += s.floor();
            for n in s.snis(i).into_iter().flat_map(|set| set.names()) {
                *m.names.entry(n.name().to_vec()).or_default() += n.count;
            }
        }
    }
    let mut rows: Vec<TopRow> = merged
        .into_iter()
        .map(|(source, Merging { count, error, held_floors, names })| {
            let unseen = floors - held_floors;
            let mut snis: Vec<(String, u64)> = names.into_iter().map(|(n, c)| (printable(&n), c)).collect();
            snis.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            snis.truncate(crate::pipeline::talkers::SNIS_PER_SOURCE);
            TopRow { source, count: count + unseen, error: error + unseen, rate: 0.0, snis }
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.source.cmp(&b.source)));
    rows.truncate(TOP_ENTRIES);
    rows
}

/// A server name from the wire as text safe on a terminal: bytes other than printable ASCII
/// escaped (`\x1b`), so that no name can move a terminal's cursor or rewrite its screen.
fn printable(name: &[u8]) -> String {
    name.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect()
}

/// One source while the sketches are merged.
#[derive(Default)]
struct Merging {
    /// Sums over the sketches that hold it.
    count: u64,
    error: u64,
    /// The floors of the sketches that hold it (the others' are added to both sums).
    held_floors: u64,
    names: HashMap<Vec<u8>, u64>,
}

/// The merged rankings the API answers from, refreshed by the control thread.
#[derive(Default)]
pub struct TopBoard {
    rows: [Vec<TopRow>; 3],
    at: Option<Instant>,
}

impl TopBoard {
    /// Merges the workers' latest copies taken at `now`. A row's rate is what its count
    /// grew by since the last update, per second: the growth of `count - error` (the part
    /// surely its own, which other workers' floors do not move), or all of it for a source
    /// that was not ranked then (counted from when its sketches took it).
    pub fn update(&mut self, workers: &[&Talkers], now: Instant) {
        let seconds = self.at.map(|t| now.duration_since(t).as_secs_f64()).filter(|s| *s > 0.0);
        for (by, rows) in TopBy::ALL.into_iter().zip(self.rows.iter_mut()) {
            let sketches: Vec<&SpaceSaving> = workers.iter().map(|t| t.by(by)).collect();
            let mut fresh = merge(&sketches);
            let before: HashMap<Source, u64> = rows.iter().map(|r| (r.source, r.count - r.error)).collect();
            for r in &mut fresh {
                let grown = (r.count - r.error).saturating_sub(before.get(&r.source).copied().unwrap_or(0));
                r.rate = seconds.map_or(0.0, |s| grown as f64 / s);
            }
            *rows = fresh;
        }
        self.at = Some(now);
    }

    /// The first `limit` rows by `by`.
    pub fn top(&self, by: TopBy, limit: usize) -> &[TopRow] {
        let rows = self.rows.get(by as usize).map_or(&[][..], Vec::as_slice);
        rows.get(..limit.min(rows.len())).unwrap_or(&[])
    }
}

/// `rows` as the API's JSON array; names only for hellos.
pub fn to_json(rows: &[TopRow], by: TopBy) -> serde_json::Value {
    rows.iter()
        .map(|r| {
            let mut row = json!({
                "address": r.source.to_string(),
                "count": r.count,
                "error": r.error,
                "rate": (r.rate * 10.0).round() / 10.0,
            });
            if let Some(object) = row.as_object_mut().filter(|_| by == TopBy::Hellos) {
                let snis = r.snis.iter().map(|(name, count)| json!({"name": name, "count": count})).collect();
                object.insert("snis".into(), snis);
            }
            row
        })
        .collect()
}

/// A `/v1/top` query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopQuery {
    pub by: TopBy,
    pub limit: usize,
}

impl TopQuery {
    /// From the query's (key, value) pairs; an error names the field.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<TopQuery, String> {
        let (mut by, mut limit) = (None, None);
        for (key, value) in pairs {
            match key.as_str() {
                "by" if by.is_some() => return Err("by: given twice".into()),
                "limit" if limit.is_some() => return Err("limit: given twice".into()),
                "by" => {
                    by = Some(
                        TopBy::parse(value)
                            .ok_or_else(|| format!("by: expected connections, hellos or drops, not {value:?}"))?,
                    )
                }
                "limit" => {
                    limit =
                        Some(value.parse::<usize>().ok().filter(|n| (1..=TOP_ENTRIES).contains(n)).ok_or_else(
                            || format!("limit: expected a number from 1 to {TOP_ENTRIES}, not {value:?}"),
                        )?)
                }
                other => return Err(format!("{other}: unknown query field (expected by or limit)")),
            }
        }
        Ok(TopQuery { by: by.unwrap_or(TopBy::Connections), limit: limit.unwrap_or(DEFAULT_LIMIT) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> Source {
        Source::v4(u32::from_be_bytes([10, 0, 0, last]))
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn merging_sums_held_counts_and_charges_the_floors_of_the_others() {
        // Worker 0 (k 2): 1 x5, 2 x3, then 3 replaces 2 (count 4, error 3): floor 4.
        let mut a = SpaceSaving::new(2, false);
        a.add(v4(1), 5);
        a.add(v4(2), 3);
        a.add(v4(3), 1);
        // Worker 1 (k 2, not full): 1 x2. Floor 0.
        let mut b = SpaceSaving::new(2, false);
        b.add(v4(1), 2);
        let rows = merge(&[&a, &b]);
        let got: Vec<_> = rows.iter().map(|r| (r.source, r.count, r.error)).collect();
        assert_eq!(got, vec![(v4(1), 7, 0), (v4(3), 4, 3)]);
        // Worker 1 full now (1 x2, 4 x1: floor 1): source 3, unseen there, is charged 1.
        b.add(v4(4), 1);
        let got: Vec<_> = merge(&[&a, &b]).iter().map(|r| (r.source, r.count, r.error)).collect();
        assert_eq!(got, vec![(v4(1), 7, 0), (v4(3), 5, 4), (v4(4), 5, 4)]);
    }

    #[test]
    fn merged_names_add_up_per_name() {
        let mut a = Talkers::new(4);
        let mut b = Talkers::new(4);
        a.hellos.add_named(v4(1), Some(b"x.example"));
        a.hellos.add_named(v4(1), Some(b"y.example"));
        b.hellos.add_named(v4(1), Some(b"y.example"));
        let mut board = TopBoard::default();
        let t0 = Instant::now();
        board.update(&[&a, &b], t0);
        let rows = board.top(TopBy::Hellos, 10);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].snis, vec![("y.example".to_string(), 2), ("x.example".to_string(), 1)]);
        assert_eq!(rows[0].rate, 0.0, "no interval yet");
        // Two seconds later, four more from 10.0.0.1: 2 per second.
        for _ in 0..4 {
            b.hellos.add_named(v4(1), None);
        }
        board.update(&[&a, &b], t0 + std::time::Duration::from_secs(2));
        let rows = board.top(TopBy::Hellos, 10);
        assert_eq!((rows[0].count, rows[0].rate), (7, 2.0));
        assert_eq!(
            to_json(rows, TopBy::Hellos),
            json!([{"address": "10.0.0.1", "count": 7, "error": 0, "rate": 2.0,
                "snis": [{"name": "y.example", "count": 2}, {"name": "x.example", "count": 1}]}])
        );
        assert_eq!(to_json(board.top(TopBy::Drops, 10), TopBy::Drops), json!([]));
    }

    #[test]
    fn names_from_the_wire_cannot_drive_a_terminal() {
        let mut t = Talkers::new(2);
        t.hellos.add_named(v4(1), Some(b"a\x1b[2Jb\xff"));
        assert_eq!(merge(&[&t.hellos])[0].snis, vec![("a\\x1b[2Jb\\xff".to_string(), 1)]);
    }

    proptest::proptest! {
        /// Streams spread over 1 to 4 workers' sketches (k 1 to 8): the merge keeps the
        /// guarantees of one sketch over the whole stream.
        #[test]
        fn merging_keeps_the_guarantees_over_all_workers(
            k in 1usize..8,
            stream in proptest::collection::vec((0usize..4, proptest::prop_oneof![3 => 0u8..3, 2 => 0u8..60]), 0..600),
        ) {
            let workers = stream.iter().map(|w| w.0).max().map_or(1, |m| m + 1);
            let mut sketches: Vec<SpaceSaving> = (0..workers).map(|_| SpaceSaving::new(k, false)).collect();
            let mut truth: HashMap<Source, u64> = HashMap::new();
            for &(w, i) in &stream {
                sketches[w].add(v4(i), 1);
                *truth.entry(v4(i)).or_default() += 1;
            }
            let rows = merge(&sketches.iter().collect::<Vec<_>>());
            let n = stream.len() as u64;
            for (source, &t) in &truth {
                let row = rows.iter().find(|r| r.source == *source);
                if t * k as u64 > n {
                    proptest::prop_assert!(row.is_some(), "{source} counted {t} of {n} (k {k}) is missing");
                }
                if let Some(r) = row {
                    proptest::prop_assert!(r.count >= t && r.count - r.error <= t, "{source} {t}: {r:?}");
                }
            }
        }
    }

    #[test]
    fn queries_default_and_errors_name_the_field() {
        assert_eq!(TopQuery::from_pairs(&[]), Ok(TopQuery { by: TopBy::Connections, limit: DEFAULT_LIMIT }));
        assert_eq!(
            TopQuery::from_pairs(&pairs(&[("by", "drops"), ("limit", "3")])),
            Ok(TopQuery { by: TopBy::Drops, limit: 3 })
        );
        let err = |q: &[(&str, &str)]| TopQuery::from_pairs(&pairs(q)).unwrap_err();
        assert_eq!(err(&[("by", "bytes")]), "by: expected connections, hellos or drops, not \"bytes\"");
        assert_eq!(err(&[("limit", "0")]), "limit: expected a number from 1 to 128, not \"0\"");
        assert_eq!(err(&[("limit", "x")]), "limit: expected a number from 1 to 128, not \"x\"");
        assert_eq!(err(&[("by", "drops"), ("by", "hellos")]), "by: given twice");
        assert_eq!(err(&[("sort", "asc")]), "sort: unknown query field (expected by or limit)");
    }
}
