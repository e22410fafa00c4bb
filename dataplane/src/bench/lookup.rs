//! `dataplane lookup-bench`: our LPM against DPDK's in one run, on the same routes and keys.
//!
//! IPv4: ours vs `rte_lpm` and `rte_fib` (DIR-24-8). IPv6: ours vs `rte_lpm6` and `rte_fib6`
//! (trie). Every key must give the same answer in every table; then each is timed with bulk
//! lookups in batches of [`BATCH`] and reported in TSC cycles per lookup.

use crate::dpdk::{cycles, lpm_ref, Eal};
use crate::policy::classes::mask;
use crate::policy::lpm::{Lpm, Route};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Instant;

/// Keys per bulk call, for every table (a worker's burst size).
const BATCH: usize = 64;

#[derive(clap::Args, Debug)]
pub struct LookupBenchArgs {
    /// Address family.
    #[arg(long, default_value = "v4", value_parser = ["v4", "v6"])]
    pub family: String,
    /// Number of distinct routes (default: 100000 for v4, 20000 for v6).
    #[arg(long)]
    pub routes: Option<usize>,
    /// Number of lookup keys.
    #[arg(long, default_value_t = 10_000_000)]
    pub keys: usize,
    /// Prefix length mix, "len:percent,...". Default v4 "8:1%,16:9%,20:10%,24:65%,28:10%,32:5%",
    /// v6 "32:10%,40:10%,48:60%,56:10%,64:10%".
    #[arg(long)]
    pub depths: Option<String>,
    /// Share of keys drawn inside a route (the rest are uniformly random addresses).
    #[arg(long, default_value_t = 0.9)]
    pub hit_ratio: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// EAL arguments (after `--`). Default: hugepages when free ones exist, else --no-huge.
    #[arg(last = true)]
    pub eal: Vec<String>,
}

#[derive(Serialize, Debug)]
struct TableResult {
    name: &'static str,
    cycles_per_lookup: f64,
    mlookups_per_s: f64,
    memory_bytes: usize,
    build_ms: f64,
}

impl TableResult {
    fn new(name: &'static str, (cycles, mlps): (f64, f64), memory_bytes: usize, build_ms: f64) -> TableResult {
        TableResult { name, cycles_per_lookup: cycles, mlookups_per_s: mlps, memory_bytes, build_ms }
    }
}

#[derive(Serialize, Debug)]
struct BenchReport {
    family: String,
    routes: usize,
    keys: usize,
    hugepages: bool,
    tsc_hz: u64,
    tables: Vec<TableResult>,
}

/// Parse "24:65%,16:10%" into (length, weight) pairs.
pub fn parse_depths(text: &str, max_len: u8) -> Result<Vec<(u8, f64)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (len, pct) = part.split_once(':').ok_or_else(|| format!("--depths: {part:?} is not len:percent"))?;
        let len: u8 = len.trim().parse().map_err(|_| format!("--depths: bad prefix length {len:?}"))?;
        let pct: f64 =
            pct.trim().trim_end_matches('%').parse().map_err(|_| format!("--depths: bad percentage {pct:?}"))?;
        if len == 0 || len > max_len || pct.is_nan() || pct <= 0.0 {
            return Err(format!("--depths: {part:?} needs a length in 1..={max_len} and a positive percentage"));
        }
        out.push((len, pct));
    }
    if out.is_empty() {
        return Err("--depths: empty".into());
    }
    Ok(out)
}

fn pick_len(rng: &mut SmallRng, depths: &[(u8, f64)]) -> u8 {
    let total: f64 = depths.iter().map(|d| d.1).sum();
    let mut x = rng.random::<f64>() * total;
    for &(len, w) in depths {
        if x < w {
            return len;
        }
        x -= w;
    }
    depths.last().map_or(24, |d| d.0)
}

