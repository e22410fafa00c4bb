//! The plan of a run, made from the config alone before any device opens (as DPDK's l3fwd
//! checks its lcore and port parameters and assigns the RX queues before it touches a port):
//! which lcore each worker runs on, what it reads (RX queues, or the distributor's rings), by
//! which TX queue each input's packets leave, what the distributor polls, and which queues
//! nobody uses.
//!
//! [`plan`] makes every check that needs no DPDK and that concerns how the keys fit together
//! (ports named in `forward` and `workers[].rx` exist, queue indexes within the port's queues,
//! each RX queue polled once, a TX queue per worker on each egress port, lcores given one role);
//! [`Config::parse`] checks each key on its own. Each error names the config key. The checks
//! that need EAL (the lcores are enabled, the ports exist) come right after EAL starts, before
//! any device is configured.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use super::config::{Config, ConfigError, Distribution, PortEntry};

/// A queue of a port: the port's index in the config's `ports` and the queue's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueRef {
    pub port: usize,
    pub queue: u16,
}

/// Where the packets of a worker's input come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// An RX queue the worker polls itself (RSS distribution).
    RxQueue(QueueRef),
    /// The distributor's ring for this worker and ingress port `port`; `slot` is the port's
    /// place in [`DistributorPlan::ingress`] (software distribution).
    Ring { port: usize, slot: usize },
}

/// One input of a worker and the TX queue its packets leave by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerInput {
    pub source: InputSource,
    /// The worker's TX queue on the egress port (the ingress port's `forward` entry).
    pub tx: QueueRef,
    /// Where `tx` is in the worker's [`WorkerPlan::tx`].
    pub egress: usize,
}

/// One worker: `workers[k]` of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPlan {
    pub lcore: u32,
    pub inputs: Vec<WorkerInput>,
    /// The TX queues the worker owns, one per egress port, in the order its inputs first use
    /// them. Worker `k` owns TX queue `k` of each egress port.
    pub tx: Vec<QueueRef>,
}

/// An RX queue the distributor polls, with the ring slot of its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistributorInput {
    pub rx: QueueRef,
    pub slot: usize,
}

/// The software distributor: it polls every RX queue of the ingress ports and hands each
/// packet to a worker through one SPSC ring per (worker, ingress port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributorPlan {
    pub lcore: u32,
    /// The ingress ports (indexes in `ports`) in ring-slot order, as `forward` lists them:
    /// every worker has one ring per slot.
    pub ingress: Vec<usize>,
    /// Every RX queue of the ingress ports, by slot, then queue.
    pub inputs: Vec<DistributorInput>,
    /// Packets per ring.
    pub ring_size: u32,
}

impl DistributorPlan {
    /// The name of the ring that carries slot `slot`'s packets to worker `worker` (ring names
    /// are unique in a DPDK process).
    pub fn ring_name(worker: usize, slot: usize) -> String {
        format!("dist_w{worker}_p{slot}")
    }
}

/// Who does what, before anything opens. Ports are indexes in the config's `ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// In config order.
    pub workers: Vec<WorkerPlan>,
    /// With `distribution = "software"`.
    pub distributor: Option<DistributorPlan>,
    /// RX queues nobody polls (released before the ports start).
    pub unused_rx: Vec<QueueRef>,
    /// TX queues no worker owns (released before the ports start).
    pub unused_tx: Vec<QueueRef>,
}

impl Plan {
    /// The workers' lcores, in config order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.lcore).collect()
    }
}

/// Makes the plan of `config`, or says which key is wrong.
pub fn plan(config: &Config) -> Result<Plan, ConfigError> {
    let forward = forwarding(config)?;
    let (workers, distributor) = match distributor_lcore(config)? {
        None => (rss_workers(config, &forward)?, None),
        Some(lcore) => {
            let (workers, distributor) = software_workers(config, &forward, lcore)?;
            (workers, Some(distributor))
        }
    };
    check_tx_queues(config, &forward)?;
    if distributor.is_none() {
        check_directions_meet(config, &forward, &workers)?;
    }
    let (unused_rx, unused_tx) = unused_queues(config, &workers, distributor.as_ref());
    Ok(Plan { workers, distributor, unused_rx, unused_tx })
}

/// The index in `ports` of the port named `device`.
fn port_index(config: &Config, device: &str) -> Option<usize> {
    config.ports.iter().position(|p| p.device == device)
}

/// `forward` by port index: the egress port of each port (None: it forwards nowhere).
fn forwarding(config: &Config) -> Result<Vec<Option<usize>>, ConfigError> {
    let mut forward = vec![None; config.ports.len()];
    for (from, to) in &config.forward {
        let not_a_port =
            |name: &str| ConfigError::new(format!("forward.{from}"), format!("{name:?} is not a port in `ports`"));
        let ingress = port_index(config, from).ok_or_else(|| not_a_port(from))?;
        let egress = port_index(config, to).ok_or_else(|| not_a_port(to))?;
        if let Some(slot) = forward.get_mut(ingress) {
            *slot = Some(egress);
        }
    }
    Ok(forward)
}

