//! Packets decided by each rule: counted by the workers into the policy they run, summed by
//! the control thread, kept by rule name across generations.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::compile::CompiledPolicy;
use super::decision::{stored_rule, RuleId};
use super::rule::Action;

/// One policy's counts: a row per worker, a slot per rule plus one for the default action
/// (slot 0; rule `r` is slot `r + 1`, so that `NO_RULE` wraps to the default's slot).
/// Each slot has one writer (its worker), which adds with a plain load and store (no
/// read-modify-write instruction); the control thread only loads.
#[derive(Debug, Default)]
pub struct RuleHits {
    slots: usize,
    counts: Box<[AtomicU64]>,
    /// New connections each limit rule decided (over their source's limit), laid out as
    /// `counts`.
    limited: Box<[AtomicU64]>,
}

impl RuleHits {
    /// Counters for `workers` workers and `rules` rules, allocated by the control thread.
    pub fn new(workers: usize, rules: usize) -> RuleHits {
        let slots = rules + 1;
        let zeros = || (0..workers * slots).map(|_| AtomicU64::new(0)).collect();
        RuleHits { slots, counts: zeros(), limited: zeros() }
    }

    /// Worker `lane` decided one packet by each rule of `rules` (`NO_RULE`: the default
    /// action). One add per packet, without a branch: runs of one rule are short when many
    /// rules match (a branch per rule change mispredicted at every other packet).
    #[inline]
    pub fn add_each(&self, lane: usize, rules: impl IntoIterator<Item = RuleId>) {
        let Some(row) = self.counts.get(lane * self.slots..(lane + 1) * self.slots) else { return };
        for rule in rules {
            if let Some(c) = row.get(slot(rule)) {
                c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
            }
        }
    }

    /// Worker `lane` limited one new connection by `rule` (a plain load and store, as above).
    #[inline]
    pub fn add_limited(&self, lane: usize, rule: RuleId) {
        if let Some(c) = self.limited.get(lane * self.slots + slot(rule)) {
            c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// New connections `rule` limited, summed over the workers.
    pub fn total_limited(&self, rule: RuleId) -> u64 {
        self.limited.iter().skip(slot(rule)).step_by(self.slots.max(1)).map(|c| c.load(Relaxed)).sum()
    }

    /// Packets decided by `rule` (`None`: the default action), summed over the workers.
    pub fn total(&self, rule: Option<RuleId>) -> u64 {
        let slot = slot(stored_rule(rule));
        self.counts.iter().skip(slot).step_by(self.slots.max(1)).map(|c| c.load(Relaxed)).sum()
    }
}

/// A rule's slot in a row: `NO_RULE` (the default action) wraps to 0.
#[inline(always)]
fn slot(rule: RuleId) -> usize {
    rule.wrapping_add(1) as usize
}

/// At most this many rules get their own series; the rest are summed as [`OTHER_RULES`], so a
/// 100k-rule set cannot make 100k series.
pub const MAX_RULE_SERIES: usize = 1000;
/// The series of rules beyond [`MAX_RULE_SERIES`].
pub const OTHER_RULES: &str = "_other";
/// The series of packets no rule decided.
pub const DEFAULT_RULE: &str = "_default";

/// Packets per rule name and action since start: what retired policies counted, plus what the
/// running ones count so far.
#[derive(Debug, Default)]
pub struct RuleTotals {
    retired: HashMap<(String, Action), u64>,
    /// New connections limited, by rule name (only rules with a limit; at most
    /// `MAX_LIMIT_RULES` a set, so bounded by the names they ever had).
    retired_limited: HashMap<String, u64>,
}

impl RuleTotals {
    /// Keeps the final counts of a policy no worker runs any more.
    pub fn retire(&mut self, policy: &CompiledPolicy) {
        Self::add_counts(policy, &mut self.retired);
        Self::add_limited(policy, &mut self.retired_limited);
    }

    /// New connections limited by rule name, with the current counts of the `running`
    /// policies; every limit rule of the running policies is listed (0 included).
    pub fn snapshot_limited<'a>(&self, running: impl IntoIterator<Item = &'a CompiledPolicy>) -> HashMap<String, u64> {
        let mut totals = self.retired_limited.clone();
        for p in running {
            Self::add_limited(p, &mut totals);
        }
        totals
    }

    fn add_limited(policy: &CompiledPolicy, into: &mut HashMap<String, u64>) {
        for l in policy.limits() {
            let Some(rule) = policy.rule(l.id) else { continue };
            *into.entry(rule.name.clone()).or_default() += policy.hits().total_limited(l.id);
        }
    }

    /// Totals by (rule name, action), with the current counts of the `running` policies.
    pub fn snapshot<'a>(
        &self,
        running: impl IntoIterator<Item = &'a CompiledPolicy>,
    ) -> HashMap<(String, Action), u64> {
        let mut totals = self.retired.clone();
        for p in running {
            Self::add_counts(p, &mut totals);
        }
        totals
    }

    fn add_counts(policy: &CompiledPolicy, into: &mut HashMap<(String, Action), u64>) {
        let hits = policy.hits();
        let default = hits.total(None);
        if default > 0 {
            *into.entry((DEFAULT_RULE.to_string(), policy.default_action())).or_default() += default;
        }
        for (id, rule) in policy.rule_set().rules().iter().enumerate() {
            let n = hits.total(Some(id as RuleId));
            if n == 0 {
                continue;
            }
            let key = (rule.name.clone(), rule.action);
            // A rule gets its own series while there is room; a rule that has one keeps it.
            let key = if into.contains_key(&key) || into.len() < MAX_RULE_SERIES {
                key
            } else {
                (OTHER_RULES.to_string(), rule.action)
            };
            *into.entry(key).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decision::NO_RULE;
    use crate::policy::{rule_set_from_str, CompiledPolicy};

    #[test]
    fn counts_by_worker_and_rule_and_keeps_names_across_generations() {
        let text = "[{\"apiVersion\":\"policy.secure.example.com/v1\",\"kind\":\"NetworkPolicyRule\",\"metadata\":{\"name\":\"a\"},\"spec\":{\"cidrBlocks\":[\"10.0.0.0/8\"],\"action\":\"DROP\"}}]";
        let mut p = CompiledPolicy::compile(rule_set_from_str(text, "").unwrap(), Action::Allow).unwrap();
        p.attach_hits(2);
        p.hits().add_each(0, [0; 3]);
        p.hits().add_each(1, [0; 4]);
        p.hits().add_each(1, [NO_RULE; 5]);
        // Out of range: ignored, not a panic.
        p.hits().add_each(2, [0; 100]);
        p.hits().add_each(0, [7; 100]);
        assert_eq!((p.hits().total(Some(0)), p.hits().total(None)), (7, 5));
        let mut totals = RuleTotals::default();
        let running = totals.snapshot([&p]);
        assert_eq!(running.get(&("a".to_string(), Action::Drop)), Some(&7));
        assert_eq!(running.get(&(DEFAULT_RULE.to_string(), Action::Allow)), Some(&5));
        totals.retire(&p);
        let mut next = CompiledPolicy::compile(rule_set_from_str(text, "").unwrap(), Action::Allow).unwrap();
        next.attach_hits(2);
        next.hits().add_each(1, [0]);
        assert_eq!(totals.snapshot([&next]).get(&("a".to_string(), Action::Drop)), Some(&8));
    }
}
