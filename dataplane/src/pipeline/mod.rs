//! Per-packet logic, generic over the packet buffer: parse -> flow -> policy -> verdict.
//!
//! The very same code runs in `dataplane classify` (over a pcap file) and in the DPDK workers
//! (over mbufs). It works on whole bursts, in chunks of `MAX_BURST` packets carried through
//! the steps by one [`burst::Burst`] context: parse all, look all flows up, classify all new
//! connections in one bulk policy lookup (`burst.rs`), then settle each packet in order
//! (`settle.rs`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod burst;
pub mod flow;
pub mod fragments;
mod huge_array;
pub mod limits;
pub mod memory;
pub mod offline;
mod pickup;
pub mod reject;
mod settle;
pub mod source;
pub mod talkers;

use crate::counters::{Counter, Counters};
use crate::policy::decision::{named_rule, stored_rule, Decision, Query, RuleId};
use crate::policy::{Action, CompiledPolicy};
use crate::tls::quic::{QuicScratch, Version as QuicVersion};
use crate::tls::{ClientHello, HelloBufferPool};
use crate::wire::{ip_proto, tcp_flags, Fragment, IpPair, MalformedCause, PacketSummary};
use burst::{Asking, Burst, StageArrays};
use flow::{FlowTable, FlowTimeouts};
use fragments::{FragmentConfig, FragmentTable};
use limits::LimitTable;

/// Most packets handled in one step; longer bursts are processed in chunks.
pub const MAX_BURST: usize = 32;
const _: () = assert!(MAX_BURST <= 64, "a chunk's packets are marked in a u64");

/// What happens to one packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The deciding rule, `NO_RULE` when the default action decided (or the frame is not IP):
    /// read through [`Verdict::rule`]. A plain word, so that a known flow's verdict is its
    /// entry's words copied as they lie (an `Option` took three more instructions to build
    /// and two more to read back per packet).
    rule: RuleId,
    /// Why the packet could not be read completely, if it could not: its link or IP header
    /// broken (the `malformed` setting decided, see [`MalformedAction`]), or only its
    /// transport unknown (the policy decided by what is known, see
    /// `policy::decision::Query::transport_unknown`).
    pub malformed: Option<MalformedCause>,
}

impl Verdict {
    /// `rule` `None`: the default action decided.
    pub const fn new(action: Action, rule: Option<RuleId>, malformed: Option<MalformedCause>) -> Verdict {
        Verdict { action, rule: stored_rule(rule), malformed }
    }

    /// The verdict of a well-formed packet that `d` decided.
    fn of(d: Decision) -> Verdict {
        Verdict::new(d.action, d.rule(), None)
    }

    /// The deciding rule; `None` when the default action decided (or the frame is not IP).
    #[inline(always)]
    pub fn rule(&self) -> Option<RuleId> {
        named_rule(self.rule)
    }

    /// The deciding rule as stored: `NO_RULE` for the default action.
    #[inline(always)]
    pub fn rule_id(&self) -> RuleId {
        self.rule
    }
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict::new(Action::Allow, None, None)
    }
}

/// The rule shown as [`Verdict::rule`] gives it (`None`, not `NO_RULE`'s value).
impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdict")
            .field("action", &self.action)
            .field("rule", &self.rule())
            .field("malformed", &self.malformed)
            .finish()
    }
}

/// What happens to a frame whose link or IP header is broken (truncated, bad length, IHL or
/// version, more than two VLAN tags): it has no addresses to decide by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MalformedAction {
    /// Drop it: a frame no receiver reads as IP carries nothing legitimate, and one that some
    /// receiver reads differently must not pass unchecked.
    #[default]
    Drop,
    /// Give it the policy's default action.
    Default,
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

/// What to do with a mid-stream pickup: a TCP segment without SYN or RST whose connection the
/// flow table does not know (evicted, expired, its start took another path, a restart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Midstream {
    /// Decide the connection from its addresses and ports, from both ends (a DROP from
    /// either wins); when a TLS rule would wait for its ClientHello, its client bytes are
    /// inspected if they begin one, and follow `tls_fail` if not.
    #[default]
    Decide,
    /// Drop the connection.
    Drop,
}

