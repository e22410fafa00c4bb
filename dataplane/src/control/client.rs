//! `dataplane rules apply`: sends a rule set to a gateway's control API (`PUT /v1/rules`) and
//! prints the answer.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use super::canonical;
use crate::policy::load_rule_set;

#[derive(clap::Args, Clone, Debug)]
pub struct ApplyArgs {
    /// The control API, e.g. http://127.0.0.1:9090
    #[arg(long)]
    pub control: String,
    /// A file holding the bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Activate as this generation (must be above the active one, else 409).
    #[arg(long)]
    pub generation: Option<u64>,
    /// Rule files or directories: one file is sent as it is (the gateway validates it);
    /// several, or a directory, are read and validated here and sent as one canonical set.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Returns the exit code: 0 applied, 1 rejected (422 and other errors), 2 bad arguments.
pub fn apply(args: &ApplyArgs) -> u8 {
    let body = match args.paths.as_slice() {
        [one] if one.is_file() => match std::fs::read_to_string(one) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {e}", one.display());
                return 2;
            }
        },
        paths => match load_rule_set(paths) {
            Ok(set) => canonical::to_json(&set),
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        },
    };
    let token = match &args.token_file {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => Some(t.trim().to_owned()),
            Err(e) => {
                eprintln!("--token-file {}: {e}", f.display());
                return 2;
            }
        },
        None => None,
    };
    let mut url = format!("{}/v1/rules", args.control.trim_end_matches('/'));
    if let Some(g) = args.generation {
        url.push_str(&format!("?generation={g}"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.put(&url).header("Content-Type", "application/yaml");
    if let Some(t) = &token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let mut response = match request.send(body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("PUT {url}: {e}");
            return 1;
        }
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        crate::out!("{}", text.trim_end());
        return 0;
    }
    // 422: one line per error, as `rules check` prints them.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
            for e in errors {
                let field = |k: &str| e.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
                let parts: Vec<String> =
                    [field("rule"), field("field"), field("message")].into_iter().filter(|s| !s.is_empty()).collect();
                eprintln!("{}", parts.join(": "));
            }
            eprintln!("rejected (HTTP {status}): {} error(s)", errors.len());
            return 1;
        }
    }
    eprintln!("HTTP {status}: {}", text.trim_end());
    1
}
