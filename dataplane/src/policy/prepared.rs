//! The compiler's front end: what it needs of each rule, flat and in evaluation order.
//!
//! Reading 10k rules through their pointers is a cache miss or three per rule, and sorting their
//! prefixes is most of the rest of the front end's time. A set that differs from the last one
//! by a few rules (an upsert, a delete) is therefore prepared by splicing the last preparation:
//! the unchanged rules are recognised by pointer and copied from the flat arrays with their ids
//! renumbered; only the changed rules are read. The result is exactly what preparing the new
//! set from scratch gives (a property test checks it), so the policy compiled from it is too.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cmp::Ordering;
use std::sync::Arc;

use super::classes::{PrefixEntry, Role};
use super::compile::{CompiledRule, CompiledTls, NO_TLS};
use super::decision::RuleId;
use super::rule::{PortRange, Rule, RuleSet};
use ipnet::IpNet;

/// Above this many changed rules (or a quarter of the set), a set is prepared from scratch.
const SPLICE_LIMIT: usize = 256;

/// One rule set's compiler input. Rule ids are positions in the set's evaluation order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    pub(super) rules: Vec<CompiledRule>,
    pub(super) roles: Vec<Role>,
    pub(super) port_ranges: Vec<PortRange>,
    pub(super) tls: Vec<CompiledTls>,
    /// Server name patterns and their rules, in rule order.
    pub(super) names: Vec<(String, RuleId)>,
    /// Each family's CIDRs and excepts, sorted (the class builder's walk order).
    pub(super) v4: Vec<PrefixEntry>,
    pub(super) v6: Vec<PrefixEntry>,
}

impl Prepared {
    /// Prepares every rule of `set`.
    pub fn of(set: &RuleSet) -> Prepared {
        let n = set.len();
        // Room for a prefix per rule: growing copied the arrays many times.
        let mut p = Prepared {
            rules: Vec::with_capacity(n),
            roles: Vec::with_capacity(n),
            v4: Vec::with_capacity(n),
            v6: Vec::with_capacity(n),
            ..Prepared::default()
        };
        for (id, rule) in set.rules().iter().enumerate() {
            p.push_rule(rule, id as RuleId);
        }
        p.v4.sort_unstable();
        p.v6.sort_unstable();
        p
    }

    /// The preparation of `new`, given that `self` is that of `old`. Rules of `new` that are
    /// rules of `old` (the same allocation) are copied from `self`; a set that shares few rules
    /// with `old` is prepared from scratch.
    pub fn updated(&self, old: &RuleSet, new: &RuleSet) -> Prepared {
        let limit = SPLICE_LIMIT.min(new.len().max(old.len()) / 4);
        self.updated_within(old, new, limit)
    }

    /// [`Prepared::updated`], splicing when at most `limit` rules changed.
    pub(super) fn updated_within(&self, old: &RuleSet, new: &RuleSet, limit: usize) -> Prepared {
        let Some(diff) = Diff::of(old.rules(), new.rules(), limit) else { return Prepared::of(new) };
        let mut p = Prepared {
            rules: Vec::with_capacity(new.len()),
            roles: Vec::with_capacity(new.len()),
            port_ranges: Vec::with_capacity(self.port_ranges.len()),
            ..Prepared::default()
        };
        // Per-rule arrays in the new order: kept rules copied (without their prefixes), added
        // ones read, their prefixes collecting in `p.v4` and `p.v6`.
        for (id, source) in diff.sources.iter().enumerate() {
            match *source {
                Source::Kept(old_id) => self.copy_rule(old_id, id as RuleId, &mut p),
                Source::Added(rule) => p.push_rule(rule, id as RuleId),
            }
        }
        p.v4.sort_unstable();
        p.v6.sort_unstable();
        p.v4 = merge_renumbered(&self.v4, &p.v4, &diff.renumber);
        p.v6 = merge_renumbered(&self.v6, &p.v6, &diff.renumber);
        p
    }

    /// Appends rule `id`'s entries (its prefixes unsorted).
    fn push_rule(&mut self, r: &Rule, id: RuleId) {
        // A limit rule's addresses stay out of the classes: the classifier never returns it.
        let nets: [(&[IpNet], bool); 2] =
            if r.limit.is_some() { [(&[], false), (&[], true)] } else { [(&r.cidr_blocks, false), (&r.except, true)] };
        for (nets, except) in nets {
            for net in nets {
                match net {
                    IpNet::V4(n) => self.v4.push(PrefixEntry {
                        addr: u128::from(u32::from(n.network())),
                        len: n.prefix_len(),
                        rule: id,
                        except,
                    }),
                    IpNet::V6(n) => self.v6.push(PrefixEntry {
                        addr: u128::from(n.network()),
                        len: n.prefix_len(),
                        rule: id,
                        except,
                    }),
                }
            }
        }
        let tls = match &r.tls {
            None => NO_TLS,
            Some(t) => {
                self.names.extend(t.server_names.iter().map(|n| (n.clone(), id)));
                self.tls.push(CompiledTls {
                    any_name: t.server_names.is_empty(),
                    version_below: t.version_below,
                    ja3: t.ja3.clone(),
                    ja4: t.ja4.clone(),
                });
                (self.tls.len() - 1) as u32
            }
        };
        let ports_start = self.port_ranges.len() as u32;
        self.port_ranges.extend_from_slice(&r.ports);
        self.rules.push(CompiledRule {
            tls,
            any_address: r.cidr_blocks.is_empty(),
            action: r.action,
            ports_start,
            ports_end: self.port_ranges.len() as u32,
            limited: r.limit.is_some(),
        });
        self.roles.push(Role::of(r));
    }

