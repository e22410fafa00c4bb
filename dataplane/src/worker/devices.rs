//! The devices a [`Plan`] names, once EAL runs: the checks that need EAL (as l3fwd's
//! `check_lcore_params` and `check_port_config`), made before any device is configured; the
//! ports configured, their queues and the distributor's rings held until the plan hands them
//! out; the ports started.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;

use super::config::{Config, ConfigError};
use super::error::RunError;
use super::plan::{DistributorPlan, InputSource, Plan, QueueRef};
use crate::dpdk::{lcore, Consumer, Mbuf, Mempool, Port, PortConfig, Producer, Ring, RxQueue, TxQueue};

/// Every lcore of the plan is an enabled worker lcore of EAL (not the main lcore).
pub(super) fn check_lcores(plan: &Plan) -> Result<(), RunError> {
    let enabled: Vec<u32> = lcore::worker_lcores().collect();
    let check = |key: String, l: u32| {
        if enabled.contains(&l) {
            Ok(())
        } else {
            Err(ConfigError::new(
                key,
                format!(
                    "lcore {l} is not an enabled worker lcore (main lcore {}, workers {enabled:?}; see --lcores in eal)",
                    lcore::main_lcore()
                ),
            ))
        }
    };
    for (i, w) in plan.workers.iter().enumerate() {
        check(format!("workers[{i}].lcore"), w.lcore)?;
    }
    if let Some(d) = &plan.distributor {
        check("distributor_lcore".into(), d.lcore)?;
    }
    Ok(())
}

/// Opens every port of the config (by device name, or port id), and checks that each device
/// has as many queues as the config asks for. Nothing is configured yet.
pub(super) fn open_ports(config: &Config) -> Result<Vec<Port>, RunError> {
    let mut ports = Vec::with_capacity(config.ports.len());
    for (i, p) in config.ports.iter().enumerate() {
        let opened = match p.device.parse::<u16>() {
            Ok(id) => Port::from_id(id),
            Err(_) => Port::by_name(&p.device),
        };
        let port = opened.map_err(|e| ConfigError::new(format!("ports[{i}].device"), e.to_string()))?;
        let info = port.info().map_err(|e| RunError::device(format!("ports[{i}] ({})", p.device), e))?;
        for (key, requested, max) in
            [("rx_queues", p.rx_queues, info.max_rx_queues), ("tx_queues", p.tx_queues, info.max_tx_queues)]
        {
            if requested > max {
                return Err(ConfigError::new(
                    format!("ports[{i}].{key}"),
                    format!("{requested} queues requested, port {} ({}) supports at most {max}", port.id(), p.device),
                )
                .into());
            }
        }
        ports.push(port);
    }
    Ok(ports)
}

/// Kernel-interface drivers that cannot give one worker both directions of a connection
/// when several workers poll the queues of one port (RSS distribution): what to use instead.
///
/// - `net_af_packet` joins its queues' sockets to a fanout group by the kernel's symmetric
///   hash, but always with `PACKET_FANOUT_FLAG_ROLLOVER` (DPDK 22.11,
///   `rte_pmd_init_internals`), and rollover moves packets of a connection to another
///   socket: measured on veth with `qpairs=2`, 15 of 17 connections at 2 Mbit/s each reached
///   both queues (0 of 17 with the same fanout hash without rollover; README, "Real
///   interfaces").
/// - `net_af_xdp`: the kernel driver picks the RX queue (on veth the sender's TX queue, on a
///   NIC its own RSS, set with ethtool), and nothing here can make that symmetric.
const UNSPLIT_DRIVERS: [&str; 2] = ["net_af_packet", "net_af_xdp"];

