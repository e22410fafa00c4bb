//! `dataplane run` configuration: a TOML file (see `config/dataplane.toml`), parsed strictly
//! (unknown keys are errors, named by their path), each key checked on its own. How the keys
//! fit together (ports, queues, lcores) is the [`plan`](super::plan)'s to check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pipeline::flow::{self, FlowTimeouts};
use crate::pipeline::fragments::FragmentConfig;
use crate::pipeline::reject::RejectConfig;
use crate::pipeline::{MalformedAction, Midstream, PipelineConfig, TlsFail};
use crate::policy::Action;

/// A configuration error: the key (path in the file) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// How packets reach the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Each worker polls its own RX queues; the NIC spreads flows (symmetric RSS).
    #[default]
    Rss,
    /// A distributor lcore polls the RX queues and spreads packets over per-worker rings by a
    /// symmetric flow hash.
    Software,
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL arguments in DPDK syntax; those after `--` on the command line are appended.
    #[serde(default)]
    pub eal: Vec<String>,
    #[serde(default)]
    pub distribution: Distribution,
    /// Lcore of the distributor (software distribution only).
    pub distributor_lcore: Option<u32>,
    /// Ring size per (worker, ingress port), software distribution only.
    #[serde(default = "default_ring_size")]
    pub ring_size: u32,
    #[serde(default = "default_action", deserialize_with = "de_action")]
    pub default_action: Action,
    #[serde(default)]
    pub tls_fail: TlsFail,
    /// Mid-stream pickups (TCP segments of connections the flow table does not know).
    #[serde(default)]
    pub midstream: Midstream,
    /// What happens to a frame whose link or IP header is broken: "drop" or "default".
    #[serde(default)]
    pub malformed: MalformedAction,
    /// Rule files or directories loaded at start.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Seconds between stats prints; 0 disables periodic stats (final stats still print).
    #[serde(default = "default_stats_period")]
    pub stats_period: f64,
    #[serde(default)]
    pub mempool: MempoolConfig,
    #[serde(default)]
    pub flows: FlowsConfig,
    #[serde(default)]
    pub fragments: FragmentsConfig,
    #[serde(default)]
    pub reject: RejectsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    pub ports: Vec<PortEntry>,
    /// Ingress port -> egress port.
    pub forward: BTreeMap<String, String>,
    pub workers: Vec<WorkerEntry>,
    /// The control plane (HTTP API, persistence, metrics); absent: no control plane.
    pub control: Option<ControlConfig>,
    /// Workers read the TSC at each step of every burst (`dataplane bench --phases`; not a
    /// key of the file).
    #[serde(skip)]
    pub phase_timing: bool,
}

fn default_ring_size() -> u32 {
    1024
}
fn default_action() -> Action {
    Action::Allow
}
fn default_stats_period() -> f64 {
    1.0
}

fn de_action<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
    let s = String::deserialize(d)?;
    // REJECT is a rule's action: a default that answers every unmatched packet would make the
    // gateway a reflector for whatever reaches it.
    Action::parse(&s.to_ascii_uppercase())
        .filter(|a| *a != Action::Reject)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown default action {s:?} (expected ALLOW or DROP)")))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    #[serde(default = "default_pool_size")]
    pub size: u32,
    #[serde(default = "default_pool_cache")]
    pub cache: u32,
}

fn default_pool_size() -> u32 {
    8191
}
fn default_pool_cache() -> u32 {
    256
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig { size: default_pool_size(), cache: default_pool_cache() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsConfig {
    #[serde(default = "default_flow_capacity")]
    pub capacity: usize,
    #[serde(default = "default_tcp_established")]
    pub tcp_established_ms: u64,
    #[serde(default = "default_tcp_transitory")]
    pub tcp_transitory_ms: u64,
    #[serde(default = "default_udp")]
    pub udp_ms: u64,
    #[serde(default = "default_hello_buffers")]
    pub hello_buffers: usize,
}

fn default_flow_capacity() -> usize {
    PipelineConfig::default().flow_capacity
}
fn default_tcp_established() -> u64 {
    FlowTimeouts::default().tcp_established_ms
}
fn default_tcp_transitory() -> u64 {
    FlowTimeouts::default().tcp_transitory_ms
}
fn default_udp() -> u64 {
    FlowTimeouts::default().udp_ms
}
fn default_hello_buffers() -> usize {
    PipelineConfig::default().hello_buffers
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            capacity: default_flow_capacity(),
            tcp_established_ms: default_tcp_established(),
            tcp_transitory_ms: default_tcp_transitory(),
            udp_ms: default_udp(),
            hello_buffers: default_hello_buffers(),
        }
    }
}

