//! The `dataplane` command line. Each subcommand is a thin call into the library; every exit
//! code is one of [`Exit`] (the table is in `dataplane::exit` and the README).

use clap::{Parser, Subcommand};
use dataplane::exit::Exit;
use dataplane::pipeline::offline::{classify_pcap, RejectOptions};
use dataplane::pipeline::reject::RejectConfig;
use dataplane::pipeline::{MalformedAction, Midstream, PipelineConfig};
use dataplane::policy::{Action, CompiledPolicy};
use std::path::PathBuf;
use std::process::ExitCode;

use dataplane::out;

#[derive(Parser)]
#[command(name = "dataplane", version, about = "Userspace packet dataplane on DPDK: CIDR and TLS policy at line rate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Run the workers' pipeline over a pcap file, single-threaded, without DPDK.
    Classify {
        /// Rule files or directories.
        #[arg(long, required = true, num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Input capture (Ethernet link type).
        #[arg(long)]
        pcap: PathBuf,
        /// One JSON object per packet, in file order.
        #[arg(long)]
        json: bool,
        /// Verdict when no rule matches.
        #[arg(long, default_value = "ALLOW", value_parser = parse_action)]
        default_action: Action,
        /// Flow table capacity (at most 67108864).
        #[arg(long, default_value_t = 1 << 16, value_parser = dataplane::pipeline::flow::parse_capacity)]
        flows: usize,
        /// TCP segments of connections the flow table does not know (as `midstream` in the config).
        #[arg(long, value_enum, default_value = "decide")]
        midstream: Midstream,
        /// Frames whose link or IP header is broken: `drop`, or `default` (the default action);
        /// the config key `malformed` of `run`.
        #[arg(long, default_value = "drop", value_parser = parse_malformed)]
        malformed: MalformedAction,
        /// Write the answers to REJECT verdicts (RSTs, ICMP errors) to this pcap file.
        #[arg(long)]
        replies: Option<PathBuf>,
        /// Rejected packets answered per second, on the capture's clock (`reject.rate` of `run`).
        #[arg(long, default_value_t = RejectConfig::default().rate)]
        reject_rate: u32,
        /// The token bucket's size (`reject.burst` of `run`).
        #[arg(long, default_value_t = RejectConfig::default().burst)]
        reject_burst: u32,
    },
    /// Write deterministic traffic (TCP/UDP, IPv4/IPv6, TLS ClientHellos) to a pcap file; with
    /// --storm, a handshake storm among normal traffic, timestamped at the stated rates.
    Gen(dataplane::bench::gen::GenArgs),
    /// Compare our LPM with DPDK's rte_lpm/rte_fib (v4) or rte_lpm6/rte_fib6 (v6) in one run.
    #[cfg(feature = "dpdk")]
    LookupBench(dataplane::bench::lookup::LookupBenchArgs),
    /// testpmd-style throughput of the full pipeline: net_pcap replay -> workers -> net_null.
    #[cfg(feature = "dpdk")]
    Bench(Box<dataplane::bench::traffic::BenchArgs>),
    /// Kubernetes validating admission webhook for NetworkPolicyRule objects (HTTPS, POST /validate).
    Webhook(dataplane::control::webhook::WebhookArgs),
    /// Keep a fleet of gateways on the rule set of a directory (GitOps): push, verify, fix drift.
    Sync(dataplane::control::sync::SyncArgs),
    /// Check what a DPDK host needs (hugepages, bpffs, interfaces, PCI drivers, IOMMU, CPUs),
    /// each item OK, WARN or FAIL with the fix; never starts EAL.
    Doctor(dataplane::doctor::DoctorArgs),
    /// Run the dataplane: ports, worker lcores, policy (see config/dataplane.toml).
    #[cfg(feature = "dpdk")]
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Stop by itself after this many seconds (otherwise on SIGINT/SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
        /// EAL arguments (DPDK syntax), after `--`; appended to the file's `eal`.
        #[arg(last = true)]
        eal: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate and compile rule files; print a summary or every error.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Verdict when no rule matches.
        #[arg(long, default_value = "ALLOW", value_parser = parse_action)]
        default_action: Action,
    },
    /// Send a rule set to a running dataplane's control API (PUT /v1/rules).
    Apply(dataplane::control::client::ApplyArgs),
}

fn parse_action(s: &str) -> Result<Action, String> {
    Action::parse(&s.to_ascii_uppercase())
        .filter(|a| *a != Action::Reject)
        .ok_or_else(|| format!("unknown default action {s:?} (expected ALLOW or DROP)"))
}

fn parse_malformed(s: &str) -> Result<MalformedAction, String> {
    match s {
        "drop" => Ok(MalformedAction::Drop),
        "default" => Ok(MalformedAction::Default),
        _ => Err(format!("unknown malformed action {s:?} (expected drop or default)")),
    }
}