/// One role per lcore; a distributor lcore exactly with software distribution. Returns the
/// distributor's lcore (None: RSS distribution).
fn distributor_lcore(config: &Config) -> Result<Option<u32>, ConfigError> {
    let mut lcores = BTreeSet::new();
    for (i, w) in config.workers.iter().enumerate() {
        if !lcores.insert(w.lcore) {
            return Err(ConfigError::new(format!("workers[{i}].lcore"), format!("lcore {} is used twice", w.lcore)));
        }
    }
    match (config.distribution, config.distributor_lcore) {
        (Distribution::Rss, None) => Ok(None),
        (Distribution::Rss, Some(_)) => {
            Err(ConfigError::new("distributor_lcore", "only with distribution = \"software\""))
        }
        (Distribution::Software, None) => {
            Err(ConfigError::new("distributor_lcore", "required with distribution = \"software\""))
        }
        (Distribution::Software, Some(d)) => {
            if lcores.contains(&d) {
                return Err(ConfigError::new("distributor_lcore", format!("lcore {d} is also a worker")));
            }
            if config.ring_size < 32 {
                return Err(ConfigError::new("ring_size", "at least 32"));
            }
            Ok(Some(d))
        }
    }
}

/// Worker `k`'s TX queue on the egress port of `ingress`, and its place in `tx` (added on
/// first use).
fn egress_of(
    config: &Config,
    forward: &[Option<usize>],
    k: usize,
    ingress: usize,
    tx: &mut Vec<QueueRef>,
) -> Result<(QueueRef, usize), ConfigError> {
    let device = config.ports.get(ingress).map_or("", |p| p.device.as_str());
    let Some(port) = forward.get(ingress).copied().flatten() else {
        return Err(ConfigError::new(
            format!("forward.{device}"),
            format!("port {device:?} receives traffic but is not in the forwarding map"),
        ));
    };
    let queue = u16::try_from(k).map_err(|_| ConfigError::new("workers", "at most 65536 workers"))?;
    let q = QueueRef { port, queue };
    let egress = match tx.iter().position(|t| *t == q) {
        Some(e) => e,
        None => {
            tx.push(q);
            tx.len() - 1
        }
    };
    Ok((q, egress))
}

/// RSS distribution: each worker polls the RX queues of its `rx` list, each queue once.
fn rss_workers(config: &Config, forward: &[Option<usize>]) -> Result<Vec<WorkerPlan>, ConfigError> {
    let mut polled = BTreeSet::new();
    let mut workers = Vec::with_capacity(config.workers.len());
    for (i, w) in config.workers.iter().enumerate() {
        if w.rx.is_empty() {
            return Err(ConfigError::new(format!("workers[{i}].rx"), "a worker must poll at least one queue"));
        }
        let mut inputs = Vec::with_capacity(w.rx.len());
        let mut tx = Vec::new();
        for (j, rx) in w.rx.iter().enumerate() {
            let key = format!("workers[{i}].rx[{j}]");
            let Some((port, entry)) = config.ports.iter().enumerate().find(|(_, p)| p.device == rx.port) else {
                return Err(ConfigError::new(format!("{key}.port"), format!("{:?} is not a port in `ports`", rx.port)));
            };
            if rx.queue >= entry.rx_queues {
                return Err(ConfigError::new(
                    format!("{key}.queue"),
                    format!("queue {} out of range: port {:?} has rx_queues = {}", rx.queue, rx.port, entry.rx_queues),
                ));
            }
            let q = QueueRef { port, queue: rx.queue };
            if !polled.insert(q) {
                return Err(ConfigError::new(
                    key,
                    format!("queue {} of port {:?} is polled by two workers", rx.queue, rx.port),
                ));
            }
            let (tx_queue, egress) = egress_of(config, forward, i, port, &mut tx)?;
            inputs.push(WorkerInput { source: InputSource::RxQueue(q), tx: tx_queue, egress });
        }
        workers.push(WorkerPlan { lcore: w.lcore, inputs, tx });
    }
    Ok(workers)
}