/// `[fragments]`: the per-worker fragment table (`pipeline/fragments.rs`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FragmentsConfig {
    #[serde(default = "default_fragment_table")]
    pub table_size: usize,
    #[serde(default = "default_fragment_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_held_per_datagram")]
    pub held_per_datagram: usize,
    #[serde(default = "default_held_per_worker")]
    pub held_per_worker: usize,
}

fn default_fragment_table() -> usize {
    FragmentConfig::default().table_size
}
fn default_fragment_timeout() -> u64 {
    FragmentConfig::default().timeout_ms
}
fn default_held_per_datagram() -> usize {
    FragmentConfig::default().held_per_datagram
}
fn default_held_per_worker() -> usize {
    FragmentConfig::default().held_per_worker
}

impl Default for FragmentsConfig {
    fn default() -> Self {
        FragmentsConfig {
            table_size: default_fragment_table(),
            timeout_ms: default_fragment_timeout(),
            held_per_datagram: default_held_per_datagram(),
            held_per_worker: default_held_per_worker(),
        }
    }
}

impl FragmentsConfig {
    /// Largest `table_size` and `held_per_worker`.
    pub const MAX: usize = 1 << 20;

    fn check(&self) -> Result<(), ConfigError> {
        if self.table_size == 0 || self.table_size > Self::MAX {
            return Err(ConfigError::new("fragments.table_size", format!("from 1 to {}", Self::MAX)));
        }
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Err(ConfigError::new("fragments.timeout_ms", "from 1 to 60000"));
        }
        if self.held_per_worker > Self::MAX {
            return Err(ConfigError::new("fragments.held_per_worker", format!("at most {}", Self::MAX)));
        }
        if self.held_per_datagram > self.held_per_worker {
            return Err(ConfigError::new("fragments.held_per_datagram", "at most fragments.held_per_worker"));
        }
        Ok(())
    }
}

/// `[reject]`: how many rejected packets each worker answers (`pipeline/reject.rs`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectsConfig {
    /// Rejected packets answered per second per worker; 0 answers none.
    #[serde(default = "default_reject_rate")]
    pub rate: u32,
    /// How many may be answered at once (the token bucket's size).
    #[serde(default = "default_reject_burst")]
    pub burst: u32,
}

fn default_reject_rate() -> u32 {
    RejectConfig::default().rate
}
fn default_reject_burst() -> u32 {
    RejectConfig::default().burst
}

impl Default for RejectsConfig {
    fn default() -> Self {
        RejectsConfig { rate: default_reject_rate(), burst: default_reject_burst() }
    }
}

impl RejectsConfig {
    /// Largest `rate` and `burst`.
    pub const MAX: u32 = 1_000_000;

    fn check(&self) -> Result<(), ConfigError> {
        if self.rate > Self::MAX {
            return Err(ConfigError::new("reject.rate", format!("at most {} per second", Self::MAX)));
        }
        if self.burst > Self::MAX || (self.rate > 0 && self.burst == 0) {
            return Err(ConfigError::new("reject.burst", format!("from 1 to {} (0 only with rate = 0)", Self::MAX)));
        }
        Ok(())
    }

    /// The pipeline's form.
    pub fn limits(&self) -> RejectConfig {
        RejectConfig { rate: self.rate, burst: self.burst }
    }
}