/// Sees each ClientHello the moment it completes (for `classify --json`); workers use `()`.
pub trait HelloObserver {
    /// `packet` indexes the burst given to [`Pipeline::process_burst_observed`].
    /// `quic` is the QUIC version of the Initials the hello came in, `None` over TCP.
    fn hello(&mut self, packet: usize, hello: &ClientHello<'_>, quic: Option<QuicVersion>);
}

impl HelloObserver for () {
    #[inline(always)]
    fn hello(&mut self, _: usize, _: &ClientHello<'_>, _: Option<QuicVersion>) {}
}

/// Whether a UDP packet's payload begins with a QUIC long header (the form of an Initial), or
/// may: a first fragment, whose datagram the server reads whole (its first fragment may hold
/// no payload byte at all). A flow watching for QUIC reads such a datagram
/// (`FlowEntry::watches_quic`).
#[inline(always)]
fn quic_long_header(p: &PacketSummary, bytes: &[u8]) -> bool {
    p.fragment == Fragment::First
        || p.payload_len > 0 && bytes.get(usize::from(p.payload_offset)).is_some_and(|b| b & 0x80 != 0)
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
    /// The run of known flows at the chunk's start settled as they are looked up; the other
    /// lookups resolved, connections not decided by the current policy classified.
    Resolve,
    /// The other packets settled in order (flows created, ClientHellos fed, verdicts).
    Settle,
    /// Counting, the TX burst and the frees.
    Transmit,
}

impl Phase {
    pub const ALL: [Phase; 5] = [Phase::Receive, Phase::Parse, Phase::Resolve, Phase::Settle, Phase::Transmit];

    /// The counter of the TSC cycles spent in this step.
    pub const fn cycles_counter(self) -> Counter {
        match self {
            Phase::Receive => Counter::ReceiveCycles,
            Phase::Parse => Counter::ParseCycles,
            Phase::Resolve => Counter::ResolveCycles,
            Phase::Settle => Counter::SettleCycles,
            Phase::Transmit => Counter::TransmitCycles,
        }
    }
}

/// Pipeline settings fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    pub flow_capacity: usize,
    pub timeouts: FlowTimeouts,
    /// ClientHello reassembly buffers (16 KB each), preallocated per worker.
    pub hello_buffers: usize,
    pub tls_fail: TlsFail,
    pub midstream: Midstream,
    pub malformed: MalformedAction,
    /// The fragment table's bounds (`pipeline/fragments.rs`).
    pub fragments: FragmentConfig,
    /// Slots of the per-source connection limit table (`pipeline/limits.rs`).
    pub limit_slots: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flow_capacity: 1 << 16,
            timeouts: FlowTimeouts::default(),
            hello_buffers: 256,
            tls_fail: TlsFail::Open,
            midstream: Midstream::Decide,
            malformed: MalformedAction::Drop,
            fragments: FragmentConfig::default(),
            limit_slots: limits::DEFAULT_SLOTS,
        }
    }
}

