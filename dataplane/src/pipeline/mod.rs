//! Per-packet logic, generic over the packet buffer: parse -> flow -> policy -> verdict.
//!
//! The very same code runs in `dataplane classify` (over a pcap file) and in the DPDK workers
//! (over mbufs). It works on whole bursts: parse all, look all flows up, classify all new
//! connections in one bulk policy lookup, then settle each packet in order.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod flow;
mod huge_array;
pub mod offline;
mod settle;

use crate::policy::compile::{Decision, Query, RuleId};
use crate::policy::{Action, CompiledPolicy};
use crate::tls::{ClientHello, HelloBufferPool};
use crate::wire::{ip_proto, parse_frame_into, tcp_flags, Fragment, IpPair, PacketSummary};
use flow::{Candidates, FlowKey, FlowTable, FlowTimeouts, Slot};

/// Most packets handled in one step; longer bursts are processed in chunks.
pub const MAX_BURST: usize = 32;
const _: () = assert!(MAX_BURST <= 64, "a chunk's packets are marked in a u64");

/// Flows parsed between prefetching a flow's bucket and probing it (long enough for the
/// line to arrive from memory, short enough to stay in cache).
const PROBE_DISTANCE: usize = 8;

/// What happens to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The deciding rule; `None` when the default action decided (or the frame is not IP).
    pub rule: Option<RuleId>,
    /// Headers were truncated or inconsistent; the default action applied.
    pub malformed: bool,
}

impl Verdict {
    /// The verdict of a well-formed packet that `d` decided.
    fn of(d: Decision) -> Verdict {
        Verdict { action: d.action, rule: d.rule(), malformed: false }
    }
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
    /// Of `dropped`: malformed packets (dropped when the default action is DROP); the rest
    /// were dropped by policy.
    pub dropped_malformed: u64,
    pub malformed: u64,
    pub non_ip: u64,
    /// Connections classified (new flows and packets classified one by one).
    pub classified: u64,
    /// Connections that waited for a ClientHello, and how their wait ended.
    pub tls_pending: u64,
    pub tls_decided: u64,
    pub tls_not_tls: u64,
    /// Hellos that could not be inspected (invalid, over the bound, no buffer): `tls_fail` applied.
    pub tls_failed: u64,
}

/// What to do with a connection whose ClientHello cannot be inspected (malformed, larger than
/// the per-flow bound, or no reassembly buffer free).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsFail {
    /// Decide the connection as if it were not TLS (TLS rules do not match).
    #[default]
    Open,
    /// Drop the connection.
    Closed,
}

/// Sees each ClientHello the moment it completes (for `classify --json`); workers use `()`.
pub trait HelloObserver {
    /// `packet` indexes the burst given to [`Pipeline::process_burst_observed`].
    fn hello(&mut self, packet: usize, hello: &ClientHello<'_>);
}

impl HelloObserver for () {
    #[inline(always)]
    fn hello(&mut self, _: usize, _: &ClientHello<'_>) {}
}

/// What the caller lends the fast path: cache prefetches, and marks at the end of each step
/// of the work on a burst (read by `dataplane bench --phases`). The pipeline does not touch
/// DPDK (or `unsafe`): the worker passes DPDK's prefetch and, when asked, a TSC reading at
/// each mark; offline tools pass `()` (no hint, no mark).
pub trait Hints: Copy {
    /// Hints the memory system to load the cache line at `p` soon.
    fn prefetch<T>(self, p: *const T);

    /// A step of the work on a burst starts now.
    #[inline(always)]
    fn phase_start(self) {}

    /// `phase` (which began at the last mark) ends now.
    #[inline(always)]
    fn phase_done(self, _phase: Phase) {}
}

impl Hints for () {
    #[inline(always)]
    fn prefetch<T>(self, _: *const T) {}
}

/// The steps of a worker's work on a burst, in order. The pipeline marks the end of
/// `Parse`, `Resolve` and `Settle`; the worker those of `Receive` and `Transmit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The RX (or ring) burst.
    Receive,
    /// Headers parsed, flow keys hashed, buckets prefetched and probed.
    Parse,
    /// Flow lookups resolved, connections not decided by the current policy classified.
    Resolve,
    /// Each packet settled in order (flows created, ClientHellos fed, verdicts).
    Settle,
    /// Counting, the TX burst and the frees.
    Transmit,
}

impl Phase {
    pub const ALL: [Phase; 5] = [Phase::Receive, Phase::Parse, Phase::Resolve, Phase::Settle, Phase::Transmit];
}

/// Pipeline settings fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    pub flow_capacity: usize,
    pub timeouts: FlowTimeouts,
    /// ClientHello reassembly buffers (16 KB each), preallocated per worker.
    pub hello_buffers: usize,
    pub tls_fail: TlsFail,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flow_capacity: 1 << 16,
            timeouts: FlowTimeouts::default(),
            hello_buffers: 256,
            tls_fail: TlsFail::Open,
        }
    }
}