/// Distinct random routes (addr as u128 in the family's width, len), and keys.
fn generate(args: &LookupBenchArgs, bits: u32, depths: &[(u8, f64)], routes: usize) -> (Vec<(u128, u8)>, Vec<u128>) {
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let full = mask(bits as u8, bits);
    let mut seen = HashSet::with_capacity(routes);
    let mut out = Vec::with_capacity(routes);
    while out.len() < routes {
        let len = pick_len(&mut rng, depths);
        let addr = rng.random::<u128>() & mask(len, bits);
        if seen.insert((addr, len)) {
            out.push((addr, len));
        }
    }
    let keys = (0..args.keys)
        .map(|_| {
            if rng.random::<f64>() < args.hit_ratio {
                let (addr, len) = out[rng.random_range(0..out.len())];
                addr | (rng.random::<u128>() & !mask(len, bits) & full)
            } else {
                rng.random::<u128>() & full
            }
        })
        .collect();
    (out, keys)
}

fn default_eal_args() -> (Vec<String>, bool) {
    let free_huge = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("HugePages_Free:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .unwrap_or(0);
    let prefix = format!("lookup-bench-{}", std::process::id());
    let mut args: Vec<String> =
        ["--no-pci", "--file-prefix", &prefix, "-l", "0", "--log-level", "lib.eal:warning", "--no-telemetry"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let huge = free_huge >= 512;
    if !huge {
        args.extend(["--no-huge", "--no-shconf", "-m", "4096"].iter().map(|s| s.to_string()));
    }
    (args, huge)
}

/// Time `f` over all keys in batches; returns cycles per key.
fn time_bulk(keys: usize, mut f: impl FnMut(usize, usize)) -> (f64, f64) {
    let start_tsc = cycles::tsc();
    let start = Instant::now();
    let mut i = 0;
    while i < keys {
        let end = (i + BATCH).min(keys);
        f(i, end);
        i = end;
    }
    let cyc = (cycles::tsc() - start_tsc) as f64 / keys.max(1) as f64;
    let mlps = keys as f64 / start.elapsed().as_secs_f64() / 1e6;
    (cyc, mlps)
}

pub fn run(args: LookupBenchArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print_table(&report);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lookup-bench: {e}");
            crate::exit::Exit::Failed.into()
        }
    }
}

fn print_table(r: &BenchReport) {
    println!(
        "lookup-bench: {} routes, {} keys, IPv{}, {}, TSC {:.2} GHz, batches of {BATCH}",
        r.routes,
        r.keys,
        if r.family == "v4" { 4 } else { 6 },
        if r.hugepages { "hugepages" } else { "NO hugepages (DPDK tables pay TLB misses)" },
        r.tsc_hz as f64 / 1e9
    );
    println!("{:<12} {:>14} {:>12} {:>12} {:>10}", "table", "cycles/lookup", "Mlookups/s", "memory MiB", "build ms");
    for t in &r.tables {
        println!(
            "{:<12} {:>14.1} {:>12.1} {:>12.1} {:>10.1}",
            t.name,
            t.cycles_per_lookup,
            t.mlookups_per_s,
            t.memory_bytes as f64 / (1 << 20) as f64,
            t.build_ms
        );
    }
}

fn run_inner(args: &LookupBenchArgs) -> Result<BenchReport, String> {
    let v6 = args.family == "v6";
    let bits = if v6 { 128 } else { 32 };
    let default_depths =
        if v6 { "32:10%,40:10%,48:60%,56:10%,64:10%" } else { "8:1%,16:9%,20:10%,24:65%,28:10%,32:5%" };
    let depths = parse_depths(args.depths.as_deref().unwrap_or(default_depths), bits as u8)?;
    let n_routes = args.routes.unwrap_or(if v6 { 20_000 } else { 100_000 });
    if n_routes == 0 || n_routes >= (1 << 21) {
        return Err("--routes must be in 1..2097152 (rte_lpm6 next hops are 21 bits)".into());
    }
    if args.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    let (eal_args, huge) = if args.eal.is_empty() { default_eal_args() } else { (args.eal.clone(), true) };
    let _eal = Eal::init(eal_args).map_err(|e| format!("EAL: {e}"))?;
    let (routes, keys) = generate(args, bits, &depths, n_routes);
    let tables = if v6 { bench_v6(&routes, &keys)? } else { bench_v4(&routes, &keys)? };
    Ok(BenchReport {
        family: args.family.clone(),
        routes: n_routes,
        keys: args.keys,
        hugepages: huge,
        tsc_hz: cycles::tsc_hz(),
        tables,
    })
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn check_same(name: &str, expected: &[u32], got: impl Iterator<Item = u32>) -> Result<(), String> {
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if *e != g {
            return Err(format!("{name} disagrees at key {i}: ours {e}, {name} {g}"));
        }
    }
    Ok(())
}

