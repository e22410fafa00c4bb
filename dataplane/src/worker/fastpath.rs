//! The lcore loops: run-to-completion workers (l3fwd style) and the software distributor.
//!
//! Per burst: RX (or ring) into a fixed [`MbufBurst`], a fixed array of byte views, one
//! [`Pipeline::process_burst_with`], allowed packets moved in order to a TX burst for this
//! worker's own TX queue of the egress port, dropped ones and what TX refused bulk-freed;
//! under a policy with REJECT rules, the answers to a burst's rejected packets in mbufs from
//! the worker's pool, on its own TX queues (`send_replies`).
//! No heap allocation, lock, syscall, `Arc` clone or atomic read-modify-write per packet.
//! Once per loop: the policy mailbox (the quiescent point), the capture tap's armed id (one
//! load; see `capture::tap`) and, every few loops, a plain `Relaxed` store of the counters for
//! the control thread. While a capture is armed, the burst's packets its filter keeps are
//! copied into the worker's capture ring (queue operations per copied packet: only then).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::capture::{Session, Tap, WorkerTap};
use crate::counters::{Counter, Counters, COUNT};
use crate::dpdk::cycles::{prefetch0, tsc};
use crate::dpdk::{Consumer, Mbuf, MbufBurst, Mempool, Producer, RxQueue, TxQueue};
use crate::pipeline::flow::FlowKey;
use crate::pipeline::fragments::{FragmentEvent, FragmentTable, Release};
use crate::pipeline::reject::{self, Rejecter, Toward};
use crate::pipeline::talkers::Talkers;
use crate::pipeline::{Hints, Phase, Pipeline, Verdict};
use crate::policy::{Action, CompiledPolicy};
use crate::wire::reply::ReplyKind;
use crate::wire::{parse_frame, Fragment, Parsed};

/// Packets per burst.
pub const BURST: usize = 32;
const _: () = assert!(BURST <= crate::pipeline::MAX_BURST, "the Rejecter answers a pipeline chunk at most");

/// Counters are posted every this many loops (and when the loop ends).
const POST_EVERY: u64 = 64;

/// What the control thread and one lcore share: the policy mailbox and its return queue (in),
/// and the generation the lcore runs and its published counters (out).
#[repr(align(128))]
pub struct Mailbox {
    counters: [AtomicU64; COUNT],
    /// Generation of the policy the lcore runs (a `Relaxed` store at each adoption).
    adopted: AtomicU64,
    /// New policies for the worker (capacity 1: the latest wins).
    pub(crate) policies: ArrayQueue<Arc<CompiledPolicy>>,
    /// Policies the worker replaced, for the control thread to drop.
    pub(crate) returns: ArrayQueue<Arc<CompiledPolicy>>,
    /// The worker's row in each policy's per-rule counters.
    lane: usize,
    /// Empty copies of the top talkers the control thread hands the lcore to fill (when it
    /// posts its counters), and the filled ones back: the same two buffers go round, no
    /// allocation on either side. At most two exist per mailbox, so no push can fail.
    pub(crate) talkers_asked: ArrayQueue<Box<Talkers>>,
    pub(crate) talkers_posted: ArrayQueue<Box<Talkers>>,
    /// The capture armed for this worker, if any.
    capture: Tap,
}

impl Mailbox {
    pub(crate) fn new(generation: u64, lane: usize) -> Mailbox {
        Mailbox {
            lane,
            counters: [const { AtomicU64::new(0) }; COUNT],
            adopted: AtomicU64::new(generation),
            policies: ArrayQueue::new(1),
            returns: ArrayQueue::new(4),
            talkers_asked: ArrayQueue::new(2),
            talkers_posted: ArrayQueue::new(2),
            capture: Tap::default(),
        }
    }

    /// Where captures are armed for this worker.
    pub fn capture(&self) -> &Tap {
        &self.capture
    }

    /// The counters the lcore last posted.
    pub fn counters(&self) -> Counters {
        Counters::from_fn(|c| self.counters.get(c as usize).map_or(0, |v| v.load(Relaxed)))
    }

    /// The policy generation the lcore runs.
    pub fn adopted(&self) -> u64 {
        self.adopted.load(Relaxed)
    }