/// One worker's pipeline state.
pub struct Pipeline {
    pub flows: FlowTable,
    pub hellos: HelloBufferPool,
    pub counters: PipelineCounters,
    tls_fail: TlsFail,
    /// Whether a flow was created since the chunk's lookups (which may then be stale).
    inserted_in_chunk: bool,
    /// The per-chunk arrays, kept between bursts so that no chunk pays for clearing them
    /// (each entry is written before it is read). Taken while a burst is processed.
    chunk: Option<Box<Chunk>>,
}

/// What a chunk knows of its packets between the steps. Entry `i` of `steps`, `summaries`
/// and `decided` is packet `i`'s; entry `f` of the others the chunk's flow `f`'s.
struct Chunk {
    steps: [Step; MAX_BURST],
    /// Valid where `steps` is not `Done`.
    summaries: [PacketSummary; MAX_BURST],
    /// Valid where `Asking::packet` marks the packet.
    decided: [Option<Decision>; MAX_BURST],
    /// The chunk's flows in packet order.
    flows: [ChunkFlow; MAX_BURST],
}

/// One flow of a chunk, through the staged lookup: one record of one cache line, so that
/// the lookup loop walks one array.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct ChunkFlow {
    key: FlowKey,
    hash: u32,
    /// Ways of its buckets whose signature matches (see [`FlowTable::probe`]).
    candidates: Candidates,
    /// The live entry found.
    slot: Option<Slot>,
}

impl Chunk {
    fn new() -> Box<Chunk> {
        Box::new(Chunk {
            steps: [Step::Done; MAX_BURST],
            summaries: [PacketSummary::EMPTY; MAX_BURST],
            decided: [None; MAX_BURST],
            flows: [ChunkFlow::default(); MAX_BURST],
        })
    }
}

/// How a packet is to be settled after the lookups.
#[derive(Clone, Copy, Default)]
enum Step {
    /// Verdict already known (non-IP, malformed).
    #[default]
    Done,
    /// A TCP/UDP packet with ports: belongs to the chunk's flow `flow` (an index into the
    /// chunk's flow arrays).
    Flow { flow: u8, forward: bool, flags: u8 },
    /// Classified on its own by addresses (ICMP, other protocols, non-first fragments).
    Single,
}

/// What of a chunk needs the policy: its singles, and its flows not found or decided by an
/// older policy. A chunk of known flows (the usual case) builds no query at all.
#[derive(Clone, Copy, Default)]
struct Asking {
    /// Bit `i`: packet `i`, a single.
    singles: u64,
    /// Bit `f`: the chunk's flow `f`.
    stale_flows: u64,
}

impl Asking {
    fn any(self) -> bool {
        self.singles | self.stale_flows != 0
    }

    fn flow(self, flow: u8) -> bool {
        self.stale_flows & (1 << flow) != 0
    }

