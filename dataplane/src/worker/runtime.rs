//! The running dataplane: [`Runtime::start`] carries a [`Plan`] out, [`Runtime::launch`]
//! starts the lcore loops, the main thread then reads counters, prints stats and calls the
//! [`Supervisor`] until a stop, and [`Runtime::shutdown`] takes everything down.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::Config;
use super::devices::{self, Queues};
use super::error::RunError;
use super::fastpath::{Distributor, Input, Mailbox, Source, WorkerLoop};
use super::plan::{DistributorPlan, InputSource, Plan, WorkerPlan};
use super::publication::Workers;
use super::stats::Snapshot;
use super::supervisor::{RunOutcome, Running, Supervisor};
use crate::counters::Counters;
use crate::dpdk::lcore::{self, Launched};
use crate::dpdk::mempool::DEFAULT_DATA_ROOM;
use crate::dpdk::port::AF_XDP_DRIVER;
use crate::dpdk::{cycles, Eal, Mbuf, Mempool, Port, Producer};
use crate::pipeline::memory::Mib;
use crate::pipeline::reject::Rejecter;
use crate::pipeline::Pipeline;
use crate::policy::CompiledPolicy;

/// Everything alive while the dataplane runs.
pub struct Runtime {
    _eal: Eal,
    pool: Mempool,
    pub(super) ports: Vec<Port>,
    pub(super) workers: Arc<Workers>,
    launched: Vec<Launched<WorkerLoop>>,
    distributor: Option<Launched<Distributor>>,
    /// The distributor's lcore and counters.
    pub(super) distributor_info: Option<(u32, Arc<Mailbox>)>,
    pub(super) stop: Arc<AtomicBool>,
    /// What the mempool, each worker's pipeline and the policy hold, printed at start.
    memory: String,
}

/// The lcore loops, built and not launched yet.
pub(super) struct Loops {
    workers: Vec<(u32, WorkerLoop)>,
    distributor: Option<(u32, Distributor)>,
}

