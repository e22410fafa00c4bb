//! Address classes: a family's CIDRs (and excepts) become an LPM table whose values are
//! equivalence classes, each holding the rules that can match an address of it, in
//! evaluation order (see the compiler's module doc).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::decision::RuleId;
use super::lpm::{Lpm, LpmError, LpmKey, Route};
use super::rule::Rule;
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// One address family: its LPM table and the class lists the table's values point to.
pub(super) struct FamilyTable<K: LpmKey> {
    pub(super) lpm: Lpm<K>,
    /// Per class: (src start, src end, dst start, dst end) into `members`.
    pub(super) spans: Vec<[u32; 4]>,
    members: Vec<RuleId>,
}

impl<K: LpmKey> FamilyTable<K> {
    pub(super) fn src_list(&self, class: u32) -> &[RuleId] {
        self.list(class, 0)
    }

    pub(super) fn dst_list(&self, class: u32) -> &[RuleId] {
        self.list(class, 2)
    }

    fn list(&self, class: u32, side: usize) -> &[RuleId] {
        let Some(span) = self.spans.get(class as usize) else { return &[] };
        let (start, end) = (span.get(side).copied().unwrap_or(0), span.get(side + 1).copied().unwrap_or(0));
        self.members.get(start as usize..end as usize).unwrap_or(&[])
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.lpm.memory_bytes()
            + self.spans.capacity() * std::mem::size_of::<[u32; 4]>()
            + self.members.capacity() * std::mem::size_of::<RuleId>()
    }
}

/// One CIDR or except entry of one family, widened to u128.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PrefixEntry {
    pub(super) addr: u128,
    pub(super) len: u8,
    pub(super) rule: RuleId,
    pub(super) except: bool,
}

/// The network mask of a `len`-bit prefix in a `bits`-bit address, as a u128.
pub(crate) fn mask(len: u8, bits: u32) -> u128 {
    let full: u128 = if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 };
    if len == 0 {
        0
    } else {
        (full << (bits - u32::from(len).min(bits))) & full
    }
}

/// What the class builder needs of a rule, in one byte (so that 100k rules are 100 KB to read,
/// not 100k cache misses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Role(u8);

impl Role {
    const SOURCE: u8 = 1;
    const DESTINATION: u8 = 2;
    /// Matches whatever the transport and TLS: ends every candidate list it is on.
    const TERMINAL: u8 = 4;

    pub(super) fn of(rule: &Rule) -> Role {
        let mut bits = 0;
        if rule.direction.matches_source() {
            bits |= Role::SOURCE;
        }
        if rule.direction.matches_destination() {
            bits |= Role::DESTINATION;
        }
        if rule.ports.is_empty() && rule.tls.is_none() {
            bits |= Role::TERMINAL;
        }
        Role(bits)
    }
}

/// Build the LPM table and class lists of one family from its prefixes (`PrefixEntry::addr`
/// widened to u128). Returns the number of distinct prefixes.
pub(super) fn build_family<K: LpmKey>(
    entries: &[PrefixEntry],
    roles: &[Role],
    bits: u32,
    to_key: impl Fn(u128) -> K,
) -> Result<(FamilyTable<K>, usize), LpmError> {
    // `entries` is sorted (see `Prepared`): (addr, len) order is a depth-first walk of the
    // prefix tree, where a prefix comes after every prefix that contains it, so a stack of
    // open prefixes tracks the enclosing ones.
    let mut builder = ClassBuilder::new(roles, entries.len());
    let mut inside = vec![(0u32, 0u32); roles.len()];
    // The rules containing the current prefix, sorted: few (the nesting depth), so a vector.
    let mut members: Vec<RuleId> = Vec::new();
    let mut stack: Vec<(u128, u8, usize, usize)> = Vec::new();
    let mut routes: Vec<Route<K>> = Vec::with_capacity(entries.len());
    let apply = |group: &[PrefixEntry], delta: i32, inside: &mut [(u32, u32)], members: &mut Vec<RuleId>| {
        for e in group {
            let Some(counts) = inside.get_mut(e.rule as usize) else { continue };
            let c = if e.except { &mut counts.1 } else { &mut counts.0 };
            *c = c.saturating_add_signed(delta);
            let member = counts.0 > 0 && counts.1 == 0;
            match (members.binary_search(&e.rule), member) {
                (Err(at), true) => members.insert(at, e.rule),
                (Ok(at), false) => {
                    members.remove(at);
                }
                _ => {}
            }
        }
    };
    let mut start = 0;
    while start < entries.len() {
        let Some(first) = entries.get(start).copied() else { break };
        let end = start
            + entries
                .get(start..)
                .map_or(0, |rest| rest.iter().take_while(|e| e.addr == first.addr && e.len == first.len).count());
        while let Some(&(addr, len, s, e)) = stack.last() {
            if len <= first.len && first.addr & mask(len, bits) == addr {
                break;
            }
            apply(entries.get(s..e).unwrap_or(&[]), -1, &mut inside, &mut members);
            stack.pop();
        }
        apply(entries.get(start..end).unwrap_or(&[]), 1, &mut inside, &mut members);
        stack.push((first.addr, first.len, start, end));
        let class = builder.class_of(&members);
        routes.push(Route { addr: to_key(first.addr), len: first.len, value: class });
        start = end;
    }
    let lpm = Lpm::build(&routes, 0)?;
    let prefixes = routes.len();
    Ok((FamilyTable { lpm, spans: builder.spans, members: builder.members }, prefixes))
}

