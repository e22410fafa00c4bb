//! Step 3 of a chunk: each packet settled in order. Runs of known flows take one tight
//! loop ([`settle_known`]); every other packet the general path ([`Pipeline::settle_flow`]):
//! the flow found or created, (re)decided, its ClientHello fed while it is pending.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::flow::{FlowKey, FlowTable, Slot};
use super::{
    initiator_query, is_syn_ack, Asking, Chunk, ChunkFlow, HelloObserver, Pipeline, Step, TlsFail, Verdict, MAX_BURST,
};
use crate::policy::compile::{Decision, HelloFacts, Query, TlsView};
use crate::policy::{Action, CompiledPolicy};
use crate::tls::{ClientHello, FeedResult};
use crate::wire::{tcp_flags, PacketSummary};

impl Pipeline {
    /// 3. Settle each packet in order (a flow created earlier in this burst is found here):
    ///    runs of known flows in [`settle_known`], each other packet on the general path.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn settle_chunk<P: AsRef<[u8]>, O: HelloObserver>(
        &mut self,
        chunk: &mut Chunk,
        policy: &CompiledPolicy,
        packets: &[P],
        verdicts: &mut [Verdict],
        asking: Asking,
        now_ms: u64,
        base: usize,
        observer: &mut O,
    ) {
        let Chunk { steps, summaries, decided, flows } = chunk;
        let default = policy.default_action();
        self.inserted_in_chunk = false;
        let mut dropped = 0;
        let mut i = 0;
        loop {
            // Until a flow is created in this chunk, a known flow's lookup stands.
            if !self.inserted_in_chunk {
                i = settle_known(&mut self.flows, steps, flows, asking, verdicts, i, now_ms, &mut dropped);
            }
            let (Some(v), Some(step)) = (verdicts.get_mut(i), steps.get(i)) else { break };
            match *step {
                Step::Done => {}
                Step::Single => {
                    // Singles are always asked about.
                    *v = Verdict::of(decided.get(i).copied().flatten().unwrap_or(Decision::new(default, None)));
                }
                Step::Flow { flow, forward, flags } => {
                    let (Some(f), Some(p), Some(pkt)) =
                        (flows.get(usize::from(flow)), summaries.get(i), packets.get(i))
                    else {
                        i += 1;
                        continue;
                    };
                    let decided = asking.packet(i, *step).then(|| decided.get(i).copied().flatten()).flatten();
                    let flow = (f.key, f.hash, forward, flags);
                    *v = self.settle_flow(policy, p, pkt.as_ref(), flow, f.slot, decided, now_ms, |h| {
                        observer.hello(base + i, h)
                    });
                }
            }
            dropped += u64::from(v.action == Action::Drop);
            i += 1;
        }
        self.counters.allowed += verdicts.len() as u64 - dropped;
        self.counters.dropped += dropped;
    }

    /// Settle one packet of a flow: find or create its entry, (re)decide it when needed,
    /// feed a pending connection's ClientHello, and give the packet its verdict.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn settle_flow(
        &mut self,
        policy: &CompiledPolicy,
        p: &PacketSummary,
        pkt: &[u8],
        (key, hash, forward, flags): (FlowKey, u32, bool, u8),
        found: Option<Slot>,
        decided: Option<Decision>,
        now_ms: u64,
        on_hello: impl FnOnce(&ClientHello<'_>),
    ) -> Verdict {
        let generation = policy.generation();
        // The burst lookup's answer stands unless a flow was created since (that may have
        // reused the slot found, or created the flow missed). A flow it missed is looked up
        // again: it may be an expired entry, which the lookup frees, as it would have for
        // this packet alone.
        let known = match found {
            Some(s) if !self.inserted_in_chunk || self.flows.holds(s, &key) => Some(s),
            _ => self.flows.lookup(&key, hash, now_ms),
        };
        let (slot, fresh) = match known {
            Some(s) => (s, false),
            None => {
                self.inserted_in_chunk = true;
                (self.flows.insert(key, hash, forward != is_syn_ack(p), now_ms), true)
            }
        };
        let Pipeline { flows, hellos, counters, tls_fail, .. } = self;
        let Some((e, hello)) = flows.entry_and_hello_mut(slot) else { return Verdict::default() };
        let from_initiator = forward == e.initiator_is_lo();
        if fresh || e.generation != generation {
            // `decided` was asked from the side the lookup saw as the initiator. It does not
            // hold when the flow found then has vanished since (evicted by a flow created in
            // this burst) and this packet created it anew, maybe from the other side; nor is
            // it there if the flow found was current. Then ask again, alone.
            let d = match decided {
                Some(d) if !(fresh && found.is_some()) => d,
                _ => policy.classify(&initiator_query(p, from_initiator)),
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
            if e.pending() && !was_pending {
                counters.tls_pending += 1;
            }
            if !e.pending() {
                hello.release(hellos);
            }
        }
        e.observe(forward, flags, now_ms);
        if e.pending() {
            if from_initiator && flags & tcp_flags::SYN != 0 {
                e.on_client_syn(hello, p.tcp_seq);
            }
            let start = usize::from(p.payload_offset);
            let payload = pkt.get(start..start + usize::from(p.payload_len)).unwrap_or(&[]);
            if from_initiator && !payload.is_empty() {
                let query = initiator_query(p, true);
                let needs = (policy.needs_ja3(), policy.needs_ja4());
                let fed = hello.feed(hellos, p.tcp_seq, payload);
                e.note_hello_base(hello);
                let outcome = match fed {
                    FeedResult::NeedMore | FeedResult::Finished => None,
                    FeedResult::Complete(h) => {
                        counters.tls_decided += 1;
                        on_hello(&h);
                        Some(classify_hello(policy, &query, &h, needs))
                    }
                    FeedResult::NotTls => {
                        counters.tls_not_tls += 1;
                        Some(policy.classify_tls(&query, TlsView::NotTls))
                    }
                    FeedResult::Invalid(_) | FeedResult::Overflow | FeedResult::PoolExhausted => {
                        counters.tls_failed += 1;
                        Some(match tls_fail {
                            TlsFail::Open => policy.classify_tls(&query, TlsView::NotTls),
                            TlsFail::Closed => Decision::new(Action::Drop, None),
                        })
                    }
                };
                if let Some(d) = outcome {
                    e.set_decision(d, generation);
                    e.set_inspected();
                    hello.release(hellos);
                }
            } else if flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
                hello.release(hellos);
            }
        }
        Verdict::of(e.decision())
    }
}

