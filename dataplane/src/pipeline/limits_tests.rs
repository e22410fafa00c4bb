//! The bucket table alone, on a fake clock: exact counts, collisions, a flood of sources.

use super::*;
use crate::counters::{Counter, Counters};
use crate::wire::IpPair;

fn v4(src: u32) -> Source {
    Source::of(&IpPair::V4 { src, dst: 1 }, true)
}

fn v6(src: u128) -> Source {
    Source::of(&IpPair::V6 { src, dst: 1 }, true)
}

const LIMIT: ConnectionLimit = ConnectionLimit { per_second: 10, burst: 3 };

#[test]
fn a_source_gets_its_burst_then_the_rate() {
    // A fixed secret: the three buckets below in slots of their own (a shared slot would
    // give the later ones the first one's emptied bucket).
    let mut t = LimitTable::with_seed(1024, 1);
    let mut c = Counters::default();
    let takes = |t: &mut LimitTable, c: &mut Counters, n: usize, now: u64| {
        (0..n).filter(|_| t.take(7, v4(0x0a00_0001), LIMIT, now, c)).count()
    };
    // The burst at once, then nothing until the clock moves.
    assert_eq!(takes(&mut t, &mut c, 5, 0), 3);
    assert_eq!(takes(&mut t, &mut c, 5, 99), 0);
    // 10 a second: one token per 100 ms.
    assert_eq!(takes(&mut t, &mut c, 5, 100), 1);
    assert_eq!(takes(&mut t, &mut c, 5, 350), 2);
    // Over ten seconds: 100 tokens at most, and never more than the burst at once.
    let mut passed = 0;
    for ms in (360..=10_350).step_by(10) {
        passed += takes(&mut t, &mut c, 2, ms);
    }
    assert_eq!(passed, 100);
    // Quiet for a while: the burst again, no more.
    assert_eq!(takes(&mut t, &mut c, 5, 20_000), 3);
    // Other sources and other rules have their own buckets.
    assert_eq!((0..5).filter(|_| t.take(7, v4(0x0a00_0002), LIMIT, 20_000, &mut c)).count(), 3);
    assert_eq!((0..5).filter(|_| t.take(8, v4(0x0a00_0001), LIMIT, 20_000, &mut c)).count(), 3);
    assert_eq!(c.get(Counter::LimitShared), 0);
}

#[test]
fn an_ipv6_source_is_its_64() {
    // A fixed secret: the two /64s in slots of their own.
    let mut t = LimitTable::with_seed(1024, 1);
    let mut c = Counters::default();
    let prefix: u128 = 0x2001_0db8_0005_0001 << 64;
    // Three addresses of one /64 share its bucket; another /64 has its own.
    let passed = (1..=6u128).filter(|i| t.take(7, v6(prefix | i), LIMIT, 0, &mut c)).count();
    assert_eq!(passed, 3);
    assert!(t.take(7, v6((prefix + (1 << 64)) | 1), LIMIT, 0, &mut c));
    // An IPv4 address whose bits are a /64's is another source.
    assert_ne!(v4(0x2001_0db8), v6(0x2001_0db8 << 64));
}

#[test]
fn a_source_takes_a_slot_over_only_from_a_quiet_one() {
    // One slot: every source collides.
    let mut t = LimitTable::new(1);
    let mut c = Counters::default();
    let (a, b) = (v4(1), v4(2));
    assert!(t.take(7, a, LIMIT, 0, &mut c));
    // A is active (its bucket not full): B shares it (two tokens left), at A's rate.
    assert!(t.take(7, b, LIMIT, 0, &mut c));
    assert!(t.take(7, b, LIMIT, 0, &mut c));
    assert!(!t.take(7, b, LIMIT, 0, &mut c));
    assert!(!t.take(7, a, LIMIT, 0, &mut c));
    assert_eq!(c.get(Counter::LimitShared), 3);
    // 300 ms later A's bucket is full again (3 tokens at 10/s): B takes the slot over, with
    // a full bucket of its own, and A, now the newcomer, shares B's.
    assert!(t.take(7, b, LIMIT, 300, &mut c));
    assert_eq!(c.get(Counter::LimitShared), 3);
    assert!(t.take(7, a, LIMIT, 300, &mut c));
    assert_eq!(c.get(Counter::LimitShared), 4);
    assert!(t.take(7, b, LIMIT, 300, &mut c));
    assert!(!t.take(7, b, LIMIT, 300, &mut c));
}

#[test]
fn a_flood_of_distinct_sources_shares_the_slots_it_finds_taken() {
    // 10,000 sources opening one connection each within a millisecond, into 64 slots, burst
    // 1: each slot goes to the first source that lands on it; every later one shares an
    // active bucket, already empty. The table never grows.
    let mut t = LimitTable::new(64);
    let bytes = t.memory();
    let mut c = Counters::default();
    let one = ConnectionLimit { per_second: 1, burst: 1 };
    let passed = (0..10_000u32).filter(|i| t.take(7, v4(0x0a00_0000 + i), one, 0, &mut c)).count();
    assert_eq!(passed, 64);
    assert_eq!(c.get(Counter::LimitShared), 10_000 - 64);
    assert_eq!(t.memory(), bytes);
    assert_eq!(bytes, 64 * 48);
}

#[test]
fn a_changed_limit_keeps_the_credit_within_the_new_size() {
    let mut t = LimitTable::new(16);
    let mut c = Counters::default();
    let big = ConnectionLimit { per_second: 1, burst: 10 };
    assert!(t.take(7, v4(1), big, 0, &mut c));
    // Nine tokens left; the rule now allows a burst of 2.
    let small = ConnectionLimit { per_second: 1, burst: 2 };
    assert_eq!((0..5).filter(|_| t.take(7, v4(1), small, 0, &mut c)).count(), 2);
}

#[test]
fn slots_are_a_power_of_two_within_the_bound() {
    assert_eq!(check_slots(1), Ok(1));
    assert_eq!(check_slots(65536), Ok(65536));
    assert!(check_slots(0).is_err());
    assert!(check_slots(1000).is_err());
    assert!(check_slots(MAX_SLOTS * 2).is_err());
}
