//! The control plane: an HTTP API to update rules with atomic generations, persistence of
//! the last applied set, Prometheus metrics, SIGHUP reload, and the `rules apply` client.
//!
//! - [`canonical`]: the canonical form of a rule set and its digest.
//! - [`state`]: the state file (atomic writes, validated reads).
//! - [`auth`]: the bearer token, checked in constant time.
//! - [`metrics`]: the Prometheus recorder, fed from the workers' counters once a second.
//! - [`client`]: `dataplane rules apply`.
//! - `apply` (feature `dpdk`): the one apply path (parse, validate, compile, publish, wait
//!   until adopted, persist).
//! - `api`, `server` (feature `dpdk`): routes and the control thread.
//!
//! [`ControlPlane`] is a [`crate::worker::Supervisor`]: `run` (or `bench`) calls it on the
//! main thread. It never runs on a worker core and talks to the workers only through
//! [`crate::worker::Workers`] (policy mailboxes, published counters).

pub mod auth;
pub mod canonical;
pub mod client;
pub mod metrics;
pub mod state;

#[cfg(feature = "dpdk")]
pub mod api;
#[cfg(feature = "dpdk")]
pub mod apply;
#[cfg(feature = "dpdk")]
pub mod server;

#[cfg(feature = "dpdk")]
pub use plane::ControlPlane;

#[cfg(feature = "dpdk")]
mod plane {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::api::{self, ApiState, PortsView};
    use super::apply::{ActiveSet, Applier, ApplySettings};
    use super::auth::Token;
    use super::metrics::{Metrics, View};
    use super::server::{self, Bound, Serve};
    use super::state;
    use crate::policy::{load_rule_set, Action, CompiledPolicy, Rule};
    use crate::worker::config::ControlConfig;
    use crate::worker::{Config, ConfigError, Running, Supervisor};

    /// How often the main thread copies the counters for `/metrics` and `/v1/status`.
    const METRICS_PERIOD: Duration = Duration::from_secs(1);

    /// The control plane as a [`Supervisor`] of `dataplane run`.
    pub struct ControlPlane {
        config: ControlConfig,
        base: PathBuf,
        bound: Option<Bound>,
        addr: std::net::SocketAddr,
        token: Option<Token>,
        metrics: Arc<Metrics>,
        ports: Arc<Mutex<PortsView>>,
        sighup: Arc<AtomicBool>,
        shutdown: Arc<tokio::sync::Notify>,
        thread: Option<std::thread::JoinHandle<()>>,
        applier: Option<Arc<Applier>>,
        /// The set `initial_policy` chose, until the applier takes it.
        initial: Option<ActiveSet>,
        rule_paths: Vec<PathBuf>,
        default_action: Action,
        last_update: Option<Instant>,
    }

    fn resolve(base: &Path, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    }

    impl ControlPlane {
        /// Checks `config`, reads the token and TLS files (relative paths are relative to
        /// `base`), binds the listening socket and installs the SIGHUP handler. Prints
        /// `control: listening on <scheme>://<addr>` (the bound address: with port 0, the
        /// one the system picked). Errors name the key.
        pub fn start(config: &ControlConfig, base: &Path) -> Result<ControlPlane, ConfigError> {
            config.check()?;
            let addr = config.listen_addr()?;
            let token = match &config.token_file {
                Some(f) => {
                    Some(Token::from_file(&resolve(base, f)).map_err(|e| ConfigError::new("control.token_file", e))?)
                }
                None => None,
            };
            let tls_paths = match (&config.tls_cert, &config.tls_key) {
                (Some(c), Some(k)) => Some((resolve(base, c), resolve(base, k))),
                _ => None,
            };
            let bound = Bound::new(addr, tls_paths.as_ref().map(|(c, k)| (c.as_path(), k.as_path())))
                .map_err(|(key, msg)| ConfigError::new(key, msg))?;
            let sighup = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGHUP, sighup.clone())
                .map_err(|e| ConfigError::new("control", format!("installing the SIGHUP handler: {e}")))?;
            let addr = bound.addr;
            crate::out!("control: listening on {}://{addr}", bound.scheme());
            Ok(ControlPlane {
                config: config.clone(),
                base: base.to_path_buf(),
                bound: Some(bound),
                addr,
                token,
                metrics: Arc::new(Metrics::new()),
                ports: Arc::new(Mutex::new(PortsView::default())),
                sighup,
                shutdown: Arc::new(tokio::sync::Notify::new()),
                thread: None,
                applier: None,
                initial: None,
                rule_paths: Vec::new(),
                default_action: Action::Allow,
                last_update: None,
            })
        }

        /// The address the API listens on.
        pub fn local_addr(&self) -> std::net::SocketAddr {
            self.addr
        }

