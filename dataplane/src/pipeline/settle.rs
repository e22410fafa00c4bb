//! Step 3 of a chunk: each packet settled in order, from the first one resolve did not settle.
//! A packet of a known flow that the current policy decided and that awaits no ClientHello
//! (the usual packet) takes its entry's verdict ([`settle_run`], a tight loop over a run of
//! them, which resolve also runs at the chunk's start); every other one the general path
//! ([`Pipeline::settle_flow`]): the flow found or created, (re)decided, its ClientHello fed
//! while it is pending.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::burst::{Asking, Burst, ChunkFlow, StageArrays, Step};
use super::flow::{FlowTable, HelloState};
use super::source::Source;
use super::talkers::Talkers;
use super::{
    initiator_query, is_syn_ack, limits, pickup, quic_long_header, HelloObserver, Midstream, Pipeline, TlsFail,
    Verdict, MAX_BURST,
};
use crate::counters::{Counter, Counters};
use crate::policy::decision::{Decision, HelloFacts, Query, TlsView};
use crate::policy::{Action, CompiledPolicy};
use crate::tls::ja4::Transport;
use crate::tls::quic::{QuicFeed, QuicHello, QuicScratch, Version as QuicVersion};
use crate::tls::{ClientHello, FeedResult, HelloBufferPool};
use crate::wire::{ip_proto, tcp_flags, Fragment, PacketSummary};

/// A packet on the general path, with what the earlier steps found for it.
struct FlowPacket<'p> {
    summary: &'p PacketSummary,
    bytes: &'p [u8],
    /// Sent in its flow key's forward direction.
    forward: bool,
    flags: u8,
    /// The policy's answer from the bulk lookup, when resolve asked for one.
    decided: Option<Decision>,
}

impl Pipeline {
    /// 3. Settle each packet in order; a flow created by an earlier packet of the chunk is
    ///    found by the later ones.
    #[inline(never)]
    pub(super) fn settle_chunk<P: AsRef<[u8]>, O: HelloObserver, H>(&mut self, b: &mut Burst<'_, P, O, H>) {
        let Burst { policy, packets, verdicts, now_ms, base, observer, arrays, asking, settled, settled_drops, .. } = b;
        let (now_ms, asking) = (*now_ms, *asking);
        let default = Decision::new(policy.default_action(), None);
        // The slots the burst lookups found hold until the chunk creates a flow: an insertion
        // may take a slot found for another flow, or create a flow a lookup missed.
        let mut lookups_hold = true;
        // Resolve settled the chunk's first packets (see `burst::resolve_chunk`).
        let mut policy_drops = *settled_drops;
        let mut i = *settled;
        loop {
            // The usual packets (their flow found, decided by this policy, no ClientHello
            // awaited) take their entry's verdict, a run of them in one tight loop.
            if lookups_hold {
                let from = EntryFrom::Resolved(asking);
                let drops;
                (i, _, drops) = settle_run(&mut self.flows, arrays, from, now_ms, verdicts, i);
                policy_drops += drops;
            }
            // Packet `i` needs more than that.
            let (Some(v), Some(&step)) = (verdicts.get_mut(i), arrays.steps.get(i)) else { break };
            i += 1;
            *v = match step {
                // Parse gave the verdict (not IP, malformed) and counted it.
                Step::Done => continue,
                // A packet without a connection: the policy's answer, always asked for.
                Step::Single { malformed } => Verdict {
                    malformed,
                    ..Verdict::of(arrays.decided.get(i - 1).copied().flatten().unwrap_or(default))
                },
                // The general path: the flow found or created, (re)decided, its hello fed.
                Step::Flow { flow, forward, flags } => {
                    let at = i - 1;
                    let Some(pkt) = packets.get(at) else { continue };
                    let Some(&summary) = arrays.summary(at, pkt.as_ref()) else { continue };
                    let summary = &summary;
                    let StageArrays { decided, flows, .. } = &**arrays;
                    let Some(f) = flows.get(usize::from(flow)) else { continue };
                    let decided = asking.packet(at, step).then(|| decided.get(at).copied().flatten()).flatten();
                    let packet = FlowPacket { summary, bytes: pkt.as_ref(), forward, flags, decided };
                    let (verdict, changed) = self.settle_flow(policy, &packet, f, lookups_hold, now_ms, |h, quic| {
                        observer.hello(*base + at, h, quic)
                    });
                    lookups_hold &= !changed;
                    verdict
                }
            };
            policy_drops += u64::from(v.action.denies());
        }
        self.counters.add(Counter::DropPolicy, policy_drops);
        if policy_drops > 0 {
            note_drops(&mut self.talkers, arrays, packets, verdicts);
        }
    }

