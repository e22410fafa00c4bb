//! `dataplane run`: ports, worker lcores (run to completion), software distribution,
//! policy adoption through per-worker mailboxes, periodic stats and a clean shutdown.
//!
//! The control (main) thread sets everything up, launches one loop per lcore
//! ([`fastpath::WorkerLoop::run`], [`fastpath::Distributor::run`]), then only reads the
//! published counters, prints stats and publishes policies ([`Workers::publish`]).

pub mod config;
pub mod fastpath;
mod publication;
mod stats;
mod supervisor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::dpdk::lcore::{self, Launched};
use crate::dpdk::mempool::DEFAULT_DATA_ROOM;
use crate::dpdk::{cycles, Eal, Mempool, Port, PortConfig, Ring, RxQueue, TxQueue};
use crate::pipeline::Pipeline;
use crate::policy::CompiledPolicy;
pub use config::{Config, ConfigError, Distribution};
pub use fastpath::Mailbox;
use fastpath::{Distributor, Input, Source, WorkerLoop};
pub use publication::Workers;
pub use stats::Snapshot;
pub use supervisor::{NoSupervisor, RunOutcome, Running, Supervisor};

/// Exit code for a bad configuration, bad rules or bad EAL arguments (nothing started).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure at run time (device start, launch) or an mbuf leak at exit.
pub const EXIT_RUNTIME: u8 = 1;

/// What `dataplane run` was given on the command line.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub config: PathBuf,
    /// Stop by itself after this many seconds.
    pub duration: Option<f64>,
    /// EAL arguments after `--`, appended to the file's `eal`.
    pub eal: Vec<String>,
}

fn config_error(e: impl std::fmt::Display) -> u8 {
    eprintln!("config error: {e}");
    EXIT_CONFIG
}

/// `dataplane run`. Returns the process exit code.
pub fn run(args: &RunArgs) -> u8 {
    run_with(args, &mut NoSupervisor).code
}

/// `dataplane run` with a [`Supervisor`] on the main thread.
pub fn run_with(args: &RunArgs, supervisor: &mut dyn Supervisor) -> RunOutcome {
    match Config::load(&args.config) {
        Ok(config) => run_config(&config, args.config.parent().unwrap_or(Path::new(".")), args, supervisor),
        Err(e) => RunOutcome::failed(config_error(format!("{}: {e}", args.config.display()))),
    }
}

/// Runs an already parsed `config` (relative rule paths are relative to `base`);
/// `args.config` is not read.
pub fn run_config(config: &Config, base: &Path, args: &RunArgs, supervisor: &mut dyn Supervisor) -> RunOutcome {
    if let Some(d) = args.duration {
        if !(d.is_finite() && d >= 0.0) {
            return RunOutcome::failed(config_error(format!("--duration: {d} is not a number of seconds")));
        }
    }
    let prepared = match supervisor.prepare(config, base) {
        Ok(p) => p,
        Err(e) => return RunOutcome::failed(config_error(e)),
    };
    let policy = match prepared {
        Some(mut p) => {
            if p.generation() == 0 {
                p.set_generation(1);
            }
            p
        }
        None => match load_policy(config, base) {
            Ok(p) => p,
            Err(code) => return RunOutcome::failed(code),
        },
    };
    match Runtime::start(config, args, policy) {
        Ok(rt) => rt.run_until_stopped(config, args.duration, supervisor),
        Err(code) => RunOutcome::failed(code),
    }
}

fn load_policy(config: &Config, base: &Path) -> Result<CompiledPolicy, u8> {
    let mut policy = crate::policy::load_policy(&config.rule_paths(base), config.default_action).map_err(|e| {
        eprintln!("{e}");
        EXIT_CONFIG
    })?;
    policy.set_generation(1);
    Ok(policy)
}

/// Everything alive while the dataplane runs.
pub struct Runtime {
    _eal: Eal,
    pool: Mempool,
    ports: Vec<Port>,
    workers: Arc<Workers>,
    launched: Vec<Launched<WorkerLoop>>,
    distributor: Option<Launched<Distributor>>,
    /// The distributor's lcore and counters.
    distributor_info: Option<(u32, Arc<Mailbox>)>,
    stop: Arc<AtomicBool>,
}