/// One worker's pipeline state.
pub struct Pipeline {
    pub flows: FlowTable,
    /// ClientHello buffers of hellos that span packets, over TCP or QUIC.
    pub hellos: HelloBufferPool,
    /// What QUIC reassembly needs besides the buffers (decryption scratch, keys...).
    quic: QuicScratch,
    /// What the pipeline counts (the flow table counts its own): written only by its worker.
    pub counters: Counters,
    tls_fail: TlsFail,
    midstream: Midstream,
    malformed: MalformedAction,
    /// Datagrams whose fragments come in pieces, and the fragments held for their first one.
    pub fragments: FragmentTable,
    /// Per-source buckets of the rules with `spec.limit`.
    limits: LimitTable,
    /// This worker's row in the policies' per-rule counters (0 offline).
    lane: usize,
    /// The arrays the steps of a chunk hand to each other, kept between bursts so that no
    /// chunk pays for clearing them (each entry is written before it is read). Taken while
    /// a burst is processed.
    arrays: Option<Box<StageArrays>>,
    /// The heaviest sources of new connections, ClientHellos and policy drops.
    pub talkers: talkers::Talkers,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline::with_memory_advice(config, &|_, _| {})
    }

    /// [`Pipeline::new`], with `advise` called on the flow table's memory before it is
    /// touched (see [`FlowTable::with_memory_advice`]).
    pub fn with_memory_advice(config: PipelineConfig, advise: &dyn Fn(*const u8, usize)) -> Pipeline {
        let hellos = HelloBufferPool::new(config.hello_buffers);
        Pipeline {
            flows: FlowTable::with_memory_advice(config.flow_capacity, config.timeouts, advise),
            quic: QuicScratch::for_pool(&hellos),
            hellos,
            counters: Counters::default(),
            tls_fail: config.tls_fail,
            midstream: config.midstream,
            malformed: config.malformed,
            arrays: Some(StageArrays::new()),
            fragments: FragmentTable::new(config.fragments),
            limits: LimitTable::new(config.limit_slots),
            lane: 0,
            talkers: talkers::Talkers::default(),
        }
    }

    /// Sets this worker's row in the policies' per-rule counters (where it counts the
    /// connections limit rules decided).
    pub fn set_lane(&mut self, lane: usize) {
        self.lane = lane;
    }

    /// Everything this pipeline and its flow table counted.
    pub fn totals(&self) -> Counters {
        let mut c = self.counters + self.flows.totals();
        let (datagrams, held) = self.fragments.levels();
        c.set(Counter::FragmentDatagrams, datagrams);
        c.set(Counter::FragmentsHeldNow, held);
        c
    }

    /// Forgets the fragmented datagrams past their deadline, dropping their held fragments
    /// (see [`FragmentTable::drain_released`]); for callers between bursts (bursts do it).
    pub fn expire_fragments(&mut self, now_ms: u64) {
        self.fragments.sweep(now_ms, &mut self.counters);
    }

    /// The end of the input: every fragment still held is released as dropped.
    pub fn flush_fragments(&mut self) {
        self.fragments.flush(&mut self.counters);
    }

    /// Packets dropped so far, by policy or as malformed.
    #[inline]
    pub fn dropped(&self) -> u64 {
        self.counters.get(Counter::DropPolicy) + self.counters.get(Counter::DropMalformed)
    }

    /// Decide every packet of a burst. `verdicts[i]` is written for `packets[i]`; a fragment
    /// may be held instead (see [`FragmentTable::events`]: the caller keeps it, and learns its
    /// verdict later from [`FragmentTable::drain_released`]).
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
        self.fragments.begin_burst();
        // Always there: only this function takes it, and it puts it back.
        let mut arrays = self.arrays.take().unwrap_or_else(StageArrays::new);
        for (n, (ps, vs)) in packets.chunks(MAX_BURST).zip(verdicts.chunks_mut(MAX_BURST)).enumerate() {
            let mut burst = Burst {
                policy,
                packets: ps,
                verdicts: vs,
                now_ms,
                base: n * MAX_BURST,
                observer: &mut *observer,
                hint,
                arrays: &mut arrays,
                n_flows: 0,
                asking: Asking::default(),
                settled: 0,
                settled_drops: 0,
            };
            self.process_chunk(&mut burst);
        }
        self.arrays = Some(arrays);
    }

    /// One chunk (at most `MAX_BURST` packets), in three steps, each a function of the
    /// chunk's [`Burst`]: one loop each, so that the compiler allocates registers per loop
    /// (as one function, the three loops spilled to the stack at every flow).
    #[inline(always)]
    fn process_chunk<P: AsRef<[u8]>, O: HelloObserver, H: Hints>(&mut self, b: &mut Burst<'_, P, O, H>) {
        self.counters.add(Counter::Packets, b.packets.len().min(MAX_BURST) as u64);
        self.parse_chunk(b);
        b.hint.phase_done(Phase::Parse);
        self.resolve_chunk(b);
        b.hint.phase_done(Phase::Resolve);
        self.settle_chunk(b);
        if self.fragments.chunk_has_fragments() {
            self.fragments.settle(b.verdicts, b.base, b.now_ms, &mut self.counters);
        }
        b.hint.phase_done(Phase::Settle);
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
        Query::new(p.addrs, p.protocol, Some(p.dst_port))
    } else {
        let addrs = match p.addrs {
            IpPair::V4 { src, dst } => IpPair::V4 { src: dst, dst: src },
            IpPair::V6 { src, dst } => IpPair::V6 { src: dst, dst: src },
        };
        Query::new(addrs, p.protocol, Some(p.src_port))
    }
}

#[cfg(test)]
mod burst_proptests;
#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod flood_proptests;
#[cfg(test)]
mod flood_tests;
#[cfg(test)]
mod flow_proptests;
#[cfg(test)]
mod fragment_proptests;
#[cfg(test)]
mod limits_pipeline_tests;
#[cfg(test)]
mod midstream_tests;
#[cfg(test)]
mod quic_tests;
#[cfg(test)]
mod talkers_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