    /// Called by the lcore at its quiescent point: swaps `current` for a policy waiting in
    /// the mailbox, records its generation (a `Relaxed` store) and hands the old one back
    /// through the return queue, so it is freed on the control thread. No allocation, no
    /// reference count change; a policy is taken only when the old one can be handed back.
    /// Returns whether a new policy was adopted.
    #[inline]
    pub fn adopt(&self, current: &mut Arc<CompiledPolicy>) -> bool {
        if self.returns.is_full() {
            return false;
        }
        let Some(new) = self.policies.pop() else { return false };
        let generation = new.generation();
        let old = std::mem::replace(current, new);
        self.adopted.store(generation, Relaxed);
        // Cannot fail: checked not full, and only this lcore pushes.
        if let Err(old) = self.returns.push(old) {
            std::mem::forget(old);
        }
        true
    }

    /// The lcore fills a copy of its top talkers if the control thread asked for one (a few
    /// tens of KB copied, about once a second).
    pub(crate) fn post_talkers(&self, talkers: &Talkers) {
        let Some(mut copy) = self.talkers_asked.pop() else { return };
        copy.copy_from(talkers);
        if let Err(copy) = self.talkers_posted.push(copy) {
            // Cannot happen (two buffers, capacity two); kept for the control thread.
            let _ = self.talkers_asked.push(copy);
        }
    }

    /// The lcore posts its counters: plain `Relaxed` stores, no read-modify-write.
    fn post(&self, counters: &Counters) {
        for ((_, value), slot) in counters.iter().zip(&self.counters) {
            slot.store(value, Relaxed);
        }
    }
}

/// Where a worker's packets come from.
pub enum Source {
    Rx(RxQueue),
    Ring(Consumer<Mbuf, false>),
}

/// One input of a worker and the TX queue (index into [`WorkerLoop::tx`]) its packets leave by.
pub struct Input {
    pub source: Source,
    pub egress: usize,
    /// The TX queue (index into [`WorkerLoop::tx`]) back out the ingress port, for answers
    /// to rejected packets; `None` when the worker has none there (one-way forwarding).
    pub reply: Option<usize>,
}

/// Everything one worker lcore owns. Given back when the loop ends, so its memory is freed
/// on the control thread.
pub struct WorkerLoop {
    pub inputs: Vec<Input>,
    pub tx: Vec<TxQueue>,
    pub pipeline: Pipeline,
    pub policy: Arc<CompiledPolicy>,
    /// What the loop counts itself (RX, TX, TX full, cycles); the pipeline counts the rest.
    pub counters: Counters,
    pub mailbox: Arc<Mailbox>,
    pub stop: Arc<AtomicBool>,
    pub tsc_per_ms: u64,
    /// Read the TSC at each step of every burst (see [`Phase`]).
    pub phase_timing: bool,
    /// Answers to rejected packets, and their rate.
    pub rejecter: Rejecter,
    /// Where the answers' mbufs come from.
    pub pool: Mempool,
}

/// The burst in a worker's hands: the packets received, those leaving, their verdicts, and
/// the clock and counter row they are decided with. Fixed arrays, reused by every poll.
struct WorkerBurst {
    rx: MbufBurst<BURST>,
    out: MbufBurst<BURST>,
    verdicts: [Verdict; BURST],
    now_ms: u64,
    /// The TSC when the burst was received (the reject rate's clock).
    now_tsc: u64,
    /// The worker's row in the policy's per-rule counters.
    lane: usize,
    /// Fragments held for their first fragment, by `HeldId` (see `pipeline::fragments`):
    /// sized once at start, freed when the loop ends.
    held: Vec<Option<Mbuf>>,
    /// The capture this worker copies for, if one is armed.
    capture: WorkerTap,
}

impl WorkerLoop {
    /// The worker loop; returns when `stop` is set, after finishing the burst in hand.
    pub fn run(mut self) -> WorkerLoop {
        let clock = PhaseClock::default();
        if self.phase_timing {
            self.poll(TimedHints(&clock), &clock);
        } else {
            self.poll(CacheHints, &clock);
        }
        self
    }

