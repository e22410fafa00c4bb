//! `dataplane sync`: the fleet follows a directory (a Git checkout, as in a GitOps pipeline).
//!
//! Every round the directory is loaded and validated with the dataplane's own loader (an
//! invalid checkout is reported and never pushed; the last good set stays desired). Each
//! gateway's active set is read (`GET /v1/rules`); a gateway whose digest is not the desired
//! one is reported as drift and given the complete set (`PUT /v1/rules`), then read back: it
//! has converged when it reports the generation and digest its PUT answered, and that digest
//! is the one every other gateway reports. A failed or unreachable gateway is retried with
//! exponential backoff (capped at the interval). `--once` stops when every gateway has
//! converged (exit 0) or when one has failed `--retries` times in a row (exit 1).
//!
//! Output: one line per event on stdout (`pushed`, `drift`, `in-sync`, `converged`), problems
//! on stderr (`unreachable`, `rejected`), so a CI job or an operator can follow it.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::client::{read_token_file, with_token};
use crate::out;
use crate::policy::load_rule_set;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct SyncArgs {
    /// The desired rule set: files or directories (every *.yaml, *.yml, *.json), re-read
    /// every round.
    #[arg(long, required = true, num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Base URL of a gateway's control API (http:// or https://), e.g. https://10.0.0.5:9443.
    #[arg(long = "gateway", required = true, num_args = 1..)]
    pub gateways: Vec<String>,
    /// File holding the bearer token for the control APIs (re-read every round).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) to trust for https gateways, instead of the public roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Seconds between rounds (drift checks); also the longest retry backoff.
    #[arg(long, default_value_t = 30.0)]
    pub interval: f64,
    /// Converge once and exit: 0 when every gateway converged, 1 when one did not.
    #[arg(long)]
    pub once: bool,
    /// With --once: give up on a gateway after this many failed attempts in a row.
    #[arg(long, default_value_t = 8)]
    pub retries: u32,
    /// Per-request timeout in seconds (a PUT returns once every worker runs the set).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

/// What a gateway's control API answers about its active set (PUT and GET /v1/rules).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Active {
    pub generation: u64,
    pub digest: String,
}

#[derive(Deserialize)]
struct Rejection {
    errors: Vec<RejectedRule>,
}

#[derive(Deserialize)]
struct RejectedRule {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

/// The desired set: the request body and what identifies it.
#[derive(Clone, PartialEq, Eq)]
struct Desired {
    body: String,
    rules: usize,
    /// What every gateway must report (`sha256:` of the canonical JSON).
    digest: String,
}

/// One gateway's round: the active set it runs and whether it was pushed, or why not.
type StepResult = Result<(Active, bool), String>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum GwState {
    /// Not (or no longer known to be) running the desired set.
    Pending,
    /// Runs the desired set, as this generation.
    Synced(Active),
}

struct Gateway {
    url: String,
    state: GwState,
    failures: u32,
    next_try: Instant,
}

/// Why sync could not start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("--rules: {0}")]
    Rules(String),
    #[error("--ca-file: {0}")]
    Ca(String),
    #[error("--gateway {0}: expected an http:// or https:// URL")]
    Gateway(String),
    #[error("--interval and --timeout must be positive numbers of seconds")]
    Interval,
}

