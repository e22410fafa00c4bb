//! The compiler: a [`RuleSet`] becomes an immutable [`CompiledPolicy`] that answers
//! "which rule decides this connection" with two LPM lookups and a short merge.
//!
//! Every address maps, through an LPM table, to an equivalence class: the set of rules whose
//! CIDRs (minus excepts) contain it. A class keeps two lists of rule indices in evaluation
//! order: the rules that can match on the source side (`ingress`/`any`) and on the destination
//! side (`egress`/`any`), each cut after its first rule without a port predicate, since nothing
//! after that rule can ever decide. Per-packet cost therefore does not grow with the rule count.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::classes::{build_family, FamilyTable};
use super::decision::{Decision, HelloFacts, Query, RuleId, TlsView};
use super::hits::RuleHits;
use super::lpm::LpmError;
use super::prepared::Prepared;
use super::rule::{Action, ConnectionLimit, PortRange, Rule, RuleSet};
use super::sni::SniMatcher;
use super::transport::{AnyAddressRule, TransportTable};
use crate::wire::IpPair;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a validated rule set could not be compiled (limits of the lookup structures).
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("address table: {0}")]
    Lpm(#[from] LpmError),
    #[error("server names: {0}")]
    ServerName(super::sni::SniBuildError),
}

/// A rule with `spec.limit`, kept out of the classifier: a new connection that its predicates
/// match takes a token of its source's bucket (`pipeline::limits`); without one, the rule
/// decides.
#[derive(Clone, Debug)]
pub struct LimitRule {
    pub id: RuleId,
    /// The rule name's hash: a source's bucket outlives a generation that renumbers rules.
    pub key: u64,
    pub limit: ConnectionLimit,
    pub action: Action,
    rule: Arc<Rule>,
}

impl LimitRule {
    /// Whether the rule's addresses (by its direction) and transport hold for `q`. A query
    /// whose transport is unknown matches a rule with ports only if the rule denies (as the
    /// classifier decides it, `Query::transport_unknown`).
    pub fn matches(&self, q: &Query) -> bool {
        let (src, dst): (IpAddr, IpAddr) = match q.addrs {
            IpPair::V4 { src, dst } => (Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()),
            IpPair::V6 { src, dst } => (Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()),
        };
        let r = &*self.rule;
        let by_address = (r.direction.matches_source() && r.contains_address(src))
            || (r.direction.matches_destination() && r.contains_address(dst));
        by_address
            && if q.transport_unknown {
                r.ports.is_empty() || r.action.denies()
            } else {
                r.matches_transport(q.protocol, q.dst_port)
            }
    }
}

/// FNV-1a of a rule name: stable across runs and generations.
fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// `CompiledRule::tls` of a rule without TLS predicates (kept in 4 bytes, not an `Option`).
pub(super) const NO_TLS: u32 = u32::MAX;

/// A rule's TLS predicates; the server names live in the policy's [`SniMatcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CompiledTls {
    pub(super) any_name: bool,
    pub(super) version_below: Option<u16>,
    pub(super) ja3: Vec<String>,
    pub(super) ja4: Vec<String>,
}

/// The per-rule data the fast path needs; names and reasons stay with the [`RuleSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CompiledRule {
    /// Index into `CompiledPolicy::tls`, or `NO_TLS`.
    pub(super) tls: u32,
    /// No `cidrBlocks`: matches any address.
    pub(super) any_address: bool,
    pub(super) action: Action,
    /// Range of this rule's entries in `CompiledPolicy::port_ranges`; empty = any transport.
    pub(super) ports_start: u32,
    pub(super) ports_end: u32,
    /// Has `spec.limit`: out of the classifier (in `CompiledPolicy::limits` instead).
    pub(super) limited: bool,
}

impl CompiledRule {
    /// Its TLS predicates' index in `CompiledPolicy::tls`, if it has any.
    #[inline]
    pub(super) fn tls_index(&self) -> Option<usize> {
        (self.tls != NO_TLS).then_some(self.tls as usize)
    }
}