    fn poll<H: Hints>(&mut self, hint: H, clock: &PhaseClock) {
        let mut burst = WorkerBurst {
            rx: MbufBurst::new(),
            out: MbufBurst::new(),
            verdicts: [Verdict::default(); BURST],
            now_ms: 0,
            now_tsc: 0,
            lane: self.mailbox.lane,
            held: std::iter::repeat_with(|| None).take(self.pipeline.fragments.held_capacity()).collect(),
            capture: WorkerTap::default(),
        };
        let tsc_per_ms = self.tsc_per_ms.max(1);
        let mut loops: u64 = 0;
        // One TSC reading per poll: a poll that found packets is busy until the next poll
        // starts (its burst's work, and the loop's own between polls).
        let mut busy_since = None;
        while !self.stop.load(Relaxed) {
            let WorkerLoop { inputs, tx, pipeline, policy, counters, rejecter, pool, .. } = &mut *self;
            for input in inputs.iter_mut() {
                let start = tsc();
                if let Some(since) = busy_since.take() {
                    counters.add(Counter::BusyCycles, start.wrapping_sub(since));
                }
                hint.phase_start();
                let n = match &mut input.source {
                    Source::Rx(q) => q.burst(&mut burst.rx),
                    Source::Ring(c) => c.dequeue_burst(&mut burst.rx),
                };
                if n == 0 {
                    continue;
                }
                busy_since = Some(start);
                hint.phase_done(Phase::Receive);
                burst.now_ms = start / tsc_per_ms;
                burst.now_tsc = start;
                match tx.get_mut(input.egress) {
                    Some(txq) => burst.forward(pipeline, policy, txq, counters, rejecter, hint),
                    None => burst.rx.clear(),
                }
                if !rejecter.is_empty() {
                    send_replies(rejecter, pool, tx, input, counters);
                }
                hint.phase_done(Phase::Transmit);
            }
            self.quiescent();
            burst.capture.follow(self.mailbox.capture());
            loops = loops.wrapping_add(1);
            if loops.is_multiple_of(POST_EVERY) {
                // Held fragments past their datagram's deadline are dropped even when no
                // packet comes.
                let now = tsc();
                self.pipeline.expire_fragments(now / tsc_per_ms);
                burst.free_released(&mut self.pipeline.fragments, &self.policy, now, &mut self.counters);
                self.post_counters(clock);
            }
        }
        // The fragments still held are dropped, their mbufs freed before the loop returns.
        self.pipeline.flush_fragments();
        burst.free_released(&mut self.pipeline.fragments, &self.policy, tsc(), &mut self.counters);
        burst.held.clear();
        if let Some(since) = busy_since {
            self.counters.add(Counter::BusyCycles, tsc().wrapping_sub(since));
        }
        self.post_counters(clock);
    }

    /// The quiescent point: adopts a policy waiting in the mailbox.
    #[inline]
    fn quiescent(&mut self) {
        self.mailbox.adopt(&mut self.policy);
    }

    /// Posts the loop's, the pipeline's and the phase clock's counters to the mailbox.
    fn post_counters(&self, clock: &PhaseClock) {
        let mut phases = Counters::default();
        for (phase, cycles) in Phase::ALL.iter().zip(&clock.cycles) {
            phases.set(phase.cycles_counter(), cycles.get());
        }
        self.mailbox.post(&(self.counters + self.pipeline.totals() + phases));
        self.mailbox.post_talkers(&self.pipeline.talkers);
    }
}

/// DPDK's prefetch for the pipeline's flow-table lookups (the pipeline knows nothing of DPDK).
#[derive(Clone, Copy)]
struct CacheHints;

impl Hints for CacheHints {
    #[inline(always)]
    fn prefetch<T>(self, p: *const T) {
        prefetch0(p);
    }
}

/// TSC cycles per step of the work on bursts (see [`Phase`]), for `bench --phases`.
#[derive(Default)]
struct PhaseClock {
    /// The TSC at the last mark.
    last: Cell<u64>,
    cycles: [Cell<u64>; Phase::ALL.len()],
}

/// [`CacheHints`], and a TSC reading at each mark: about 6 readings per burst, a few cycles
/// per packet, so timing is asked for, not always on.
#[derive(Clone, Copy)]
struct TimedHints<'a>(&'a PhaseClock);

