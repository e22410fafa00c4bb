//! `dataplane run`: ports, worker lcores (run to completion), software distribution,
//! policy adoption through per-worker mailboxes, periodic stats and a clean shutdown.
//!
//! In order: the [`Config`] is parsed and each key checked; [`plan()`] decides, from the config
//! alone, who polls which queue, which ring and which TX queue (every check that needs no
//! DPDK); `run` starts EAL, checks the lcores and ports the plan names, then opens the
//! devices and carries the plan out (`Runtime::start`), launches one loop per lcore
//! ([`fastpath::WorkerLoop::run`], [`fastpath::Distributor::run`]), and the control (main) thread
//! only reads the published counters, prints stats and publishes policies
//! ([`Workers::publish`]). Errors are `RunError` values, printed once by `run()`.
//!
//! `config` and `plan` need no DPDK and build without the `dpdk` feature.

pub mod config;
pub mod plan;

#[cfg(feature = "dpdk")]
mod devices;
#[cfg(feature = "dpdk")]
mod error;
#[cfg(feature = "dpdk")]
pub mod fastpath;
#[cfg(feature = "dpdk")]
mod publication;
#[cfg(feature = "dpdk")]
mod run;
#[cfg(feature = "dpdk")]
mod runtime;
#[cfg(feature = "dpdk")]
mod stats;
#[cfg(feature = "dpdk")]
mod supervisor;

pub use config::{Config, ConfigError, Distribution};
pub use plan::{plan, Plan};

#[cfg(feature = "dpdk")]
pub use error::RunError;
#[cfg(feature = "dpdk")]
pub use fastpath::Mailbox;
#[cfg(feature = "dpdk")]
pub use publication::Workers;
#[cfg(feature = "dpdk")]
pub use run::{run, run_config, run_with, RunArgs};
#[cfg(feature = "dpdk")]
use runtime::Runtime;
#[cfg(feature = "dpdk")]
pub use stats::Snapshot;
#[cfg(feature = "dpdk")]
pub use supervisor::{NoSupervisor, RunOutcome, Running, Supervisor};

/// The worker index a frame goes to with software distribution over `workers` workers
/// (exposed for tests and tools).
#[cfg(feature = "dpdk")]
pub fn software_worker_of(frame: &[u8], workers: usize) -> usize {
    fastpath::worker_of(frame, workers)
}

#[cfg(test)]
mod plan_tests;
#[cfg(all(test, feature = "dpdk"))]
mod tests;