fn bench_v4(routes: &[(u128, u8)], keys: &[u128]) -> Result<Vec<TableResult>, String> {
    let keys: Vec<u32> = keys.iter().map(|&k| k as u32).collect();
    // Next hop i+1 for route i; 0 means no route.
    let t = Instant::now();
    let ours_routes: Vec<Route<u32>> =
        routes.iter().enumerate().map(|(i, &(a, len))| Route { addr: a as u32, len, value: i as u32 + 1 }).collect();
    let ours = Lpm::build(&ours_routes, 0).map_err(|e| e.to_string())?;
    let ours_build = ms_since(t);
    // Groups needed below /24: one per distinct /24 holding a longer prefix.
    let tbl8: HashSet<u32> = routes.iter().filter(|r| r.1 > 24).map(|r| (r.0 as u32) >> 8).collect();
    let tbl8s = (tbl8.len() as u32 + 256).next_power_of_two();
    let t = Instant::now();
    let mut lpm = lpm_ref::Lpm4::new("bench_lpm4", routes.len() as u32, tbl8s).map_err(|e| e.to_string())?;
    for (i, &(a, len)) in routes.iter().enumerate() {
        lpm.add(a as u32, len, i as u32 + 1).map_err(|e| e.to_string())?;
    }
    let lpm_build = ms_since(t);
    let t = Instant::now();
    let mut fib = lpm_ref::Fib4::new("bench_fib4", routes.len() as u32, tbl8s, 0).map_err(|e| e.to_string())?;
    for (i, &(a, len)) in routes.iter().enumerate() {
        fib.add(a as u32, len, i as u64 + 1).map_err(|e| e.to_string())?;
    }
    let fib_build = ms_since(t);

    // Correctness first: all three agree on every key.
    let mut expected = vec![0u32; keys.len()];
    ours.lookup_bulk(&keys, &mut expected);
    let mut raw = vec![0u32; keys.len()];
    for (k, r) in keys.chunks(BATCH).zip(raw.chunks_mut(BATCH)) {
        lpm.lookup_bulk(k, r).map_err(|e| e.to_string())?;
    }
    check_same("rte_lpm", &expected, raw.iter().map(|&r| lpm_ref::Lpm4::decode(r).unwrap_or(0)))?;
    let mut nh = vec![0u64; keys.len()];
    for (k, r) in keys.chunks(BATCH).zip(nh.chunks_mut(BATCH)) {
        fib.lookup_bulk(k, r).map_err(|e| e.to_string())?;
    }
    check_same("rte_fib", &expected, nh.iter().map(|&r| r as u32))?;

    let mut out = [0u32; BATCH];
    let (ours_cyc, ours_mlps) = time_bulk(keys.len(), |s, e| {
        ours.lookup_bulk(&keys[s..e], &mut out[..e - s]);
        std::hint::black_box(&out);
    });
    let (lpm_cyc, lpm_mlps) = time_bulk(keys.len(), |s, e| {
        let _ = lpm.lookup_bulk(&keys[s..e], &mut out[..e - s]);
        std::hint::black_box(&out);
    });
    let mut out64 = [0u64; BATCH];
    let (fib_cyc, fib_mlps) = time_bulk(keys.len(), |s, e| {
        let _ = fib.lookup_bulk(&keys[s..e], &mut out64[..e - s]);
        std::hint::black_box(&out64);
    });
    let lpm_mem = (1usize << 24) * 4 + tbl8s as usize * 256 * 4 + routes.len() * 8;
    let fib_mem = (1usize << 24) * 8 + tbl8s as usize * 256 * 8;
    Ok(vec![
        TableResult::new("ours", (ours_cyc, ours_mlps), ours.memory_bytes(), ours_build),
        TableResult::new("rte_lpm", (lpm_cyc, lpm_mlps), lpm_mem, lpm_build),
        TableResult::new("rte_fib", (fib_cyc, fib_mlps), fib_mem, fib_build),
    ])
}

