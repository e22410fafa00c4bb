//! `dataplane bench`: testpmd-style throughput of the full pipeline (parse, flow table,
//! CIDR and TLS policy) through `dataplane run`'s own workers.
//!
//! Ingress is `net_pcap` replaying a capture forever (`infinite_rx=1`, which loads the whole
//! file into mbufs at start), egress a `net_null` sink, unless other devices are named (a
//! NIC's PCI address works too). The main thread prints a line per second and a summary
//! measured after a warm-up; `--json` prints the summary as one JSON object.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::gen::{self, GenArgs, TrafficArgs};
use crate::counters::Counter;
use crate::dpdk::cycles::tsc_hz;
use crate::exit::Exit;
use crate::pipeline::Phase;
use crate::policy::CompiledPolicy;
use crate::worker::{run_config, Config, RunArgs, Running, Snapshot, Supervisor};

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Rule files or directories (none: every packet gets the default action).
    #[arg(long, num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Traffic to replay (Ethernet pcap). Without it, traffic is generated with --flows,
    /// --packets, --tls-ratio, --quic-ratio, --ipv6-ratio, --size and --seed (as `dataplane gen`).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start left out of the summary (flow table and caches filling).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Print the summary as one JSON object (per-second lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Worker cores. With more than one, a distributor core spreads packets over them by a
    /// symmetric flow hash (virtual devices have one RX queue).
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// Put the software distributor in front of the workers even with one worker: what the
    /// distributor costs, against one worker polling the device itself.
    #[arg(long)]
    pub distributor: bool,
    /// CPUs to run on: the first for the main (control) thread, the others for the
    /// distributor and workers, in turn (several lcores may share a CPU).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    pub cpus: Vec<u32>,
    /// Ingress device (DPDK name or PCI address) instead of the net_pcap replay.
    #[arg(long)]
    pub rx_device: Option<String>,
    /// Egress device instead of the net_null sink.
    #[arg(long)]
    pub tx_device: Option<String>,
    /// Verdict when no rule matches.
    #[arg(long, default_value = "ALLOW")]
    pub default_action: String,
    /// Flow-table capacity per worker (default: twice --flows; at most 67108864).
    #[arg(long, value_parser = crate::pipeline::flow::parse_capacity)]
    pub flow_capacity: Option<usize>,
    /// Serve the control API on this address while traffic runs (rule updates under load,
    /// as `scripts/bench-update.sh` does); request bodies up to 64 MiB.
    #[arg(long)]
    pub control: Option<String>,
    /// With --control: the bearer token file.
    #[arg(long, requires = "control")]
    pub token_file: Option<PathBuf>,
    /// Read the TSC at each step of every burst and report the cycles per packet of each
    /// (receive, parse, resolve, settle, transmit). Costs a few cycles per packet itself.
    #[arg(long)]
    pub phases: bool,
    /// With --control: persist each applied set in this directory (as `run` does with
    /// `state_dir`; the API answers once the set is written).
    #[arg(long, requires = "control")]
    pub state_dir: Option<PathBuf>,
    /// EAL arguments (DPDK syntax), after `--`, e.g. `-- --no-huge -m 2048`.
    #[arg(last = true)]
    pub eal: Vec<String>,
}

