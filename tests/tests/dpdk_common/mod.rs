//! Shared by the `dpdk_*` test binaries: one EAL per test binary (process), without
//! hugepages, and a lock so the tests of a binary touch DPDK one at a time.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, OnceLock};

use dataplane::dpdk::Eal;

/// EAL arguments for tests: no hugepages, no PCI scan, no shared config files, 256 MB of
/// ordinary memory, a file prefix unique to this process, and two lcores (both on CPU 0, so
/// this works on a one-core machine) for launch tests.
pub fn eal_args() -> Vec<String> {
    [
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--file-prefix",
        &format!("dpdk-test-{}", std::process::id()),
        "-m",
        "256",
        "--lcores",
        "0@0,1@0",
        "--log-level",
        "lib.eal:warning",
        "--no-telemetry",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

static EAL: OnceLock<Eal> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// Initialises EAL on first use and serialises the tests of this binary. The EAL lives in a
/// static (never dropped): it is cleaned up by the process exit.
pub fn dpdk() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    EAL.get_or_init(|| Eal::init(eal_args()).expect("EAL init without hugepages"));
    guard
}

/// A deterministic test packet of `len` bytes (an Ethernet-looking header, then a pattern
/// that depends on `seed` so packets differ from each other).
pub fn packet(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| match i {
            0..=5 => 0x02,
            6..=11 => 0x04,
            12 => 0x08,
            13 => 0x00,
            _ => (i as u8).wrapping_mul(31).wrapping_add(seed),
        })
        .collect()
}
