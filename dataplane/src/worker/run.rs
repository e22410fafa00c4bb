//! `dataplane run`, start to end: the config, the [`plan`], the policy, then the
//! [`Runtime`] (EAL, devices, lcores) until a stop. Errors are values, printed once by
//! [`run`] (or whoever else called [`run_config`]).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use super::config::{Config, ConfigError};
use super::error::RunError;
use super::plan::{plan, Plan};
use super::runtime::Runtime;
use super::supervisor::{RunOutcome, Supervisor};
use crate::exit::Exit;
use crate::policy::CompiledPolicy;

/// What `dataplane run` was given on the command line.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub config: PathBuf,
    /// Stop by itself after this many seconds.
    pub duration: Option<f64>,
    /// EAL arguments after `--`, appended to the file's `eal`.
    pub eal: Vec<String>,
}

/// `dataplane run` with a [`Supervisor`] on the main thread: prints every error once (on
/// stderr) and returns the exit code.
pub fn run(args: &RunArgs, supervisor: &mut dyn Supervisor) -> Exit {
    let outcome = run_with(args, supervisor);
    for e in &outcome.errors {
        eprintln!("{e}");
    }
    outcome.exit()
}

/// `dataplane run` with a [`Supervisor`] on the main thread; prints no error.
pub fn run_with(args: &RunArgs, supervisor: &mut dyn Supervisor) -> RunOutcome {
    match Config::load(&args.config) {
        Ok(config) => run_config(&config, args.config.parent().unwrap_or(Path::new(".")), args, supervisor),
        Err(error) => RunOutcome::failed(RunError::ConfigFile { path: args.config.clone(), error }),
    }
}

/// Runs an already parsed `config` (relative rule paths are relative to `base`);
/// `args.config` is not read. Prints no error.
pub fn run_config(config: &Config, base: &Path, args: &RunArgs, supervisor: &mut dyn Supervisor) -> RunOutcome {
    let (plan, policy) = match prepare(config, base, args, supervisor) {
        Ok(prepared) => prepared,
        Err(e) => return RunOutcome::failed(e),
    };
    let mut eal_args = config.eal.clone();
    eal_args.extend(args.eal.iter().cloned());
    let (mut runtime, loops) = match Runtime::start(config, &plan, &eal_args, policy) {
        Ok(started) => started,
        Err(e) => return RunOutcome::failed(e),
    };
    if let Err(e) = runtime.launch(loops) {
        let mut outcome = runtime.shutdown(std::time::Instant::now(), supervisor.report_to_stderr());
        outcome.errors.insert(0, e);
        return outcome;
    }
    runtime.run_until_stopped(config, args.duration, supervisor)
}

/// Everything before EAL: the command line's values, the plan, the policy the workers start
/// with.
fn prepare(
    config: &Config,
    base: &Path,
    args: &RunArgs,
    supervisor: &mut dyn Supervisor,
) -> Result<(Plan, CompiledPolicy), RunError> {
    if let Some(d) = args.duration {
        if !(d.is_finite() && d >= 0.0) {
            return Err(ConfigError::new("--duration", format!("{d} is not a number of seconds")).into());
        }
    }
    let plan = plan(config)?;
    let policy = match supervisor.prepare(config, base).map_err(|e| ConfigError::new("", e))? {
        Some(mut p) => {
            if p.generation() == 0 {
                p.set_generation(1);
            }
            p
        }
        None => {
            let mut p =
                crate::policy::load_policy(&config.rule_paths(base), config.default_action).map_err(RunError::Rules)?;
            p.set_generation(1);
            p
        }
    };
    Ok((plan, policy))
}