impl Runtime {
    fn start(config: &Config, args: &RunArgs, policy: CompiledPolicy) -> Result<Runtime, u8> {
        let mut eal_args = config.eal.clone();
        eal_args.extend(args.eal.iter().cloned());
        let eal = Eal::init(&eal_args).map_err(|e| config_error(format!("eal: {e}")))?;

        // Lcores must be enabled workers (not the main lcore).
        let enabled: Vec<u32> = lcore::worker_lcores().collect();
        let check_lcore = |key: String, l: u32| {
            if enabled.contains(&l) {
                Ok(())
            } else {
                Err(config_error(format!(
                    "{key}: lcore {l} is not an enabled worker lcore (main lcore {}, workers {enabled:?}; see --lcores in eal)",
                    lcore::main_lcore()
                )))
            }
        };
        for (i, w) in config.workers.iter().enumerate() {
            check_lcore(format!("workers[{i}].lcore"), w.lcore)?;
        }
        if let Some(d) = config.distributor_lcore {
            check_lcore("distributor_lcore".into(), d)?;
        }

        let pool =
            Mempool::with_config("dataplane_pool", config.mempool.size, config.mempool.cache, DEFAULT_DATA_ROOM, -1)
                .map_err(|e| config_error(format!("mempool: {e}")))?;

        // Ports: open and configure all before starting any.
        let mut ports = Vec::new();
        let mut rxqs: Vec<Vec<Option<RxQueue>>> = Vec::new();
        let mut txqs: Vec<Vec<Option<TxQueue>>> = Vec::new();
        for (i, p) in config.ports.iter().enumerate() {
            let opened = match p.device.parse::<u16>() {
                Ok(id) => Port::from_id(id),
                Err(_) => Port::by_name(&p.device),
            };
            let mut port = opened.map_err(|e| config_error(format!("ports[{i}].device: {e}")))?;
            let pc =
                PortConfig { rx_queues: p.rx_queues, tx_queues: p.tx_queues, rx_desc: p.rx_desc, tx_desc: p.tx_desc };
            let (rx, tx) = port.configure(&pc, &pool).map_err(|e| config_error(format!("ports[{i}]: {e}")))?;
            rxqs.push(rx.into_iter().map(Some).collect());
            txqs.push(tx.into_iter().map(Some).collect());
            ports.push(port);
        }
        let index_of = |device: &str| config.ports.iter().position(|p| p.device == device);

        let stop = Arc::new(AtomicBool::new(false));
        let lcores: Vec<u32> = config.workers.iter().map(|w| w.lcore).collect();
        let workers = Arc::new(Workers::new(lcores, policy.generation()));
        let policy = workers.share(policy);
        let tsc_per_ms = (cycles::tsc_hz() / 1000).max(1);
        let pipeline_config = config.pipeline();

        // Software distribution: one SPSC ring per (worker, ingress port).
        let ingress_ports: Vec<usize> = config.forward.keys().filter_map(|d| index_of(d)).collect();
        let mut consumers: Vec<BTreeMap<usize, _>> = Vec::new();
        let mut distributor = None;
        if config.distribution == Distribution::Software {
            let mut producers = Vec::new();
            for w in 0..config.workers.len() {
                let mut per_port = Vec::new();
                let mut cons = BTreeMap::new();
                for (slot, &p) in ingress_ports.iter().enumerate() {
                    let (tx, rx) = Ring::spsc(&format!("dist_w{w}_p{slot}"), config.ring_size)
                        .map_err(|e| config_error(format!("ring_size: {e}")))?;
                    per_port.push(tx);
                    cons.insert(p, rx);
                }
                producers.push(per_port);
                consumers.push(cons);
            }
            let mut inputs = Vec::new();
            for (slot, &p) in ingress_ports.iter().enumerate() {
                if let Some(queues) = rxqs.get_mut(p) {
                    inputs.extend(queues.iter_mut().filter_map(Option::take).map(|q| (q, slot)));
                }
            }
            distributor = Some(Distributor {
                inputs,
                rings: producers,
                counters: Counters::default(),
                mailbox: Arc::new(Mailbox::new(0, 0)),
                stop: stop.clone(),
            });
        }

        let mut prepared = Vec::new();
        for (k, w) in config.workers.iter().enumerate() {
            let mut tx = Vec::new();
            let mut tx_index: BTreeMap<usize, usize> = BTreeMap::new();
            let mut egress_slot = |ingress: usize, txqs: &mut Vec<Vec<Option<TxQueue>>>| -> Option<usize> {
                let to = config.ports.get(ingress).and_then(|p| config.forward.get(&p.device))?;
                let e = index_of(to)?;
                if let Some(&slot) = tx_index.get(&e) {
                    return Some(slot);
                }
                let q = txqs.get_mut(e)?.get_mut(k)?.take()?;
                tx.push(q);
                tx_index.insert(e, tx.len() - 1);
                Some(tx.len() - 1)
            };
            let mut inputs = Vec::new();
            match config.distribution {
                Distribution::Rss => {
                    for r in &w.rx {
                        let p = index_of(&r.port).ok_or(EXIT_CONFIG)?;
                        let q = rxqs.get_mut(p).and_then(|v| v.get_mut(usize::from(r.queue))).and_then(Option::take);
                        let (Some(q), Some(egress)) = (q, egress_slot(p, &mut txqs)) else {
                            return Err(config_error(format!("workers[{k}].rx: cannot set up port {}", r.port)));
                        };
                        inputs.push(Input { source: Source::Rx(q), egress });
                    }
                }
                Distribution::Software => {
                    let cons = std::mem::take(consumers.get_mut(k).ok_or(EXIT_CONFIG)?);
                    for (p, c) in cons {
                        let egress = egress_slot(p, &mut txqs).ok_or_else(|| {
                            config_error(format!("workers[{k}]: no TX queue {k} on the egress port of port {p}"))
                        })?;
                        inputs.push(Input { source: Source::Ring(c), egress });
                    }
                }
            }
            let mailbox = workers.mailbox(k).ok_or(EXIT_CONFIG)?;
            prepared.push((
                w.lcore,
                WorkerLoop {
                    inputs,
                    tx,
                    pipeline: Pipeline::with_memory_advice(pipeline_config, &|start, len| {
                        crate::dpdk::memory::advise_huge_pages(start, len);
                    }),
                    policy: policy.clone(),
                    counters: Counters::default(),
                    mailbox,
                    stop: stop.clone(),
                    tsc_per_ms,
                    phase_timing: config.phase_timing,
                },
            ));
        }
        drop(policy);
        // Queues nobody uses are released before the ports start.
        drop(rxqs);
        drop(txqs);

        for (i, (port, p)) in ports.iter_mut().zip(&config.ports).enumerate() {
            if p.promiscuous {
                // Virtual devices may not support it; not worth failing for.
                let _ = port.set_promiscuous(true);
            }
            if let Err(e) = port.start() {
                eprintln!("ports[{i}] ({}): start failed: {e}", p.device);
                return Err(EXIT_RUNTIME);
            }
        }

        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
                eprintln!("installing the signal handler: {e}");
                return Err(EXIT_RUNTIME);
            }
        }

        let mut rt = Runtime {
            _eal: eal,
            pool,
            ports,
            workers,
            launched: Vec::new(),
            distributor: None,
            distributor_info: None,
            stop,
        };
        for (lcore_id, w) in prepared {
            match lcore::launch(lcore_id, move || w.run()) {
                Ok(l) => rt.launched.push(l),
                Err(e) => {
                    eprintln!("launching the worker on lcore {lcore_id}: {e}");
                    rt.stop.store(true, Ordering::Relaxed);
                    return Err(rt.shutdown(Instant::now(), false).code.max(EXIT_RUNTIME));
                }
            }
        }
        if let (Some(d), Some(lcore_id)) = (distributor, config.distributor_lcore) {
            let mailbox = d.mailbox.clone();
            match lcore::launch(lcore_id, move || d.run()) {
                Ok(l) => {
                    rt.distributor = Some(l);
                    rt.distributor_info = Some((lcore_id, mailbox));
                }
                Err(e) => {
                    eprintln!("launching the distributor on lcore {lcore_id}: {e}");
                    rt.stop.store(true, Ordering::Relaxed);
                    return Err(rt.shutdown(Instant::now(), false).code.max(EXIT_RUNTIME));
                }
            }
        }
        Ok(rt)
    }

    fn announce(&self, config: &Config, to_stderr: bool) {
        let line = format!(
            "running: {} worker(s) on lcores {:?}, distribution {:?}, {} port(s), policy generation {}",
            self.workers.lcores().len(),
            self.workers.lcores(),
            config.distribution,
            self.ports.len(),
            self.workers.generation()
        );
        if to_stderr {
            eprintln!("{line}");
        } else {
            crate::out!("{line}");
        }
    }

    fn run_until_stopped(self, config: &Config, duration: Option<f64>, supervisor: &mut dyn Supervisor) -> RunOutcome {
        self.announce(config, supervisor.report_to_stderr());
        let started = Instant::now();
        let deadline = duration.map(|d| started + Duration::from_secs_f64(d));
        let period = (config.stats_period > 0.0 && supervisor.print_stats())
            .then(|| Duration::from_secs_f64(config.stats_period));
        let mut next_stats = period.map(|p| started + p);
        let mut last = Snapshot::take(&self);
        supervisor.started(&Running { runtime: &self, started, config });
        while !self.stop.load(Ordering::Relaxed) {
            supervisor.tick(&Running { runtime: &self, started, config });
            std::thread::sleep(Duration::from_millis(10));
            self.workers.reclaim();
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                self.stop.store(true, Ordering::Relaxed);
                break;
            }
            if let (Some(at), Some(p)) = (next_stats, period) {
                if now >= at {
                    let snap = Snapshot::take(&self);
                    print!(
                        "{}",
                        self.report(&format!("stats at {:.1} s", started.elapsed().as_secs_f64()), &snap, Some(&last))
                    );
                    last = snap;
                    next_stats = Some(at + p);
                }
            }
        }
        self.shutdown(started, supervisor.report_to_stderr())
    }

    /// Stops the lcores, then the ports; prints the final stats and the mempool check.
    fn shutdown(mut self, started: Instant, to_stderr: bool) -> RunOutcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut code = 0;
        // Join the loops: their queues, rings and pipelines come back and are dropped here.
        if let Some(l) = self.distributor.take() {
            let lcore_id = l.lcore();
            if let Err(e) = l.join() {
                eprintln!("distributor on lcore {lcore_id}: {e}");
                code = EXIT_RUNTIME;
            }
        }
        for l in self.launched.drain(..) {
            let lcore_id = l.lcore();
            match l.join() {
                Ok(w) => drop(w),
                Err(e) => {
                    eprintln!("worker on lcore {lcore_id}: {e}");
                    code = EXIT_RUNTIME;
                }
            }
        }
        self.workers.reclaim();
        for p in &mut self.ports {
            if let Err(e) = p.stop() {
                eprintln!("stopping port {}: {e}", p.name());
                code = EXIT_RUNTIME;
            }
        }
        let elapsed = started.elapsed();
        let snap = Snapshot::take(&self);
        let report = self.report(&format!("final stats after {:.1} s", elapsed.as_secs_f64()), &snap, None);
        if to_stderr {
            eprint!("{report}");
        } else {
            print!("{report}");
        }
        for p in self.ports.drain(..) {
            let name = p.name().to_owned();
            if let Err(e) = p.close() {
                eprintln!("closing port {name}: {e}");
                code = EXIT_RUNTIME;
            }
        }
        let in_use = self.pool.in_use();
        if to_stderr {
            eprintln!("mbufs in use: {in_use}");
        } else {
            crate::out!("mbufs in use: {in_use}");
        }
        if in_use != 0 {
            eprintln!("error: {in_use} mbufs leaked (still in use after every port and ring is closed)");
            code = EXIT_RUNTIME;
        }
        RunOutcome { code, last: Some(snap), elapsed }
    }
}

/// The worker index a frame goes to with software distribution over `workers` workers
/// (exposed for tests and tools).
pub fn software_worker_of(frame: &[u8], workers: usize) -> usize {
    fastpath::worker_of(frame, workers)
}

#[cfg(test)]
mod tests;