    /// Appends the entries of `self`'s rule `old_id` to `to` as rule `id` (prefixes aside).
    fn copy_rule(&self, old_id: RuleId, id: RuleId, to: &mut Prepared) {
        let (Some(&rule), Some(&role)) = (self.rules.get(old_id as usize), self.roles.get(old_id as usize)) else {
            return;
        };
        let ports = self.port_ranges.get(rule.ports_start as usize..rule.ports_end as usize).unwrap_or(&[]);
        let ports_start = to.port_ranges.len() as u32;
        to.port_ranges.extend_from_slice(ports);
        let tls = match self.tls.get(rule.tls as usize) {
            None => NO_TLS,
            Some(t) => {
                if !t.any_name {
                    // A rule's names are contiguous in `names`, which is in rule order.
                    let at = self.names.partition_point(|(_, r)| *r < old_id);
                    let names = self.names.get(at..).unwrap_or(&[]).iter().take_while(|(_, r)| *r == old_id);
                    to.names.extend(names.map(|(n, _)| (n.clone(), id)));
                }
                to.tls.push(t.clone());
                (to.tls.len() - 1) as u32
            }
        };
        to.rules.push(CompiledRule { tls, ports_start, ports_end: to.port_ranges.len() as u32, ..rule });
        to.roles.push(role);
    }
}

/// Where each rule of the new set comes from.
enum Source<'a> {
    /// Rule `old id` of the old set.
    Kept(RuleId),
    /// Not in the old set.
    Added(&'a Rule),
}

/// How a new set relates to the old one.
struct Diff<'a> {
    /// Per new rule, in order.
    sources: Vec<Source<'a>>,
    /// Per old rule: its new id, or `None` when it is gone.
    renumber: Vec<Option<RuleId>>,
}

impl<'a> Diff<'a> {
    /// Matches the two sets, both in evaluation order, by pointer: a rule kept by an upsert or
    /// a delete is the same allocation, and kept rules keep their relative order. Rules are
    /// read only where the sets differ. `None` when more than `limit` rules changed.
    fn of(old: &[Arc<Rule>], new: &'a [Arc<Rule>], limit: usize) -> Option<Diff<'a>> {
        let mut sources = Vec::with_capacity(new.len());
        let mut renumber = Vec::with_capacity(old.len());
        let (mut i, mut changed) = (0, 0);
        for (j, rule) in new.iter().enumerate() {
            // Old rules ahead of this one in evaluation order, and not it, are gone.
            while let Some(o) = old.get(i) {
                if Arc::ptr_eq(o, rule) || precedence(o, rule) == Ordering::Greater {
                    break;
                }
                renumber.push(None);
                i += 1;
                changed += 1;
            }
            match old.get(i) {
                Some(o) if Arc::ptr_eq(o, rule) => {
                    sources.push(Source::Kept(i as RuleId));
                    renumber.push(Some(j as RuleId));
                    i += 1;
                }
                _ => {
                    sources.push(Source::Added(rule));
                    changed += 1;
                }
            }
            if changed > limit {
                return None;
            }
        }
        changed += old.len() - i;
        if changed > limit {
            return None;
        }
        renumber.resize(old.len(), None);
        Some(Diff { sources, renumber })
    }
}

/// Evaluation order (see `RuleSet`), read only where two sets differ.
fn precedence(a: &Rule, b: &Rule) -> Ordering {
    a.precedence_key().cmp(&b.precedence_key())
}

/// `old` entries of kept rules with their new ids, merged with `added` (both sorted; renumbering
/// keeps rule order, so the old entries stay sorted).
fn merge_renumbered(old: &[PrefixEntry], added: &[PrefixEntry], renumber: &[Option<RuleId>]) -> Vec<PrefixEntry> {
    let mut out = Vec::with_capacity(old.len() + added.len());
    let mut added = added.iter().peekable();
    for e in old {
        let Some(rule) = renumber.get(e.rule as usize).copied().flatten() else { continue };
        let e = PrefixEntry { rule, ..*e };
        while let Some(a) = added.next_if(|a| **a < e) {
            out.push(*a);
        }
        out.push(e);
    }
    out.extend(added);
    out
}

/// How many rules differ between two sets (gone plus added), by the splice's matching.
#[cfg(test)]
pub(super) fn changed_rules(old: &RuleSet, new: &RuleSet) -> Option<usize> {
    let d = Diff::of(old.rules(), new.rules(), usize::MAX)?;
    let added = d.sources.iter().filter(|s| matches!(s, Source::Added(_))).count();
    Some(added + d.renumber.iter().filter(|r| r.is_none()).count())
}