    /// Settle one packet of a flow on the general path: find or create its entry, (re)decide
    /// it when needed, feed a pending connection's ClientHello, and give the packet its
    /// verdict. Also returns whether it created or freed a flow (the chunk's lookups then no
    /// longer hold). Out of line: inlined, its size cost the tight loop of known flows
    /// (`settle_run`) about 6 instructions per packet.
    #[inline(never)]
    fn settle_flow(
        &mut self,
        policy: &CompiledPolicy,
        p: &FlowPacket<'_>,
        f: &ChunkFlow,
        lookups_hold: bool,
        now_ms: u64,
        on_hello: impl FnOnce(&ClientHello<'_>, Option<QuicVersion>),
    ) -> (Verdict, bool) {
        let generation = policy.generation();
        // 1. The entry. The lookup's slot stands while the lookups hold, or while it still holds
        //    this flow. A flow the lookup missed is looked up again: it may be an expired entry,
        //    which the lookup frees, as it would have for this packet alone. A connection the
        //    table does not know is created (a TCP segment without SYN or RST is a mid-stream
        //    pickup), or goes without an entry when none may give way.
        let known = match f.slot {
            Some(s) if lookups_hold || self.flows.holds(s, &f.key) => Some(s),
            _ => self.flows.lookup(&f.key, f.hash, now_ms),
        };
        let pickup = known.is_none() && pickup::is_pickup(p.summary);
        let entry = match known {
            Some(s) => Some((s, false)),
            None => self.flows.insert(f.key, f.hash, p.forward != is_syn_ack(p.summary), now_ms).map(|s| (s, true)),
        };
        // Buffers of entries this lookup or insertion freed go back now, before a hello of
        // this chunk may need one (as when each packet comes in a burst of its own). The only
        // place entries are freed, so the only place their buffers come back.
        if self.flows.has_displaced() {
            let hellos = &mut self.hellos;
            self.flows.drain_displaced(|h| h.release(hellos));
        }
        let Some((slot, created)) = entry else { return (self.settle_untracked(policy, p, f, pickup, now_ms), false) };
        let Pipeline { flows, hellos, quic, counters, tls_fail, midstream, limits, lane, talkers, .. } = self;
        let idle = *flows.idle_times();
        let Some((e, mut hello_of)) = flows.entry_and_hello_mut(slot) else { return (Verdict::default(), created) };

        // 2. Its decision, when the flow is new or an older policy decided it.
        if created || !e.decided_by(generation) {
            // The connection seen from its initiator, for the limit rules.
            let mut initiator = p.forward == e.initiator_is_lo();
            let d = if pickup {
                counters.add(Counter::Midstream, 1);
                let (d, sender_initiates) = pickup::pick_up(policy, p.summary, first_answer(policy, p, f), *midstream);
                e.set_picked_up(p.forward == sender_initiates);
                initiator = sender_initiates;
                d
            } else {
                // `decided` was asked from the side the lookup saw as the initiator. It does
                // not hold when the flow found then has vanished since (evicted by a flow
                // created in this chunk) and this packet created it anew, maybe from the other
                // side; nor is it there if the flow found was current. Then ask again, alone.
                let from_initiator = p.forward == e.initiator_is_lo();
                let d = match p.decided {
                    Some(d) if !(created && f.slot.is_some()) => d,
                    _ => policy.classify(&initiator_query(p.summary, from_initiator)),
                };
                if e.picked_up() {
                    // A picked-up connection is decided as a pickup again (its initiator kept).
                    pickup::again(policy, p.summary, from_initiator, d, *midstream)
                } else {
                    d
                }
            };
            // Limit rules: a new connection takes tokens; one decided again by a new
            // generation takes none, and stays limited only if it was (`limits`).
            let d = if !reads_limits(policy, pickup, *midstream) {
                e.set_limited(false);
                d
            } else {
                let q = initiator_query(p.summary, initiator);
                let l = if created {
                    limits.apply(policy, &q, d, now_ms, *lane, counters)
                } else if e.limited() {
                    limits::decide_again(policy, &q, d)
                } else {
                    limits::Limited { decision: d, limited: false }
                };
                e.set_limited(l.limited);
                l.decision
            };
            let was_pending = e.pending();
            if d.pending && e.inspected() {
                // The new policy wants the ClientHello, which went by under an older one: the
                // TLS verdict stands (passing mid-stream bytes as "not TLS" would be a bypass).
                let kept = e.decision();
                e.set_decision(kept, generation);
            } else {
                e.set_decision(d, generation);
            }
            let quic_flow = e.is_udp();
            e.set_watches_quic(quic_flow && d.pending);
            if e.pending() && !was_pending {
                counters.add(if quic_flow { Counter::QuicPending } else { Counter::TlsPending }, 1);
            }
            // A buffer goes back once no hello is read (a second QUIC hello being read on a
            // watched flow keeps its buffer across generations).
            if !(e.pending() || e.watches_quic() && e.reads_quic()) {
                if let Some(hello) = hello_of.get() {
                    hello.release(hellos);
                }
            }
        }
        e.observe(p.forward, p.flags, now_ms, &idle);
        let from_initiator = p.forward == e.initiator_is_lo();
        if created {
            talkers.connections.add(Source::of(&p.summary.addrs, from_initiator), 1);
        }

        // 3. A connection waiting for its ClientHello: the client's bytes fed to it (a TCP
        //    connection's segments, a UDP connection's datagrams as QUIC Initials).
        let start = usize::from(p.summary.payload_offset);
        let payload = p.bytes.get(start..start + usize::from(p.summary.payload_len)).unwrap_or(&[]);
        // A client datagram the QUIC reading refuses (`QuicFeed::Refused`): dropped, alone.
        let mut refused = false;
        if e.pending() {
            let Some(hello) = hello_of.get() else { return (Verdict::of(e.decision()), created) };
            let outcome = match hello {
                HelloState::Tcp(hello) => {
                    if from_initiator && p.flags & tcp_flags::SYN != 0 {
                        e.on_client_syn(hello, p.summary.tcp_seq);
                    }
                    if from_initiator && !payload.is_empty() {
                        let fed = hello.feed(hellos, p.summary.tcp_seq, payload);
                        e.note_hello_base(hello);
                        match fed {
                            FeedResult::NeedMore | FeedResult::Finished => None,
                            FeedResult::Complete(h) => Some(Read::Hello(h, None)),
                            // A picked-up connection's bytes may be the middle of a hello whose
                            // start went by unseen: they cannot be inspected.
                            FeedResult::NotTls if e.picked_up() => Some(Read::Failed),
                            FeedResult::NotTls => Some(Read::NotTls),
                            FeedResult::Invalid(_) | FeedResult::Overflow | FeedResult::PoolExhausted => {
                                Some(Read::Failed)
                            }
                        }
                    } else {
                        if p.flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
                            hello.release(hellos);
                        }
                        None
                    }
                }
                HelloState::Quic(q) if from_initiator => match read_quic(q, hellos, quic, p, payload, false) {
                    Ok((read, _)) => read,
                    Err(Refused) => {
                        refused = true;
                        None
                    }
                },
                HelloState::Quic(q) => {
                    q.note_server_datagram(payload);
                    None
                }
            };
            if let Some(read) = outcome {
                let d = decide_read(policy, p.summary, read, *tls_fail, (counters, talkers), e.is_udp(), on_hello);
                e.set_decision(d, generation);
                e.set_inspected();
                hello.release(hellos);
            }
        } else if e.watches_quic() && (from_initiator || e.reads_quic()) && quic_long_header(p.summary, p.bytes) {
            let Some(HelloState::Quic(q)) = hello_of.get() else { return (Verdict::of(e.decision()), created) };
            // 4. A decided UDP flow that TLS rules concern, and a datagram in QUIC's long form:
            //    from the client it may start another QUIC connection on these ports (or the
            //    first, after datagrams that were not QUIC). That hello is read too, and may
            //    only tighten the flow's verdict: a DROP stands whatever a later hello says
            //    (else a decoy hello would let a blocked connection's retransmissions through).
            if from_initiator {
                match read_quic(q, hellos, quic, p, payload, true) {
                    Err(Refused) => refused = true,
                    Ok((read, started)) => {
                        counters.add(Counter::QuicPending, u64::from(started));
                        if let Some(read) = read {
                            let d =
                                decide_read(policy, p.summary, read, *tls_fail, (counters, talkers), true, on_hello);
                            if d.action.denies() {
                                e.set_decision(d, generation);
                            }
                            q.release(hellos);
                        }
                    }
                }
                e.set_reads_quic(!q.is_done());
            } else {
                q.note_server_datagram(payload);
            }
        }
        if refused {
            counters.add(Counter::QuicRefused, 1);
            return (Verdict::of(Decision::new(Action::Drop, None)), created);
        }
        let verdict = Verdict::of(e.decision());
        // 5. A TCP connection REJECT answers is reset at both ends: its entry goes at once, so
        //    that the client's next connection from the same port is a new one (kept, its SYN
        //    would meet the old verdict until the entry expired), and a storm of rejected
        //    connections takes no room. A later segment of it is a mid-stream pickup, decided
        //    again. The chunk's lookups no longer hold (the caller is told, as for a creation).
        if verdict.action == Action::Reject && p.summary.protocol == ip_proto::TCP {
            flows.forget(slot);
            return (verdict, true);
        }
        (verdict, created)
    }

