//! `dataplane capture`: saves a running gateway's packet capture (`GET /v1/capture`) to a
//! pcap file, then prints how many packets it holds and how many copies were missed (`GET
//! /v1/capture/last`; a pcap file has no place for them).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write as _;
use std::path::PathBuf;

use super::client::{error_text, read_token_file, with_token};
use crate::exit::Exit;

#[derive(clap::Args, Clone, Debug)]
pub struct CaptureArgs {
    /// The control API, e.g. http://127.0.0.1:9090
    #[arg(long)]
    pub control: String,
    /// Packets decided by the rule of this name.
    #[arg(long)]
    pub rule: Option<String>,
    /// Packets given this verdict: ALLOW, DROP or REJECT.
    #[arg(long)]
    pub verdict: Option<String>,
    /// Packets from this prefix (a CIDR or an address).
    #[arg(long)]
    pub source: Option<String>,
    /// Stop after this many packets (at most 1000000).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds (at most 3600).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// The bearer token.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The pcap file to write ("-": standard output, the summary then goes to stderr).
    #[arg(short = 'w', long = "write")]
    pub file: PathBuf,
}

/// Returns the exit code: [`Exit::Ok`] saved; [`Exit::Invalid`] when the gateway refused the
/// query (400) or the token file is unreadable; [`Exit::Failed`] otherwise (unreachable,
/// 401, 409, the file not writable...).
pub fn capture(args: &CaptureArgs) -> Exit {
    let token = match &args.token {
        Some(t) => Some(t.trim().to_owned()),
        None => match read_token_file(args.token_file.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return Exit::Invalid;
            }
        },
    };
    let base = args.control.trim_end_matches('/');
    let url = format!("{base}/v1/capture");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.get(&url);
    let params = [
        ("rule", args.rule.clone()),
        ("verdict", args.verdict.clone()),
        ("source", args.source.clone()),
        ("count", args.count.map(|n| n.to_string())),
        ("seconds", args.seconds.map(|s| s.to_string())),
    ];
    for (key, value) in params {
        if let Some(v) = value {
            request = request.query(key, v);
        }
    }
    let mut response = match with_token(request, token.as_deref()).call() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("GET {url}: {e}");
            return Exit::Failed;
        }
    };
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        eprintln!("capture refused (HTTP {status}): {}", error_text(&text));
        return if status == 400 { Exit::Invalid } else { Exit::Failed };
    }
    let id = response.headers().get("x-capture-id").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
    let to_stdout = args.file.as_os_str() == "-";
    let name = if to_stdout { "standard output".to_owned() } else { args.file.display().to_string() };
    // The capture runs on every worker from here on (tests wait for this line).
    eprintln!("capture {id} running, writing {name}");
    let mut sink: Box<dyn std::io::Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        match std::fs::File::create(&args.file) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("{name}: {e}");
                return Exit::Failed;
            }
        }
    };
    // Unbuffered: each chunk is on disk as it comes, for `tail -f`-style readers.
    let copied = std::io::copy(&mut response.body_mut().as_reader(), &mut sink);
    let flushed = sink.flush();
    drop(sink);
    if let Err(e) = copied.and(flushed.map(|_| 0)) {
        eprintln!("capture {id}: {name}: {e}");
        return Exit::Failed;
    }
    summary(&agent, base, token.as_deref(), &id, &name, to_stdout)
}

/// Prints the capture's outcome from `GET /v1/capture/last`.
fn summary(agent: &ureq::Agent, base: &str, token: Option<&str>, id: &str, name: &str, to_stderr: bool) -> Exit {
    let url = format!("{base}/v1/capture/last");
    let outcome = with_token(agent.get(&url), token)
        .call()
        .ok()
        .filter(|r| r.status().as_u16() == 200)
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(|v| v.get("id").map(|i| i.to_string()).as_deref() == Some(id));
    let Some(o) = outcome else {
        eprintln!("capture {id}: saved to {name}; its outcome is not available from {url}");
        return Exit::Failed;
    };
    let number = |k: &str| o.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let line = format!(
        "capture {id}: {} packets captured, {} missed (ring full), ended by {}, in {name}",
        number("captured"),
        number("missed"),
        o.get("ended").and_then(|v| v.as_str()).unwrap_or("?")
    );
    if to_stderr {
        eprintln!("{line}");
    } else {
        crate::out!("{line}");
    }
    Exit::Ok
}
