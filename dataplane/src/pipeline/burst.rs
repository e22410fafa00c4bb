//! The per-chunk context ([`Burst`]) and the first two steps of a chunk: parse (with the
//! flow-table buckets prefetched and probed as the hashes become known) and resolve (the
//! leading run of known flows settled as it is looked up, the other lookups finished, what the
//! current policy has not decided classified in one bulk lookup). Step 3, settle, is in
//! `settle.rs`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::flow::{Candidates, FlowKey, FlowTable, Slot};
use super::settle::{settle_run, EntryFrom};
use super::{initiator_query, is_syn_ack, Hints, MalformedAction, Pipeline, Verdict, MAX_BURST};
use crate::counters::Counter;
use crate::policy::decision::{Decision, Query};
use crate::policy::{Action, CompiledPolicy};
use crate::wire::{ip_proto, parse_common, parse_general_into, Fragment, IpPair, MalformedCause, PacketSummary};

/// Flows parsed between prefetching a flow's bucket and probing it (long enough for the
/// line to arrive from memory, short enough to stay in cache).
const PROBE_DISTANCE: usize = 8;

/// One chunk of a burst on its way through the steps, after VPP's per-frame node data: what
/// the caller gave (policy, packets, where the verdicts go, the clock, observer and hints),
/// the arrays the steps fill for each other, and what each step found.
pub(super) struct Burst<'a, P, O, H> {
    pub policy: &'a CompiledPolicy,
    pub packets: &'a [P],
    /// `verdicts[i]` is packet `i`'s; written by parse (`Done` packets) or settle.
    pub verdicts: &'a mut [Verdict],
    pub now_ms: u64,
    /// Where the chunk's first packet is in the caller's burst (for the observer).
    pub base: usize,
    pub observer: &'a mut O,
    pub hint: H,
    pub arrays: &'a mut StageArrays,
    /// Parse: the chunk's flows (the first `n_flows` of `arrays.flows`).
    pub n_flows: usize,
    /// Parse (singles) and resolve (flows): what needed the policy.
    pub asking: Asking,
    /// Resolve: the chunk's first packets, settled already (see [`Pipeline::resolve_chunk`]),
    /// and the policy drops among them.
    pub settled: usize,
    pub settled_drops: u64,
}

/// What the steps of a chunk hand to each other. Entry `i` of `steps`, `summaries` and
/// `decided` is packet `i`'s; entry `f` of `flows` the chunk's flow `f`'s.
pub(super) struct StageArrays {
    pub steps: [Step; MAX_BURST],
    /// Valid where `steps` is not `Done`, but for the packets `unsummarized` marks: read
    /// through [`StageArrays::summary`].
    summaries: [PacketSummary; MAX_BURST],
    /// Bit `i`: packet `i` is a common frame whose summary parse did not store (a packet of a
    /// known flow needs only its key); [`StageArrays::summary`] parses it again when asked.
    unsummarized: u64,
    /// Valid where `Asking::packet` marks the packet.
    pub decided: [Option<Decision>; MAX_BURST],
    /// The chunk's flows in packet order.
    pub flows: [ChunkFlow; MAX_BURST],
}

impl StageArrays {
    pub fn new() -> Box<StageArrays> {
        Box::new(StageArrays {
            steps: [Step::Done; MAX_BURST],
            summaries: [PacketSummary::EMPTY; MAX_BURST],
            unsummarized: 0,
            decided: [None; MAX_BURST],
            flows: [ChunkFlow::default(); MAX_BURST],
        })
    }

    /// The summary of packet `i`, whose frame is `frame`: parsed again (the straight path) if
    /// parse did not store it. Only packets that leave the path of known flows ask.
    pub fn summary(&mut self, i: usize, frame: &[u8]) -> Option<&PacketSummary> {
        let summary = self.summaries.get_mut(i)?;
        let bit = 1u64 << i;
        if self.unsummarized & bit != 0 {
            self.unsummarized &= !bit;
            // A common frame: the straight path gives its summary again.
            *summary = parse_common(frame)?;
        }
        Some(summary)
    }
}

/// One flow of a chunk, through the staged lookup: one record of one cache line, so that
/// the lookup loop walks one array.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
pub(super) struct ChunkFlow {
    pub key: FlowKey,
    pub hash: u32,
    /// Ways of its buckets whose signature matches (see [`super::flow::FlowTable::probe`]).
    pub candidates: Candidates,
    /// The live entry the lookup found.
    pub slot: Option<Slot>,
}