/// RSS distribution: both directions of a connection reach the same worker. A device that
/// spreads connections symmetrically (symmetric RSS, the kernel's fanout hash) puts the
/// replies to what arrived on queue `q` of a port on queue `q` of its egress port, provided
/// both have as many queues; so one worker must poll both. With one worker there is nothing
/// to split.
fn check_directions_meet(
    config: &Config,
    forward: &[Option<usize>],
    workers: &[WorkerPlan],
) -> Result<(), ConfigError> {
    if workers.len() < 2 {
        return Ok(());
    }
    // (port, queue) -> (worker, its rx index): who polls each queue.
    let mut poller = BTreeMap::new();
    for (k, w) in workers.iter().enumerate() {
        for (j, input) in w.inputs.iter().enumerate() {
            if let InputSource::RxQueue(q) = input.source {
                poller.insert(q, (k, j));
            }
        }
    }
    for (a, b) in forward.iter().enumerate().filter_map(|(a, b)| Some((a, (*b)?))) {
        let (Some(pa), Some(pb)) = (config.ports.get(a), config.ports.get(b)) else { continue };
        if a == b || forward.get(b).copied().flatten() != Some(a) {
            continue;
        }
        if pa.rx_queues != pb.rx_queues {
            return Err(ConfigError::new(
                format!("ports[{a}].rx_queues"),
                format!(
                    "{} RX queues on {:?} but {} on {:?}, which forward to each other: with several workers \
                     both need as many, or the two directions of a connection land on different queues",
                    pa.rx_queues, pa.device, pb.rx_queues, pb.device
                ),
            ));
        }
        for queue in 0..pa.rx_queues {
            let (Some(&(ka, ja)), Some(&(kb, _))) =
                (poller.get(&QueueRef { port: a, queue }), poller.get(&QueueRef { port: b, queue }))
            else {
                continue;
            };
            if ka != kb {
                return Err(ConfigError::new(
                    format!("workers[{ka}].rx[{ja}]"),
                    format!(
                        "queue {queue} of {:?} is polled by workers[{ka}] but queue {queue} of {:?} by \
                         workers[{kb}]: replies to what arrives on one come back on the other, so one worker \
                         must poll both",
                        pa.device, pb.device
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Software distribution: the distributor polls every RX queue of every port in `forward`;
/// each worker reads one ring per ingress port.
fn software_workers(
    config: &Config,
    forward: &[Option<usize>],
    lcore: u32,
) -> Result<(Vec<WorkerPlan>, DistributorPlan), ConfigError> {
    // Ring slots in the order `forward` lists the ports; a worker reads its rings in port order.
    let ingress: Vec<usize> = config.forward.keys().filter_map(|d| port_index(config, d)).collect();
    let by_port: BTreeMap<usize, usize> = ingress.iter().enumerate().map(|(slot, &port)| (port, slot)).collect();
    let mut workers = Vec::with_capacity(config.workers.len());
    for (i, w) in config.workers.iter().enumerate() {
        if !w.rx.is_empty() {
            return Err(ConfigError::new(
                format!("workers[{i}].rx"),
                "with distribution = \"software\" the distributor polls the RX queues; workers read their rings",
            ));
        }
        let mut inputs = Vec::with_capacity(by_port.len());
        let mut tx = Vec::new();
        for (&port, &slot) in &by_port {
            let (tx_queue, egress) = egress_of(config, forward, i, port, &mut tx)?;
            inputs.push(WorkerInput { source: InputSource::Ring { port, slot }, tx: tx_queue, egress });
        }
        workers.push(WorkerPlan { lcore: w.lcore, inputs, tx });
    }
    let inputs = ingress
        .iter()
        .enumerate()
        .flat_map(|(slot, &port)| {
            let queues = config.ports.get(port).map_or(0, |p| p.rx_queues);
            (0..queues).map(move |queue| DistributorInput { rx: QueueRef { port, queue }, slot })
        })
        .collect();
    Ok((workers, DistributorPlan { lcore, ingress, inputs, ring_size: config.ring_size }))
}

/// Every egress port has a TX queue for each worker.
fn check_tx_queues(config: &Config, forward: &[Option<usize>]) -> Result<(), ConfigError> {
    let senders = config.workers.len();
    for (i, p) in config.ports.iter().enumerate() {
        let egress = forward.contains(&Some(i));
        if egress && usize::from(p.tx_queues) < senders {
            return Err(ConfigError::new(
                format!("ports[{i}].tx_queues"),
                format!("{senders} workers send to port {:?}: it needs one TX queue each", p.device),
            ));
        }
    }
    Ok(())
}

/// The RX queues nobody polls and the TX queues no worker owns, by port, then queue.
fn unused_queues(
    config: &Config,
    workers: &[WorkerPlan],
    distributor: Option<&DistributorPlan>,
) -> (Vec<QueueRef>, Vec<QueueRef>) {
    let mut used_rx = BTreeSet::new();
    let mut used_tx = BTreeSet::new();
    for w in workers {
        used_tx.extend(w.tx.iter().copied());
        used_rx.extend(w.inputs.iter().filter_map(|i| match i.source {
            InputSource::RxQueue(q) => Some(q),
            InputSource::Ring { .. } => None,
        }));
    }
    if let Some(d) = distributor {
        used_rx.extend(d.inputs.iter().map(|i| i.rx));
    }
    let unused = |count: fn(&PortEntry) -> u16, used: &BTreeSet<QueueRef>| -> Vec<QueueRef> {
        let all = config
            .ports
            .iter()
            .enumerate()
            .flat_map(|(port, p)| (0..count(p)).map(move |queue| QueueRef { port, queue }));
        all.filter(|q| !used.contains(q)).collect()
    };
    (unused(|p| p.rx_queues, &used_rx), unused(|p| p.tx_queues, &used_tx))
}
