//! Shared by the `run_*` test binaries: the real `dataplane run` on net_pcap virtual devices,
//! without hugepages, with pcap files in and out.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dataplane_tests::dataplane_bin;

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let ts = |i: usize| Duration::from_micros(1_000_000 + i as u64 * 10);
    dataplane::pcap::write_all(path, frames.iter().enumerate().map(|(i, f)| (ts(i), f.as_slice()))).unwrap();
}

pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    dataplane::pcap::read_all(path).unwrap().into_iter().map(|f| f.data).collect()
}

/// The `eal = [...]` line: no hugepages, a unique file prefix, the lcore map and vdevs.
pub fn eal_line(prefix: &str, lcores: &str, vdevs: &[String]) -> String {
    let mut args: Vec<String> = [
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--file-prefix",
        &format!("{prefix}-{}", std::process::id()),
        "-m",
        "512",
        "--lcores",
        lcores,
        "--log-level",
        "lib.eal:warning",
        "--no-telemetry",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for v in vdevs {
        args.push("--vdev".into());
        args.push(v.clone());
    }
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("eal = [{}]\n", quoted.join(", "))
}

pub fn run(dir: &Path, config: &str, extra: &[&str]) -> Output {
    let path = dir.join("dataplane.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(dataplane_bin());
    cmd.arg("run").arg("--config").arg(&path).args(extra);
    let out = cmd.output().unwrap();
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn empty_pcap(dir: &Path) -> PathBuf {
    let p = dir.join("empty.pcap");
    write_pcap(&p, &[]);
    p
}

pub fn d(p: &Path) -> String {
    p.display().to_string()
}

/// One worker between two net_pcap ports: `inp` comes in on net_pcap0, what it forwards is
/// written to `out.pcap` (net_pcap1), what goes back to `back.pcap`; rules from `rules`.
pub fn pcap_pair_config(prefix: &str, dp: &Path, inp: &Path, rules: &Path) -> String {
    pcap_pair_config_with(prefix, dp, inp, rules, "")
}

/// [`pcap_pair_config`] with `extra` (top-level keys or whole tables) before the ports.
pub fn pcap_pair_config_with(prefix: &str, dp: &Path, inp: &Path, rules: &Path, extra: &str) -> String {
    let empty = empty_pcap(dp);
    let (out, back) = (dp.join("out.pcap"), dp.join("back.pcap"));
    eal_line(
        prefix,
        "0@0,1@1",
        &[
            format!("net_pcap0,rx_pcap={},tx_pcap={}", d(inp), d(&back)),
            format!("net_pcap1,rx_pcap={},tx_pcap={}", d(&empty), d(&out)),
        ],
    ) + &format!(
        r#"
rules = [{rules:?}]
stats_period = 0
{extra}
[[ports]]
device = "net_pcap0"
[[ports]]
device = "net_pcap1"
[forward]
net_pcap0 = "net_pcap1"
net_pcap1 = "net_pcap0"
[[workers]]
lcore = 1
rx = [{{ port = "net_pcap0", queue = 0 }}, {{ port = "net_pcap1" }}]
"#,
        rules = d(rules)
    )
}

/// Runs `frames` through one worker between two net_pcap ports with the rules `yaml`: a clean
/// exit, no mbuf left, nothing sent back; returns stdout and the frames forwarded.
pub fn run_pcap_pair(dp: &Path, prefix: &str, frames: &[Vec<u8>], yaml: &str) -> (String, Vec<Vec<u8>>) {
    run_pcap_pair_with(dp, prefix, frames, yaml, "")
}

/// [`run_pcap_pair`] with `extra` config (see [`pcap_pair_config_with`]).
pub fn run_pcap_pair_with(
    dp: &Path,
    prefix: &str,
    frames: &[Vec<u8>],
    yaml: &str,
    extra: &str,
) -> (String, Vec<Vec<u8>>) {
    let inp = dp.join("in.pcap");
    write_pcap(&inp, frames);
    let rules = dp.join("rules.yaml");
    std::fs::write(&rules, yaml).unwrap();
    let config = pcap_pair_config_with(prefix, dp, &inp, &rules, extra);
    let o = run(dp, &config, &["--duration", "2"]);
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(stdout.contains("mbufs in use: 0"), "{stdout}");
    assert!(read_pcap(&dp.join("back.pcap")).is_empty());
    (stdout, read_pcap(&dp.join("out.pcap")))
}

/// The file a software-distribution run writes for worker `w`'s TX queue on port `port`
/// (worker k owns TX queue k of each port).
pub fn worker_tx(dir: &Path, port: usize, w: usize) -> PathBuf {
    dir.join(format!("p{port}_w{w}.pcap"))
}

/// Two workers behind the software distributor between two net_pcap ports: `in0` arrives on
/// net_pcap0, `in1` on net_pcap1, each worker's TX queues write to [`worker_tx`]. `top` holds
/// top-level keys (e.g. `rules`), `tables` is appended after the workers.
pub fn software_pair_config(prefix: &str, dir: &Path, in0: &Path, in1: &Path, top: &str, tables: &str) -> String {
    let tx = |port: usize, w: usize| d(&worker_tx(dir, port, w));
    eal_line(
        prefix,
        "0@0,1@1,2@0,3@1",
        &[
            format!("net_pcap0,rx_pcap={},tx_pcap={},tx_pcap={}", d(in0), tx(0, 0), tx(0, 1)),
            format!("net_pcap1,rx_pcap={},tx_pcap={},tx_pcap={}", d(in1), tx(1, 0), tx(1, 1)),
        ],
    ) + &format!(
        r#"
{top}
distribution = "software"
distributor_lcore = 3
stats_period = 0
[[ports]]
device = "net_pcap0"
tx_queues = 2
[[ports]]
device = "net_pcap1"
tx_queues = 2
[forward]
net_pcap0 = "net_pcap1"
net_pcap1 = "net_pcap0"
[[workers]]
lcore = 1
[[workers]]
lcore = 2
{tables}"#
    )
}