    /// A packet of a connection that has no entry and gets none: decided alone (see
    /// `pickup::untracked`), counted.
    #[cold]
    #[inline(never)]
    fn settle_untracked(
        &mut self,
        policy: &CompiledPolicy,
        p: &FlowPacket<'_>,
        f: &ChunkFlow,
        pickup: bool,
        now_ms: u64,
    ) -> Verdict {
        self.counters.add(Counter::Untracked, 1);
        let mut d = first_answer(policy, p, f);
        let mut initiator = !is_syn_ack(p.summary);
        if pickup {
            self.counters.add(Counter::Midstream, 1);
            (d, initiator) = pickup::pick_up(policy, p.summary, d, self.midstream);
        }
        // Each packet without an entry counts as a new connection for the limits.
        if reads_limits(policy, pickup, self.midstream) {
            let q = initiator_query(p.summary, initiator);
            d = self.limits.apply(policy, &q, d, now_ms, self.lane, &mut self.counters).decision;
        }
        Verdict::of(pickup::untracked(d))
    }
}

/// Whether a connection being decided is read against the limit rules: the policy has some,
/// and it is not a pickup that `midstream = drop` drops (not the policy's to decide).
fn reads_limits(policy: &CompiledPolicy, pickup: bool, midstream: Midstream) -> bool {
    !(policy.limits().is_empty() || pickup && midstream == Midstream::Drop)
}