        fn state_dir(&self) -> Option<PathBuf> {
            self.config.state_dir.as_ref().map(|d| resolve(&self.base, d))
        }

        /// The persisted set, or `None` (nothing saved, or corrupt: reported).
        fn load_state(&self) -> Option<(ActiveSet, CompiledPolicy)> {
            let dir = self.state_dir()?;
            let file = state::path(&dir);
            let saved = match state::load(&dir) {
                Ok(Some(s)) => s,
                Ok(None) => return None,
                Err(reason) => {
                    eprintln!(
                        "control: state file {} is corrupt ({reason}); using the config's rule files",
                        file.display()
                    );
                    return None;
                }
            };
            let rules: Vec<Rule> = saved.rules.rules().to_vec();
            match CompiledPolicy::compile(saved.rules, self.default_action) {
                Ok(mut policy) => {
                    policy.set_generation(saved.generation);
                    crate::out!(
                        "control: loaded generation {} ({} rules, {}) from {}",
                        saved.generation,
                        rules.len(),
                        saved.digest,
                        file.display()
                    );
                    Some((ActiveSet::new(saved.generation, rules), policy))
                }
                Err(e) => {
                    eprintln!("control: state file {}: {e}; using the config's rule files", file.display());
                    None
                }
            }
        }

        /// First tick: the applier over the running workers, and the control thread.
        fn launch(&mut self, running: &Running<'_>) {
            let Some(bound) = self.bound.take() else { return };
            let workers = running.workers().clone();
            let generation = workers.generation();
            let initial = self.initial.take().unwrap_or_else(|| ActiveSet::new(generation, Vec::new()));
            let settings = ApplySettings {
                default_action: self.default_action,
                state_dir: self.state_dir(),
                apply_wait: Duration::from_millis(self.config.apply_wait_ms),
                adopt_timeout: Duration::from_millis(self.config.adopt_timeout_ms),
            };
            let applier = Arc::new(Applier::new(workers, settings, initial, self.metrics.clone()));
            let timeout = Duration::from_millis(self.config.request_timeout_ms);
            let state = Arc::new(ApiState {
                applier: applier.clone(),
                metrics: self.metrics.clone(),
                token: self.token.clone(),
                ports: self.ports.clone(),
                started: running.started,
            });
            let serve = Serve {
                bound,
                router: api::router(state, self.config.max_body_bytes, timeout),
                applier: applier.clone(),
                timeout,
                sighup: self.sighup.clone(),
                rule_paths: self.rule_paths.clone(),
                shutdown: self.shutdown.clone(),
            };
            match server::spawn(serve) {
                Ok(t) => self.thread = Some(t),
                Err(e) => eprintln!("control: starting the control thread: {e}"),
            }
            self.applier = Some(applier);
        }

        fn update(&mut self, running: &Running<'_>) {
            let snapshot = running.snapshot();
            let ports = running.ports();
            let links = running.links();
            let workers = running.workers();
            let names: Vec<String> = ports.iter().map(|(_, n)| n.clone()).collect();
            let active = self.applier.as_ref().map(|a| a.active());
            self.metrics.update(&View {
                snapshot: &snapshot,
                ports: &names,
                links: &links,
                adopted: &workers.adopted(),
                generation: workers.generation(),
                rules: active.as_ref().map_or(&[], |a| a.rules.as_slice()),
                uptime: running.started.elapsed(),
            });
            *self.ports.lock().unwrap_or_else(|e| e.into_inner()) =
                PortsView { ports, links, stats: snapshot.ports.clone(), distributor: snapshot.distributor };
        }
    }

    impl Supervisor for ControlPlane {
        /// The persisted set when there is a good one, else the config's rule files.
        fn initial_policy(&mut self, config: &Config, base: &Path) -> Option<CompiledPolicy> {
            self.default_action = config.default_action;
            self.rule_paths = config.rules.iter().map(|p| resolve(base, p)).collect();
            if let Some((active, policy)) = self.load_state() {
                self.initial = Some(active);
                return Some(policy);
            }
            // On an error `run` loads the files again and reports every error.
            let set = load_rule_set(&self.rule_paths).ok()?;
            let rules = set.rules().to_vec();
            let mut policy = CompiledPolicy::compile(set, config.default_action).ok()?;
            policy.set_generation(1);
            self.initial = Some(ActiveSet::new(1, rules));
            Some(policy)
        }

        fn tick(&mut self, running: &Running<'_>) {
            if self.bound.is_some() {
                self.launch(running);
            }
            let now = Instant::now();
            if self.last_update.is_none_or(|t| now.duration_since(t) >= METRICS_PERIOD) {
                self.last_update = Some(now);
                self.update(running);
            }
        }
    }

    impl Drop for ControlPlane {
        fn drop(&mut self) {
            self.shutdown.notify_one();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}