/// How a packet is to be settled after the lookups. An explicit tag byte: telling a `Flow`
/// from the rest is then one comparison (with the tag folded into `forward`'s spare values,
/// the test of every packet took eight instructions).
#[derive(Clone, Copy, Default)]
#[repr(u8)]
pub(super) enum Step {
    /// Verdict already given by parse (non-IP, link or IP header broken).
    #[default]
    Done,
    /// A TCP/UDP packet with ports: belongs to the chunk's flow `flow` (an index into
    /// `StageArrays::flows`), sent in the key's `forward` direction, with these TCP flags.
    Flow { flow: u8, forward: bool, flags: u8 },
    /// Classified on its own by addresses (ICMP, other protocols, non-first fragments), or
    /// with its transport unknown when `malformed` says why it could not be read.
    Single { malformed: Option<MalformedCause> },
}

/// What of a chunk needs the policy: its singles, and its flows not found or decided by an
/// older policy. A chunk of known flows (the usual case) builds no query at all.
#[derive(Clone, Copy, Default)]
pub(super) struct Asking {
    /// Bit `i`: packet `i`, a single.
    singles: u64,
    /// Bit `f`: the chunk's flow `f`.
    stale_flows: u64,
}

impl Asking {
    fn any(self) -> bool {
        self.singles | self.stale_flows != 0
    }

    /// Whether flow `flow` was not found or decided by an older policy.
    pub fn flow(self, flow: u8) -> bool {
        self.stale_flows & (1 << flow) != 0
    }

    /// Whether packet `i`, to be settled as `step`, has a decision in `StageArrays::decided`.
    pub fn packet(self, i: usize, step: Step) -> bool {
        match step {
            Step::Done => false,
            Step::Single { .. } => self.singles & (1 << i) != 0,
            Step::Flow { flow, .. } => self.flow(flow),
        }
    }
}

impl Pipeline {
    /// 1. Parse; each flow's bucket is prefetched as soon as its hash is known, and probed
    ///    (its entry prefetched) `PROBE_DISTANCE` flows later. Sets the chunk's flows and
    ///    singles (packets whose transport could not be read among them); gives non-IP
    ///    frames and frames whose link or IP header is broken their verdict.
    #[inline(never)]
    pub(super) fn parse_chunk<P: AsRef<[u8]>, O, H: Hints>(&mut self, b: &mut Burst<'_, P, O, H>) {
        let Burst { policy, packets, verdicts, hint, arrays, .. } = b;
        let StageArrays { steps, summaries, flows, .. } = &mut **arrays;
        let broken = match self.malformed {
            MalformedAction::Drop => Action::Drop,
            MalformedAction::Default => policy.default_action(),
        };
        let mut n_flows = 0;
        let mut singles = 0u64;
        // Bit `i`: packet `i` took the general walk, its summary stored (the others are
        // common frames whose summary was not: counted on the slow path, so that the common
        // path carries one mask less).
        let mut walked = 0u64;
        let (mut malformed, mut dropped_malformed, mut non_ip) = (0, 0, 0);
        // Bit `i`: packet `i` did not parse / is a fragment (see `fragments.rs`, after the loop).
        let (mut unparsed, mut fragments) = (0u64, 0u64);
        let parsing = packets.iter().zip(verdicts.iter_mut()).zip(steps.iter_mut().zip(summaries.iter_mut()));
        for (i, ((pkt, v), (step, summary))) in parsing.enumerate() {
            // The common frame (a TCP or UDP flow, not a fragment) skips the checks below, and
            // its summary is not stored: a packet of a known flow needs only its key.
            let frame = pkt.as_ref();
            let flow = if let Some(s) = parse_common(frame) {
                Some((self.flows.key_of(&s), s.tcp_flags))
            } else {
                walked |= 1 << i;
                let flowed = match parse_general_into(frame, summary) {
                    // Each arm writes the step of a packet that is not a flow (a flow's is
                    // written below); verdicts of packets not `Done` are written by settle.
                    Err(m) => {
                        unparsed |= 1 << i;
                        let cause = m.cause();
                        malformed += 1;
                        self.counters.add(Counter::malformed(cause), 1);
                        if cause.addresses_known() {
                            // The summary holds the addresses: classified with the transport unknown.
                            *step = Step::Single { malformed: Some(cause) };
                            singles |= 1 << i;
                        } else {
                            dropped_malformed += u64::from(broken == Action::Drop);
                            *step = Step::Done;
                            *v = Verdict::new(broken, None, Some(cause));
                        }
                        false
                    }
                    Ok(Some(_)) => {
                        non_ip += 1;
                        *step = Step::Done;
                        *v = Verdict::default();
                        false
                    }
                    Ok(None) => {
                        let p = &*summary;
                        fragments |= u64::from(p.fragment != Fragment::None) << i;
                        let flowed = p.has_ports
                            && matches!(p.protocol, ip_proto::TCP | ip_proto::UDP)
                            && p.fragment != Fragment::NonFirst;
                        if !flowed {
                            *step = Step::Single { malformed: None };
                            singles |= 1 << i;
                        }
                        flowed
                    }
                };
                flowed.then(|| (self.flows.key_of(summary), summary.tcp_flags))
            };
            if let Some(((key, forward, hash), flags)) = flow {
                self.flows.prefetch_bucket(hash, *hint);
                if let Some(f) = flows.get_mut(n_flows) {
                    f.key = key;
                    f.hash = hash;
                }
                if let Some(f) = n_flows.checked_sub(PROBE_DISTANCE).and_then(|e| flows.get_mut(e)) {
                    f.candidates = self.flows.probe(f.hash, *hint);
                }
                *step = Step::Flow { flow: n_flows as u8, forward, flags };
                n_flows += 1;
            }
        }
        if unparsed | fragments != 0 {
            let (claimed, claimed_drops) =
                self.claim_fragments(packets, steps, verdicts, unparsed, fragments, &mut singles);
            malformed -= claimed;
            dropped_malformed -= claimed_drops;
        }
        self.counters.add(Counter::Malformed, malformed);
        self.counters.add(Counter::DropMalformed, dropped_malformed);
        self.counters.add(Counter::NonIp, non_ip);
        arrays.unsummarized = !walked;
        b.n_flows = n_flows;
        b.asking = Asking { singles, stale_flows: 0 };
    }

