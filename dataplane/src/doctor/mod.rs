//! `dataplane doctor`: what a DPDK host needs for the dataplane, each item OK, WARN or FAIL
//! with the fix. It reads sysfs and procfs (under a root, so tests use fake trees) and the
//! config's EAL arguments; it never starts EAL.
//!
//! [`eal`] reads what the EAL arguments ask for, [`host`] what the host has, [`checks`]
//! compares them into [`Finding`]s.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod checks;
pub mod eal;
pub mod host;

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::exit::Exit;
use crate::worker::Config;

pub use checks::diagnose;
pub use host::Host;

/// How an item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Status {
    #[serde(rename = "OK")]
    Ok,
    /// Works, but not as well as it could, or only for some configs.
    #[serde(rename = "WARN")]
    Warn,
    /// The dataplane cannot run as configured until this is fixed.
    #[serde(rename = "FAIL")]
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One item of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of item: `hugepages`, `hugetlbfs`, `bpffs`, `interface`, `pci`, `iommu`,
    /// `cpus`, `config`.
    pub check: &'static str,
    /// Which one (a page size, an interface, a PCI address, an lcore); empty for the host.
    pub subject: String,
    pub status: Status,
    pub detail: String,
    /// What to do about it (WARN and FAIL).
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, subject: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding { check, subject: subject.into(), status: Status::Ok, detail: detail.into(), fix: None }
    }

    pub fn warn(
        check: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding { check, subject: subject.into(), status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    pub fn fail(
        check: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding { check, subject: subject.into(), status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// `dataplane doctor` arguments.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The dataplane config whose EAL arguments, ports and workers are checked against the
    /// host; without it only what every DPDK host needs is checked.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Read /sys and /proc under this directory instead of / (a host's tree seen from a
    /// container, or a fake one in tests).
    #[arg(long, default_value = "/")]
    pub host_root: PathBuf,
}

/// Counts of each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

pub fn tally(findings: &[Finding]) -> Tally {
    let mut t = Tally::default();
    for f in findings {
        match f.status {
            Status::Ok => t.ok += 1,
            Status::Warn => t.warn += 1,
            Status::Fail => t.fail += 1,
        }
    }
    t
}

/// The report as a table, a line per item and its fix below it.
pub fn write_text(out: &mut dyn Write, findings: &[Finding]) -> std::io::Result<()> {
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in findings {
        let what = if f.subject.is_empty() { f.detail.clone() } else { format!("{}: {}", f.subject, f.detail) };
        writeln!(out, "{:<5} {:<width$}  {what}", f.status.label(), f.check)?;
        if let Some(fix) = &f.fix {
            writeln!(out, "{:<5} {:<width$}  fix: {fix}", "", "")?;
        }
    }
    let t = tally(findings);
    writeln!(out, "{} OK, {} WARN, {} FAIL", t.ok, t.warn, t.fail)
}

/// The report as one JSON object: `{"config":..,"findings":[..],"ok":N,"warn":N,"fail":N}`.
pub fn to_json(config: Option<&std::path::Path>, findings: &[Finding]) -> serde_json::Value {
    let t = tally(findings);
    serde_json::json!({
        "config": config.map(|p| p.display().to_string()),
        "findings": findings,
        "ok": t.ok,
        "warn": t.warn,
        "fail": t.fail,
    })
}

/// `dataplane doctor`: 0 when every item is OK or WARN, 1 when one FAILs, 2 when the config
/// cannot be read (the host is checked all the same).
pub fn run(args: &DoctorArgs) -> Exit {
    let host = Host::new(&args.host_root);
    let mut config_unreadable = false;
    let (config, mut findings) = match &args.config {
        None => (None, Vec::new()),
        Some(path) => match Config::load(path) {
            Ok(c) => (Some(c), Vec::new()),
            Err(e) => {
                config_unreadable = true;
                let fix = "correct the key named (every key is documented in config/dataplane.toml)";
                (None, vec![Finding::fail("config", path.display().to_string(), e.to_string(), fix)])
            }
        },
    };
    findings.extend(diagnose(&host, args.config.as_deref().zip(config.as_ref())));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Output is best effort (`doctor | head`); the exit code still tells.
    let _ = if args.json {
        writeln!(out, "{}", to_json(args.config.as_deref(), &findings))
    } else {
        write_text(&mut out, &findings)
    };
    if config_unreadable {
        Exit::Invalid
    } else if tally(&findings).fail > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

#[cfg(test)]
mod tests;
