//! The rte_lpm / rte_lpm6 / rte_fib / rte_fib6 reference tables answer exactly.

mod dpdk_common;

use dataplane::dpdk::lpm_ref::{Fib4, Fib6, Lpm4, Lpm6, LPM_LOOKUP_SUCCESS};
use dpdk_common::dpdk;

fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

fn v6(prefix: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..prefix.len()].copy_from_slice(prefix);
    a
}

#[test]
fn ipv4_tables() {
    let _eal = dpdk();
    let mut lpm = Lpm4::new("ref_lpm4", 1024, 256).unwrap();
    lpm.add(v4(10, 0, 0, 0), 8, 1).unwrap();
    lpm.add(v4(10, 1, 0, 0), 16, 2).unwrap();
    lpm.add(v4(10, 1, 2, 0), 25, 3).unwrap(); // longer than /24: uses a tbl8 group
    assert_eq!(lpm.lookup(v4(10, 9, 9, 9)), Some(1));
    assert_eq!(lpm.lookup(v4(10, 1, 9, 9)), Some(2));
    assert_eq!(lpm.lookup(v4(10, 1, 2, 127)), Some(3));
    assert_eq!(lpm.lookup(v4(10, 1, 2, 128)), Some(2));
    assert_eq!(lpm.lookup(v4(11, 0, 0, 1)), None);
    let ips = [v4(10, 1, 2, 1), v4(192, 0, 2, 1), v4(10, 2, 0, 0)];
    let mut raw = [0u32; 3];
    lpm.lookup_bulk(&ips, &mut raw).unwrap();
    // Raw results are table entries: next hop in the low 24 bits, the hit flag, and
    // DPDK-internal bits (depth) above it.
    assert_eq!((raw[0] & LPM_LOOKUP_SUCCESS, raw[0] & 0x00ff_ffff), (LPM_LOOKUP_SUCCESS, 3));
    assert_eq!(raw[1] & LPM_LOOKUP_SUCCESS, 0);
    assert_eq!(raw.map(Lpm4::decode), [Some(3), None, Some(1)]);
    lpm.delete(v4(10, 1, 2, 0), 25).unwrap();
    assert_eq!(lpm.lookup(v4(10, 1, 2, 1)), Some(2));
    assert!(lpm.lookup_bulk(&ips, &mut [0u32; 2]).is_err());
    assert!(lpm.add(v4(10, 0, 0, 0), 33, 1).is_err());

    let mut fib = Fib4::new("ref_fib4", 1024, 256, 0xdead).unwrap();
    fib.add(v4(10, 0, 0, 0), 8, 1).unwrap();
    fib.add(v4(10, 1, 2, 0), 25, 3).unwrap();
    let mut nh = [0u64; 3];
    fib.lookup_bulk(&ips, &mut nh).unwrap();
    assert_eq!(nh, [3, 0xdead, 1]);
    fib.delete(v4(10, 1, 2, 0), 25).unwrap();
    fib.lookup_bulk(&ips, &mut nh).unwrap();
    assert_eq!(nh, [1, 0xdead, 1]);
}

#[test]
fn ipv6_tables() {
    let _eal = dpdk();
    let mut lpm = Lpm6::new("ref_lpm6", 1024, 1 << 12).unwrap();
    lpm.add(&v6(&[0x20, 0x01, 0x0d, 0xb8]), 32, 7).unwrap();
    lpm.add(&v6(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]), 48, 8).unwrap();
    let ips = [
        v6(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        v6(&[0x20, 0x01, 0x0d, 0xb8, 0, 2]),
        v6(&[0xfe, 0x80]),
    ];
    assert_eq!(lpm.lookup(&ips[0]), Some(8));
    assert_eq!(lpm.lookup(&ips[1]), Some(7));
    assert_eq!(lpm.lookup(&ips[2]), None);
    let mut nh = [0i32; 3];
    lpm.lookup_bulk(&ips, &mut nh).unwrap();
    assert_eq!(nh, [8, 7, -1]);

    let mut fib = Fib6::new("ref_fib6", 1024, 1 << 12, 0xdead).unwrap();
    fib.add(&v6(&[0x20, 0x01, 0x0d, 0xb8]), 32, 7).unwrap();
    fib.add(&v6(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]), 48, 8).unwrap();
    let mut nh = [0u64; 3];
    fib.lookup_bulk(&ips, &mut nh).unwrap();
    assert_eq!(nh, [8, 7, 0xdead]);
    fib.delete(&v6(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]), 48).unwrap();
    fib.lookup_bulk(&ips, &mut nh).unwrap();
    assert_eq!(nh, [7, 7, 0xdead]);
}