/// The measured figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchSummary {
    /// Seconds measured (after the warm-up).
    pub seconds: f64,
    pub workers: usize,
    pub rules: usize,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub drop_policy: u64,
    pub drop_malformed: u64,
    pub drop_tx_full: u64,
    /// Distributor only: packets a full worker ring refused.
    pub drop_ring_full: u64,
    pub rx_mpps: f64,
    pub tx_mpps: f64,
    pub mpps_per_worker: Vec<f64>,
    /// Packets each worker received while measured (they sum to `rx_packets`).
    pub rx_packets_per_worker: Vec<u64>,
    /// With several workers: packets the distributor received while measured, and their rate
    /// (its received packets are the workers' and its ring-full drops, but for those still on
    /// their way through a ring).
    pub distributor_rx_packets: Option<u64>,
    pub distributor_mpps: Option<f64>,
    /// Ingress frames' bytes (without preamble and gap), as testpmd counts them.
    pub rx_gbps: f64,
    /// Busy TSC cycles of the workers per packet received.
    pub cycles_per_packet: f64,
    pub tsc_hz: u64,
    /// Totals over the whole run, including the warm-up.
    pub total_rx: u64,
    pub total_tx: u64,
    pub total_drop_policy: u64,
    pub total_drop_malformed: u64,
    pub total_drop_tx_full: u64,
    pub total_drop_ring_full: u64,
    /// Packets each worker received over the whole run (they sum to `total_rx`).
    pub total_rx_per_worker: Vec<u64>,
    /// The distributor's received packets over the whole run.
    pub total_distributor_rx: Option<u64>,
    pub flows: u64,
    pub evictions: u64,
    pub tls_pending: u64,
    /// QUIC connections that waited for their ClientHello, hellos read from Initials (a
    /// client may start more than one connection on a flow), and Initials that could not be
    /// read (tls_fail decided).
    pub quic_pending: u64,
    pub quic_decided: u64,
    pub quic_failed: u64,
    /// With --phases: busy TSC cycles per packet received, by step of the work on bursts.
    pub phase_cycles: Option<PhaseCycles>,
    pub exit_code: u8,
}

/// Cycles per packet in each step (see [`Phase`]); their sum is about `cycles_per_packet`
/// (which also holds the steps' own TSC readings).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseCycles {
    pub receive: f64,
    pub parse: f64,
    pub resolve: f64,
    pub settle: f64,
    pub transmit: f64,
}

/// `dataplane bench`. Returns the process exit code.
pub fn run(args: &BenchArgs, inner: Option<&mut dyn Supervisor>) -> Exit {
    match prepare(args) {
        Ok(prepared) => measure(args, &prepared, inner),
        Err(e) => {
            eprintln!("bench: {e}");
            Exit::Invalid
        }
    }
}

struct Prepared {
    config: Config,
    /// Holds the generated traffic until the run ends.
    _dir: Option<tempfile::TempDir>,
}

