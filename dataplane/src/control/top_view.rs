//! `dataplane top`: a gateway's top talkers (`GET /v1/top`) as a table, refreshed every
//! second like `top`, or printed once (`--once`, `--json`) for scripts.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::client::{error_text, read_token_file, with_token};
use crate::exit::Exit;
use crate::pipeline::talkers::TopBy;

#[derive(clap::Args, Clone, Debug)]
pub struct TopArgs {
    /// The control API, e.g. http://127.0.0.1:9090
    #[arg(long)]
    pub control: String,
    /// What sources are ranked by: new connections, ClientHellos, or packets dropped by policy.
    #[arg(long, value_enum, default_value = "connections")]
    pub by: TopBy,
    /// Rows shown (1 to 128).
    #[arg(long, default_value_t = super::top::DEFAULT_LIMIT)]
    pub limit: usize,
    /// A file holding the bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print the table once and exit.
    #[arg(long)]
    pub once: bool,
    /// Print the API's JSON once and exit.
    #[arg(long, conflicts_with = "once")]
    pub json: bool,
}

/// A request that failed: the exit code it deserves and why.
struct Failure(Exit, String);

/// Returns [`Exit::Ok`]; [`Exit::Invalid`] when the gateway refuses the query (400) or the
/// token file cannot be read; [`Exit::Failed`] when the gateway cannot be reached or refuses
/// otherwise (401...). The live view retries an unreachable gateway every second.
pub fn run(args: &TopArgs) -> Exit {
    let token = match read_token_file(args.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    let url = format!("{}/v1/top?by={}&limit={}", args.control.trim_end_matches('/'), args.by.name(), args.limit);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let fetch = || -> Result<Value, Failure> {
        let mut response = with_token(agent.get(&url), token.as_deref())
            .call()
            .map_err(|e| Failure(Exit::Failed, format!("GET {url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 => serde_json::from_str(&text).map_err(|e| Failure(Exit::Failed, format!("GET {url}: {e}: {text}"))),
            400 => Err(Failure(Exit::Invalid, format!("HTTP 400: {}", error_text(&text)))),
            _ => Err(Failure(Exit::Failed, format!("HTTP {status}: {}", error_text(&text)))),
        }
    };
    if args.once || args.json {
        return match fetch() {
            Ok(rows) if args.json => {
                crate::out!("{rows}");
                Exit::Ok
            }
            Ok(rows) => {
                crate::out!("{}", table(&rows, args.by).trim_end());
                Exit::Ok
            }
            Err(Failure(code, message)) => {
                eprintln!("{message}");
                code
            }
        };
    }
    loop {
        let body = match fetch() {
            Ok(rows) => table(&rows, args.by),
            // Refused for good: no use asking again.
            Err(Failure(code, message)) if code == Exit::Invalid || message.starts_with("HTTP 401") => {
                eprintln!("{message}");
                return code;
            }
            Err(Failure(_, message)) => format!("{message}\n(retrying every second)\n"),
        };
        // Home, clear the screen, then the table (as `top` redraws).
        crate::out!("\x1b[H\x1b[2J{} by {} (every 1 s, Ctrl-C to quit)\n{}", args.control, args.by.name(), body);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The rows of `/v1/top` as a table: address, count, its possible overcount, rate, and for
/// hellos the server names.
pub fn table(rows: &Value, by: TopBy) -> String {
    let mut out = String::new();
    let names = by == TopBy::Hellos;
    let _ = write!(out, "{:<24} {:>12} {:>10} {:>10}", "ADDRESS", by.name().to_ascii_uppercase(), "±", "RATE/s");
    out.push_str(if names { "  SERVER NAMES\n" } else { "\n" });
    let rows = rows.as_array().map_or(&[][..], Vec::as_slice);
    for r in rows {
        let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
        let address = r.get("address").and_then(Value::as_str).unwrap_or("?");
        let rate = r.get("rate").and_then(Value::as_f64).unwrap_or(0.0);
        let _ = write!(out, "{address:<24} {:>12} {:>10} {rate:>10.1}", n("count"), n("error"));
        if names {
            let snis: Vec<String> = r
                .get("snis")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|s| {
                    let name = s.get("name").and_then(Value::as_str).unwrap_or("");
                    format!("{name} ({})", s.get("count").and_then(Value::as_u64).unwrap_or(0))
                })
                .collect();
            let _ = write!(out, "  {}", snis.join(", "));
        }
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(none yet)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_the_rows_and_names_hellos() {
        let rows = serde_json::json!([
            {"address": "10.0.0.1", "count": 12, "error": 0, "rate": 2.5,
             "snis": [{"name": "a.example", "count": 10}, {"name": "b.example", "count": 2}]},
            {"address": "2001:db8::/64", "count": 3, "error": 1, "rate": 0.0, "snis": []}
        ]);
        assert_eq!(
            table(&rows, TopBy::Hellos),
            "ADDRESS                        HELLOS          ±     RATE/s  SERVER NAMES\n\
             10.0.0.1                           12          0        2.5  a.example (10), b.example (2)\n\
             2001:db8::/64                       3          1        0.0  \n"
        );
        assert_eq!(
            table(&serde_json::json!([]), TopBy::Drops),
            "ADDRESS                         DROPS          ±     RATE/s\n(none yet)\n"
        );
    }
}
