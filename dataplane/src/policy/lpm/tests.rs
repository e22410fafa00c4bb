#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn r4(s: &str, value: u32) -> Route<u32> {
    let (a, l) = s.split_once('/').unwrap();
    Route { addr: v4(a), len: l.parse().unwrap(), value }
}

fn r6(s: &str, value: u32) -> Route<u128> {
    let (a, l) = s.split_once('/').unwrap();
    Route { addr: v6(a), len: l.parse().unwrap(), value }
}

/// Longest matching prefix by linear scan; ties go to the later route.
fn reference<K: LpmKey>(routes: &[Route<K>], default: u32, key: K) -> u32 {
    let mut best: Option<(u8, u32)> = None;
    for r in routes {
        let len = u32::from(r.len);
        if key.masked(len) == r.addr.masked(len) && !matches!(best, Some((l, _)) if r.len < l) {
            best = Some((r.len, r.value));
        }
    }
    best.map_or(default, |(_, v)| v)
}

/// Checks `lookup` and `lookup_bulk` against the linear scan.
fn check<K: LpmKey>(routes: &[Route<K>], default: u32, keys: &[K]) -> Lpm<K> {
    let lpm = Lpm::build(routes, default).unwrap();
    let expected: Vec<u32> = keys.iter().map(|k| reference(routes, default, *k)).collect();
    for (k, e) in keys.iter().zip(&expected) {
        assert_eq!(lpm.lookup(*k), *e, "lookup({k:#x?})");
    }
    let mut out = vec![u32::MAX; keys.len()];
    lpm.lookup_bulk(keys, &mut out);
    for ((k, e), o) in keys.iter().zip(&expected).zip(&out) {
        assert_eq!(*o, *e, "lookup_bulk({k:#x?})");
    }
    // One key per batch: a batch takes the fast path exactly when all its keys end in top-level
    // buckets, so this checks every key on the path its own position selects.
    for (k, e) in keys.iter().zip(&expected) {
        let mut one = [u32::MAX];
        lpm.lookup_bulk(core::slice::from_ref(k), &mut one);
        assert_eq!(one[0], *e, "lookup_bulk([{k:#x?}])");
    }
    // A shorter output slice: only its length is written.
    if keys.len() > 1 {
        let mut short = vec![u32::MAX; keys.len() - 1];
        let mut longer = keys.to_vec();
        longer.push(keys[0]);
        lpm.lookup_bulk(&longer[1..], &mut short);
        assert_eq!(&short[..], &expected[1..]);
    }
    lpm
}

#[test]
fn empty_table_gives_default() {
    let lpm = check::<u32>(&[], 7, &[0, 1, v4("10.0.0.1"), u32::MAX]);
    assert_eq!(lpm.stats().buckets, 0);
    assert_eq!(lpm.default_value(), 7);
    check::<u128>(&[], 9, &[0, 1, u128::MAX]);
}

#[test]
fn nested_v4() {
    let routes = [
        r4("10.0.0.0/8", 1),
        r4("10.1.0.0/16", 2),
        r4("10.1.2.0/24", 3),
        r4("10.1.2.3/32", 4),
        r4("10.1.2.128/25", 5),
        r4("10.1.0.0/20", 6),
    ];
    let lpm = Lpm::build(&routes, 0).unwrap();
    for (k, v) in [
        ("9.255.255.255", 0),
        ("10.0.0.0", 1),
        ("10.255.0.1", 1),
        ("10.1.16.0", 2),
        ("10.1.255.255", 2),
        ("10.1.15.255", 6),
        ("10.1.2.2", 3),
        ("10.1.2.3", 4),
        ("10.1.2.4", 3),
        ("10.1.2.129", 5),
        ("10.1.3.0", 6),
        ("11.0.0.0", 0),
    ] {
        assert_eq!(lpm.lookup(v4(k)), v, "{k}");
    }
    check(&routes, 0, &(0..=255u32).map(|i| v4("10.1.2.0") + i).collect::<Vec<_>>());
}

#[test]
fn every_length_on_one_path() {
    let a = v4("172.31.254.129");
    let routes: Vec<Route<u32>> = (0..=32).map(|len| Route { addr: a, len, value: 100 + u32::from(len) }).collect();
    // Flip each bit of the address: the longest match is the prefix just above that bit.
    let keys: Vec<u32> = (0..32).map(|b| a ^ (1 << b)).chain([a]).collect();
    let lpm = check(&routes, 0, &keys);
    for b in 0..32u32 {
        assert_eq!(lpm.lookup(a ^ (1 << b)), 100 + (31 - b));
    }
    assert_eq!(lpm.lookup(a), 132);
    assert!(lpm.stats().nodes >= 1);
}

