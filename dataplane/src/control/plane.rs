//! The control plane beside the workers: a [`Supervisor`] for `dataplane run` (and `bench
//! --control`). It loads the last good rule set (or the config's rule files), serves the HTTP
//! API on its own thread with a current-thread tokio runtime (spawned from the main thread, so
//! it shares the main lcore's CPUs and never runs on a worker core), and on the main thread
//! copies the counters for `/v1/status` and `/metrics` a few times a second and, on SIGHUP,
//! starts a thread that reloads the rule files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::apply::{Active, Store};
use super::auth::Token;
use super::state::{self, StateDir};
use super::{api, metrics};
use crate::dpdk::Link;
use crate::policy::{load_rule_set, CompiledPolicy, RuleSet};
use crate::worker::config::{resolve, ControlConfig};
use crate::worker::{Config, Running, Snapshot, Supervisor, Workers};

/// How often the main thread copies counters for the API.
const REFRESH: Duration = Duration::from_millis(250);
/// How often the workers' top talkers are merged: the interval their rates are over.
const TOP_REFRESH: Duration = Duration::from_secs(1);

/// What the API thread sees of the running dataplane, refreshed by the main thread.
#[derive(Default)]
pub struct View {
    pub snapshot: Option<Snapshot>,
    /// (port id, device name), in config order.
    pub ports: Vec<(u16, String)>,
    pub links: Vec<Option<Link>>,
}

/// Everything the API handlers share.
pub struct ApiState {
    /// The apply lock and the active set; held by the blocking thread an apply runs on.
    pub store: Arc<tokio::sync::Mutex<Store>>,
    pub workers: Arc<Workers>,
    pub view: Mutex<View>,
    pub token: Option<Token>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub started: Instant,
    pub apply_wait: Duration,
    pub max_body: usize,
    pub request_timeout: Duration,
    /// The workers' top talkers merged, refreshed every [`TOP_REFRESH`].
    pub top: Mutex<super::top::TopBoard>,
    /// The packet capture running, if any, and the last one's outcome.
    pub captures: super::capture::Captures,
}

/// The control plane; inert when the config has no (enabled) `[control]` section.
#[derive(Default)]
pub struct ControlPlane {
    /// What `prepare` set up for the API, until `started` starts it.
    setup: Option<Setup>,
    api: Option<Arc<ApiState>>,
    last_refresh: Option<Instant>,
    last_top: Option<Instant>,
    reload: Arc<AtomicBool>,
    rule_paths: Vec<PathBuf>,
    /// Messages go to stderr (stdout carries `bench --json`'s summary).
    to_stderr: bool,
}

/// What `prepare` set up before the workers exist: the API's listener and store.
struct Setup {
    control: ControlConfig,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    token: Option<Token>,
    store: Store,
}

impl ControlPlane {
    pub fn new() -> ControlPlane {
        ControlPlane::default()
    }

    /// A control plane that prints its messages to stderr.
    pub fn printing_to_stderr() -> ControlPlane {
        ControlPlane { to_stderr: true, ..ControlPlane::default() }
    }

    fn say(&self, line: String) {
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            crate::out!("{line}");
        }
    }
}