    /// Whether packet `i`, to be settled as `step`, needs the policy.
    fn packet(self, i: usize, step: Step) -> bool {
        match step {
            Step::Done => false,
            Step::Single => self.singles & (1 << i) != 0,
            Step::Flow { flow, .. } => self.flow(flow),
        }
    }
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline::with_memory_advice(config, &|_, _| {})
    }

    /// [`Pipeline::new`], with `advise` called on the flow table's memory before it is
    /// touched (see [`FlowTable::with_memory_advice`]).
    pub fn with_memory_advice(config: PipelineConfig, advise: &dyn Fn(*const u8, usize)) -> Pipeline {
        Pipeline {
            flows: FlowTable::with_memory_advice(config.flow_capacity, config.timeouts, advise),
            hellos: HelloBufferPool::new(config.hello_buffers),
            counters: PipelineCounters::default(),
            tls_fail: config.tls_fail,
            inserted_in_chunk: false,
            chunk: Some(Chunk::new()),
        }
    }

    /// Decide every packet of a burst. `verdicts[i]` is written for `packets[i]`.
    pub fn process_burst<P: AsRef<[u8]>>(
        &mut self,
        policy: &CompiledPolicy,
        packets: &[P],
        now_ms: u64,
        verdicts: &mut [Verdict],
    ) {
        self.process_burst_with(policy, packets, now_ms, verdicts, &mut (), ());
    }

    /// [`Pipeline::process_burst`], showing each completed ClientHello to `observer`.
    pub fn process_burst_observed<P: AsRef<[u8]>, O: HelloObserver>(
        &mut self,
        policy: &CompiledPolicy,
        packets: &[P],
        now_ms: u64,
        verdicts: &mut [Verdict],
        observer: &mut O,
    ) {
        self.process_burst_with(policy, packets, now_ms, verdicts, observer, ());
    }

    /// The general form: `observer` sees each completed ClientHello, `hint` prefetches
    /// flow-table lines and hears the end of each step (see [`Hints`]; `()` does nothing).
    pub fn process_burst_with<P: AsRef<[u8]>, O: HelloObserver, H: Hints>(
        &mut self,
        policy: &CompiledPolicy,
        packets: &[P],
        now_ms: u64,
        verdicts: &mut [Verdict],
        observer: &mut O,
        hint: H,
    ) {
        // Always there: only this function takes it, and it puts it back.
        let mut chunk = self.chunk.take().unwrap_or_else(Chunk::new);
        for (n, (ps, vs)) in packets.chunks(MAX_BURST).zip(verdicts.chunks_mut(MAX_BURST)).enumerate() {
            self.process_chunk(&mut chunk, policy, ps, now_ms, vs, n * MAX_BURST, observer, hint);
        }
        self.chunk = Some(chunk);
        // Buffers of flows dropped by the table go back to the pool, off the per-packet path.
        let hellos = &mut self.hellos;
        self.flows.drain_displaced(|h| h.release(hellos));
    }

    /// One chunk (at most `MAX_BURST` packets), in three steps. Each step is its own
    /// function: one loop each, so that the compiler allocates registers per loop (as one
    /// function, the three loops spilled to the stack at every flow).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn process_chunk<P: AsRef<[u8]>, O: HelloObserver, H: Hints>(
        &mut self,
        chunk: &mut Chunk,
        policy: &CompiledPolicy,
        packets: &[P],
        now_ms: u64,
        verdicts: &mut [Verdict],
        base: usize,
        observer: &mut O,
        hint: H,
    ) {
        self.counters.packets += packets.len().min(MAX_BURST) as u64;
        let (n_flows, singles) = self.parse_chunk(chunk, policy.default_action(), packets, verdicts, hint);
        hint.phase_done(Phase::Parse);
        let asking = self.resolve_chunk(chunk, policy, n_flows, singles, now_ms, hint);
        hint.phase_done(Phase::Resolve);
        self.settle_chunk(chunk, policy, packets, verdicts, asking, now_ms, base, observer);
        hint.phase_done(Phase::Settle);
    }

    /// 1. Parse; each flow's bucket is prefetched as soon as its hash is known, and probed
    ///    (its entry prefetched) `PROBE_DISTANCE` flows later. Returns the chunk's number of
    ///    flows and its singles (bit `i`: packet `i`).
    #[inline(never)]
    fn parse_chunk<P: AsRef<[u8]>, H: Hints>(
        &mut self,
        chunk: &mut Chunk,
        default: Action,
        packets: &[P],
        verdicts: &mut [Verdict],
        hint: H,
    ) -> (usize, u64) {
        let Chunk { steps, summaries, flows, .. } = chunk;
        let mut n_flows = 0;
        let mut singles = 0u64;
        let (mut malformed, mut dropped_malformed, mut non_ip) = (0, 0, 0);
        let parsing = packets.iter().zip(verdicts.iter_mut()).zip(steps.iter_mut().zip(summaries.iter_mut()));
        for (i, ((pkt, v), (step, summary))) in parsing.enumerate() {
            // Each arm writes the step; verdicts of packets not `Done` are written by settle.
            match parse_frame_into(pkt.as_ref(), summary) {
                Err(_) => {
                    malformed += 1;
                    dropped_malformed += u64::from(default == Action::Drop);
                    *step = Step::Done;
                    *v = Verdict { action: default, rule: None, malformed: true };
                }
                Ok(Some(_)) => {
                    non_ip += 1;
                    *step = Step::Done;
                    *v = Verdict::default();
                }
                Ok(None) => {
                    let p = &*summary;
                    let flowed = p.has_ports
                        && matches!(p.protocol, ip_proto::TCP | ip_proto::UDP)
                        && p.fragment != Fragment::NonFirst;
                    if flowed {
                        let (key, forward) = FlowKey::of(p);
                        let hash = key.hash();
                        self.flows.prefetch_bucket(hash, hint);
                        if let Some(f) = flows.get_mut(n_flows) {
                            f.key = key;
                            f.hash = hash;
                        }
                        if let Some(f) = n_flows.checked_sub(PROBE_DISTANCE).and_then(|e| flows.get_mut(e)) {
                            f.candidates = self.flows.probe(f.hash, hint);
                        }
                        *step = Step::Flow { flow: n_flows as u8, forward, flags: p.tcp_flags };
                        n_flows += 1;
                    } else {
                        *step = Step::Single;
                        singles |= 1 << i;
                    }
                }
            }
        }
        self.counters.malformed += malformed;
        self.counters.dropped_malformed += dropped_malformed;
        self.counters.non_ip += non_ip;
        (n_flows, singles)
    }

    /// 2. Probe the last flows, then resolve every lookup (the entries are in cache by now)
    ///    and mark the flows the current policy has not decided; classify what is marked.
    #[inline(never)]
    fn resolve_chunk<H: Hints>(
        &mut self,
        chunk: &mut Chunk,
        policy: &CompiledPolicy,
        n_flows: usize,
        singles: u64,
        now_ms: u64,
        hint: H,
    ) -> Asking {
        let Chunk { steps, summaries, decided, flows } = chunk;
        let generation = policy.generation();
        let mut asking = Asking { singles, stale_flows: 0 };
        let flows = flows.get_mut(..n_flows).unwrap_or_default();
        let first_unprobed = n_flows.saturating_sub(PROBE_DISTANCE);
        for f in flows.iter_mut().skip(first_unprobed) {
            f.candidates = self.flows.probe(f.hash, hint);
        }
        let table = &self.flows;
        for (i, f) in flows.iter_mut().enumerate() {
            let (slot, current) = table.resolve(&f.key, f.candidates, now_ms, generation);
            f.slot = slot;
            asking.stale_flows |= u64::from(!current) << i;
        }
        if asking.any() {
            self.classify_marked(policy, asking, steps, summaries, flows, decided);
        }
        asking
    }

    /// Classify, in one bulk policy lookup, the packets `asking` marks, each from its
    /// connection's initiator side; `decided[i]` gets packet `i`'s decision.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn classify_marked(
        &mut self,
        policy: &CompiledPolicy,
        asking: Asking,
        steps: &[Step; MAX_BURST],
        summaries: &[PacketSummary; MAX_BURST],
        flows: &[ChunkFlow],
        decided: &mut [Option<Decision>; MAX_BURST],
    ) {
        let mut queries = [Query { addrs: IpPair::V4 { src: 0, dst: 0 }, protocol: 0, dst_port: None }; MAX_BURST];
        let mut packet_of = [0usize; MAX_BURST];
        let mut n = 0;
        for (i, (step, p)) in steps.iter().zip(summaries.iter()).enumerate() {
            if !asking.packet(i, *step) {
                continue;
            }
            let query = match *step {
                Step::Done => continue,
                Step::Single => Query { addrs: p.addrs, protocol: p.protocol, dst_port: None },
                Step::Flow { flow, forward, .. } => {
                    let slot = flows.get(usize::from(flow)).and_then(|f| f.slot);
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
            self.counters.classified += q.len() as u64;
        }
        for (&i, &d) in packet_of.iter().zip(decisions.iter()).take(n) {
            if let Some(slot) = decided.get_mut(i) {
                *slot = Some(d);
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
mod layout {
    #[test]
    fn a_chunk_flow_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<super::ChunkFlow>(), 64);
    }
}

#[cfg(test)]
mod burst_proptests;
#[cfg(test)]
mod flow_proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
