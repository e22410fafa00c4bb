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