impl Hints for TimedHints<'_> {
    #[inline(always)]
    fn prefetch<T>(self, p: *const T) {
        prefetch0(p);
    }

    #[inline(always)]
    fn phase_start(self) {
        self.0.last.set(tsc());
    }

    #[inline(always)]
    fn phase_done(self, phase: Phase) {
        let now = tsc();
        if let Some(c) = self.0.cycles.get(phase as usize) {
            c.set(c.get().wrapping_add(now.wrapping_sub(self.0.last.get())));
        }
        self.0.last.set(now);
    }
}

impl WorkerBurst {
    /// Decides the burst in `rx`, sends the allowed packets in order, frees the rest; counts
    /// each packet for the rule that decided it (row `lane` of the policy's counters).
    #[inline]
    fn forward(
        &mut self,
        pipeline: &mut Pipeline,
        policy: &CompiledPolicy,
        txq: &mut TxQueue,
        counters: &mut Counters,
        rejecter: &mut Rejecter,
        hint: impl Hints,
    ) {
        let WorkerBurst { rx, out, verdicts, now_ms, now_tsc, lane, held, capture } = self;
        let capture = capture.session();
        let n = rx.len();
        counters.add(Counter::Rx, n as u64);
        let Some(vs) = verdicts.get_mut(..n) else {
            rx.clear();
            return;
        };
        // The mbufs themselves are the packets: no array of byte views to build first.
        let dropped_before = pipeline.dropped();
        pipeline.process_burst_with(policy, rx.as_slice(), *now_ms, vs, &mut (), hint);
        // The pipeline counted the burst's drops as it decided them; fragments it held or
        // dropped for their own sake are events.
        let events = pipeline.fragments.events();
        let all_allowed = pipeline.dropped() == dropped_before && events.is_empty();
        policy.hits().add_each(*lane, vs.iter().map(|v| v.rule_id()));
        // Copied as received, before anything leaves or is freed; held fragments when their
        // datagram's verdict comes.
        if let Some(session) = capture {
            capture_burst(session, rx.as_slice(), vs, events, policy, *now_tsc, counters);
        }
        // Rejected packets are among the drops: answered (after the burst leaves) while the
        // packets are still in hand.
        if !all_allowed && policy.rejects() {
            rejecter.answer(rx.as_slice(), vs, *now_tsc, counters);
        }
        // The usual burst is all allowed: it leaves as it came, without being copied.
        let send = if all_allowed {
            rx
        } else {
            rx.move_to(out, |i, _| verdicts.get(i).is_some_and(|v| v.action == Action::Allow));
            if !events.is_empty() {
                park_held(rx, events, verdicts, held);
            }
            // The dropped ones: one bulk free.
            rx.clear();
            out
        };
        // Held fragments whose datagram is decided: the allowed ones leave after the burst.
        if pipeline.fragments.has_released() {
            pipeline.fragments.drain_released(|r| {
                let Some(m) = take_released(held, &r, capture, policy, *now_tsc, counters) else { return };
                if r.verdict.action != Action::Allow {
                    return;
                }
                if send.is_full() {
                    counters.add(Counter::Tx, txq.burst(send) as u64);
                    counters.add(Counter::DropTxFull, send.len() as u64);
                    send.clear();
                }
                // Not full: checked above.
                let _ = send.push(m);
            });
        }
        let sent = txq.burst(send);
        counters.add(Counter::Tx, sent as u64);
        // What the TX queue did not take: one bulk free.
        counters.add(Counter::DropTxFull, send.len() as u64);
        send.clear();
    }
}