/// Interns classes by their (source list, destination list); class 0 is the empty class, the
/// answer for addresses no prefix covers. Rules matching any address are not in classes: the
/// [`TransportTable`] holds them.
struct ClassBuilder<'a> {
    roles: &'a [Role],
    /// Class ids, hashed by their lists; a class's lists are read back from `members` to
    /// compare, so interning allocates nothing per class.
    ids: HashTable<u32>,
    /// The lists being looked up: source, then destination (`src_len` entries, then the rest).
    key: Vec<RuleId>,
    spans: Vec<[u32; 4]>,
    members: Vec<RuleId>,
}

impl<'a> ClassBuilder<'a> {
    /// `capacity`: how many classes there may be (at most one per prefix, plus the empty one).
    fn new(roles: &'a [Role], capacity: usize) -> Self {
        let mut b = ClassBuilder {
            roles,
            ids: HashTable::with_capacity(capacity + 1),
            key: Vec::new(),
            spans: Vec::with_capacity(capacity + 1),
            members: Vec::with_capacity(2 * capacity),
        };
        b.class_of(&[]);
        b
    }

    fn class_of(&mut self, members: &[RuleId]) -> u32 {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        self.push_side_list(members, true, &mut key);
        let src_len = key.len();
        self.push_side_list(members, false, &mut key);
        let (src, dst) = key.split_at(src_len.min(key.len()));
        let hash = lists_hash(src, dst);
        let (spans, arena) = (&self.spans, &self.members);
        let id = match self.ids.find(hash, |&id| lists_of(spans, arena, id) == (src, dst)) {
            Some(&id) => id,
            None => {
                let id = self.spans.len() as u32;
                let s0 = self.members.len() as u32;
                self.members.extend_from_slice(src);
                let s1 = self.members.len() as u32;
                self.members.extend_from_slice(dst);
                let s2 = self.members.len() as u32;
                self.spans.push([s0, s1, s1, s2]);
                let (spans, arena) = (&self.spans, &self.members);
                self.ids.insert_unique(hash, id, |&id| {
                    let (src, dst) = lists_of(spans, arena, id);
                    lists_hash(src, dst)
                });
                id
            }
        };
        self.key = key;
        id
    }

    /// Appends the members that can match on this side, stopping after the first rule that
    /// matches whatever the transport and TLS.
    fn push_side_list(&self, members: &[RuleId], source_side: bool, out: &mut Vec<RuleId>) {
        let side = if source_side { Role::SOURCE } else { Role::DESTINATION };
        for &id in members {
            let Some(Role(role)) = self.roles.get(id as usize).copied() else { continue };
            if role & side != 0 {
                out.push(id);
                if role & Role::TERMINAL != 0 {
                    break;
                }
            }
        }
    }
}

/// Class `id`'s (source, destination) lists in the arena.
fn lists_of<'m>(spans: &[[u32; 4]], arena: &'m [RuleId], id: u32) -> (&'m [RuleId], &'m [RuleId]) {
    let [s0, s1, _, s2] = spans.get(id as usize).copied().unwrap_or_default();
    let list = |a: u32, b: u32| arena.get(a as usize..b as usize).unwrap_or(&[]);
    (list(s0, s1), list(s1, s2))
}

/// The hash a class is interned by: of both lists, and of where one ends.
fn lists_hash(src: &[RuleId], dst: &[RuleId]) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = FxBuildHasher.build_hasher();
    src.hash(&mut h);
    dst.hash(&mut h);
    h.finish()
}