/// `[limits]`: the per-worker table of the rules' per-source connection buckets
/// (`pipeline/limits.rs`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Buckets per worker (a power of two); sources past it share buckets.
    #[serde(default = "default_limit_slots")]
    pub slots: usize,
}

fn default_limit_slots() -> usize {
    crate::pipeline::limits::DEFAULT_SLOTS
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { slots: default_limit_slots() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortEntry {
    /// DPDK device name (`net_pcap0`, `0000:01:00.0`) or port id (`"0"`).
    pub device: String,
    #[serde(default = "one")]
    pub rx_queues: u16,
    #[serde(default = "one")]
    pub tx_queues: u16,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    #[serde(default = "yes")]
    pub promiscuous: bool,
}

fn one() -> u16 {
    1
}
fn default_desc() -> u16 {
    1024
}
fn yes() -> bool {
    true
}

/// `[control]`: the HTTP control API beside the workers (see `config/dataplane.toml`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// `false` keeps the section but runs no control plane.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address and port of the API; port 0 picks a free one (the bound address is printed).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the bearer token (required when `listen` is not a loopback address).
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain and private key: HTTPS instead of HTTP (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Directory where the last applied rule set is kept; absent: nothing persists.
    pub state_dir: Option<PathBuf>,
    /// Largest request body accepted (bytes).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// A request (including an apply) that takes longer gets 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// How long an apply waits for the one in progress before it gets 429 (0: at once).
    #[serde(default = "default_apply_wait")]
    pub apply_wait_ms: u64,
    /// How long an apply waits for every worker to run the new generation (then 503).
    #[serde(default = "default_adopt_timeout")]
    pub adopt_timeout_ms: u64,
}

/// Default API address.
pub const DEFAULT_CONTROL_LISTEN: &str = "127.0.0.1:9090";
/// Bodies above this are refused whatever the configuration (the rule parser's bound).
pub const MAX_CONTROL_BODY: usize = crate::policy::document::MAX_DOCUMENT_BYTES;

fn default_listen() -> String {
    DEFAULT_CONTROL_LISTEN.into()
}
fn default_max_body() -> usize {
    16 << 20
}
fn default_request_timeout() -> u64 {
    30_000
}
fn default_apply_wait() -> u64 {
    10_000
}
fn default_adopt_timeout() -> u64 {
    5_000
}

impl ControlConfig {
    /// The defaults with `listen` set (what `--control ADDR` gives).
    pub fn listening_on(listen: &str) -> ControlConfig {
        ControlConfig {
            enabled: true,
            listen: listen.into(),
            token_file: None,
            tls_cert: None,
            tls_key: None,
            state_dir: None,
            max_body_bytes: default_max_body(),
            request_timeout_ms: default_request_timeout(),
            apply_wait_ms: default_apply_wait(),
            adopt_timeout_ms: default_adopt_timeout(),
        }
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::new(
                "control.listen",
                format!("{:?} is not an address and port (like 127.0.0.1:9090 or [::1]:9090)", self.listen),
            )
        })
    }

    /// Checks that need no file system.
    pub fn check(&self) -> Result<(), ConfigError> {
        let addr = self.listen_addr()?;
        if !addr.ip().is_loopback() && self.token_file.is_none() {
            return Err(ConfigError::new(
                "control.token_file",
                format!("required when control.listen ({addr}) is not a loopback address"),
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(ConfigError::new("control.tls_key", "required with control.tls_cert")),
            (None, Some(_)) => return Err(ConfigError::new("control.tls_cert", "required with control.tls_key")),
            _ => {}
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > MAX_CONTROL_BODY {
            return Err(ConfigError::new(
                "control.max_body_bytes",
                format!("{} is out of range 1024..={MAX_CONTROL_BODY}", self.max_body_bytes),
            ));
        }
        for (key, v) in [("request_timeout_ms", self.request_timeout_ms), ("adopt_timeout_ms", self.adopt_timeout_ms)] {
            if v == 0 {
                return Err(ConfigError::new(format!("control.{key}"), "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerEntry {
    pub lcore: u32,
    /// (port, queue) pairs this worker polls (RSS distribution; empty with software).
    #[serde(default)]
    pub rx: Vec<RxEntry>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RxEntry {
    pub port: String,
    #[serde(default)]
    pub queue: u16,
}

impl Config {
    /// Parses a configuration file and checks each key; [`plan`](super::plan::plan) checks
    /// how they fit together.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("reading {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses a configuration text and checks each key; [`plan`](super::plan::plan) checks
    /// how they fit together.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            // toml's message carries the line and column; keep it on one line.
            let msg = inner.message().to_string();
            let at = inner
                .span()
                .map(|s| {
                    let line = text.get(..s.start).map_or(1, |t| t.matches('\n').count() + 1);
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            ConfigError::new(if key == "." { String::new() } else { key }, format!("{msg}{at}"))
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks each key on its own; how the keys fit together (ports named in `forward` and
    /// `workers`, queues, lcores) is checked by [`plan`](super::plan::plan).
    fn check(&self) -> Result<(), ConfigError> {
        if self.ports.is_empty() {
            return Err(ConfigError::new("ports", "at least one port is required"));
        }
        let mut names = BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let key = |k: &str| format!("ports[{i}].{k}");
            if p.device.is_empty() {
                return Err(ConfigError::new(key("device"), "empty device name"));
            }
            if !names.insert(p.device.as_str()) {
                return Err(ConfigError::new(key("device"), format!("port {:?} is listed twice", p.device)));
            }
            for (k, v) in
                [("rx_queues", p.rx_queues), ("tx_queues", p.tx_queues), ("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)]
            {
                if v == 0 {
                    return Err(ConfigError::new(key(k), "must be at least 1"));
                }
            }
        }
        if self.mempool.size < 64 {
            return Err(ConfigError::new("mempool.size", "at least 64 buffers"));
        }
        if self.mempool.cache > 512 || self.mempool.cache > self.mempool.size / 2 {
            return Err(ConfigError::new("mempool.cache", "at most 512 and at most half of mempool.size"));
        }
        flow::check_capacity(self.flows.capacity).map_err(|range| ConfigError::new("flows.capacity", range))?;
        let max_hellos = crate::tls::HelloBufferPool::MAX_SLOTS;
        if self.flows.hello_buffers > max_hellos {
            return Err(ConfigError::new("flows.hello_buffers", format!("at most {max_hellos}")));
        }
        self.fragments.check()?;
        self.reject.check()?;
        crate::pipeline::limits::check_slots(self.limits.slots)
            .map_err(|range| ConfigError::new("limits.slots", range))?;
        if !(self.stats_period >= 0.0 && self.stats_period.is_finite()) {
            return Err(ConfigError::new("stats_period", "seconds, 0 or more"));
        }
        if self.workers.is_empty() {
            return Err(ConfigError::new("workers", "at least one worker is required"));
        }
        if let Some(c) = &self.control {
            c.check()?;
        }
        Ok(())
    }

    /// The rule files and directories, relative ones taken from `base` (the config's
    /// directory).
    pub fn rule_paths(&self, base: &Path) -> Vec<PathBuf> {
        self.rules.iter().map(|p| resolve(base, p)).collect()
    }

    /// The pipeline settings.
    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            flow_capacity: self.flows.capacity,
            timeouts: FlowTimeouts {
                tcp_established_ms: self.flows.tcp_established_ms,
                tcp_transitory_ms: self.flows.tcp_transitory_ms,
                udp_ms: self.flows.udp_ms,
            },
            hello_buffers: self.flows.hello_buffers,
            tls_fail: self.tls_fail,
            midstream: self.midstream,
            malformed: self.malformed,
            fragments: FragmentConfig {
                table_size: self.fragments.table_size,
                timeout_ms: self.fragments.timeout_ms,
                held_per_datagram: self.fragments.held_per_datagram,
                held_per_worker: self.fragments.held_per_worker,
            },
            limit_slots: self.limits.slots,
        }
    }
}

/// A path from the config: relative ones are relative to `base`, the config's directory.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