impl Supervisor for ControlPlane {
    fn prepare(&mut self, config: &Config, base: &Path) -> Result<Option<CompiledPolicy>, String> {
        let Some(control) = config.control.clone().filter(|c| c.enabled) else { return Ok(None) };
        let addr: SocketAddr = control.listen_addr().map_err(|e| e.to_string())?;
        let token = match &control.token_file {
            Some(f) => Some(Token::from_file(&resolve(base, f)).map_err(|e| format!("control.token_file: {e}"))?),
            None => None,
        };
        let tls = match (&control.tls_cert, &control.tls_key) {
            (Some(c), Some(k)) => Some(
                super::http::tls_acceptor(&resolve(base, c), &resolve(base, k))
                    .map_err(|e| format!("control.tls_cert: {e}"))?,
            ),
            _ => None,
        };
        self.rule_paths = config.rule_paths(base);
        let state_dir = control.state_dir.as_ref().map(|d| resolve(base, d));
        // The last good set, else the config's rule files.
        let saved = match &state_dir {
            Some(dir) => match state::load(dir) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "control: the state in {} is corrupt ({e}); starting from the config's rule files",
                        dir.display()
                    );
                    None
                }
            },
            None => None,
        };
        let files = saved.as_ref().map(|s| s.files);
        if let Some(s) = saved.as_ref().filter(|s| s.ignored > 0) {
            eprintln!("control: ignored {} bytes of an unfinished append at the end of the state journal", s.ignored);
        }
        let (rules, generation) = match saved {
            Some(s) => {
                self.say(format!(
                    "control: restored generation {} ({}, {} rules)",
                    s.generation,
                    s.digest,
                    s.rules.len()
                ));
                (s.rules, s.generation.max(1))
            }
            None => match load_rule_set(&self.rule_paths) {
                Ok(r) => (r, 1),
                // `run` loads them again and reports every error.
                Err(_) => return Ok(None),
            },
        };
        let mut policy =
            CompiledPolicy::compile(rules.clone(), config.default_action).map_err(|e| format!("rules: {e}"))?;
        policy.set_generation(generation);
        let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("control.listen: {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("control.listen: {e}"))?;
        let store = Store {
            active: Active::new(rules, generation),
            default_action: config.default_action,
            state: state_dir.map(|dir| StateDir::new(dir, files)),
            adopt_timeout: Duration::from_millis(control.adopt_timeout_ms),
        };
        if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, self.reload.clone()) {
            return Err(format!("control: installing the SIGHUP handler: {e}"));
        }
        self.setup = Some(Setup { control, listener, tls, token, store });
        Ok(Some(policy))
    }

    fn started(&mut self, running: &Running<'_>) {
        if let Some(setup) = self.setup.take() {
            self.start_api(setup, running);
        }
    }

    fn tick(&mut self, running: &Running<'_>) {
        let Some(state) = &self.api else { return };
        let now = Instant::now();
        if self.last_refresh.is_none_or(|t| now.duration_since(t) >= REFRESH) {
            self.last_refresh = Some(now);
            let snapshot = running.snapshot();
            let queues: Vec<usize> = running.config.ports.iter().map(|p| usize::from(p.rx_queues)).collect();
            metrics::record(&snapshot, &running.ports(), &queues, state);
            if let Ok(mut v) = state.view.lock() {
                v.snapshot = Some(snapshot);
                v.links = running.links();
            }
        }
        if self.last_top.is_none_or(|t| now.duration_since(t) >= TOP_REFRESH) {
            self.last_top = Some(now);
            if let Ok(mut board) = state.top.lock() {
                running.workers().with_talkers(|copies| board.update(copies, now));
            }
        }
        if self.reload.swap(false, Ordering::Relaxed) {
            // On a thread of its own: reading and compiling 100k rules takes a few hundred
            // milliseconds, in which this thread keeps the stats going and watches for a stop.
            // The store's lock orders the reload with API requests.
            let (state, paths) = (state.clone(), self.rule_paths.clone());
            let spawned =
                std::thread::Builder::new().name("control-reload".into()).spawn(move || reload(&state, &paths));
            if let Err(e) = spawned {
                eprintln!("control: SIGHUP: starting the reload thread: {e}");
            }
        }
    }
}

impl ControlPlane {
    /// Starts the API thread (the workers exist now).
    fn start_api(&mut self, p: Setup, running: &Running<'_>) {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // The first control plane of the process installs the recorder; a second (tests) keeps it.
        let _ = ::metrics::set_global_recorder(recorder);
        metrics::describe();
        let state = Arc::new(ApiState {
            store: Arc::new(tokio::sync::Mutex::new(p.store)),
            workers: running.workers().clone(),
            view: Mutex::new(View { snapshot: None, ports: running.ports(), links: running.links() }),
            token: p.token,
            metrics: handle,
            started: running.started,
            apply_wait: Duration::from_millis(p.control.apply_wait_ms),
            max_body: p.control.max_body_bytes,
            request_timeout: Duration::from_millis(p.control.request_timeout_ms),
            top: Mutex::default(),
            captures: Default::default(),
        });
        let scheme = if p.tls.is_some() { "https" } else { "http" };
        match p.listener.local_addr() {
            Ok(a) => self.say(format!("control API listening on {scheme}://{a}")),
            Err(e) => eprintln!("control: {e}"),
        }
        let (listener, tls, app) = (p.listener, p.tls, api::router(state.clone()));
        let spawned = std::thread::Builder::new().name("control-api".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return eprintln!("control: runtime: {e}"),
            };
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => super::http::serve(l, tls, app, "control").await,
                    Err(e) => eprintln!("control: {e}"),
                }
            });
        });
        if let Err(e) = spawned {
            eprintln!("control: starting the API thread: {e}");
            running.stop();
        }
        self.api = Some(state);
    }
}

/// SIGHUP: the config's rule files again, through the same validation and apply.
fn reload(state: &ApiState, paths: &[PathBuf]) {
    let rules: RuleSet = match load_rule_set(paths) {
        Ok(r) => r,
        Err(e) => return eprintln!("control: SIGHUP: the rule files are invalid, nothing changed:\n{e}"),
    };
    let mut store = state.store.blocking_lock();
    match store.apply(&state.workers, rules, None) {
        Ok(a) => crate::out!("control: SIGHUP: generation {} ({}, {} rules)", a.generation, a.digest, a.rules),
        Err(e) => eprintln!("control: SIGHUP: {e:?}"),
    }
}