/// Sends the answers to a burst's rejected packets: an mbuf each from the worker's pool (in
/// one bulk allocation), back out the ingress port to the senders and on out the egress port
/// to the receivers, on the worker's own TX queues. What cannot go is counted unsent.
#[cold]
#[inline(never)]
fn send_replies(rejecter: &mut Rejecter, pool: &Mempool, tx: &mut [TxQueue], input: &Input, counters: &mut Counters) {
    let n = rejecter.len();
    let mut mbufs = MbufBurst::<{ reject::SLOTS }>::new();
    if !pool.alloc_bulk(&mut mbufs, n) {
        counters.add(Counter::RejectUnsent, n as u64);
        rejecter.clear();
        return;
    }
    let mut back = ReplyBurst::default();
    let mut on = ReplyBurst::default();
    for (reply, bytes) in rejecter.replies() {
        let Some(mut m) = mbufs.pop() else { break };
        // Cannot fail: a reply is at most `MAX_REPLY_LEN` bytes, within any pool's data room.
        if m.append(bytes).is_err() {
            counters.add(Counter::RejectUnsent, 1);
            continue;
        }
        match reply.toward {
            Toward::Sender => back.push(m, reply.kind),
            Toward::Receiver => on.push(m, reply.kind),
        }
    }
    rejecter.clear();
    back.send(input.reply.and_then(|r| tx.get_mut(r)), counters);
    on.send(tx.get_mut(input.egress), counters);
}

/// Replies leaving by one TX queue, with their kinds (to count what was sent).
struct ReplyBurst {
    mbufs: MbufBurst<{ reject::SLOTS }>,
    kinds: [ReplyKind; reject::SLOTS],
}

impl Default for ReplyBurst {
    fn default() -> Self {
        ReplyBurst { mbufs: MbufBurst::new(), kinds: [ReplyKind::Icmp; reject::SLOTS] }
    }
}

impl ReplyBurst {
    fn push(&mut self, m: Mbuf, kind: ReplyKind) {
        if let Some(k) = self.kinds.get_mut(self.mbufs.len()) {
            *k = kind;
        }
        // Never full: as many slots as a burst has replies.
        let _ = self.mbufs.push(m);
    }

    /// Sends what `txq` takes (none without a queue), counts it by kind, frees the rest.
    fn send(mut self, txq: Option<&mut TxQueue>, counters: &mut Counters) {
        if self.mbufs.is_empty() {
            return;
        }
        let sent = txq.map_or(0, |q| q.burst(&mut self.mbufs));
        for kind in self.kinds.iter().take(sent) {
            let c = match kind {
                ReplyKind::TcpRst => Counter::RejectTcpRst,
                ReplyKind::Icmp => Counter::RejectIcmp,
            };
            counters.add(c, 1);
        }
        counters.add(Counter::Tx, sent as u64);
        counters.add(Counter::RejectUnsent, self.mbufs.len() as u64);
        self.mbufs.clear();
    }
}

impl WorkerBurst {
    /// Frees the held fragments the pipeline released (on expiry and at the end: all drops),
    /// copied first (stamped `tsc`) for a capture that keeps them.
    #[cold]
    fn free_released(
        &mut self,
        fragments: &mut FragmentTable,
        policy: &CompiledPolicy,
        tsc: u64,
        counters: &mut Counters,
    ) {
        let (held, capture) = (&mut self.held, self.capture.session());
        fragments.drain_released(|r| drop(take_released(held, &r, capture, policy, tsc, counters)));
    }
}

/// Takes a released fragment out of `held`, copied first (stamped `tsc`) for a capture that
/// keeps it.
fn take_released(
    held: &mut [Option<Mbuf>],
    r: &Release,
    capture: Option<&Session>,
    policy: &CompiledPolicy,
    tsc: u64,
    counters: &mut Counters,
) -> Option<Mbuf> {
    let m = held.get_mut(r.id.index()).and_then(Option::take)?;
    if let Some(session) = capture {
        session.copy(m.data(), &r.verdict, policy, tsc, counters);
    }
    Some(m)
}

/// Copies what a capture keeps of a decided burst; the fragments the pipeline held (their
/// verdict not known yet) are left for their release.
#[cold]
#[inline(never)]
fn capture_burst(
    session: &Session,
    frames: &[Mbuf],
    verdicts: &[Verdict],
    events: &[FragmentEvent],
    policy: &CompiledPolicy,
    tsc: u64,
    counters: &mut Counters,
) {
    let mut held = 0u64;
    for e in events {
        if let FragmentEvent::Held { packet, .. } = *e {
            held |= 1u64.checked_shl(packet as u32).unwrap_or(0);
        }
    }
    session.copy_burst(frames, verdicts, held, policy, tsc, counters);
}