/// Figures about a compiled policy, for `rules check` and the control API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileStats {
    pub rules: usize,
    pub v4_prefixes: usize,
    pub v6_prefixes: usize,
    pub v4_classes: usize,
    pub v6_classes: usize,
    pub memory_bytes: usize,
    pub compile_time: Duration,
}

/// An immutable, compiled rule set. Built off the fast path; shared read-only by workers.
pub struct CompiledPolicy {
    rule_set: RuleSet,
    rules: Vec<CompiledRule>,
    port_ranges: Vec<PortRange>,
    v4: FamilyTable<u32>,
    v6: FamilyTable<u128>,
    /// Any-address rules by transport; `_unnamed` leaves out TLS rules with server names, which
    /// a complete hello reaches through the SNI matcher instead (so 100k names cost one lookup).
    any_address: TransportTable,
    any_address_unnamed: TransportTable,
    tls: Vec<CompiledTls>,
    sni: SniMatcher,
    default_action: Action,
    generation: u64,
    /// Whether some rule tests JA3 / JA4, fixed at compile time: asked for every hello.
    needs_ja3: bool,
    needs_ja4: bool,
    /// Whether some rule says REJECT: workers answer rejected packets only then.
    rejects: bool,
    /// The rules with `spec.limit`, in evaluation order (at most `MAX_LIMIT_RULES`).
    limits: Vec<LimitRule>,
    stats: CompileStats,
    /// Packets decided by each rule, per worker (sized when published).
    hits: RuleHits,
}

/// Largest burst `classify_bulk` handles at once (it chunks longer inputs).
const CHUNK: usize = 64;

impl CompiledPolicy {
    pub fn compile(rule_set: RuleSet, default_action: Action) -> Result<CompiledPolicy, CompileError> {
        let started = Instant::now();
        let prepared = Prepared::of(&rule_set);
        let mut policy = CompiledPolicy::compile_prepared(rule_set, &prepared, default_action)?;
        // The whole compile, preparation included.
        policy.stats.compile_time = started.elapsed();
        Ok(policy)
    }

    /// [`CompiledPolicy::compile`] from `rule_set`'s preparation (see [`Prepared::updated`]:
    /// the control plane keeps the active set's, so a small change reads only the rules it
    /// changes).
    pub fn compile_prepared(
        rule_set: RuleSet,
        prepared: &Prepared,
        default_action: Action,
    ) -> Result<CompiledPolicy, CompileError> {
        let started = Instant::now();
        let Prepared { rules, roles, port_ranges, tls, names, v4, v6 } = prepared;
        let (rules, port_ranges, tls) = (rules.clone(), port_ranges.clone(), tls.clone());
        let needs_ja3 = tls.iter().any(|t| !t.ja3.is_empty());
        let needs_ja4 = tls.iter().any(|t| !t.ja4.is_empty());
        let sni = SniMatcher::new(names.iter().map(|(n, id)| (n.as_str(), *id))).map_err(CompileError::ServerName)?;
        let (v4, v4_prefixes) = build_family::<u32>(v4, roles, 32, |a| a as u32)?;
        let (v6, v6_prefixes) = build_family::<u128>(v6, roles, 128, |a| a)?;
        let any_rules: Vec<AnyAddressRule<'_>> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.any_address && !r.limited)
            .map(|(id, r)| {
                let tls = tls.get(r.tls as usize);
                AnyAddressRule {
                    id: id as RuleId,
                    ports: port_ranges.get(r.ports_start as usize..r.ports_end as usize).unwrap_or(&[]),
                    tls: tls.is_some(),
                    named: tls.is_some_and(|t| !t.any_name),
                    drop: r.action.denies(),
                }
            })
            .collect();
        let any_address = TransportTable::build(&any_rules, |_| true);
        let any_address_unnamed = TransportTable::build(&any_rules, |r| !r.named);
        drop(any_rules);
        let memory_bytes = v4.memory_bytes()
            + v6.memory_bytes()
            + any_address.memory_bytes()
            + any_address_unnamed.memory_bytes()
            + rules.capacity() * std::mem::size_of::<CompiledRule>()
            + port_ranges.capacity() * std::mem::size_of::<PortRange>();
        let stats = CompileStats {
            rules: rules.len(),
            v4_prefixes,
            v6_prefixes,
            v4_classes: v4.spans.len(),
            v6_classes: v6.spans.len(),
            memory_bytes,
            compile_time: started.elapsed(),
        };
        let rejects = rule_set.rules().iter().any(|r| r.action == Action::Reject);
        let limits = rule_set
            .rules()
            .iter()
            .enumerate()
            .filter_map(|(id, r)| {
                let limit = r.limit?;
                Some(LimitRule { id: id as RuleId, key: name_key(&r.name), limit, action: r.action, rule: r.clone() })
            })
            .collect();
        Ok(CompiledPolicy {
            rule_set,
            rules,
            port_ranges,
            v4,
            v6,
            any_address,
            any_address_unnamed,
            tls,
            sni,
            default_action,
            generation: 0,
            needs_ja3,
            needs_ja4,
            rejects,
            limits,
            stats,
            hits: RuleHits::default(),
        })
    }