#[test]
fn default_route_and_host_routes() {
    let routes = [r4("0.0.0.0/0", 42), r4("255.255.255.255/32", 1), r4("0.0.0.0/32", 2), r4("1.2.3.4/32", 3)];
    let lpm = check(&routes, 0, &[0, 1, u32::MAX, u32::MAX - 1, v4("1.2.3.4"), v4("1.2.3.5")]);
    assert_eq!(lpm.lookup(v4("8.8.8.8")), 42);
    assert_eq!(lpm.lookup(u32::MAX), 1);
    assert_eq!(lpm.lookup(0), 2);
    assert_eq!(lpm.default_value(), 42);
    // /0 with host bits set is still /0.
    let lpm = Lpm::build(&[Route { addr: 0xdead_beefu32, len: 0, value: 5 }], 0).unwrap();
    assert_eq!(lpm.lookup(1), 5);
}

#[test]
fn host_bits_ignored_and_duplicates_later_wins() {
    let routes = [r4("10.1.2.255/24", 1), r4("10.1.2.0/24", 2), r4("192.168.0.0/16", 3), r4("192.168.77.1/16", 4)];
    let lpm = check(&routes, 0, &[v4("10.1.2.9"), v4("192.168.9.9"), v4("10.1.3.0")]);
    assert_eq!(lpm.lookup(v4("10.1.2.9")), 2);
    assert_eq!(lpm.lookup(v4("192.168.9.9")), 4);
    assert_eq!(lpm.stats().prefixes, 2);
    let routes = [r6("2001:db8::1/32", 1), r6("2001:db8::/32", 2), r6("2001:db8::/32", 3)];
    let lpm = check(&routes, 0, &[v6("2001:db8::5"), v6("2001:db9::")]);
    assert_eq!(lpm.lookup(v6("2001:db8:ffff::")), 3);
}

#[test]
fn dense_regions_force_nodes() {
    let mut routes = vec![r4("10.5.0.0/16", 1), r4("10.6.7.0/24", 2), r4("10.6.0.0/16", 3)];
    for i in 0..300u32 {
        // 300 /24s under 10.5/16 (some repeated, since only 256 exist)
        routes.push(Route { addr: v4("10.5.0.0") | ((i * 7 % 256) << 8), len: 24, value: 10 + i });
    }
    for i in 0..1000u32 {
        // 1000 /32s under 10.6.7/24 (each one present about 4 times; last wins)
        routes.push(Route { addr: v4("10.6.7.0") | (i * 13 % 256), len: 32, value: 1000 + i });
    }
    let mut keys = Vec::new();
    for i in 0..65536u32 {
        keys.push(v4("10.5.0.0") | i);
        keys.push(v4("10.6.0.0") | i);
    }
    let lpm = check(&routes, 0, &keys);
    let s = lpm.stats();
    assert!(s.nodes >= 2, "{s:?}");
    assert!(s.max_depth >= 2, "{s:?}");
}

#[test]
fn v6_prefixes() {
    let routes = [
        r6("2001:db8::/32", 1),
        r6("2001:db8:1::/48", 2),
        r6("2001:db8:1:2::/64", 3),
        r6("2001:db8:1:2::1/128", 4),
        r6("2001:db8:1:2:8000::/65", 5),
        r6("::/0", 6),
        r6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 7),
        r6("::/128", 8),
    ];
    let keys: Vec<u128> = [
        "2001:db8::",
        "2001:db8:ffff::1",
        "2001:db8:1::",
        "2001:db8:1:3::",
        "2001:db8:1:2::",
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:8000::1",
        "2001:db8:1:2:7fff::1",
        "2001:db7::",
        "::",
        "::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
    ]
    .iter()
    .map(|s| v6(s))
    .collect();
    let lpm = check(&routes, 0, &keys);
    let expect = [1, 1, 2, 2, 3, 4, 3, 5, 3, 6, 8, 6, 7, 6];
    for (k, e) in keys.iter().zip(expect) {
        assert_eq!(lpm.lookup(*k), e, "{k:#x}");
    }
    assert!(lpm.stats().long_buckets >= 1, "{:?}", lpm.stats());
}

