//! Generates the raw DPDK bindings from the system DPDK (pkg-config `libdpdk`).
//!
//! - The header `csrc/dpdk_sys.h` lists the DPDK headers; bindgen reads it with exactly the
//!   cflags pkg-config gives (`-include rte_config.h`, `-march=...`), and an allowlist keeps
//!   the bindings to what the dataplane uses.
//! - DPDK's fast path is `static inline` (rx/tx burst, mbuf alloc/free, ring bursts, ...).
//!   bindgen's `wrap_static_fns` emits a C file with one exported wrapper per such function;
//!   it is compiled here with `cc` and the same cflags, together with `csrc/dpdk_sys_helpers.c`
//!   for the few macros bindgen cannot wrap (`rte_errno`, `rte_pktmbuf_mtod`).
//! - DPDK is linked as shared libraries. Poll-mode drivers (net_ring, net_null, net_pcap, ...)
//!   are not linked: EAL loads them from its driver directory at init.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const INSTALL_HINT: &str = "run scripts/setup.sh, or: apt-get install libdpdk-dev libclang-dev pkg-config";

/// Functions the dataplane calls (exported ones and `static inline` ones alike).
const FUNCTIONS: &[&str] = &[
    // EAL, lcores, launch
    "rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore|get_lcore_state|has_hugepages|process_type)",
    "rte_lcore_(id|count|index|to_socket_id|is_enabled|has_role)",
    "rte_get_(main_lcore|next_lcore)",
    "rte_socket_id",
    // errors
    "rte_strerror",
    // cycles, prefetch
    "rte_rdtsc(_precise)?",
    "rte_get_tsc_(hz|cycles)",
    "rte_prefetch(0|1|2|_non_temporal)",
    // devices
    "rte_vdev_(init|uninit)",
    "rte_dev_(probe|remove)",
    // rings
    "rte_ring_(create|free|lookup|count|free_count|full|empty|get_size|get_capacity|reset)",
    "rte_ring_(mp_|sp_|mc_|sc_)?(enqueue|dequeue)_(burst|bulk)",
    // mempools, mbufs
    "rte_mempool_(free|lookup|avail_count|in_use_count|full|empty)",
    "rte_pktmbuf_(pool_create|alloc|alloc_bulk|free|free_bulk|free_seg|append|prepend|adj|trim|reset|headroom|tailroom|data_room_size)",
    "rte_mbuf_refcnt_read",
    // ethdev
    "rte_eth_dev_(configure|info_get|start|stop|close|reset|socket_id|count_avail|is_valid_port|get_name_by_port|get_port_by_name|adjust_nb_rx_tx_desc|set_mtu|get_mtu)",
    "rte_eth_(rx_queue_setup|tx_queue_setup|rx_burst|tx_burst|link_get|link_get_nowait|link_speed_to_str)",
    "rte_eth_(stats_get|stats_reset|xstats_get|xstats_get_names|xstats_get_by_id|xstats_get_id_by_name|xstats_reset)",
    "rte_eth_(promiscuous_enable|promiscuous_disable|macaddr_get|find_next)",
    // longest-prefix-match references for the lookup benchmark
    "rte_lpm_(create|free|find_existing|add|delete|delete_all|is_rule_present|lookup|lookup_bulk_func)",
    "rte_lpm6_(create|free|find_existing|add|delete|delete_all|is_rule_present|lookup|lookup_bulk_func)",
    "rte_fib_(create|free|find_existing|add|delete|lookup_bulk)",
    "rte_fib6_(create|free|find_existing|add|delete|lookup_bulk)",
    // hand-written helpers (csrc/dpdk_sys_helpers.c)
    "dpdk_sys_.*",
];

/// Types used by value or by field from Rust, beyond what the functions pull in.
const TYPES: &[&str] = &[
    "rte_lcore_state_t",
    "rte_lcore_role_t",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_link",
    "rte_eth_stats",
    "rte_eth_xstat",
    "rte_eth_xstat_name",
    "rte_lpm_config",
    "rte_lpm6_config",
    "rte_fib_conf",
    "rte_fib6_conf",
];

/// Constants (object-like macros) the dataplane needs.
const CONSTANTS: &[&str] = &[
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MBUF_DEFAULT_(DATAROOM|BUF_SIZE)",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_ETH_XSTATS_NAME_SIZE",
    "RTE_ETH_LINK_(UP|DOWN|FULL_DUPLEX|HALF_DUPLEX|AUTONEG|FIXED)",
    "RTE_ETH_SPEED_NUM_.*",
    "RING_F_.*",
    "RTE_RING_(NAMESIZE|SZ_MASK)",
    "SOCKET_ID_ANY",
    "LCORE_ID_ANY",
    "RTE_LPM_(NAMESIZE|MAX_DEPTH|LOOKUP_SUCCESS)",
    "RTE_LPM6_(NAMESIZE|MAX_DEPTH|IPV6_ADDR_SIZE)",
    "RTE_FIB6?_(NAMESIZE|MAXDEPTH|IPV6_ADDR_SIZE)",
    "DPDK_SYS_.*",
];