/// Run sync. `Ok(true)`: (with --once) every gateway converged.
pub fn run(args: &SyncArgs) -> Result<bool, SyncError> {
    if !(args.interval > 0.0 && args.interval.is_finite() && args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(SyncError::Interval);
    }
    for g in &args.gateways {
        if !(g.starts_with("http://") || g.starts_with("https://")) {
            return Err(SyncError::Gateway(g.clone()));
        }
    }
    let agent = agent(args)?;
    let interval = Duration::from_secs_f64(args.interval);
    let mut desired = load_desired(&args.rules).map_err(SyncError::Rules)?;
    let now = Instant::now();
    let mut gateways: Vec<Gateway> = args
        .gateways
        .iter()
        .map(|u| Gateway {
            url: u.trim_end_matches('/').to_string(),
            state: GwState::Pending,
            failures: 0,
            next_try: now,
        })
        .collect();
    // The digest every gateway must report.
    let mut expected: Option<String> = Some(desired.digest.clone());
    let mut announced = false;
    loop {
        match load_desired(&args.rules) {
            Ok(d) if d != desired => {
                out!("desired: {} rules changed in {}", d.rules, show_paths(&args.rules));
                expected = Some(d.digest.clone());
                desired = d;
                announced = false;
                for g in &mut gateways {
                    g.state = GwState::Pending;
                    g.failures = 0;
                    g.next_try = Instant::now();
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("desired: the rules do not load, keeping the previous set:\n{e}"),
        }
        let token = read_token_file(args.token_file.as_deref()).unwrap_or_else(|e| {
            eprintln!("{e}");
            None
        });
        let now = Instant::now();
        // One thread per due gateway: a slow or dead gateway does not hold up the others.
        let results: Vec<(usize, StepResult)> = std::thread::scope(|s| {
            let handles: Vec<_> = gateways
                .iter()
                .enumerate()
                .filter(|(_, g)| g.next_try <= now)
                .map(|(i, g)| {
                    let (agent, desired, token, expected) = (&agent, &desired, token.as_deref(), expected.as_deref());
                    let state = g.state.clone();
                    let url = g.url.clone();
                    (i, s.spawn(move || step(agent, &url, token, desired, expected, &state)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| (i, h.join().unwrap_or_else(|_| Err("sync thread failed".to_string()))))
                .collect()
        });
        for (i, result) in results {
            let Some(g) = gateways.get_mut(i) else { continue };
            match result {
                Ok((active, pushed)) => {
                    if pushed {
                        // A new generation somewhere: announce convergence again.
                        announced = false;
                    }
                    if expected.is_none() {
                        expected = Some(active.digest.clone());
                    }
                    if expected.as_deref() == Some(active.digest.as_str()) {
                        g.state = GwState::Synced(active);
                        g.failures = 0;
                        g.next_try = Instant::now() + interval;
                    } else {
                        eprintln!(
                            "mismatch {}: runs {} after the push, the fleet runs {}",
                            g.url,
                            active.digest,
                            expected.as_deref().unwrap_or("?")
                        );
                        fail(g, interval);
                    }
                }
                Err(e) => {
                    g.state = GwState::Pending;
                    fail(g, interval);
                    let wait = g.next_try.saturating_duration_since(Instant::now());
                    eprintln!("{e}; attempt {}, retry in {:.1}s", g.failures, wait.as_secs_f64());
                }
            }
        }
        let all_synced = gateways.iter().all(|g| matches!(g.state, GwState::Synced(_)));
        if all_synced && !announced {
            out!("converged: {} gateways at {}", gateways.len(), expected.as_deref().unwrap_or("?"));
            announced = true;
        } else if !all_synced {
            announced = false;
        }
        if args.once {
            if all_synced {
                return Ok(true);
            }
            if gateways.iter().any(|g| g.failures >= args.retries) {
                for g in gateways.iter().filter(|g| !matches!(g.state, GwState::Synced(_))) {
                    eprintln!("not converged: {} ({} failed attempts)", g.url, g.failures);
                }
                return Ok(false);
            }
        }
        let next = gateways.iter().map(|g| g.next_try).min().unwrap_or_else(|| Instant::now() + interval);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn fail(g: &mut Gateway, interval: Duration) {
    g.failures = g.failures.saturating_add(1);
    // 0.25 s, 0.5 s, 1 s, ... capped at the interval.
    let backoff = Duration::from_millis(250).saturating_mul(1u32 << g.failures.saturating_sub(1).min(16));
    g.next_try = Instant::now() + backoff.min(interval);
}

/// One gateway, one round: read its active set; push when it is not the desired one; read it
/// back. The active set it then runs and whether it was pushed, or why not.
fn step(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    desired: &Desired,
    expected: Option<&str>,
    state: &GwState,
) -> StepResult {
    let current = get_active(agent, url, token)?;
    if let Some(exp) = expected {
        if current.digest == exp {
            if !matches!(state, GwState::Synced(_)) {
                out!("in-sync {url}: generation {} digest {}", current.generation, current.digest);
            }
            return Ok((current, false));
        }
        if let GwState::Synced(was) = state {
            out!(
                "drift {url}: runs {} (generation {}), desired {exp} (was generation {})",
                current.digest,
                current.generation,
                was.generation
            );
        } else {
            out!("drift {url}: runs {} (generation {}), desired {exp}", current.digest, current.generation);
        }
    }
    let pushed = put_rules(agent, url, token, &desired.body)?;
    out!("pushed {url}: {} rules, generation {} digest {}", desired.rules, pushed.generation, pushed.digest);
    let after = get_active(agent, url, token)?;
    if after != pushed {
        return Err(format!(
            "changed {url}: after the push it reports generation {} digest {}, not {} {}",
            after.generation, after.digest, pushed.generation, pushed.digest
        ));
    }
    Ok((after, true))
}

fn request_error(url: &str, what: &str, e: ureq::Error) -> String {
    format!("unreachable {url}: {what}: {e}")
}

fn get_active(agent: &ureq::Agent, url: &str, token: Option<&str>) -> Result<Active, String> {
    let req = with_token(agent.get(format!("{url}/v1/rules")).header("Accept", "application/json"), token);
    let mut resp = req.call().map_err(|e| request_error(url, "GET /v1/rules", e))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| request_error(url, "GET /v1/rules", e))?;
    if status != 200 {
        return Err(format!("failed {url}: GET /v1/rules: HTTP {status}: {}", one_line(&body)));
    }
    serde_json::from_str(&body).map_err(|e| format!("failed {url}: GET /v1/rules: unexpected answer: {e}"))
}

fn put_rules(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &str) -> Result<Active, String> {
    let req = with_token(agent.put(format!("{url}/v1/rules")).header("Content-Type", "application/json"), token);
    let mut resp = req.send(body).map_err(|e| request_error(url, "PUT /v1/rules", e))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(|e| request_error(url, "PUT /v1/rules", e))?;
    match status {
        200 | 201 => {
            serde_json::from_str(&text).map_err(|e| format!("failed {url}: PUT /v1/rules: unexpected answer: {e}"))
        }
        422 => {
            let detail = match serde_json::from_str::<Rejection>(&text) {
                Ok(r) => r
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}: {}", e.rule, e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(_) => one_line(&text),
            };
            Err(format!("rejected {url}: the gateway refuses the set: {detail}"))
        }
        _ => Err(format!("failed {url}: PUT /v1/rules: HTTP {status}: {}", one_line(&text))),
    }
}

fn one_line(text: &str) -> String {
    let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    t.chars().take(300).collect()
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
}

fn agent(args: &SyncArgs) -> Result<ureq::Agent, SyncError> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = &args.ca_file {
        let pem = std::fs::read(ca).map_err(|e| SyncError::Ca(format!("{}: {e}", ca.display())))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(SyncError::Ca(format!("{}: no certificate in the file", ca.display())));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs_f64(args.timeout.min(10.0))))
        .timeout_global(Some(Duration::from_secs_f64(args.timeout)))
        .build()
        .new_agent())
}

/// Load and validate the desired set; the body is every rule document of the files, as one
/// JSON array (the same documents the gateway parses with the same code).
fn load_desired(paths: &[PathBuf]) -> Result<Desired, String> {
    let set = load_rule_set(paths).map_err(|e| e.to_string())?;
    // The canonical form: the digest a gateway reports for this set is known before any push.
    let body = super::canonical::to_json(&set);
    let digest = super::canonical::digest(&set);
    Ok(Desired { body, rules: set.len(), digest })
}