fn prepare(args: &BenchArgs) -> Result<Prepared, String> {
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return Err(format!("--duration: {} is not a positive number of seconds", args.duration));
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0 && args.warmup < args.duration) {
        return Err(format!("--warmup: {} must be at least 0 and less than --duration", args.warmup));
    }
    if args.workers == 0 {
        return Err("--workers: at least one".into());
    }
    let (main_cpu, rest) = args.cpus.split_first().ok_or("--cpus: at least one CPU")?;
    let rest = if rest.is_empty() { std::slice::from_ref(main_cpu) } else { rest };

    let mut dir = None;
    let mut eal: Vec<String> = Vec::new();
    let mut packets = 0usize;
    let rx_device = match &args.rx_device {
        Some(d) => d.clone(),
        None => {
            let pcap = match &args.pcap {
                Some(p) => p.clone(),
                None => {
                    let d = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
                    let out = d.path().join("traffic.pcap");
                    gen::generate(&GenArgs {
                        out: out.clone(),
                        traffic: args.traffic.clone(),
                        storm: Default::default(),
                    })?;
                    dir = Some(d);
                    out
                }
            };
            packets = count_packets(&pcap)?;
            eal.extend(["--vdev".into(), format!("net_pcap_bench0,rx_pcap={},infinite_rx=1", pcap.display())]);
            "net_pcap_bench0".into()
        }
    };
    let tx_device = match &args.tx_device {
        Some(d) => d.clone(),
        None => {
            eal.extend(["--vdev".into(), "net_null_bench0,no-rx=1".into()]);
            "net_null_bench0".into()
        }
    };
    let software = args.workers > 1 || args.distributor;
    let cpu_of = |k: usize| rest.get(k % rest.len()).copied().unwrap_or(*main_cpu);
    let lcore_count = args.workers as usize + usize::from(software);
    let lcores: Vec<String> = std::iter::once(format!("0@{main_cpu}"))
        .chain((1..=lcore_count).map(|l| format!("{l}@{}", cpu_of(l - 1))))
        .collect();
    let mut full_eal: Vec<String> = vec![
        "--file-prefix".into(),
        format!("dataplane-bench-{}", std::process::id()),
        "--lcores".into(),
        lcores.join(","),
        "--log-level".into(),
        "lib.eal:warning".into(),
        "--no-telemetry".into(),
    ];
    if args.rx_device.is_none() && args.tx_device.is_none() {
        full_eal.push("--no-pci".into());
    }
    full_eal.extend(eal);

    // net_pcap's infinite_rx keeps every packet of the file in mbufs.
    let needed = packets + 4 * 4096 + 4096;
    let pool = (needed + 1).next_power_of_two() - 1;
    let capacity = args.flow_capacity.unwrap_or(args.traffic.flows.saturating_mul(2).max(1024));
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let rules: Vec<String> = args.rules.iter().map(|p| quote(&absolute(p).display().to_string())).collect();
    let worker_lcore0 = 1 + u32::from(software);
    let mut t = String::new();
    let eal_items: Vec<String> = full_eal.iter().map(|a| quote(a)).collect();
    let _ = writeln!(t, "eal = [{}]", eal_items.join(", "));
    let _ = writeln!(t, "distribution = {}", quote(if software { "software" } else { "rss" }));
    if software {
        let _ = writeln!(t, "distributor_lcore = 1");
    }
    let _ = writeln!(t, "default_action = {}", quote(&args.default_action));
    let _ = writeln!(t, "rules = [{}]", rules.join(", "));
    let _ = writeln!(t, "stats_period = 0");
    let _ = writeln!(t, "[mempool]\nsize = {pool}\ncache = 256");
    let _ = writeln!(t, "[flows]\ncapacity = {capacity}");
    // Each worker sends on a queue of its own of the egress port; the ingress port only
    // receives (net_pcap has one TX queue).
    for (d, tx_queues) in [(&rx_device, 1), (&tx_device, args.workers)] {
        let _ = writeln!(t, "[[ports]]\ndevice = {}\nrx_queues = 1\ntx_queues = {tx_queues}", quote(d));
    }
    let _ = writeln!(t, "[forward]\n{} = {}", quote(&rx_device), quote(&tx_device));
    for k in 0..args.workers {
        let _ = writeln!(t, "[[workers]]\nlcore = {}", worker_lcore0 + k);
        if !software {
            let _ = writeln!(t, "rx = [{{ port = {}, queue = 0 }}]", quote(&rx_device));
        }
    }
    if let Some(listen) = &args.control {
        // Bodies up to the parser's bound: a 100k-rule set in document form is about 18 MB,
        // over the API's default limit of 16 MiB.
        let _ = writeln!(t, "[control]\nlisten = {}\nmax_body_bytes = {}", quote(listen), 64 << 20);
        if let Some(f) = &args.token_file {
            let _ = writeln!(t, "token_file = {}", quote(&absolute(f).display().to_string()));
        }
        if let Some(d) = &args.state_dir {
            let _ = writeln!(t, "state_dir = {}", quote(&absolute(d).display().to_string()));
        }
    }
    let mut config = Config::parse(&t).map_err(|e| e.to_string())?;
    config.phase_timing = args.phases;
    Ok(Prepared { config, _dir: dir })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn count_packets(path: &Path) -> Result<usize, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("--pcap {}: {e}", path.display()))?;
    let mut reader = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file))
        .map_err(|e| format!("--pcap {}: {e}", path.display()))?;
    let mut n = 0;
    while let Some(p) = reader.next_packet() {
        p.map_err(|e| format!("--pcap {}: packet {n}: {e}", path.display()))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!("--pcap {}: no packets", path.display()));
    }
    Ok(n)
}

