//! The exit codes of every `dataplane` command, in one table (README, "Command line").
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | failed while working: a device, an lcore or the mbuf check at exit (`run`, `bench`), a capture that cannot be read to the end (`classify`), a gateway that refused a valid set or could not be reached (`rules apply`, `sync --once`), `lookup-bench` |
//! | 2 | invalid input, nothing done: the command line, a config key, rules (any command), EAL arguments, an lcore or port the config names that EAL does not have, certificate or token files |

use std::process::ExitCode;

/// How a `dataplane` command ended: the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Failed while working (the input was valid).
    Failed = 1,
    /// Invalid input (command line, config, rules, EAL arguments): nothing was done. clap
    /// exits with the same code for a bad command line.
    Invalid = 2,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