    pub fn rule_set(&self) -> &RuleSet {
        &self.rule_set
    }

    /// The source rule of a decision, for names and reasons.
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rule_set.rules().get(id as usize).map(|r| &**r)
    }

    pub fn default_action(&self) -> Action {
        self.default_action
    }

    /// The generation this policy was published as (0 until the control plane numbers it).
    /// Flows decided under another generation are classified again.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// Gives the policy per-rule packet counters for `workers` workers (before it is shared).
    pub fn attach_hits(&mut self, workers: usize) {
        self.hits = RuleHits::new(workers, self.rules.len());
    }

    /// The per-rule packet counters (empty until [`CompiledPolicy::attach_hits`]).
    #[inline]
    pub fn hits(&self) -> &RuleHits {
        &self.hits
    }

    /// Whether some rule says REJECT (so a burst with drops may need answers).
    #[inline]
    pub fn rejects(&self) -> bool {
        self.rejects
    }

    /// The rules with `spec.limit`, in evaluation order.
    #[inline]
    pub fn limits(&self) -> &[LimitRule] {
        &self.limits
    }

    /// Whether some rule tests JA3 (so the pipeline computes it for each hello).
    pub fn needs_ja3(&self) -> bool {
        self.needs_ja3
    }

    /// Whether some rule tests JA4.
    pub fn needs_ja4(&self) -> bool {
        self.needs_ja4
    }

    /// Whether any rule has TLS predicates (else the pipeline never inspects payloads).
    pub fn has_tls_rules(&self) -> bool {
        !self.tls.is_empty()
    }

    /// Classify one connection with what is known of its TLS. Off the bulk path: used once per
    /// connection when its ClientHello completes or its first payload turns out not to be TLS.
    pub fn classify_tls(&self, query: &Query, tls: TlsView<'_>) -> Decision {
        let (src, dst) = match query.addrs {
            IpPair::V4 { src, dst } => {
                (self.v4.src_list(self.v4.lpm.lookup(src)), self.v4.dst_list(self.v4.lpm.lookup(dst)))
            }
            IpPair::V6 { src, dst } => {
                (self.v6.src_list(self.v6.lpm.lookup(src)), self.v6.dst_list(self.v6.lpm.lookup(dst)))
            }
        };
        let mut names = [0 as RuleId; SNI_MATCHES];
        let matched = match tls {
            TlsView::Hello(h) => self.sni.matching_rules(h.server_name.unwrap_or(""), &mut names),
            _ => 0,
        };
        let hits = names.get_mut(..matched).unwrap_or(&mut []);
        hits.sort_unstable();
        let sni = SniHits { ids: hits, overflow: matched > SNI_MATCHES };
        self.first_match(src, dst, &Transport::of(query), tls, &sni)
    }

    /// Classify one connection.
    pub fn classify(&self, query: &Query) -> Decision {
        let mut out = [Decision::new(self.default_action, None)];
        self.classify_bulk(std::slice::from_ref(query), &mut out);
        out[0]
    }

    /// Classify a burst: `out[i]` for `queries[i]`. The LPM lookups of the whole burst are
    /// issued together so their cache misses overlap. No allocation.
    pub fn classify_bulk(&self, queries: &[Query], out: &mut [Decision]) {
        for (qs, os) in queries.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            self.classify_chunk(qs, os);
        }
    }

    fn classify_chunk(&self, queries: &[Query], out: &mut [Decision]) {
        // Keys laid out [src0, dst0, src1, dst1, ...] per family.
        let mut keys4 = [0u32; 2 * CHUNK];
        let mut keys6 = [0u128; 2 * CHUNK];
        let (mut n4, mut n6) = (0, 0);
        for q in queries {
            match q.addrs {
                IpPair::V4 { src, dst } => {
                    if let Some(k) = keys4.get_mut(n4..n4 + 2) {
                        k.copy_from_slice(&[src, dst]);
                    }
                    n4 += 2;
                }
                IpPair::V6 { src, dst } => {
                    if let Some(k) = keys6.get_mut(n6..n6 + 2) {
                        k.copy_from_slice(&[src, dst]);
                    }
                    n6 += 2;
                }
            }
        }
        let mut classes4 = [0u32; 2 * CHUNK];
        let mut classes6 = [0u32; 2 * CHUNK];
        if let (Some(k), Some(c)) = (keys4.get(..n4), classes4.get_mut(..n4)) {
            self.v4.lpm.lookup_bulk(k, c);
        }
        if let (Some(k), Some(c)) = (keys6.get(..n6), classes6.get_mut(..n6)) {
            self.v6.lpm.lookup_bulk(k, c);
        }
        let (mut i4, mut i6) = (0, 0);
        for (q, o) in queries.iter().zip(out.iter_mut()) {
            let (src_list, dst_list) = match q.addrs {
                IpPair::V4 { .. } => {
                    let cs = classes4.get(i4).copied().unwrap_or(0);
                    let cd = classes4.get(i4 + 1).copied().unwrap_or(0);
                    i4 += 2;
                    (self.v4.src_list(cs), self.v4.dst_list(cd))
                }
                IpPair::V6 { .. } => {
                    let cs = classes6.get(i6).copied().unwrap_or(0);
                    let cd = classes6.get(i6 + 1).copied().unwrap_or(0);
                    i6 += 2;
                    (self.v6.src_list(cs), self.v6.dst_list(cd))
                }
            };
            *o = self.first_match(src_list, dst_list, &Transport::of(q), initial_tls_view(q), &SniHits::NONE);
        }
    }

    /// Walk the four candidate lists ([`CandidateList`]) in evaluation order, merged by rule
    /// id; the first rule whose predicates hold decides.
    fn first_match(
        &self,
        src: &[RuleId],
        dst: &[RuleId],
        transport: &Transport,
        tls: TlsView<'_>,
        sni: &SniHits<'_>,
    ) -> Decision {
        let Transport { protocol, dst_port, unknown } = *transport;
        let (any, hits) = match tls {
            // Rules with ports and TLS rules may match: the DROP ones among them decide.
            _ if unknown => (self.any_address.unknown_transport(), &[][..]),
            TlsView::Unknown => (self.any_address.candidates(protocol, dst_port), &[][..]),
            TlsView::NotTls => (self.any_address_unnamed.candidates(protocol, dst_port), &[][..]),
            // Too many SNI hits for the stack buffer: walk every any-address rule instead.
            TlsView::Hello(_) if sni.overflow => (self.any_address.candidates(protocol, dst_port), &[][..]),
            TlsView::Hello(_) => (self.any_address_unnamed.candidates(protocol, dst_port), sni.ids),
        };
        let lists = [
            (CandidateList::SourceClass, src),
            (CandidateList::DestinationClass, dst),
            (CandidateList::AnyAddress, any),
            (CandidateList::SniHits, hits),
        ];
        // How far each list has been walked.
        let mut heads = [0usize; 4];
        loop {
            // The smallest head of the four lists is the next rule in evaluation order.
            let mut next: Option<(usize, RuleId)> = None;
            for (k, ((_, list), at)) in lists.iter().zip(&heads).enumerate() {
                if let Some(&id) = list.get(*at) {
                    if next.is_none_or(|(_, best)| id < best) {
                        next = Some((k, id));
                    }
                }
            }
            let Some((k, id)) = next else { return Decision::new(self.default_action, None) };
            if let Some(at) = heads.get_mut(k) {
                *at += 1;
            }
            let Some(rule) = self.rules.get(id as usize) else { continue };
            // SNI hits stand in for the any-address named rules only; address-specific ones
            // come (or not) through the class lists.
            let from = lists.get(k).map(|(from, _)| *from);
            if from == Some(CandidateList::SniHits) && !rule.any_address {
                continue;
            }
            if !self.transport_matches(rule, transport) {
                continue;
            }
            if let Some(tls_rule) = rule.tls_index() {
                match tls {
                    // The hello cannot be read: a DROP rule may match, an ALLOW rule does not.
                    _ if unknown => {
                        if !rule.action.denies() {
                            continue;
                        }
                    }
                    TlsView::Unknown => return Decision::pending_at(id),
                    TlsView::NotTls => continue,
                    TlsView::Hello(hello) => {
                        if !self.tls_matches(id, tls_rule, hello, sni) {
                            continue;
                        }
                    }
                }
            }
            return Decision::new(rule.action, Some(id));
        }
    }

    fn tls_matches(&self, id: RuleId, tls: usize, hello: &HelloFacts<'_>, sni: &SniHits<'_>) -> bool {
        let Some(t) = self.tls.get(tls) else { return false };
        let name_ok = t.any_name
            || if sni.overflow {
                // More matching rules than the stack buffer holds: ask the matcher for this rule.
                let mut found = false;
                self.sni.for_each_match(hello.server_name.unwrap_or(""), |r| found |= r == id);
                found
            } else {
                sni.ids.binary_search(&id).is_ok()
            };
        name_ok
            && t.version_below.is_none_or(|v| hello.version < v)
            && (t.ja3.is_empty() || hello.ja3.is_some_and(|j| t.ja3.iter().any(|x| x == j)))
            && (t.ja4.is_empty() || hello.ja4.is_some_and(|j| t.ja4.iter().any(|x| x == j)))
    }

    fn transport_matches(&self, rule: &CompiledRule, transport: &Transport) -> bool {
        if rule.ports_start == rule.ports_end {
            return true;
        }
        let Transport { protocol, dst_port, unknown } = *transport;
        // Unknown ports may be any: a DROP rule could match, an ALLOW rule must not.
        if unknown {
            return rule.action.denies();
        }
        let Some(port) = dst_port else { return false };
        self.port_ranges
            .get(rule.ports_start as usize..rule.ports_end as usize)
            .is_some_and(|ranges| ranges.iter().any(|r| r.contains(protocol, port)))
    }
}