/// Flag macros bindgen cannot evaluate, as constants it can.
const EXTRA_CONSTANTS: &str = r#"
/* Constants whose DPDK definition uses function-like macros (RTE_BIT64), which bindgen
 * cannot evaluate; clang evaluates these initialisers for it. */
static const uint64_t DPDK_SYS_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t DPDK_SYS_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t DPDK_SYS_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
"#;

fn fail(what: &str) -> ! {
    // One line, shown both as a warning (top of cargo's output) and as the build error.
    let msg = format!("dpdk-sys: {what}; {INSTALL_HINT}");
    println!("cargo:warning={msg}");
    eprintln!("{msg}");
    exit(1);
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let csrc = manifest.join("csrc");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc");
    for var in ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "LIBCLANG_PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let cflags = dpdk_cflags();
    let header = write_header(&out, &csrc);
    let wrappers = out.join("static_fns");

    check_libclang();
    let bindings = bindgen_builder(&header, &cflags, &csrc, &wrappers)
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed on the DPDK headers ({e})")));
    bindings.write_to_file(out.join("bindings.rs")).expect("write bindings.rs");

    // Static archive first, shared DPDK libraries after it: with `--as-needed` a shared
    // library is kept only if something earlier on the link line uses it.
    let mut cc = cc::Build::new();
    cc.file(wrappers.with_extension("c"))
        .file(csrc.join("dpdk_sys_helpers.c"))
        .include(&csrc)
        .define("ALLOW_EXPERIMENTAL_API", None)
        .warnings(false)
        .opt_level(3);
    for flag in &cflags {
        cc.flag(flag);
    }
    cc.compile("dpdk_sys_wrappers");

    link_dpdk();
}

/// The cflags of `pkg-config --cflags libdpdk`, token by token.
fn dpdk_cflags() -> Vec<String> {
    let output = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run pkg-config ({e})")));
    if !output.status.success() {
        fail("pkg-config cannot find libdpdk (DPDK development files are not installed)");
    }
    let text = String::from_utf8(output.stdout).expect("pkg-config output is UTF-8");
    text.split_whitespace().map(str::to_owned).collect()
}

/// The bindgen input: our header plus the constants it cannot read from DPDK's macros.
fn write_header(out: &Path, csrc: &Path) -> PathBuf {
    let path = out.join("dpdk_sys_all.h");
    let text = format!("#include \"{}\"\n{EXTRA_CONSTANTS}", csrc.join("dpdk_sys.h").display());
    // Written only when it changes: bindgen's callbacks make the build rerun when an included
    // header is newer than the last run's start, and this one is included.
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).expect("write dpdk_sys_all.h");
    }
    path
}

/// bindgen loads libclang at run time; fail with the one-line hint rather than its panic.
fn check_libclang() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(bindgen::clang_version).is_ok();
    std::panic::set_hook(hook);
    if !found {
        fail("libclang not found (bindgen needs it to read the DPDK headers)");
    }
}

fn bindgen_builder(header: &Path, cflags: &[String], csrc: &Path, wrappers: &Path) -> bindgen::Builder {
    let mut builder = bindgen::Builder::default()
        .header(header.to_str().expect("UTF-8 OUT_DIR"))
        .clang_args(cflags)
        .clang_arg(format!("-I{}", csrc.display()))
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .wrap_static_fns(true)
        .wrap_static_fns_path(wrappers)
        .use_core()
        .derive_default(true)
        .derive_debug(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .generate_comments(false)
        .layout_tests(true)
        // Takes SSE vectors by value, which do not cross the FFI boundary as arrays.
        .blocklist_function("rte_lpm_lookupx4")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for c in CONSTANTS {
        builder = builder.allowlist_var(c);
    }
    builder
}

/// Link the DPDK libraries pkg-config names, as shared libraries, plus the vdev bus
/// (`rte_vdev_init`), which pkg-config lists only among the drivers.
fn link_dpdk() {
    let lib = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
        .unwrap_or_else(|e| fail(&format!("pkg-config cannot find libdpdk ({e})")));
    for dir in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for name in lib.libs.iter().map(String::as_str).chain(["rte_bus_vdev"]) {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    println!("cargo:include={}", lib.include_paths[0].display());
}