/// The policy's answer for a connection the table does not know, with the packet's sender as
/// the initiator (a SYN-ACK's destination): the burst's bulk lookup asked it if its lookup
/// missed this flow too.
fn first_answer(policy: &CompiledPolicy, p: &FlowPacket<'_>, f: &ChunkFlow) -> Decision {
    match p.decided {
        Some(d) if f.slot.is_none() => d,
        _ => policy.classify(&initiator_query(p.summary, !is_syn_ack(p.summary))),
    }
}

/// Counts the chunk's policy drops by sender among the top talkers: the packets the policy
/// decided (`Flow` and `Single` steps) with a verdict that denies. Frames dropped as malformed
/// at parse (`Done`: no address to believe) are not counted; nor are the fragments the
/// fragment table drops after settle. Out of the loops: a chunk without drops pays one test.
/// A run of drops from one sender (a flood from a few) is one update of its count.
#[cold]
#[inline(never)]
fn note_drops<P: AsRef<[u8]>>(talkers: &mut Talkers, arrays: &mut StageArrays, packets: &[P], verdicts: &[Verdict]) {
    let mut run: Option<(Source, u64)> = None;
    for (i, (v, pkt)) in verdicts.iter().zip(packets).enumerate() {
        let done = arrays.steps.get(i).is_none_or(|s| matches!(s, Step::Done));
        if v.action.denies() && !done {
            let Some(summary) = arrays.summary(i, pkt.as_ref()) else { continue };
            let sender = Source::of(&summary.addrs, true);
            match &mut run {
                Some((s, n)) if *s == sender => *n += 1,
                _ => {
                    if let Some((s, n)) = run.replace((sender, 1)) {
                        talkers.drops.add(s, n);
                    }
                }
            }
        }
    }
    if let Some((s, n)) = run {
        talkers.drops.add(s, n);
    }
}