    /// The fragments of the chunk (`fragments`), and the frames that did not parse
    /// (`unparsed`) that are fragments refused for their own sake (a tiny first fragment...),
    /// are handed to the fragment table: but for sound first fragments, which go on like any
    /// packet, they are settled with their datagram after settle. Returns how many of the
    /// unparsed ones were fragments, and how many of those parse counted as dropped.
    #[cold]
    #[inline(never)]
    fn claim_fragments<P: AsRef<[u8]>>(
        &mut self,
        packets: &[P],
        steps: &mut [Step],
        verdicts: &mut [Verdict],
        unparsed: u64,
        fragments: u64,
        singles: &mut u64,
    ) -> (u64, u64) {
        let (mut claimed, mut claimed_drops) = (0, 0);
        for (i, (pkt, (step, v))) in packets.iter().zip(steps.iter_mut().zip(verdicts.iter_mut())).enumerate() {
            let bit = 1u64 << i;
            if (unparsed | fragments) & bit == 0 {
                continue;
            }
            let parsed = fragments & bit != 0;
            match self.fragments.claim(i, pkt.as_ref(), parsed) {
                // A sound first fragment (or no fragment after all): as parse left it.
                Some(true) | None => {}
                Some(false) => {
                    if !parsed {
                        // Counted by parse as malformed (with its cause): the fragment table
                        // counts it now, by its own cause.
                        claimed += 1;
                        let cause = match *step {
                            Step::Done => {
                                claimed_drops += u64::from(v.action == Action::Drop);
                                v.malformed
                            }
                            Step::Single { malformed } => malformed,
                            Step::Flow { .. } => None,
                        };
                        if let Some(c) = cause {
                            self.counters.sub(Counter::malformed(c), 1);
                        }
                    }
                    // Settled with its datagram; a non-first fragment was a single.
                    *step = Step::Done;
                    *singles &= !bit;
                    *v = Verdict::default();
                }
            }
        }
        (claimed, claimed_drops)
    }

