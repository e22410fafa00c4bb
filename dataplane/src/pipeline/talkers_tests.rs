//! The space-saving sketch against exact counting (a plain HashMap).

use std::collections::HashMap;

use proptest::prelude::*;

use super::talkers::{Source, SpaceSaving, Talkers, TopBy};

/// Checks the space-saving guarantees of `s` against the exact counts `truth`.
fn check_guarantees(s: &SpaceSaving, truth: &HashMap<Source, u64>) {
    let n: u64 = truth.values().sum();
    let k = s.capacity() as u64;
    assert_eq!(s.total(), n);
    let held: HashMap<Source, _> = s.entries().iter().map(|c| (c.source, *c)).collect();
    assert_eq!(held.len(), s.entries().len(), "a source is held twice");
    assert_eq!(held.len() as u64, k.min(truth.len() as u64));
    for (source, &t) in truth {
        if t * k > n {
            assert!(held.contains_key(source), "{source} counted {t} of {n} (k {k}) is not held");
        }
        match held.get(source) {
            Some(c) => {
                assert!(c.count >= t, "{source}: reported {} below its true {t}", c.count);
                assert!(c.count - c.error <= t, "{source}: {} - {} above its true {t}", c.count, c.error);
            }
            // Not held: it counted no more than the least held.
            None => assert!(t <= s.floor(), "{source} ({t}) left out above the floor {}", s.floor()),
        }
    }
    // Held counts add up to everything counted.
    assert_eq!(s.entries().iter().map(|c| c.count).sum::<u64>(), n);
    // The heap's root is the least count; the index finds every entry held where it is.
    if held.len() as u64 == k {
        assert_eq!(s.floor(), s.entries().iter().map(|c| c.count).min().unwrap());
    }
    let mut probe = s.clone();
    for (i, c) in s.entries().iter().enumerate() {
        assert_eq!(probe.add(c.source, 0), Some(i), "{} not found at its entry", c.source);
    }
    assert_eq!(probe.entries(), s.entries());
}

fn source(i: u16) -> Source {
    if i.is_multiple_of(5) {
        Source::v6(0x2001_0db8_0000_0000_0000_0000_0000_0000 | (u128::from(i) << 64) | 7)
    } else {
        Source::v4(0x0a00_0000 | u32::from(i))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Skewed streams (a few heavy sources among many light ones) over small k.
    #[test]
    fn space_saving_keeps_its_guarantees(
        k in 1usize..24,
        stream in proptest::collection::vec(
            prop_oneof![3 => 0u16..4, 2 => 0u16..400],
            0..2000,
        ),
    ) {
        let mut s = SpaceSaving::new(k, false);
        let mut truth: HashMap<Source, u64> = HashMap::new();
        for (step, &i) in stream.iter().enumerate() {
            s.add(source(i), 1);
            *truth.entry(source(i)).or_default() += 1;
            if step.is_multiple_of(97) {
                check_guarantees(&s, &truth);
            }
        }
        check_guarantees(&s, &truth);
        // A copy holds the same and goes on the same.
        let mut copy = SpaceSaving::new(k, false);
        copy.copy_from(&s);
        prop_assert_eq!(copy.entries(), s.entries());
        copy.add(source(1), 3);
        *truth.entry(source(1)).or_default() += 3;
        check_guarantees(&copy, &truth);
    }
}

#[test]
fn an_exact_sketch_counts_exactly_while_it_has_room() {
    let mut s = SpaceSaving::new(8, false);
    for (i, n) in [(1u16, 5u64), (2, 1), (3, 9)] {
        for _ in 0..n {
            s.add(source(i), 1);
        }
    }
    let mut got: Vec<_> = s.entries().iter().map(|c| (c.source, c.count, c.error)).collect();
    got.sort();
    assert_eq!(got, vec![(source(1), 5, 0), (source(2), 1, 0), (source(3), 9, 0)]);
    assert_eq!(s.floor(), 0);
}

#[test]
fn a_new_source_replaces_the_least_counted_and_inherits_its_count() {
    let mut s = SpaceSaving::new(2, false);
    s.add(source(1), 4);
    s.add(source(2), 2);
    assert_eq!(s.floor(), 2);
    s.add(source(3), 1);
    let mut got: Vec<_> = s.entries().iter().map(|c| (c.source, c.count, c.error)).collect();
    got.sort();
    assert_eq!(got, vec![(source(1), 4, 0), (source(3), 3, 2)]);
}

#[test]
fn sources_print_as_addresses_and_ipv6_by_its_64() {
    assert_eq!(Source::v4(0x0a00_0105).to_string(), "10.0.1.5");
    let a: u128 = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse::<std::net::Ipv6Addr>().unwrap().into();
    let b: u128 = "2001:db8:1:2::1".parse::<std::net::Ipv6Addr>().unwrap().into();
    assert_eq!(Source::v6(a), Source::v6(b));
    assert_eq!(Source::v6(a).to_string(), "2001:db8:1:2::/64");
    // An IPv4 source never equals an IPv6 /64, whatever the bits.
    assert_ne!(Source::v4(0), Source::v6(0xffff_0000_0000));
    assert_eq!(Source::v6(0).to_string(), "::/64");
}

#[test]
fn server_names_are_kept_per_source_bounded_in_count_and_bytes() {
    let mut t = Talkers::new(4);
    let long = [b'a'; 100];
    for name in [&b"a.example"[..], b"b.example", b"a.example", &long, b"c.example", b"d.example", b"a.example"] {
        t.hellos.add_named(source(1), Some(name));
    }
    t.hellos.add_named(source(1), None);
    let e = t.hellos.entries().iter().position(|c| c.source == source(1)).unwrap();
    assert_eq!(t.hellos.entries()[e].count, 8);
    let names: Vec<(Vec<u8>, u64)> = t.hellos.snis(e).unwrap().names().map(|n| (n.name().to_vec(), n.count)).collect();
    // Four slots: a.example (3), b (1), the long name cut to 64 bytes (1), c (1); then d
    // took the least counted slot (b, the first of the ones) with its count plus one.
    assert_eq!(names.len(), 4);
    assert_eq!(names[0], (b"a.example".to_vec(), 3));
    assert!(names.contains(&(vec![b'a'; 64], 1)), "{names:?}");
    assert!(names.contains(&(b"d.example".to_vec(), 2)), "{names:?}");
    assert!(names.contains(&(b"c.example".to_vec(), 1)), "{names:?}");
    assert!(t.connections.snis(0).is_none() && t.by(TopBy::Drops).entries().is_empty());
}