/// The transport part of a query, as `first_match` reads it.
#[derive(Clone, Copy)]
struct Transport {
    protocol: u8,
    dst_port: Option<u16>,
    /// See [`Query::transport_unknown`].
    unknown: bool,
}

impl Transport {
    #[inline(always)]
    fn of(q: &Query) -> Transport {
        Transport { protocol: q.protocol, dst_port: q.dst_port, unknown: q.transport_unknown }
    }
}

/// The lists of rules a connection may match, each sorted by rule id (evaluation order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CandidateList {
    /// Rules whose source CIDRs hold the source address (its LPM class's list).
    SourceClass,
    /// Rules whose destination CIDRs hold the destination address.
    DestinationClass,
    /// Rules for any address, by transport.
    AnyAddress,
    /// Any-address rules whose server names match the hello's SNI.
    SniHits,
}

/// Rules whose server names match a hello's SNI, sorted.
struct SniHits<'a> {
    ids: &'a [RuleId],
    overflow: bool,
}

impl SniHits<'static> {
    const NONE: SniHits<'static> = SniHits { ids: &[], overflow: false };
}

/// How many SNI-matching rules `classify_tls` collects on the stack before asking rules one by one.
const SNI_MATCHES: usize = 128;

/// Before any payload, a TCP connection may still turn out to be TLS, a UDP one QUIC (whose
/// Initials carry a ClientHello); nothing else can.
fn initial_tls_view(q: &Query) -> TlsView<'static> {
    if q.may_carry_tls() {
        TlsView::Unknown
    } else {
        TlsView::NotTls
    }
}