#[test]
fn v6_dense_and_every_length() {
    let a = v6("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
    let mut routes: Vec<Route<u128>> = (0..=128).map(|len| Route { addr: a, len, value: u32::from(len) }).collect();
    for i in 0..2000u128 {
        routes.push(Route { addr: v6("2001:db8:5::") | (i << 80), len: 48, value: 1000 + i as u32 });
        routes.push(Route { addr: v6("2001:db8:6::") | (i * 7919), len: 128, value: 5000 + i as u32 });
    }
    let mut keys: Vec<u128> = (0..128).map(|b| a ^ (1u128 << b)).chain([a]).collect();
    for i in 0..3000u128 {
        keys.push(v6("2001:db8:5::") | (i << 80) | 77);
        keys.push(v6("2001:db8:6::") | (i * 7919));
        keys.push(v6("2001:db8:6::") | (i * 7919 + 1));
    }
    let lpm = check(&routes, 0, &keys);
    for b in 0..128u32 {
        assert_eq!(lpm.lookup(a ^ (1u128 << b)), 127 - b);
    }
    assert!(lpm.stats().nodes > 2);
}

#[test]
fn errors() {
    assert_eq!(
        Lpm::<u32>::build(&[Route { addr: 0, len: 33, value: 0 }], 0).unwrap_err(),
        LpmError::PrefixTooLong { len: 33, bits: 32 }
    );
    assert_eq!(
        Lpm::<u128>::build(&[Route { addr: 0, len: 129, value: 0 }], 0).unwrap_err(),
        LpmError::PrefixTooLong { len: 129, bits: 128 }
    );
    assert_eq!(
        Lpm::<u32>::build(&[Route { addr: 0, len: 8, value: MAX_VALUE + 1 }], 0).unwrap_err(),
        LpmError::ValueTooLarge(MAX_VALUE + 1)
    );
    assert_eq!(Lpm::<u128>::build(&[], u32::MAX).unwrap_err(), LpmError::ValueTooLarge(u32::MAX));
    let lpm = Lpm::<u32>::build(&[Route { addr: 0, len: 1, value: MAX_VALUE }], MAX_VALUE - 1).unwrap();
    assert_eq!(lpm.lookup(1), MAX_VALUE);
    assert_eq!(lpm.lookup(u32::MAX), MAX_VALUE - 1);
}

// ---- property tests -------------------------------------------------------------------------

/// Raw material for one route: cluster, cluster width selector, random bits, length, value.
type RawRoute = (prop::sample::Index, usize, u128, u8, u32);

fn lens(bits: u32) -> BoxedStrategy<u8> {
    if bits == 32 {
        prop_oneof![1 => 0u8..=32, 2 => 16u8..=24, 2 => 24u8..=32, 1 => 8u8..=16].boxed()
    } else {
        prop_oneof![1 => 0u8..=128, 1 => 16u8..=64, 2 => 40u8..=72, 1 => 96u8..=128, 1 => 60u8..=68].boxed()
    }
}

fn raw_routes(bits: u32) -> impl Strategy<Value = (Vec<u128>, Vec<RawRoute>)> {
    let n = prop_oneof![0usize..40, 0usize..3000];
    (
        prop::collection::vec(any::<u128>(), 1..8),
        n.prop_flat_map(move |n| {
            prop::collection::vec(
                (any::<prop::sample::Index>(), 0usize..6, any::<u128>(), lens(bits), 0..=MAX_VALUE),
                n,
            )
        }),
    )
}

/// Key material: index of a route to derive from (or random), bits kept from it, random bits.
type RawKey = (Option<prop::sample::Index>, u32, u128);

fn raw_keys(bits: u32) -> impl Strategy<Value = Vec<RawKey>> {
    prop::collection::vec((prop::option::weighted(0.8, any::<prop::sample::Index>()), 0..=bits, any::<u128>()), 1..400)
}

trait TestKey: LpmKey {
    const WIDTHS: [u32; 6];
    /// Truncating conversion (low bits).
    fn from_bits(x: u128) -> Self;
    fn bits(self) -> u128;
}
impl TestKey for u32 {
    const WIDTHS: [u32; 6] = [0, 8, 12, 16, 20, 24];
    fn from_bits(x: u128) -> Self {
        x as u32
    }
    fn bits(self) -> u128 {
        u128::from(self)
    }
}
impl TestKey for u128 {
    const WIDTHS: [u32; 6] = [0, 16, 32, 48, 64, 100];
    fn from_bits(x: u128) -> Self {
        x
    }
    fn bits(self) -> u128 {
        self
    }
}

/// The first `width` bits of `hi`, the rest from `lo`.
fn combine<K: TestKey>(hi: K, lo: K, width: u32) -> K {
    if width >= K::BITS {
        return hi;
    }
    let all = u128::MAX >> (128 - K::BITS);
    let keep = all & !(all >> width);
    K::from_bits((hi.bits() & keep) | (lo.bits() & !keep))
}

fn make_routes<K: TestKey>(bases: &[u128], raw: &[RawRoute]) -> Vec<Route<K>> {
    raw.iter()
        .map(|(ci, wi, bits, len, value)| {
            // A cluster base's first `width` bits, then random bits (not masked to the length:
            // the table must ignore host bits).
            let addr = combine(K::from_bits(*ci.get(bases)), K::from_bits(*bits), K::WIDTHS[*wi]);
            Route { addr, len: *len, value: *value }
        })
        .collect()
}

fn make_keys<K: TestKey>(routes: &[Route<K>], raw: &[RawKey]) -> Vec<K> {
    raw.iter()
        .map(|(ri, keep, bits)| {
            let rnd = K::from_bits(*bits);
            match ri {
                Some(i) if !routes.is_empty() => {
                    let r = i.get(routes);
                    // Keep at least the route's own bits most of the time, so it matches.
                    combine(r.addr, rnd, (*keep).max(u32::from(r.len) * u32::from(keep % 4 != 0)))
                }
                _ => rnd,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prop_v4_matches_reference((bases, raw) in raw_routes(32), rawk in raw_keys(32), default in 0..=MAX_VALUE) {
        let routes = make_routes::<u32>(&bases, &raw);
        let keys = make_keys(&routes, &rawk);
        check(&routes, default, &keys);
    }

    #[test]
    fn prop_v6_matches_reference((bases, raw) in raw_routes(128), rawk in raw_keys(128), default in 0..=MAX_VALUE) {
        let routes = make_routes::<u128>(&bases, &raw);
        let keys = make_keys(&routes, &rawk);
        check(&routes, default, &keys);
    }
}

/// The route generators reach every structure: nodes (also nested), buckets, long buckets.
#[test]
fn generators_reach_every_structure() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    fn total<K: TestKey>(bits: u32) -> LpmStats {
        let mut runner = TestRunner::deterministic();
        let mut sum = LpmStats::default();
        for _ in 0..30 {
            let (bases, raw) = raw_routes(bits).new_tree(&mut runner).unwrap().current();
            let s = Lpm::build(&make_routes::<K>(&bases, &raw), 0).unwrap().stats();
            sum.nodes += s.nodes;
            sum.buckets += s.buckets;
            sum.long_buckets += s.long_buckets;
            sum.max_depth = sum.max_depth.max(s.max_depth);
        }
        sum
    }
    let s4 = total::<u32>(32);
    assert!(s4.nodes > 0 && s4.buckets > 0 && s4.max_depth >= 2, "{s4:?}");
    let s6 = total::<u128>(128);
    assert!(s6.nodes > 0 && s6.buckets > 0 && s6.long_buckets > 0 && s6.max_depth >= 2, "{s6:?}");
}

// ---- size sanity: 100k IPv4 + 20k IPv6 --------------------------------------------------------

/// Reference by hash lookups per prefix length (fast enough for 100k routes); ties: later wins.
struct HashRef<K> {
    by_len: Vec<HashMap<K, u32>>,
    default: u32,
}

impl<K: LpmKey> HashRef<K> {
    fn new(routes: &[Route<K>], default: u32) -> Self {
        let mut by_len: Vec<HashMap<K, u32>> = (0..=K::BITS).map(|_| HashMap::new()).collect();
        for r in routes {
            by_len[usize::from(r.len)].insert(r.addr.masked(u32::from(r.len)), r.value);
        }
        HashRef { by_len, default }
    }
    fn lookup(&self, key: K) -> u32 {
        (0..=K::BITS)
            .rev()
            .find_map(|len| self.by_len[len as usize].get(&key.masked(len)).copied())
            .unwrap_or(self.default)
    }
}

/// Random IPv4 routes with a depth mix like dpdk-test-fib: mostly /24, the rest /8../32.
pub(super) fn random_v4(rng: &mut impl rand::Rng, n: usize) -> Vec<Route<u32>> {
    (0..n)
        .map(|i| {
            let len = if rng.random_bool(0.7) { 24 } else { rng.random_range(8..=32) };
            Route { addr: rng.random(), len, value: i as u32 % (MAX_VALUE + 1) }
        })
        .collect()
}

/// Random IPv6 routes in 2000::/3: mostly /48, the rest /16../128.
pub(super) fn random_v6(rng: &mut impl rand::Rng, n: usize) -> Vec<Route<u128>> {
    (0..n)
        .map(|i| {
            let len = if rng.random_bool(0.5) { 48 } else { rng.random_range(16..=128) };
            let addr = (rng.random::<u128>() >> 3) | (1u128 << 125);
            Route { addr, len, value: i as u32 }
        })
        .collect()
}

fn sample_keys<K: TestKey>(
    rng: &mut impl rand::Rng,
    routes: &[Route<K>],
    n: usize,
    rnd: impl Fn(&mut dyn rand::RngCore) -> K,
) -> Vec<K> {
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let k = rnd(rng as &mut dyn rand::RngCore);
        if i % 2 == 0 {
            let r = routes[rng.random_range(0..routes.len())];
            let len = u32::from(r.len);
            keys.push(combine(r.addr, k, len));
        } else {
            keys.push(k);
        }
    }
    keys
}

#[test]
fn size_100k_v4_20k_v6() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let routes4 = random_v4(&mut rng, 100_000);
    let routes6 = random_v6(&mut rng, 20_000);

    let t = std::time::Instant::now();
    let lpm4 = Lpm4::build(&routes4, 0).unwrap();
    let t4 = t.elapsed();
    let t = std::time::Instant::now();
    let lpm6 = Lpm6::build(&routes6, 0).unwrap();
    let t6 = t.elapsed();
    let (s4, s6) = (lpm4.stats(), lpm6.stats());
    eprintln!("v4 build {t4:?} {s4:?}");
    eprintln!("v6 build {t6:?} {s6:?}");
    eprintln!("total memory {} bytes", s4.memory + s6.memory);
    assert!(s4.memory + s6.memory < 64 << 20);

    let ref4 = HashRef::new(&routes4, 0);
    let keys4 = sample_keys(&mut rng, &routes4, 10_000, |r| r.random::<u32>());
    let mut out = vec![0; keys4.len()];
    lpm4.lookup_bulk(&keys4, &mut out);
    for (k, o) in keys4.iter().zip(&out) {
        assert_eq!(*o, ref4.lookup(*k), "{k:#x}");
        assert_eq!(lpm4.lookup(*k), *o);
    }
    let ref6 = HashRef::new(&routes6, 0);
    let keys6 = sample_keys(&mut rng, &routes6, 10_000, |r| (r.random::<u128>() >> 3) | (1u128 << 125));
    let mut out = vec![0; keys6.len()];
    lpm6.lookup_bulk(&keys6, &mut out);
    for (k, o) in keys6.iter().zip(&out) {
        assert_eq!(*o, ref6.lookup(*k), "{k:#x}");
        assert_eq!(lpm6.lookup(*k), *o);
    }
}

/// Not a test: cycles per bulk lookup on the `lookup-bench --family v4` route mix, best of a few
/// rounds (`cargo test --release ... lpm::tests::speed_v4 -- --ignored --nocapture`).
#[test]
#[ignore]
fn speed_v4() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mix = [(8u8, 1u32), (16, 9), (20, 10), (24, 65), (28, 10), (32, 5)];
    let routes: Vec<Route<u32>> = (0..100_000u32)
        .map(|i| {
            let mut x = rng.random_range(0..100);
            let len = mix
                .iter()
                .find(|(_, w)| {
                    if x < *w {
                        true
                    } else {
                        x -= w;
                        false
                    }
                })
                .map_or(24, |m| m.0);
            Route { addr: rng.random::<u32>().masked(u32::from(len)), len, value: i + 1 }
        })
        .collect();
    let keys: Vec<u32> = (0..4_000_000)
        .map(|_| {
            if rng.random_bool(0.9) {
                let r = routes[rng.random_range(0..routes.len())];
                r.addr | (rng.random::<u32>() & u32::MAX.checked_shr(u32::from(r.len)).unwrap_or(0))
            } else {
                rng.random()
            }
        })
        .collect();
    let lpm = Lpm4::build(&routes, 0).unwrap();
    eprintln!("{:?}", lpm.stats());
    let mut out = [0u32; 64];
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        for k in keys.chunks(64) {
            lpm.lookup_bulk(k, &mut out);
            std::hint::black_box(&out);
        }
        best = best.min(t.elapsed().as_secs_f64() * 2.6e9 / keys.len() as f64);
    }
    eprintln!("best {best:.1} cycles/lookup (at 2.6 GHz)");
}
