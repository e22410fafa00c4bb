//! The hook for what runs on the main thread beside the workers (the control plane, the
//! traffic benchmark's lines), and how a run ended.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Config, RunError, Runtime, Snapshot, Workers};
use crate::exit::Exit;
use crate::policy::CompiledPolicy;

/// What runs on the main (control) thread beside the workers: the HTTP control plane,
/// the traffic benchmark's per-second lines. Never on a worker lcore.
pub trait Supervisor {
    /// Called before anything starts: the policy the workers start with (`None`: the config's
    /// rule files), or an error naming the config key, which stops the run
    /// ([`Exit::Invalid`]).
    fn prepare(&mut self, _config: &Config, _base: &Path) -> Result<Option<CompiledPolicy>, String> {
        Ok(None)
    }
    /// Called once, as soon as the workers run (the control plane starts its API here).
    fn started(&mut self, _running: &Running<'_>) {}
    /// Called about every 10 ms while the workers run.
    fn tick(&mut self, _running: &Running<'_>) {}
    /// Whether `run` prints its own stats every `stats_period`.
    fn print_stats(&self) -> bool {
        true
    }
    /// Whether `run`'s own lines (start, final stats) go to stderr, leaving stdout to the
    /// supervisor (`bench --json`).
    fn report_to_stderr(&self) -> bool {
        false
    }
}

/// No supervisor: `dataplane run` alone.
pub struct NoSupervisor;
impl Supervisor for NoSupervisor {}

/// What a [`Supervisor`] sees of the running dataplane.
pub struct Running<'a> {
    pub(super) runtime: &'a Runtime,
    /// When the workers were launched.
    pub started: Instant,
    pub config: &'a Config,
}

impl Running<'_> {
    /// The control side of the workers: publish policies, read counters and generations.
    pub fn workers(&self) -> &Arc<Workers> {
        &self.runtime.workers
    }
    /// Every counter now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::take(self.runtime)
    }
    /// Port ids and names, in config order.
    pub fn ports(&self) -> Vec<(u16, String)> {
        self.runtime.ports.iter().map(|p| (p.id(), p.name().to_owned())).collect()
    }
    /// Link state of each port (None when the device cannot tell).
    pub fn links(&self) -> Vec<Option<crate::dpdk::Link>> {
        self.runtime.ports.iter().map(|p| p.link().ok()).collect()
    }
    /// Asks the workers to stop (as SIGTERM does).
    pub fn stop(&self) {
        self.runtime.stop.store(true, Ordering::Relaxed);
    }
}

/// How a run ended.
pub struct RunOutcome {
    /// What went wrong, the cause first (empty: a clean run). Nothing has printed them: the
    /// caller does, once.
    pub errors: Vec<RunError>,
    /// The counters after the workers stopped (None when nothing started).
    pub last: Option<Snapshot>,
    /// From launch to stop.
    pub elapsed: Duration,
}

impl RunOutcome {
    pub(super) fn failed(error: RunError) -> RunOutcome {
        RunOutcome { errors: vec![error], last: None, elapsed: Duration::ZERO }
    }

    /// The process exit code: the first error's, or [`Exit::Ok`].
    pub fn exit(&self) -> Exit {
        self.errors.first().map_or(Exit::Ok, RunError::exit)
    }
}