fn measure(args: &BenchArgs, prepared: &Prepared, inner: Option<&mut dyn Supervisor>) -> Exit {
    let mut sup = BenchSupervisor {
        inner,
        warmup: Duration::from_secs_f64(args.warmup),
        json: args.json,
        rules: 0,
        first: None,
        measured_from: None,
        latest: None,
        last_line: None,
    };
    let run_args = RunArgs { config: PathBuf::new(), duration: Some(args.duration), eal: args.eal.clone() };
    let outcome = run_config(&prepared.config, Path::new("."), &run_args, &mut sup);
    for e in &outcome.errors {
        eprintln!("{e}");
    }
    let (Some(from), Some(to), Some(last)) = (&sup.measured_from, &sup.latest, &outcome.last) else {
        eprintln!("bench: the workers did not run long enough to measure");
        return match outcome.exit() {
            Exit::Ok => Exit::Failed,
            failed => failed,
        };
    };
    let mut summary = summarize(from, to, last, sup.rules, outcome.exit());
    if args.phases {
        summary.phase_cycles = Some(phase_cycles(from, to));
    }
    if args.json {
        match serde_json::to_string(&summary) {
            Ok(s) => crate::out!("{s}"),
            Err(e) => eprintln!("bench: {e}"),
        }
    } else {
        print!("{}", render(&summary, args));
    }
    outcome.exit()
}

struct BenchSupervisor<'a> {
    inner: Option<&'a mut dyn Supervisor>,
    warmup: Duration,
    json: bool,
    rules: usize,
    first: Option<Snapshot>,
    measured_from: Option<Snapshot>,
    latest: Option<Snapshot>,
    last_line: Option<Snapshot>,
}

impl Supervisor for BenchSupervisor<'_> {
    fn prepare(&mut self, config: &Config, base: &Path) -> Result<Option<CompiledPolicy>, String> {
        let policy = match self.inner.as_mut() {
            Some(inner) => inner.prepare(config, base)?,
            None => None,
        };
        let policy = match policy {
            Some(p) => Some(p),
            None => crate::policy::load_policy(&config.rule_paths(base), config.default_action)
                // On error, `run` loads the rules again and reports the error.
                .ok(),
        };
        self.rules = policy.as_ref().map_or(0, |p| p.stats().rules);
        Ok(policy)
    }

    fn started(&mut self, running: &Running<'_>) {
        // The control plane starts its API here (`--control`).
        if let Some(inner) = self.inner.as_mut() {
            inner.started(running);
        }
    }

    fn tick(&mut self, running: &Running<'_>) {
        if let Some(inner) = self.inner.as_mut() {
            inner.tick(running);
        }
        let snap = running.snapshot();
        let since = snap.at.duration_since(running.started);
        if self.first.is_none() {
            self.first = Some(snap.clone());
            self.last_line = Some(snap.clone());
        }
        if self.measured_from.is_none() && since >= self.warmup {
            self.measured_from = Some(snap.clone());
        }
        if let Some(prev) = &self.last_line {
            if snap.at.duration_since(prev.at) >= Duration::from_secs(1) {
                let line = per_second_line(prev, &snap, since);
                if self.json {
                    eprintln!("{line}");
                } else {
                    crate::out!("{line}");
                }
                self.last_line = Some(snap.clone());
            }
        }
        self.latest = Some(snap);
    }

    fn print_stats(&self) -> bool {
        false
    }

    fn report_to_stderr(&self) -> bool {
        self.json
    }
}

fn sum(s: &Snapshot, c: Counter) -> u64 {
    s.workers.iter().map(|w| w.get(c)).sum()
}

