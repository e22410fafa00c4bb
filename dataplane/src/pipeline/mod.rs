//! Per-packet logic, generic over the packet buffer: parse -> flow -> policy -> verdict.
//!
//! The very same code runs in `dataplane classify` (over a pcap file) and in the DPDK workers
//! (over mbufs). It works on whole bursts: parse all, look all flows up, classify all new
//! connections in one bulk policy lookup, then settle each packet in order.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod flow;
pub mod offline;

use crate::policy::compile::{Decision, Query, RuleId};
use crate::policy::{Action, CompiledPolicy};
use crate::wire::{ip_proto, parse_frame, tcp_flags, Fragment, IpPair, PacketSummary, Parsed};
use flow::{FlowKey, FlowTable, FlowTimeouts, Slot};

/// Most packets handled in one step; longer bursts are processed in chunks.
pub const MAX_BURST: usize = 64;

/// What happens to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The deciding rule; `None` when the default action decided (or the frame is not IP).
    pub rule: Option<RuleId>,
    /// Headers were truncated or inconsistent; the default action applied.
    pub malformed: bool,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict { action: Action::Allow, rule: None, malformed: false }
    }
}

/// Per-worker counters: plain integers written only by their worker, summed elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(64))]
pub struct PipelineCounters {
    pub packets: u64,
    pub allowed: u64,
    pub dropped: u64,
    pub malformed: u64,
    pub non_ip: u64,
    /// Connections classified (new flows and packets classified one by one).
    pub classified: u64,
}

/// Pipeline settings fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    pub flow_capacity: usize,
    pub timeouts: FlowTimeouts,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { flow_capacity: 1 << 16, timeouts: FlowTimeouts::default() }
    }
}

/// One worker's pipeline state.
pub struct Pipeline {
    pub flows: FlowTable,
    pub counters: PipelineCounters,
}