/// Settles packets from `i` on while they are decided already (`Done`) or belong to a known
/// flow that the current policy decided and that awaits no ClientHello (the common case):
/// the entry's verdict, its state updated. Returns the first packet that needs the general
/// path (or the chunk's end); `dropped` counts the drops settled. No flow may have been
/// created in the chunk since the lookups (it could have reused a slot found).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn settle_known(
    table: &mut FlowTable,
    steps: &[Step; MAX_BURST],
    flows: &[ChunkFlow; MAX_BURST],
    asking: Asking,
    verdicts: &mut [Verdict],
    mut i: usize,
    now_ms: u64,
    dropped: &mut u64,
) -> usize {
    while let (Some(v), Some(step)) = (verdicts.get_mut(i), steps.get(i)) {
        if let Step::Flow { flow, forward, flags } = *step {
            if asking.flow(flow) {
                break;
            }
            let slot = flows.get(usize::from(flow)).and_then(|f| f.slot);
            match slot.and_then(|s| table.entry_mut(s)) {
                Some(e) if !e.pending() => {
                    e.observe(forward, flags, now_ms);
                    *v = e.verdict();
                }
                _ => break,
            }
        } else if let Step::Single = step {
            break;
        }
        *dropped += u64::from(v.action == Action::Drop);
        i += 1;
    }
    i
}

/// Decide a connection from its complete ClientHello; fingerprints only when rules use them.
fn classify_hello(policy: &CompiledPolicy, query: &Query, h: &ClientHello<'_>, (ja3, ja4): (bool, bool)) -> Decision {
    let ja3_hex = ja3.then(|| crate::tls::ja3(h).to_hex());
    let ja4 = ja4.then(|| crate::tls::ja4(h));
    let facts = HelloFacts {
        server_name: h.sni(),
        version: h.highest_version(),
        ja3: ja3_hex.as_ref().and_then(|b| std::str::from_utf8(b).ok()),
        ja4: ja4.as_ref().map(|j| j.as_str()),
    };
    policy.classify_tls(query, TlsView::Hello(&facts))
}