/// How [`settle_run`] finds a packet's entry.
#[derive(Clone, Copy)]
pub(super) enum EntryFrom {
    /// The slot resolve found, for flows the current policy decided (settle, after resolve).
    Resolved(Asking),
    /// The flow's lowest candidate, if it holds the flow, live and decided by policy
    /// `generation` (resolve, before the chunk's other lookups: see `burst::resolve_chunk`).
    Lowest { generation: u64 },
}

/// Settles packets from `i` on while they are decided already (`Done`) or belong to a known
/// flow that the current policy decided and that awaits no ClientHello nor watches for QUIC
/// Initials: the entry's verdict, its state updated.
/// Returns the first packet that needs more (or the chunk's end), the first flow not
/// settled, and the policy drops settled. Only while the burst lookups hold.
#[inline(always)]
pub(super) fn settle_run(
    table: &mut FlowTable,
    arrays: &StageArrays,
    from: EntryFrom,
    now_ms: u64,
    verdicts: &mut [Verdict],
    mut i: usize,
) -> (usize, usize, u64) {
    let idle = *table.idle_times();
    let (mut flows_done, mut drops) = (0, 0);
    let pending = verdicts.get_mut(i..).unwrap_or_default().iter_mut().zip(arrays.steps.get(i..).unwrap_or_default());
    for (v, step) in pending {
        // A flow's packet tested first: one comparison for the usual packet.
        if let Step::Flow { flow, forward, flags } = *step {
            // A flow index is below `MAX_BURST` (the mask only spares the bounds check).
            let Some(f) = arrays.flows.get(usize::from(flow) % MAX_BURST) else { break };
            let entry = match from {
                EntryFrom::Resolved(asking) if !asking.flow(flow) => f.slot.and_then(|s| table.entry_mut(s)),
                EntryFrom::Resolved(_) => None,
                EntryFrom::Lowest { generation } => table.known_mut(&f.key, f.candidates, now_ms, generation),
            };
            match entry {
                Some(e) if e.verdict_holds() => {
                    e.observe(forward, flags, now_ms, &idle);
                    *v = e.verdict();
                    drops += u64::from(v.action.denies());
                }
                _ => break,
            }
            flows_done = usize::from(flow) + 1;
        } else if let Step::Single { .. } = *step {
            break;
        }
        i += 1;
    }
    (i, flows_done, drops)
}

/// What the client's first bytes turned out to be.
// Consumed at once; boxing the hello would allocate per hello.
#[allow(clippy::large_enum_variant)]
enum Read<'p> {
    /// A complete ClientHello, from QUIC Initials of that version or (`None`) TCP.
    Hello(ClientHello<'p>, Option<QuicVersion>),
    /// Not TLS (TCP) or not QUIC (UDP).
    NotTls,
    /// A hello that cannot be inspected: `tls_fail` decides.
    Failed,
}

