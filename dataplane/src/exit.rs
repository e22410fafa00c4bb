//! The exit codes of every `dataplane` command, defined here once (the README's "Command
//! line" has the table of which failure gives which).

use std::process::ExitCode;

/// How a `dataplane` command ended: the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Failed while working, on valid input: a device, an lcore or the mbuf check at exit
    /// (`run`, `bench`), a capture that cannot be read to the end (`classify`), a gateway
    /// that refused a valid set or could not be reached (`rules apply`, `sync --once`).
    Failed = 1,
    /// Invalid input, nothing done: the command line (clap exits with the same code), a
    /// config key, rules (in every command), EAL arguments, an lcore or port the config names
    /// that EAL does not have, certificate or token files.
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