fn ingress_bytes(s: &Snapshot) -> u64 {
    s.ports.first().and_then(|p| p.as_ref()).map_or(0, |p| p.ibytes)
}

fn per_second_line(prev: &Snapshot, now: &Snapshot, since: Duration) -> String {
    let dt = now.at.duration_since(prev.at).as_secs_f64().max(1e-9);
    let d = |i| sum(now, i).saturating_sub(sum(prev, i));
    let rx = d(Counter::Rx);
    let drops = d(Counter::DropPolicy) + d(Counter::DropMalformed) + d(Counter::DropTxFull);
    let cycles = d(Counter::BusyCycles) as f64 / (rx.max(1) as f64);
    let gbps = ingress_bytes(now).saturating_sub(ingress_bytes(prev)) as f64 * 8.0 / dt / 1e9;
    format!(
        "{:6.1} s  rx {:7.3} Mpps  tx {:7.3} Mpps  drop {:7.3} Mpps  {:6.2} Gbps  {:7.1} cycles/pkt  flows {}",
        since.as_secs_f64(),
        rx as f64 / dt / 1e6,
        d(Counter::Tx) as f64 / dt / 1e6,
        drops as f64 / dt / 1e6,
        gbps,
        cycles,
        sum(now, Counter::Flows),
    )
}

fn summarize(from: &Snapshot, to: &Snapshot, last: &Snapshot, rules: usize, exit: Exit) -> BenchSummary {
    let seconds = to.at.duration_since(from.at).as_secs_f64().max(1e-9);
    let d = |i| sum(to, i).saturating_sub(sum(from, i));
    let rx = d(Counter::Rx);
    let dist = |s: &Snapshot, c: Counter| s.distributor.map_or(0, |d| d.get(c));
    let per_worker: Vec<u64> = to
        .workers
        .iter()
        .zip(&from.workers)
        .map(|(t, f)| t.get(Counter::Rx).saturating_sub(f.get(Counter::Rx)))
        .collect();
    let distributor_rx =
        to.distributor.zip(from.distributor).map(|(t, f)| t.get(Counter::Rx).saturating_sub(f.get(Counter::Rx)));
    BenchSummary {
        seconds,
        workers: to.workers.len(),
        rules,
        rx_packets: rx,
        tx_packets: d(Counter::Tx),
        drop_policy: d(Counter::DropPolicy),
        drop_malformed: d(Counter::DropMalformed),
        drop_tx_full: d(Counter::DropTxFull),
        drop_ring_full: dist(to, Counter::DropRingFull).saturating_sub(dist(from, Counter::DropRingFull)),
        rx_mpps: rx as f64 / seconds / 1e6,
        tx_mpps: d(Counter::Tx) as f64 / seconds / 1e6,
        mpps_per_worker: per_worker.iter().map(|&n| n as f64 / seconds / 1e6).collect(),
        rx_packets_per_worker: per_worker,
        distributor_rx_packets: distributor_rx,
        distributor_mpps: distributor_rx.map(|n| n as f64 / seconds / 1e6),
        rx_gbps: ingress_bytes(to).saturating_sub(ingress_bytes(from)) as f64 * 8.0 / seconds / 1e9,
        cycles_per_packet: d(Counter::BusyCycles) as f64 / rx.max(1) as f64,
        tsc_hz: tsc_hz(),
        total_rx: sum(last, Counter::Rx),
        total_tx: sum(last, Counter::Tx),
        total_drop_policy: sum(last, Counter::DropPolicy),
        total_drop_malformed: sum(last, Counter::DropMalformed),
        total_drop_tx_full: sum(last, Counter::DropTxFull),
        total_drop_ring_full: dist(last, Counter::DropRingFull),
        total_rx_per_worker: last.workers.iter().map(|w| w.get(Counter::Rx)).collect(),
        total_distributor_rx: last.distributor.map(|d| d.get(Counter::Rx)),
        flows: sum(last, Counter::Flows),
        evictions: sum(last, Counter::Evictions),
        tls_pending: sum(last, Counter::TlsPending),
        quic_pending: sum(last, Counter::QuicPending),
        quic_decided: sum(last, Counter::QuicDecided),
        quic_failed: sum(last, Counter::QuicFailed),
        phase_cycles: None,
        exit_code: exit.code(),
    }
}