/// Moves the packets of `rx` the pipeline held into `held` under their ids. `rx` holds the
/// packets of the burst not sent, in order; `verdicts` is the whole burst's (a held packet's
/// says drop, so it is among them).
#[cold]
#[inline(never)]
fn park_held(rx: &mut MbufBurst<BURST>, events: &[FragmentEvent], verdicts: &[Verdict], held: &mut [Option<Mbuf>]) {
    let mut held_mask = 0u64;
    for e in events {
        if let FragmentEvent::Held { packet, .. } = *e {
            held_mask |= 1u64.checked_shl(packet as u32).unwrap_or(0);
        }
    }
    // Packet i of the burst, not sent, is at rank `rest` among those left in `rx`.
    let mut rest_mask = 0u64;
    let mut rest = 0;
    for (i, v) in verdicts.iter().enumerate() {
        if v.action != Action::Allow {
            rest_mask |= ((held_mask >> i) & 1) << rest;
            rest += 1;
        }
    }
    let mut parked = MbufBurst::<BURST>::new();
    rx.move_to(&mut parked, |j, _| (rest_mask >> j) & 1 != 0);
    // Events are in packet order, as `parked` is: match them from the back.
    for e in events.iter().rev() {
        if let FragmentEvent::Held { id, .. } = *e {
            if let (Some(m), Some(slot)) = (parked.pop(), held.get_mut(id.index())) {
                *slot = Some(m);
            }
        }
    }
}

/// The software distributor: polls RX queues and spreads packets over per-worker rings by a
/// symmetric flow hash (both directions of a connection reach the same worker).
pub struct Distributor {
    /// RX queues, each with the index of its ingress port.
    pub inputs: Vec<(RxQueue, usize)>,
    /// `rings[worker][ingress port index]`.
    pub rings: Vec<Vec<Producer<Mbuf, false>>>,
    pub counters: Counters,
    pub mailbox: Arc<Mailbox>,
    pub stop: Arc<AtomicBool>,
}

impl Distributor {
    pub fn run(mut self) -> Distributor {
        let mut rx = MbufBurst::<BURST>::new();
        let mut out = MbufBurst::<BURST>::new();
        let workers = self.rings.len();
        let mut loops: u64 = 0;
        while !self.stop.load(Relaxed) {
            let Distributor { inputs, rings, counters, .. } = &mut self;
            for (q, port) in inputs.iter_mut() {
                let n = q.burst(&mut rx);
                if n == 0 {
                    continue;
                }
                counters.add(Counter::Rx, n as u64);
                let mut targets = [0usize; BURST];
                for (t, m) in targets.iter_mut().zip(rx.iter()) {
                    *t = worker_of(m.data(), workers);
                }
                let mut left = n;
                for (w, worker_rings) in rings.iter().enumerate() {
                    if left == 0 {
                        break;
                    }
                    rx.move_to(&mut out, |i, _| targets.get(i) == Some(&w));
                    // Keep `targets` aligned with what stays in `rx` (in order).
                    let mut kept = 0;
                    for i in 0..left {
                        let t = targets.get(i).copied().unwrap_or(w);
                        if t != w {
                            if let Some(slot) = targets.get_mut(kept) {
                                *slot = t;
                            }
                            kept += 1;
                        }
                    }
                    left = kept;
                    if out.is_empty() {
                        continue;
                    }
                    if let Some(ring) = worker_rings.get(*port) {
                        ring.enqueue_burst(&mut out);
                    }
                    counters.add(Counter::DropRingFull, out.len() as u64);
                    out.clear();
                }
                rx.clear();
            }
            loops = loops.wrapping_add(1);
            if loops.is_multiple_of(POST_EVERY) {
                self.mailbox.post(&self.counters);
            }
        }
        self.mailbox.post(&self.counters);
        self
    }
}

/// The worker a packet goes to: a symmetric hash of its connection (addresses only for
/// fragments and protocols without ports); worker 0 for what does not parse as IP.
#[inline]
pub fn worker_of(frame: &[u8], workers: usize) -> usize {
    let Ok(Parsed::Ip(mut p)) = parse_frame(frame) else { return 0 };
    if p.fragment != Fragment::None || !p.has_ports {
        p.src_port = 0;
        p.dst_port = 0;
    }
    let hash = FlowKey::hash_of(&p);
    ((u64::from(hash) * workers as u64) >> 32) as usize
}