    /// 2. Probe the last flows; settle the chunk's first packets while their flows are found
    ///    at their lowest candidate, decided by the current policy and await nothing (the
    ///    usual chunk ends here); resolve the other lookups (the entries are in cache by now)
    ///    and mark the flows the current policy has not decided; classify what is marked.
    ///
    ///    Settling the known flows here, before the rest of the chunk is resolved and
    ///    classified, reads each entry once: the order does not change what they decide, as
    ///    the run settles only found flows that need nothing else, and settling one changes
    ///    neither whether a later lookup finds its flow (the entry is seen now, so not expired)
    ///    nor what the policy answers.
    #[inline(never)]
    pub(super) fn resolve_chunk<P: AsRef<[u8]>, O, H: Hints>(&mut self, b: &mut Burst<'_, P, O, H>) {
        let Burst { policy, packets, verdicts, now_ms, hint, arrays, n_flows, asking, settled, settled_drops, .. } = b;
        let (now_ms, generation) = (*now_ms, policy.generation());
        let flows = arrays.flows.get_mut(..*n_flows).unwrap_or_default();
        probe_last(&self.flows, flows, *hint);
        let from = EntryFrom::Lowest { generation };
        let flows_done;
        (*settled, flows_done, *settled_drops) = settle_run(&mut self.flows, arrays, from, now_ms, verdicts, 0);
        let flows = arrays.flows.get_mut(flows_done..*n_flows).unwrap_or_default();
        asking.stale_flows = resolve_flows(&self.flows, flows, now_ms, generation) << flows_done;
        if asking.any() {
            self.classify_marked(policy, packets, *asking, arrays);
        }
    }

    /// Classify, in one bulk policy lookup, the packets `asking` marks, each from its
    /// connection's initiator side; `decided[i]` gets packet `i`'s decision.
    #[inline(never)]
    fn classify_marked<P: AsRef<[u8]>>(
        &mut self,
        policy: &CompiledPolicy,
        packets: &[P],
        asking: Asking,
        arrays: &mut StageArrays,
    ) {
        let mut queries = [Query::new(IpPair::V4 { src: 0, dst: 0 }, 0, None); MAX_BURST];
        let mut packet_of = [0usize; MAX_BURST];
        let mut n = 0;
        for (i, pkt) in packets.iter().enumerate() {
            let Some(&step) = arrays.steps.get(i) else { break };
            if !asking.packet(i, step) {
                continue;
            }
            let Some(&p) = arrays.summary(i, pkt.as_ref()) else { continue };
            let p = &p;
            let query = match step {
                Step::Done => continue,
                Step::Single { malformed } => {
                    Query { transport_unknown: malformed.is_some(), ..Query::new(p.addrs, p.protocol, None) }
                }
                Step::Flow { flow, forward, .. } => {
                    let slot = arrays.flows.get(usize::from(flow)).and_then(|f| f.slot);
                    match slot.and_then(|s| self.flows.entry_mut(s)) {
                        // An older policy decided: re-ask from the recorded initiator's side.
                        Some(e) => initiator_query(p, forward == e.initiator_is_lo()),
                        None => initiator_query(p, !is_syn_ack(p)),
                    }
                }
            };
            if let (Some(q), Some(at)) = (queries.get_mut(n), packet_of.get_mut(n)) {
                *q = query;
                *at = i;
            }
            n += 1;
        }
        let mut decisions = [Decision::new(policy.default_action(), None); MAX_BURST];
        if let (Some(q), Some(d)) = (queries.get(..n), decisions.get_mut(..n)) {
            policy.classify_bulk(q, d);
            self.counters.add(Counter::Classified, q.len() as u64);
        }
        for (&i, &d) in packet_of.iter().zip(decisions.iter()).take(n) {
            if let Some(slot) = arrays.decided.get_mut(i) {
                *slot = Some(d);
            }
        }
    }
}

/// The probes of the last `PROBE_DISTANCE` flows, which parse did not reach.
#[inline(always)]
fn probe_last(table: &FlowTable, flows: &mut [ChunkFlow], hint: impl Hints) {
    let first_unprobed = flows.len().saturating_sub(PROBE_DISTANCE);
    for f in flows.iter_mut().skip(first_unprobed) {
        f.candidates = table.probe(f.hash, hint);
    }
}

/// The lookups of `flows` (probed). Returns the flows not found or decided by an older policy
/// (bit `f`: `flows[f]`). Its own function so that the compiler knows `flows` and `table`
/// apart (no reloads).
#[inline(always)]
fn resolve_flows(table: &FlowTable, flows: &mut [ChunkFlow], now_ms: u64, generation: u64) -> u64 {
    let mut stale_flows = 0;
    for (i, f) in flows.iter_mut().enumerate() {
        let (slot, current) = table.resolve(&f.key, f.hash, f.candidates, now_ms, generation);
        f.slot = slot;
        stale_flows |= u64::from(!current) << i;
    }
    stale_flows
}

#[cfg(test)]
mod layout {
    #[test]
    fn a_chunk_flow_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<super::ChunkFlow>(), 64);
    }
}
