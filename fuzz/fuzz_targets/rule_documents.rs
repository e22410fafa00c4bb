//! Any text as a rule document: parsing and validation never panic; an accepted set compiles
//! and its compiled policy agrees with the reference scan on addresses taken from the input.
#![no_main]

use dataplane::policy::{CompiledPolicy, Query};
use dataplane::policy::{reference, rule_set_from_str, Action};
use dataplane::wire::{ip_proto, IpPair};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(set) = rule_set_from_str(text, "fuzz") else { return };
    let Ok(policy) = CompiledPolicy::compile(set.clone(), Action::Drop) else { return };
    // Probe with each rule's own network addresses, from both sides.
    for rule in set.rules() {
        for net in &rule.cidr_blocks {
            let addrs = match net.network() {
                std::net::IpAddr::V4(a) => IpPair::V4 { src: a.into(), dst: 0x0a00_0001 },
                std::net::IpAddr::V6(a) => IpPair::V6 { src: a.into(), dst: 1 },
            };
            for q in [
                Query::new(addrs, ip_proto::TCP, Some(443)),
                Query::new(addrs, ip_proto::ICMP, None),
                Query { transport_unknown: true, ..Query::new(addrs, ip_proto::TCP, None) },
            ] {
                let (action, rule, pending) = reference::classify(&set, Action::Drop, &q);
                let d = policy.classify(&q);
                assert_eq!((d.action, d.rule(), d.pending), (action, rule.map(|r| r as u32), pending));
            }
        }
    }
});
