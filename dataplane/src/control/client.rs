//! `dataplane rules apply --control URL [--token-file F] PATH...`: sends rule files to a
//! running dataplane's control API and prints the answer.
//!
//! One file is sent as it is; several files or a directory (every `*.yaml`, `*.yml`,
//! `*.json`, sorted) are merged into one JSON array of documents. The server validates.
//! Exit codes: 0 applied (or unchanged), 1 refused (422: every error on stderr, one a line;
//! any other status: its body), 2 a local problem (unreadable file or token, bad URL, no
//! connection).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(clap::Args, Clone, Debug)]
pub struct ApplyArgs {
    /// The control API, e.g. http://127.0.0.1:9090 (http:// is assumed without a scheme).
    #[arg(long)]
    pub control: String,
    /// A file holding the bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for https:// (default: the Mozilla roots).
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Upsert the rules (POST) instead of replacing the whole set (PUT).
    #[arg(long)]
    pub upsert: bool,
    /// The generation to apply as; an older one is refused (409).
    #[arg(long)]
    pub generation: Option<u64>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Rule files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

const EXIT_REFUSED: u8 = 1;
const EXIT_LOCAL: u8 = 2;

/// `dataplane rules apply`. Returns the exit code.
pub fn apply(args: &ApplyArgs) -> u8 {
    match send(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rules apply: {e}");
            EXIT_LOCAL
        }
    }
}

fn send(args: &ApplyArgs) -> Result<u8, String> {
    let body = request_body(&args.paths)?;
    let base = if args.control.contains("://") { args.control.clone() } else { format!("http://{}", args.control) };
    let mut url = format!("{}/v1/rules", base.trim_end_matches('/'));
    if let Some(g) = args.generation {
        url.push_str(&format!("?generation={g}"));
    }
    let token = match &args.token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f).map_err(|e| format!("--token-file {}: {e}", f.display()))?;
            Some(t.trim().to_string())
        }
        None => None,
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(format!("--timeout: {} is not a positive number of seconds", args.timeout));
    }
    let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
    if let Some(ca) = &args.cacert {
        let pem = std::fs::read(ca).map_err(|e| format!("--cacert {}: {e}", ca.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!("--cacert {}: no certificate in the file", ca.display()));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs_f64(args.timeout)))
        .tls_config(tls.build())
        .build()
        .into();
    let request = if args.upsert { agent.post(&url) } else { agent.put(&url) };
    let request = request.header("Content-Type", "application/yaml");
    let request = match &token {
        Some(t) => request.header("Authorization", &format!("Bearer {t}")),
        None => request,
    };
    let mut response = request.send(body.as_bytes()).map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    Ok(report(status, &text))
}

/// Prints the answer; the exit code for `status`.
fn report(status: u16, text: &str) -> u8 {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        rule: String,
        #[serde(default)]
        field: String,
        message: String,
    }
    match status {
        200..=299 => {
            crate::out!("{}", text.trim_end());
            0
        }
        422 => {
            match serde_json::from_str::<Errors>(text) {
                Ok(e) => {
                    for i in &e.errors {
                        let parts: Vec<&str> = [i.rule.as_str(), i.field.as_str(), i.message.as_str()]
                            .into_iter()
                            .filter(|s| !s.is_empty())
                            .collect();
                        eprintln!("{}", parts.join(": "));
                    }
                    eprintln!("rejected (422): {} error(s); the active set stays in force", e.errors.len());
                }
                Err(_) => eprintln!("rejected (422): {}", text.trim_end()),
            }
            EXIT_REFUSED
        }
        _ => {
            eprintln!("refused ({status}): {}", text.trim_end());
            EXIT_REFUSED
        }
    }
}

/// The request body for `paths`: one file as it is, else a JSON array of every document.
fn request_body(paths: &[PathBuf]) -> Result<String, String> {
    let files = expand(paths)?;
    if let [only] = files.as_slice() {
        if paths.len() == 1 && paths.first().is_some_and(|p| p.is_file()) {
            return read(only);
        }
    }
    let mut docs: Vec<serde_json::Value> = Vec::new();
    for f in &files {
        let text = read(f)?;
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_yaml_ng::Value::deserialize(document).map_err(|e| format!("{}: {e}", f.display()))?;
            let json = serde_json::to_value(&value).map_err(|e| format!("{}: {e}", f.display()))?;
            match json {
                serde_json::Value::Null => {}
                serde_json::Value::Array(items) => docs.extend(items),
                serde_json::Value::Object(ref map) if map.get("kind").and_then(|k| k.as_str()) == Some("List") => {
                    if let Some(serde_json::Value::Array(items)) = map.get("items") {
                        docs.extend(items.iter().cloned());
                    }
                }
                other => docs.push(other),
            }
        }
    }
    serde_json::to_string(&docs).map_err(|e| e.to_string())
}

fn read(f: &Path) -> Result<String, String> {
    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file() && matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_files_become_one_json_array() {
        let dir = tempfile::tempdir().unwrap();
        let a = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: a}\nspec: {action: DROP}\n---\napiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: b}\nspec: {action: ALLOW}\n";
        let c = r#"[{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"c"},"spec":{"action":"DROP"}}]"#;
        std::fs::write(dir.path().join("a.yaml"), a).unwrap();
        std::fs::write(dir.path().join("c.json"), c).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let body = request_body(&[dir.path().to_path_buf()]).unwrap();
        let set = crate::policy::rule_set_from_str(&body, "").unwrap();
        let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
        // One file goes as it is.
        assert_eq!(request_body(&[dir.path().join("a.yaml")]).unwrap(), a);
        assert!(request_body(&[dir.path().join("missing.yaml")]).is_err());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(report(200, "{}"), 0);
        assert_eq!(report(422, r#"{"errors":[{"rule":"a","field":"spec","message":"m"}]}"#), 1);
        assert_eq!(report(401, r#"{"error":"x"}"#), 1);
    }
}