impl Runtime {
    /// Carries `plan` out: EAL, the checks that need it, the mempool, the ports configured,
    /// queues and rings handed out per the plan, the loops built, the ports started, the
    /// signals caught. Nothing runs on an lcore yet.
    pub(super) fn start(
        config: &Config,
        plan: &Plan,
        eal_args: &[String],
        policy: CompiledPolicy,
    ) -> Result<(Runtime, Loops), RunError> {
        let eal = Eal::init(eal_args).map_err(RunError::Eal)?;
        devices::check_lcores(plan)?;
        let mut ports = devices::open_ports(config)?;
        devices::check_queue_spread(config, plan, &ports)?;

        let pool =
            Mempool::with_config("dataplane_pool", config.mempool.size, config.mempool.cache, DEFAULT_DATA_ROOM, -1)
                .map_err(|e| RunError::device("mempool", e))?;
        let mut queues = devices::configure_ports(config, &mut ports, &pool)?;

        let stop = Arc::new(AtomicBool::new(false));
        let policy_bytes = policy.stats().memory_bytes;
        let workers = Arc::new(Workers::new(plan.worker_lcores(), policy.generation()));
        let parts = LoopParts {
            config,
            policy: workers.share(policy),
            workers: &workers,
            stop: &stop,
            tsc_per_ms: (cycles::tsc_hz() / 1000).max(1),
            pool: &pool,
        };
        let distributor = match &plan.distributor {
            Some(d) => {
                let rings = queues.create_rings(d, plan.workers.len())?;
                Some((d.lcore, parts.distributor(d, rings, &mut queues)?))
            }
            None => None,
        };
        let mut loops = Loops { workers: Vec::with_capacity(plan.workers.len()), distributor };
        for (k, w) in plan.workers.iter().enumerate() {
            loops.workers.push((w.lcore, parts.worker(k, w, &mut queues)?));
        }
        drop(parts);
        let memory = format!(
            "memory: mempool {} ({} buffers of {} bytes), per worker {}, compiled policy {}",
            Mib(pool.capacity() as usize * pool.object_bytes() as usize),
            pool.capacity(),
            pool.object_bytes(),
            loops.workers.first().map(|(_, w)| w.pipeline.memory()).unwrap_or_default(),
            Mib(policy_bytes)
        );
        // Queues nobody uses are released before the ports start.
        drop(queues);

        devices::start_ports(config, &mut ports)?;
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, stop.clone()).map_err(RunError::Signals)?;
        }
        let runtime = Runtime {
            _eal: eal,
            pool,
            ports,
            workers,
            launched: Vec::new(),
            distributor: None,
            distributor_info: None,
            stop,
            memory,
        };
        Ok((runtime, loops))
    }

    /// Launches the workers, then the distributor. On an error the loops not launched are
    /// dropped; those launched run until [`shutdown`](Self::shutdown).
    pub(super) fn launch(&mut self, loops: Loops) -> Result<(), RunError> {
        for (lcore_id, w) in loops.workers {
            let launched = lcore::launch(lcore_id, move || w.run()).map_err(|error| RunError::Launch {
                role: "worker",
                lcore: lcore_id,
                error,
            })?;
            self.launched.push(launched);
        }
        if let Some((lcore_id, d)) = loops.distributor {
            let mailbox = d.mailbox.clone();
            let launched = lcore::launch(lcore_id, move || d.run()).map_err(|error| RunError::Launch {
                role: "distributor",
                lcore: lcore_id,
                error,
            })?;
            self.distributor = Some(launched);
            self.distributor_info = Some((lcore_id, mailbox));
        }
        Ok(())
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
            eprintln!("{line}\n{}", self.memory);
        } else {
            crate::out!("{line}\n{}", self.memory);
        }
    }

    /// Prints stats and calls the supervisor until a signal, the supervisor or `duration`
    /// stops the run; then shuts down.
    pub(super) fn run_until_stopped(
        self,
        config: &Config,
        duration: Option<f64>,
        supervisor: &mut dyn Supervisor,
    ) -> RunOutcome {
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
    pub(super) fn shutdown(mut self, started: Instant, to_stderr: bool) -> RunOutcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        // Join the loops: their queues, rings and pipelines come back and are dropped here.
        if let Some(l) = self.distributor.take() {
            let lcore = l.lcore();
            if let Err(error) = l.join() {
                errors.push(RunError::Lcore { role: "distributor", lcore, error });
            }
        }
        for l in self.launched.drain(..) {
            let lcore = l.lcore();
            match l.join() {
                Ok(w) => drop(w),
                Err(error) => errors.push(RunError::Lcore { role: "worker", lcore, error }),
            }
        }
        self.workers.reclaim();
        let kept: u32 = self.ports.iter().map(Port::kept_after_close).sum();
        if let Err(e) = self.reclaim_tx(kept) {
            errors.push(e);
        }
        for p in &mut self.ports {
            if let Err(e) = p.stop() {
                errors.push(RunError::device(format!("stopping port {}", p.name()), e));
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
                errors.push(RunError::device(format!("closing port {name}"), e));
            }
        }
        let in_use = self.pool.in_use();
        let line = if kept == 0 {
            format!("mbufs in use: {in_use}")
        } else {
            // The af_xdp driver's fill rings (Port::kept_after_close): counted exactly, so a
            // leak of ours still shows, and so would a driver that gave some back.
            format!(
                "mbufs in use: {} beyond the {kept} the af_xdp driver keeps in its fill rings",
                i64::from(in_use) - i64::from(kept)
            )
        };
        if to_stderr {
            eprintln!("{line}");
        } else {
            crate::out!("{line}");
        }
        if in_use != kept {
            errors.push(RunError::Leak { in_use, kept });
        }
        RunOutcome { errors, last: Some(snap), elapsed }
    }

    /// Gets back the transmitted buffers AF_XDP ports still hold (`Port::reclaim_tx`). The
    /// kernel may complete a frame a little after its send (in copy mode when the frame's
    /// socket buffer is freed), so this asks again until only the `kept` fill-ring buffers
    /// are in use, for at most 200 ms; what is still missing then is reported as a leak.
    /// Every loop has stopped: nothing else frees or takes buffers.
    fn reclaim_tx(&mut self, kept: u32) -> Result<(), RunError> {
        if !self.ports.iter().any(|p| p.driver() == AF_XDP_DRIVER) {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_millis(200);
        loop {
            for p in &mut self.ports {
                p.reclaim_tx()
                    .map_err(|e| RunError::device(format!("reclaiming TX buffers of port {}", p.name()), e))?;
            }
            if self.pool.in_use() <= kept || Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What every lcore loop is built with.
struct LoopParts<'a> {
    config: &'a Config,
    policy: Arc<CompiledPolicy>,
    workers: &'a Arc<Workers>,
    stop: &'a Arc<AtomicBool>,
    tsc_per_ms: u64,
    pool: &'a Mempool,
}

impl LoopParts<'_> {
    /// Worker `k`: its TX queues, then its inputs (RX queues or rings), as the plan says.
    fn worker(&self, k: usize, plan: &WorkerPlan, queues: &mut Queues) -> Result<WorkerLoop, RunError> {
        let tx = plan.tx.iter().map(|&q| queues.take_tx(q)).collect::<Result<Vec<_>, _>>()?;
        let mut inputs = Vec::with_capacity(plan.inputs.len());
        for input in &plan.inputs {
            let source = match input.source {
                InputSource::RxQueue(q) => Source::Rx(queues.take_rx(q)?),
                InputSource::Ring { slot, .. } => Source::Ring(queues.take_ring(k, slot)?),
            };
            // Answers to rejected packets go back out the ingress port, by this worker's TX
            // queue there if it has one (it does when that port is an egress port too).
            let ingress = match input.source {
                InputSource::RxQueue(q) => q.port,
                InputSource::Ring { port, .. } => port,
            };
            let reply = plan.tx.iter().position(|t| t.port == ingress && usize::from(t.queue) == k);
            inputs.push(Input { source, egress: input.egress, reply });
        }
        let mailbox =
            self.workers.mailbox(k).ok_or_else(|| RunError::Inconsistent(format!("worker {k} has no mailbox")))?;
        Ok(WorkerLoop {
            inputs,
            tx,
            pipeline: Pipeline::with_memory_advice(self.config.pipeline(), &|start, len| {
                crate::dpdk::memory::advise_huge_pages(start, len);
            }),
            policy: self.policy.clone(),
            counters: Counters::default(),
            mailbox,
            stop: self.stop.clone(),
            tsc_per_ms: self.tsc_per_ms,
            phase_timing: self.config.phase_timing,
            rejecter: Rejecter::new(self.config.reject.limits(), self.tsc_per_ms.saturating_mul(1000)),
            pool: self.pool.clone(),
        })
    }

    /// The distributor: the RX queues of the ingress ports and the producer ends of the rings.
    fn distributor(
        &self,
        plan: &DistributorPlan,
        rings: Vec<Vec<Producer<Mbuf, false>>>,
        queues: &mut Queues,
    ) -> Result<Distributor, RunError> {
        let inputs =
            plan.inputs.iter().map(|i| Ok((queues.take_rx(i.rx)?, i.slot))).collect::<Result<Vec<_>, RunError>>()?;
        Ok(Distributor {
            inputs,
            rings,
            counters: Counters::default(),
            mailbox: Arc::new(Mailbox::new(0, 0)),
            stop: self.stop.clone(),
        })
    }
}