/// How a packet is to be settled after the lookups.
#[derive(Clone, Copy, Default)]
enum Step {
    /// Verdict already known (non-IP, malformed).
    #[default]
    Done,
    /// A TCP/UDP packet with ports: belongs to a flow.
    Flow { key: FlowKey, hash: u32, forward: bool, flags: u8 },
    /// Classified on its own by addresses (ICMP, other protocols, non-first fragments).
    Single,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline { flows: FlowTable::new(config.flow_capacity, config.timeouts), counters: PipelineCounters::default() }
    }

    /// Decide every packet of a burst. `verdicts[i]` is written for `packets[i]`.
    pub fn process_burst<P: AsRef<[u8]>>(
        &mut self,
        policy: &CompiledPolicy,
        packets: &[P],
        now_ms: u64,
        verdicts: &mut [Verdict],
    ) {
        for (ps, vs) in packets.chunks(MAX_BURST).zip(verdicts.chunks_mut(MAX_BURST)) {
            self.process_chunk(policy, ps, now_ms, vs);
        }
    }

    fn process_chunk<P: AsRef<[u8]>>(
        &mut self,
        policy: &CompiledPolicy,
        packets: &[P],
        now_ms: u64,
        verdicts: &mut [Verdict],
    ) {
        let default = policy.default_action();
        let generation = policy.generation();
        let mut steps = [Step::Done; MAX_BURST];
        let mut summaries = [None::<PacketSummary>; MAX_BURST];
        let mut flow_keys = [(FlowKey::default(), 0u32); MAX_BURST];
        let mut flow_of = [usize::MAX; MAX_BURST];
        let mut n_flows = 0;

        // 1. Parse.
        for (i, (pkt, v)) in packets.iter().zip(verdicts.iter_mut()).enumerate() {
            self.counters.packets += 1;
            let (Some(step), Some(summary)) = (steps.get_mut(i), summaries.get_mut(i)) else { break };
            *v = Verdict::default();
            match parse_frame(pkt.as_ref()) {
                Err(_) => {
                    self.counters.malformed += 1;
                    *v = Verdict { action: default, rule: None, malformed: true };
                }
                Ok(Parsed::NonIp { .. }) => self.counters.non_ip += 1,
                Ok(Parsed::Ip(p)) => {
                    *summary = Some(p);
                    let flowed = p.has_ports
                        && matches!(p.protocol, ip_proto::TCP | ip_proto::UDP)
                        && p.fragment != Fragment::NonFirst;
                    if flowed {
                        let (key, forward) = FlowKey::of(&p);
                        let hash = key.hash();
                        if let (Some(k), Some(f)) = (flow_keys.get_mut(n_flows), flow_of.get_mut(i)) {
                            *k = (key, hash);
                            *f = n_flows;
                        }
                        n_flows += 1;
                        *step = Step::Flow { key, hash, forward, flags: p.tcp_flags };
                    } else {
                        *step = Step::Single;
                    }
                }
            }
        }

        // 2. Look every flow up at once.
        let mut slots = [None::<Slot>; MAX_BURST];
        if let (Some(keys), Some(out)) = (flow_keys.get(..n_flows), slots.get_mut(..n_flows)) {
            self.flows.lookup_burst(keys, now_ms, out);
        }

        // 3. Gather what needs the policy: new flows, flows decided by an older policy, singles.
        let mut queries = [Query { addrs: IpPair::V4 { src: 0, dst: 0 }, protocol: 0, dst_port: None }; MAX_BURST];
        let mut query_of = [usize::MAX; MAX_BURST];
        let mut n_queries = 0;
        for i in 0..packets.len().min(MAX_BURST) {
            let (Some(step), Some(Some(p))) = (steps.get(i), summaries.get(i)) else { continue };
            let query = match *step {
                Step::Done => continue,
                Step::Single => Query { addrs: p.addrs, protocol: p.protocol, dst_port: None },
                Step::Flow { forward, .. } => {
                    let slot = flow_of.get(i).and_then(|&f| slots.get(f)).copied().flatten();
                    let entry = slot.and_then(|s| self.flows.entry_mut(s));
                    match entry {
                        Some(e) if e.generation == generation => continue,
                        // An older policy decided: re-ask from the recorded initiator's side.
                        Some(e) => initiator_query(p, forward == e.initiator_is_lo),
                        None => initiator_query(p, !is_syn_ack(p)),
                    }
                }
            };
            if let (Some(q), Some(qi)) = (queries.get_mut(n_queries), query_of.get_mut(i)) {
                *q = query;
                *qi = n_queries;
            }
            n_queries += 1;
        }
        let mut decisions = [Decision::new(default, None); MAX_BURST];
        if let (Some(q), Some(d)) = (queries.get(..n_queries), decisions.get_mut(..n_queries)) {
            if !q.is_empty() {
                policy.classify_bulk(q, d);
                self.counters.classified += q.len() as u64;
            }
        }

        // 4. Settle each packet in order (a flow created earlier in this burst is found here).
        for (i, v) in verdicts.iter_mut().enumerate().take(packets.len().min(MAX_BURST)) {
            let step = steps.get(i).copied().unwrap_or_default();
            let decided = query_of.get(i).and_then(|&q| decisions.get(q)).copied();
            match step {
                Step::Done => {}
                Step::Single => {
                    let d = decided.unwrap_or(Decision::new(default, None));
                    *v = Verdict { action: d.action, rule: d.rule(), malformed: false };
                }
                Step::Flow { key, hash, forward, flags } => {
                    let Some(p) = summaries.get(i).copied().flatten() else { continue };
                    let (slot, fresh) = match self.flows.lookup(&key, hash, now_ms) {
                        Some(s) => (s, false),
                        None => (self.flows.insert(key, hash, forward != is_syn_ack(&p), now_ms), true),
                    };
                    if let Some(e) = self.flows.entry_mut(slot) {
                        if fresh || e.generation != generation {
                            // `decided` is missing only if the entry vanished since step 2
                            // (evicted by a flow created in this burst): ask again, alone.
                            let d = decided
                                .unwrap_or_else(|| policy.classify(&initiator_query(&p, forward == e.initiator_is_lo)));
                            e.set_decision(d, generation);
                        }
                        e.observe(forward, flags, p.protocol, now_ms);
                        let d = e.decision();
                        *v = Verdict { action: d.action, rule: d.rule(), malformed: false };
                    }
                }
            }
            match v.action {
                Action::Allow => self.counters.allowed += 1,
                Action::Drop => self.counters.dropped += 1,
            }
        }
    }
}

/// A SYN-ACK's sender is the responder: the initiator is its destination.
fn is_syn_ack(p: &PacketSummary) -> bool {
    let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
    p.protocol == ip_proto::TCP && p.tcp_flags & syn_ack == syn_ack
}

/// The query for a connection, seen from its initiator: `sender_is_initiator` tells whether
/// this packet was sent by the initiator.
fn initiator_query(p: &PacketSummary, sender_is_initiator: bool) -> Query {
    if sender_is_initiator {
        Query { addrs: p.addrs, protocol: p.protocol, dst_port: Some(p.dst_port) }
    } else {
        let addrs = match p.addrs {
            IpPair::V4 { src, dst } => IpPair::V4 { src: dst, dst: src },
            IpPair::V6 { src, dst } => IpPair::V6 { src: dst, dst: src },
        };
        Query { addrs, protocol: p.protocol, dst_port: Some(p.src_port) }
    }
}

#[cfg(test)]
mod tests;