/// Invalid rules are invalid input: every error printed, [`Exit::Invalid`].
fn load_policy(paths: &[PathBuf], default_action: Action) -> Result<CompiledPolicy, ExitCode> {
    dataplane::policy::load_policy(paths, default_action).map_err(|e| {
        eprintln!("{e}");
        Exit::Invalid.into()
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Gen(args) if args.storm.storm => match dataplane::bench::storm::generate(&args) {
            Ok(s) if args.storm.json => match serde_json::to_string(&s) {
                Ok(json) => {
                    out!("{json}");
                    Exit::Ok.into()
                }
                Err(e) => {
                    eprintln!("gen: {e}");
                    Exit::Failed.into()
                }
            },
            Ok(s) => {
                out!("{}", dataplane::bench::storm::render(&s, &args.out).trim_end());
                Exit::Ok.into()
            }
            Err(e) => {
                eprintln!("gen: {e}");
                Exit::Invalid.into()
            }
        },
        Command::Gen(args) => match dataplane::bench::gen::generate(&args) {
            Ok(s) => {
                out!(
                    "wrote {}: {} packets ({} bytes), {} flows ({} TCP, {} UDP, {} IPv6, {} TLS of which {} post-quantum, {} with the whole ClientHello)",
                    args.out.display(),
                    s.packets,
                    s.bytes,
                    s.flows,
                    s.tcp_flows,
                    s.udp_flows,
                    s.ipv6_flows,
                    s.tls_flows,
                    s.post_quantum_hellos,
                    s.complete_hellos
                );
                if s.quic_flows > 0 {
                    out!(
                        "  of the UDP flows {} QUIC, of which {} post-quantum (two Initials), {} with the whole first flight",
                        s.quic_flows,
                        s.quic_post_quantum_hellos,
                        s.complete_quic_hellos
                    );
                }
                Exit::Ok.into()
            }
            Err(e) => {
                eprintln!("gen: {e}");
                Exit::Invalid.into()
            }
        },
        #[cfg(feature = "dpdk")]
        Command::LookupBench(args) => dataplane::bench::lookup::run(args),
        #[cfg(feature = "dpdk")]
        Command::Bench(args) => {
            use dataplane::control::plane::ControlPlane;
            let mut control = if args.json { ControlPlane::printing_to_stderr() } else { ControlPlane::new() };
            dataplane::bench::traffic::run(&args, Some(&mut control)).into()
        }
        #[cfg(feature = "dpdk")]
        Command::Run { config, duration, eal } => {
            let args = dataplane::worker::RunArgs { config, duration, eal };
            dataplane::worker::run(&args, &mut dataplane::control::plane::ControlPlane::new()).into()
        }
        Command::Webhook(args) => match dataplane::control::webhook::run(&args) {
            Ok(()) => Exit::Ok.into(),
            Err(e) => {
                eprintln!("webhook: {e}");
                Exit::Invalid.into()
            }
        },
        Command::Sync(args) => match dataplane::control::sync::run(&args) {
            Ok(true) => Exit::Ok.into(),
            Ok(false) => Exit::Failed.into(),
            Err(e) => {
                eprintln!("sync: {e}");
                Exit::Invalid.into()
            }
        },
        Command::Doctor(args) => dataplane::doctor::run(&args).into(),
        Command::Rules { command: RulesCommand::Apply(args) } => dataplane::control::client::apply(&args).into(),
        Command::Rules { command: RulesCommand::Check { paths, default_action } } => {
            match load_policy(&paths, default_action) {
                Ok(policy) => {
                    let s = policy.stats();
                    out!(
                        "ok: {} rules, {} IPv4 and {} IPv6 prefixes ({} + {} classes), compiled in {:.2} ms, {:.1} KiB",
                        s.rules,
                        s.v4_prefixes,
                        s.v6_prefixes,
                        s.v4_classes,
                        s.v6_classes,
                        s.compile_time.as_secs_f64() * 1e3,
                        s.memory_bytes as f64 / 1024.0
                    );
                    Exit::Ok.into()
                }
                Err(code) => code,
            }
        }
        Command::Classify {
            rules,
            pcap,
            json,
            default_action,
            flows,
            midstream,
            malformed,
            replies,
            reject_rate,
            reject_burst,
        } => {
            let policy = match load_policy(&rules, default_action) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let config = PipelineConfig { flow_capacity: flows, midstream, malformed, ..PipelineConfig::default() };
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            let out: Option<&mut dyn std::io::Write> = if json { Some(&mut lock) } else { None };
            let rejects = RejectOptions { limits: RejectConfig { rate: reject_rate, burst: reject_burst }, replies };
            match classify_pcap(&policy, &pcap, config, &rejects, out) {
                Ok(summary) => {
                    if !json {
                        out!(
                            "packets {}  allowed {}  dropped {}  malformed {}",
                            summary.packets,
                            summary.allowed,
                            summary.dropped,
                            summary.malformed
                        );
                        if summary.rejected > 0 {
                            out!("rejected {}  replies {}", summary.rejected, summary.replies);
                        }
                        for (name, hits) in &summary.hits {
                            out!("  rule {name}: {hits}");
                        }
                        out!("  default ({default_action}): {}", summary.default_hits);
                    }
                    Exit::Ok.into()
                }
                Err(e) => {
                    eprintln!("classify: {e}");
                    Exit::Failed.into()
                }
            }
        }
    }
}
