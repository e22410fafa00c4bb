//! What can go wrong in `dataplane run`, as values: made where it happens, printed once by
//! whoever called the run (`main`, `bench`), mapped to an exit code by [`RunError::exit`].

use std::fmt;
use std::path::PathBuf;

use super::config::ConfigError;
use crate::dpdk::DpdkError;
use crate::exit::Exit;
use crate::policy::LoadError;

/// Why `dataplane run` did not start, or what failed while it ran or stopped.
#[derive(Debug)]
pub enum RunError {
    /// The config file could not be read or parsed, or a key of it is wrong.
    ConfigFile { path: PathBuf, error: ConfigError },
    /// A key is wrong: the plan's checks, the EAL checks (lcores, ports, queue counts), the
    /// supervisor's (control plane) or a command-line value.
    Config(ConfigError),
    /// The rule files: every error, or a compiler limit.
    Rules(LoadError),
    /// EAL refused its arguments.
    Eal(DpdkError),
    /// A device or DPDK object failed: `what` names it (and the config key it comes from).
    Device { what: String, error: DpdkError },
    /// SIGINT/SIGTERM could not be caught.
    Signals(std::io::Error),
    /// An lcore loop could not be launched (`role` is "worker" or "distributor").
    Launch { role: &'static str, lcore: u32, error: DpdkError },
    /// An lcore loop ended badly (it panicked).
    Lcore { role: &'static str, lcore: u32, error: DpdkError },
    /// Mbufs in use after every port and ring was closed, other than the `kept` that
    /// drivers provably keep (`Port::kept_after_close`).
    Leak { in_use: u32, kept: u32 },
    /// What was set up does not match the plan (a bug).
    Inconsistent(String),
}

impl RunError {
    /// The process exit code: invalid input (nothing started) or a failure.
    pub fn exit(&self) -> Exit {
        match self {
            RunError::ConfigFile { .. } | RunError::Config(_) | RunError::Rules(_) | RunError::Eal(_) => Exit::Invalid,
            RunError::Device { .. }
            | RunError::Signals(_)
            | RunError::Launch { .. }
            | RunError::Lcore { .. }
            | RunError::Leak { .. }
            | RunError::Inconsistent(_) => Exit::Failed,
        }
    }

    /// A [`RunError::Device`].
    pub(super) fn device(what: impl Into<String>, error: DpdkError) -> RunError {
        RunError::Device { what: what.into(), error }
    }
}

impl From<ConfigError> for RunError {
    fn from(e: ConfigError) -> RunError {
        RunError::Config(e)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::ConfigFile { path, error } => write!(f, "config error: {}: {error}", path.display()),
            RunError::Config(e) => write!(f, "config error: {e}"),
            RunError::Rules(e) => write!(f, "{e}"),
            RunError::Eal(e) => write!(f, "config error: eal: {e}"),
            RunError::Device { what, error } => write!(f, "{what}: {error}"),
            RunError::Signals(e) => write!(f, "installing the signal handler: {e}"),
            RunError::Launch { role, lcore, error } => write!(f, "launching the {role} on lcore {lcore}: {error}"),
            RunError::Lcore { role, lcore, error } => write!(f, "{role} on lcore {lcore}: {error}"),
            RunError::Leak { in_use, kept: 0 } => {
                write!(f, "error: {in_use} mbufs leaked (still in use after every port and ring is closed)")
            }
            RunError::Leak { in_use, kept } if in_use > kept => write!(
                f,
                "error: {} mbufs leaked (still in use after every port and ring is closed, beyond the {kept} \
                 the af_xdp driver keeps)",
                in_use - kept
            ),
            RunError::Leak { in_use, kept } => write!(
                f,
                "error: {in_use} mbufs in use after every port and ring is closed, fewer than the {kept} the \
                 af_xdp driver took at setup and keeps: the count of what it keeps is wrong"
            ),
            RunError::Inconsistent(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for RunError {}

#[cfg(test)]
mod tests {
    use super::RunError;
    use crate::exit::Exit;

    /// The leak count against what the af_xdp driver keeps: more is a leak of that many,
    /// fewer is a wrong count; both fail the run.
    #[test]
    fn leaks_are_counted_beyond_what_the_driver_keeps() {
        let text = |in_use, kept| RunError::Leak { in_use, kept }.to_string();
        assert_eq!(text(3, 0), "error: 3 mbufs leaked (still in use after every port and ring is closed)");
        assert_eq!(
            text(4098, 4096),
            "error: 2 mbufs leaked (still in use after every port and ring is closed, beyond the 4096 the af_xdp \
             driver keeps)"
        );
        assert!(
            text(4095, 4096).starts_with("error: 4095 mbufs in use after every port and ring is closed, fewer than")
        );
        assert_eq!(RunError::Leak { in_use: 1, kept: 0 }.exit(), Exit::Failed);
    }
}