fn bench_v6(routes: &[(u128, u8)], keys: &[u128]) -> Result<Vec<TableResult>, String> {
    let key_bytes: Vec<[u8; 16]> = keys.iter().map(|k| k.to_be_bytes()).collect();
    let t = Instant::now();
    let ours_routes: Vec<Route<u128>> =
        routes.iter().enumerate().map(|(i, &(a, len))| Route { addr: a, len, value: i as u32 + 1 }).collect();
    let ours = Lpm::build(&ours_routes, 0).map_err(|e| e.to_string())?;
    let ours_build = ms_since(t);
    // Upper bound on 8-bit groups below the 24-bit first level.
    let tbl8s: u32 = routes.iter().map(|r| u32::from(r.1.saturating_sub(24)).div_ceil(8)).sum::<u32>() + 256;
    let t = Instant::now();
    let mut lpm = lpm_ref::Lpm6::new("bench_lpm6", routes.len() as u32, tbl8s).map_err(|e| e.to_string())?;
    for (i, &(a, len)) in routes.iter().enumerate() {
        lpm.add(&a.to_be_bytes(), len, i as u32 + 1).map_err(|e| e.to_string())?;
    }
    let lpm_build = ms_since(t);
    let t = Instant::now();
    let mut fib = lpm_ref::Fib6::new("bench_fib6", routes.len() as u32, tbl8s, 0).map_err(|e| e.to_string())?;
    for (i, &(a, len)) in routes.iter().enumerate() {
        fib.add(&a.to_be_bytes(), len, i as u64 + 1).map_err(|e| e.to_string())?;
    }
    let fib_build = ms_since(t);

    let mut expected = vec![0u32; keys.len()];
    ours.lookup_bulk(keys, &mut expected);
    let mut nh6 = vec![0i32; keys.len()];
    for (k, r) in key_bytes.chunks(BATCH).zip(nh6.chunks_mut(BATCH)) {
        lpm.lookup_bulk(k, r).map_err(|e| e.to_string())?;
    }
    check_same("rte_lpm6", &expected, nh6.iter().map(|&r| if r < 0 { 0 } else { r as u32 }))?;
    let mut nh = vec![0u64; keys.len()];
    for (k, r) in key_bytes.chunks(BATCH).zip(nh.chunks_mut(BATCH)) {
        fib.lookup_bulk(k, r).map_err(|e| e.to_string())?;
    }
    check_same("rte_fib6", &expected, nh.iter().map(|&r| r as u32))?;

    let mut out = [0u32; BATCH];
    let (ours_cyc, ours_mlps) = time_bulk(keys.len(), |s, e| {
        ours.lookup_bulk(&keys[s..e], &mut out[..e - s]);
        std::hint::black_box(&out);
    });
    let mut out_i = [0i32; BATCH];
    let (lpm_cyc, lpm_mlps) = time_bulk(keys.len(), |s, e| {
        let _ = lpm.lookup_bulk(&key_bytes[s..e], &mut out_i[..e - s]);
        std::hint::black_box(&out_i);
    });
    let mut out64 = [0u64; BATCH];
    let (fib_cyc, fib_mlps) = time_bulk(keys.len(), |s, e| {
        let _ = fib.lookup_bulk(&key_bytes[s..e], &mut out64[..e - s]);
        std::hint::black_box(&out64);
    });
    let lpm_mem = (1usize << 24) * 4 + tbl8s as usize * 256 * 4 + routes.len() * 24;
    let fib_mem = (1usize << 24) * 8 + tbl8s as usize * 256 * 8;
    Ok(vec![
        TableResult::new("ours", (ours_cyc, ours_mlps), ours.memory_bytes(), ours_build),
        TableResult::new("rte_lpm6", (lpm_cyc, lpm_mlps), lpm_mem, lpm_build),
        TableResult::new("rte_fib6", (fib_cyc, fib_mlps), fib_mem, fib_build),
    ])
}