fn phase_cycles(from: &Snapshot, to: &Snapshot) -> PhaseCycles {
    let rx = sum(to, Counter::Rx).saturating_sub(sum(from, Counter::Rx)).max(1) as f64;
    let per_packet = |p: Phase| {
        let c = p.cycles_counter();
        sum(to, c).saturating_sub(sum(from, c)) as f64 / rx
    };
    PhaseCycles {
        receive: per_packet(Phase::Receive),
        parse: per_packet(Phase::Parse),
        resolve: per_packet(Phase::Resolve),
        settle: per_packet(Phase::Settle),
        transmit: per_packet(Phase::Transmit),
    }
}

fn render(s: &BenchSummary, args: &BenchArgs) -> String {
    let mut o = String::new();
    let traffic = match (&args.rx_device, &args.pcap) {
        (Some(d), _) => format!("device {d}"),
        (None, Some(p)) => p.display().to_string(),
        (None, None) => {
            let quic = if args.traffic.quic_ratio > 0.0 {
                format!(", {:.0}% QUIC", args.traffic.quic_ratio * 100.0)
            } else {
                String::new()
            };
            format!(
                "generated: {} packets, {} flows, {:.0}% TLS{quic}",
                args.traffic.packets,
                args.traffic.flows,
                args.traffic.tls_ratio * 100.0
            )
        }
    };
    let _ =
        writeln!(o, "######## bench summary: {:.1} s measured after {:.1} s warm-up ########", s.seconds, args.warmup);
    let _ = writeln!(o, "  traffic: {traffic}; rules: {}; default action {}", s.rules, args.default_action);
    let per_worker: Vec<String> = s.mpps_per_worker.iter().map(|m| format!("{m:.2}")).collect();
    let _ = writeln!(
        o,
        "  rx {:.2} Mpps ({} worker core(s): {} Mpps each), {:.2} Gbps; tx {:.2} Mpps",
        s.rx_mpps,
        s.workers,
        per_worker.join(" / "),
        s.rx_gbps,
        s.tx_mpps
    );
    if let Some(d) = s.distributor_mpps {
        let _ = writeln!(
            o,
            "  distributor: rx {d:.2} Mpps, spread over the {} workers by a symmetric flow hash",
            s.workers
        );
    }
    let _ = writeln!(o, "  cycles per packet: {:.1} (TSC {:.2} GHz)", s.cycles_per_packet, s.tsc_hz as f64 / 1e9);
    if let Some(p) = &s.phase_cycles {
        let _ = writeln!(
            o,
            "  by step: receive {:.1}  parse {:.1}  resolve {:.1}  settle {:.1}  transmit {:.1}",
            p.receive, p.parse, p.resolve, p.settle, p.transmit
        );
    }
    let _ = writeln!(
        o,
        "  verdicts (measured): forwarded {}  dropped by policy {}  malformed {}  tx full {}  ring full {}",
        s.tx_packets, s.drop_policy, s.drop_malformed, s.drop_tx_full, s.drop_ring_full
    );
    let _ = writeln!(
        o,
        "  totals: rx {}  forwarded {}  policy {}  malformed {}  tx full {}; flows {}  evictions {}  tls pending {}  \
         quic pending {} decided {} failed {}",
        s.total_rx,
        s.total_tx,
        s.total_drop_policy,
        s.total_drop_malformed,
        s.total_drop_tx_full,
        s.flows,
        s.evictions,
        s.tls_pending,
        s.quic_pending,
        s.quic_decided,
        s.quic_failed
    );
    o
}
