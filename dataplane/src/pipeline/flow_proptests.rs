//! The flow table against plain sets: whatever the sequence of lookups and insertions, a
//! found slot holds the key asked for, no key is held twice, every flow created is either
//! held or counted as evicted, and nothing is evicted while the flows fit in one bucket.

use crate::counters::Counter;
use std::collections::BTreeSet;

use proptest::prelude::*;

use super::flow::{FlowKey, FlowTable, FlowTimeouts, WAYS};
use crate::wire::{ip_proto, Fragment, IpPair, PacketSummary};

fn key(n: u16, v6: bool) -> FlowKey {
    let (src, dst) = (0x0a00_0000 | u32::from(n), 0xc000_0201);
    let addrs =
        if v6 { IpPair::V6 { src: u128::from(src) << 64, dst: u128::from(dst) } } else { IpPair::V4 { src, dst } };
    let p = PacketSummary {
        addrs,
        protocol: ip_proto::TCP,
        src_port: 1024 + n,
        dst_port: 443,
        has_ports: true,
        fragment: Fragment::None,
        ..PacketSummary::EMPTY
    };
    FlowKey::of(&p).0
}

/// Looks `k` up and inserts it when absent, as the pipeline does for a packet.
fn touch(table: &mut FlowTable, k: &FlowKey, now: u64) {
    if table.lookup(k, table.hash(k), now).is_none() {
        table.insert(*k, table.hash(k), true, now);
    }
}

proptest! {
    #[test]
    fn the_table_holds_what_it_reports(
        capacity in 1usize..200,
        ops in prop::collection::vec((0u16..300, any::<bool>()), 1..600),
    ) {
        let mut table = FlowTable::new(capacity, FlowTimeouts::default());
        let mut seen = BTreeSet::new();
        for (now, &(n, v6)) in ops.iter().enumerate() {
            let k = key(n, v6);
            touch(&mut table, &k, now as u64);
            seen.insert((n, v6));
            // Just touched: present, and its slot holds it.
            let slot = table.lookup(&k, table.hash(&k), now as u64);
            prop_assert!(slot.is_some_and(|s| table.holds(s, &k)));
        }
        let held = seen.iter().filter(|&&(n, v6)| {
            let k = key(n, v6);
            table.lookup(&k, table.hash(&k), ops.len() as u64).is_some_and(|s| table.holds(s, &k))
        }).count();
        // No key twice: the live entries are exactly the distinct keys found.
        prop_assert_eq!(table.len(), held);
        prop_assert!(table.len() <= table.capacity());
        // Every flow created is held or was evicted (nothing expires here).
        prop_assert_eq!(table.counters.get(Counter::FlowsCreated), held as u64 + table.counters.get(Counter::Evictions));
        prop_assert_eq!(table.counters.get(Counter::Expired), 0);
        if seen.len() <= WAYS {
            prop_assert_eq!(table.counters.get(Counter::Evictions), 0);
            prop_assert_eq!(held, seen.len());
        }
    }
}

/// The staged lookup's probe reads a flow's second bucket only when its first has no
/// candidate. A flow that spilled into its second bucket while a flow of its first shares
/// its signature is then missed by probe and resolve, and found by `lookup` (which the
/// pipeline's settle step calls for every flow the staged lookup did not find).
#[test]
fn a_spilled_flow_hidden_by_a_signature_twin_is_found_by_lookup() {
    // Two buckets. Hash 2: first bucket 0 (low bit 0), second bucket 1 (bit 16 is 0, and the
    // second choice flips the low bit of the rotated hash).
    let mut table = FlowTable::new(2 * WAYS, FlowTimeouts::default());
    let twin = 2u32;
    let now = 1;
    // Bucket 0 full, the first of its flows with the twin's hash (so its signature).
    let mut held = Vec::new();
    for n in 0..WAYS as u16 {
        let k = key(n, false);
        let hash = if n == 0 { twin } else { 4 * u32::from(n) };
        let slot = table.insert(k, hash, true, now).expect("room in bucket 0");
        held.push((k, hash, slot));
    }
    // The flow with the same hash: bucket 0 is full, so it goes to bucket 1.
    let spilled = key(100, false);
    let slot = table.insert(spilled, twin, true, now).expect("room in bucket 1");
    assert_eq!(table.len(), WAYS + 1);

    // The probe sees the twin's way in bucket 0 and does not read bucket 1: not found there.
    let candidates = table.probe(twin, ());
    assert_eq!(table.resolve(&spilled, twin, candidates, now, 0), (None, false));
    // The lookup reads both buckets of a spilled one: found, in the slot it was given.
    assert_eq!(table.lookup(&spilled, twin, now), Some(slot));
    assert!(table.holds(slot, &spilled));
    // And the twin itself is found by the staged lookup, as every flow of bucket 0 is.
    for (k, hash, slot) in held {
        let candidates = table.probe(hash, ());
        assert_eq!(table.resolve(&k, hash, candidates, now, 0).0, Some(slot));
    }
}

/// Entries keep their idle timeout in 32 bits: a configured timeout longer than that (49.7
/// days) is taken as the longest one kept, never as a short one.
#[test]
fn idle_timeouts_past_32_bits_are_the_longest_kept() {
    let long = FlowTimeouts { tcp_established_ms: u64::MAX, tcp_transitory_ms: 1 << 40, udp_ms: 7 };
    let mut table = FlowTable::new(64, long);
    let k = key(1, false);
    let slot = table.insert(k, table.hash(&k), true, 0).expect("room");
    // Not established: the transitory timeout, 2^40 ms, kept as u32::MAX ms.
    let limit = u64::from(u32::MAX);
    assert_eq!(table.lookup(&k, table.hash(&k), limit), Some(slot));
    assert_eq!(table.lookup(&k, table.hash(&k), limit + 1), None, "expired one past the longest");
}