/// A QUIC datagram the reading cannot take (`QuicFeed::Refused`, or an IP fragment): dropped
/// alone, the connection's state unchanged.
struct Refused;

/// A client datagram of a UDP flow whose QUIC hello is awaited, or (`again`) of a decided one
/// watching for another: what it told, if anything, and whether it started a new reading.
#[inline]
fn read_quic<'p>(
    q: &mut QuicHello,
    hellos: &'p mut HelloBufferPool,
    quic: &'p mut QuicScratch,
    p: &FlowPacket<'_>,
    payload: &[u8],
    again: bool,
) -> Result<(Option<Read<'p>>, bool), Refused> {
    // A fragmented datagram (which QUIC forbids, RFC 9000 section 14): its first fragment holds
    // part of it (maybe only the UDP header), the server reads all of it. Refused unread.
    if p.summary.fragment == Fragment::First {
        return Err(Refused);
    }
    let (fed, started) =
        if again { q.feed_again(hellos, quic, payload) } else { (q.feed(hellos, quic, payload), false) };
    let read = match fed {
        QuicFeed::NeedMore | QuicFeed::Finished => None,
        QuicFeed::Complete(h) => Some(Read::Hello(h, q.version())),
        QuicFeed::NotInitial => Some(Read::NotTls),
        QuicFeed::Invalid(_) | QuicFeed::PoolExhausted => Some(Read::Failed),
        QuicFeed::Refused(_) => return Err(Refused),
    };
    Ok((read, started))
}

/// The decision once the client's first bytes were read (`quic_flow`: a UDP flow's datagrams
/// as QUIC Initials), counted (a complete hello also among its client's top talkers);
/// `on_hello` sees a complete hello. `summary` is a packet of the client's.
fn decide_read(
    policy: &CompiledPolicy,
    summary: &PacketSummary,
    read: Read<'_>,
    tls_fail: TlsFail,
    (counters, talkers): (&mut Counters, &mut Talkers),
    quic_flow: bool,
    on_hello: impl FnOnce(&ClientHello<'_>, Option<QuicVersion>),
) -> Decision {
    let count = |tcp, udp| if quic_flow { udp } else { tcp };
    let query = initiator_query(summary, true);
    match read {
        Read::Hello(h, version) => {
            counters.add(count(Counter::TlsDecided, Counter::QuicDecided), 1);
            talkers.hellos.add_named(Source::of(&summary.addrs, true), h.sni_bytes());
            on_hello(&h, version);
            classify_hello(policy, &query, &h, version.is_some())
        }
        Read::NotTls => {
            counters.add(count(Counter::TlsNotTls, Counter::QuicNotQuic), 1);
            policy.classify_tls(&query, TlsView::NotTls)
        }
        Read::Failed => {
            counters.add(count(Counter::TlsFailed, Counter::QuicFailed), 1);
            match tls_fail {
                TlsFail::Open => policy.classify_tls(&query, TlsView::NotTls),
                TlsFail::Closed => Decision::new(Action::Drop, None),
            }
        }
    }
}

/// Decide a connection from its complete ClientHello (read from QUIC Initials when `quic`);
/// fingerprints only when rules use them.
fn classify_hello(policy: &CompiledPolicy, query: &Query, h: &ClientHello<'_>, quic: bool) -> Decision {
    let ja3_hex = policy.needs_ja3().then(|| crate::tls::ja3(h).to_hex());
    let transport = if quic { Transport::Quic } else { Transport::Tcp };
    let ja4 = policy.needs_ja4().then(|| crate::tls::ja4::ja4_over(h, transport));
    let facts = HelloFacts {
        server_name: h.sni(),
        version: h.highest_version(),
        ja3: ja3_hex.as_ref().and_then(|b| std::str::from_utf8(b).ok()),
        ja4: ja4.as_ref().map(|j| j.as_str()),
    };
    policy.classify_tls(query, TlsView::Hello(&facts))
}