/// With RSS distribution, no port of a [`UNSPLIT_DRIVERS`] driver has its RX queues polled
/// by more than one worker. The software distributor has no such limit: it hashes each
/// packet's connection itself.
pub(super) fn check_queue_spread(config: &Config, plan: &Plan, ports: &[Port]) -> Result<(), RunError> {
    if plan.distributor.is_some() {
        return Ok(());
    }
    for (i, (port, p)) in ports.iter().zip(&config.ports).enumerate() {
        let pollers: BTreeSet<usize> = plan
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.inputs.iter().any(|input| matches!(input.source, InputSource::RxQueue(q) if q.port == i))
            })
            .map(|(k, _)| k)
            .collect();
        if pollers.len() < 2 {
            continue;
        }
        let driver = port.info().map_err(|e| RunError::device(format!("ports[{i}] ({})", p.device), e))?.driver;
        if UNSPLIT_DRIVERS.contains(&driver.as_str()) {
            return Err(ConfigError::new(
                format!("ports[{i}].rx_queues"),
                format!(
                    "{} RX queues of {} (driver {driver}) polled by {} workers: this driver does not keep both \
                     directions of a connection on one queue index, so connections would be split between \
                     workers. Use distribution = \"software\" (one RX queue per port, a distributor lcore) or \
                     one worker for this port's queues",
                    p.rx_queues,
                    p.device,
                    pollers.len()
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// The queues of the configured ports and the workers' ring ends, until the plan hands each
/// to the one lcore that uses it; those left are released when this drops.
pub(super) struct Queues {
    /// `rx[port][queue]`.
    rx: Vec<Vec<Option<RxQueue>>>,
    /// `tx[port][queue]`.
    tx: Vec<Vec<Option<TxQueue>>>,
    /// `rings[worker][slot]`: the consumer ends of the distributor's rings.
    rings: Vec<Vec<Option<Consumer<Mbuf, false>>>>,
}

/// Configures every port (queues from `pool`), in config order; none is started.
pub(super) fn configure_ports(config: &Config, ports: &mut [Port], pool: &Mempool) -> Result<Queues, RunError> {
    let mut queues = Queues { rx: Vec::new(), tx: Vec::new(), rings: Vec::new() };
    for (i, (port, p)) in ports.iter_mut().zip(&config.ports).enumerate() {
        let pc = PortConfig { rx_queues: p.rx_queues, tx_queues: p.tx_queues, rx_desc: p.rx_desc, tx_desc: p.tx_desc };
        let (rx, tx) = port.configure(&pc, pool).map_err(|e| RunError::device(format!("ports[{i}]"), e))?;
        queues.rx.push(rx.into_iter().map(Some).collect());
        queues.tx.push(tx.into_iter().map(Some).collect());
    }
    Ok(queues)
}

impl Queues {
    /// Creates the distributor's rings, one per (worker, ingress slot), and keeps their
    /// consumer ends; returns the producer ends, `[worker][slot]`.
    pub(super) fn create_rings(
        &mut self,
        distributor: &DistributorPlan,
        workers: usize,
    ) -> Result<Vec<Vec<Producer<Mbuf, false>>>, RunError> {
        let mut producers = Vec::with_capacity(workers);
        for w in 0..workers {
            let mut to_worker = Vec::with_capacity(distributor.ingress.len());
            let mut from_distributor = Vec::with_capacity(distributor.ingress.len());
            for slot in 0..distributor.ingress.len() {
                let name = DistributorPlan::ring_name(w, slot);
                let (tx, rx) =
                    Ring::spsc(&name, distributor.ring_size).map_err(|e| RunError::device("ring_size", e))?;
                to_worker.push(tx);
                from_distributor.push(Some(rx));
            }
            producers.push(to_worker);
            self.rings.push(from_distributor);
        }
        Ok(producers)
    }

    /// RX queue `q`, handed out once.
    pub(super) fn take_rx(&mut self, q: QueueRef) -> Result<RxQueue, RunError> {
        let queue = self.rx.get_mut(q.port).and_then(|p| p.get_mut(usize::from(q.queue))).and_then(Option::take);
        queue.ok_or_else(|| {
            RunError::Inconsistent(format!("RX queue {} of ports[{}] is not available", q.queue, q.port))
        })
    }

    /// TX queue `q`, handed out once.
    pub(super) fn take_tx(&mut self, q: QueueRef) -> Result<TxQueue, RunError> {
        let queue = self.tx.get_mut(q.port).and_then(|p| p.get_mut(usize::from(q.queue))).and_then(Option::take);
        queue.ok_or_else(|| {
            RunError::Inconsistent(format!("TX queue {} of ports[{}] is not available", q.queue, q.port))
        })
    }

    /// The consumer end of the ring carrying slot `slot` to worker `worker`, handed out once.
    pub(super) fn take_ring(&mut self, worker: usize, slot: usize) -> Result<Consumer<Mbuf, false>, RunError> {
        let ring = self.rings.get_mut(worker).and_then(|w| w.get_mut(slot)).and_then(Option::take);
        ring.ok_or_else(|| RunError::Inconsistent(format!("the ring of worker {worker}, slot {slot} is not available")))
    }
}

/// Starts every port (promiscuous when configured), in config order.
pub(super) fn start_ports(config: &Config, ports: &mut [Port]) -> Result<(), RunError> {
    for (i, (port, p)) in ports.iter_mut().zip(&config.ports).enumerate() {
        if p.promiscuous {
            // Virtual devices may not support it; not worth failing for.
            let _ = port.set_promiscuous(true);
        }
        port.start().map_err(|e| RunError::device(format!("ports[{i}] ({}): start failed", p.device), e))?;
    }
    Ok(())
}
