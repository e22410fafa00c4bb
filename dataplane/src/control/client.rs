//! `dataplane rules apply`: sends a rule set to a gateway's control API (`PUT /v1/rules`) and
//! prints the answer.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use super::canonical;
use crate::exit::Exit;
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

/// Returns the exit code: [`Exit::Ok`] applied; [`Exit::Invalid`] for invalid rules (found
/// here or by the gateway, 422) or an unreadable file; [`Exit::Failed`] when the gateway
/// refused a valid set (401, 409, 429, 503...) or could not be reached.
pub fn apply(args: &ApplyArgs) -> Exit {
    let body = match args.paths.as_slice() {
        [one] if one.is_file() => match std::fs::read_to_string(one) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {e}", one.display());
                return Exit::Invalid;
            }
        },
        paths => match load_rule_set(paths) {
            Ok(set) => canonical::to_json(&set),
            Err(e) => {
                eprintln!("{e}");
                return Exit::Invalid;
            }
        },
    };
    let token = match read_token_file(args.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    let mut url = format!("{}/v1/rules", args.control.trim_end_matches('/'));
    if let Some(g) = args.generation {
        url.push_str(&format!("?generation={g}"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let request = with_token(agent.put(&url).header("Content-Type", "application/yaml"), token.as_deref());
    let mut response = match request.send(body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("PUT {url}: {e}");
            return Exit::Failed;
        }
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        crate::out!("{}", text.trim_end());
        return Exit::Ok;
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
            return Exit::Invalid;
        }
    }
    eprintln!("HTTP {status}: {}", text.trim_end());
    Exit::Failed
}

/// The bearer token in `file` (trimmed), when one is named; the error names the option.
pub(crate) fn read_token_file(file: Option<&Path>) -> Result<Option<String>, String> {
    file.map(|f| {
        std::fs::read_to_string(f)
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("--token-file {}: {e}", f.display()))
    })
    .transpose()
}

/// `request` carrying the bearer token, if there is one.
pub(crate) fn with_token<B>(request: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => request.header("Authorization", format!("Bearer {t}")),
        None => request,
    }
}

/// The `error` of an API error body (`{"error": ...}`), or the body.
pub(crate) fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(serde_json::Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.trim_end().to_owned())
}
