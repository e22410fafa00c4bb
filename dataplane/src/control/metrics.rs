//! Prometheus metrics through `metrics` + `metrics-exporter-prometheus`. The main thread
//! copies the workers' published counters into absolute counters a few times a second;
//! nothing on the fast path touches `metrics`. Labels are bounded: worker index, port name,
//! drop cause, TLS outcome, apply result, rule name (at most `MAX_RULE_SERIES`) and action.

use metrics::{counter, describe_counter, describe_gauge, gauge};

use super::plane::ApiState;
use crate::counters::{Counter, Kind, DEFS};
use crate::worker::Snapshot;

/// Gives each worker series its `# HELP` line (once per process; the exporter keeps them).
pub fn describe() {
    for def in &DEFS {
        match def.kind {
            Kind::Total => describe_counter!(def.metric, def.help),
            Kind::Level => describe_gauge!(def.metric, def.help),
        }
    }
}

/// Records one snapshot of every counter. `rx_queues[i]`: how many RX queues port `i` has.
pub fn record(s: &Snapshot, ports: &[(u16, String)], rx_queues: &[usize], state: &ApiState) {
    // Every counter of the list, labelled by worker (and by its own label, if it has one).
    for (k, w) in s.workers.iter().enumerate() {
        let worker = k.to_string();
        for (c, value) in w.iter() {
            record_counter(c, &worker, value);
        }
    }
    if let Some(d) = &s.distributor {
        for (c, value) in d.iter().filter(|(c, _)| c.def().owner != crate::counters::Owner::Worker) {
            record_counter(c, "distributor", value);
        }
    }
    for (k, generation) in state.workers.adopted().iter().enumerate() {
        gauge!("dataplane_worker_policy_generation", "worker" => k.to_string()).set(*generation as f64);
    }
    for (((_, name), st), queues) in ports.iter().zip(&s.ports).zip(rx_queues) {
        let Some(st) = st else { continue };
        let port = name.clone();
        counter!("dataplane_port_rx_packets_total", "port" => port.clone()).absolute(st.ipackets);
        counter!("dataplane_port_tx_packets_total", "port" => port.clone()).absolute(st.opackets);
        counter!("dataplane_port_rx_bytes_total", "port" => port.clone()).absolute(st.ibytes);
        counter!("dataplane_port_tx_bytes_total", "port" => port.clone()).absolute(st.obytes);
        counter!("dataplane_port_rx_missed_packets_total", "port" => port.clone()).absolute(st.imissed);
        counter!("dataplane_port_rx_nombuf_total", "port" => port.clone()).absolute(st.rx_nombuf);
        counter!("dataplane_port_rx_errors_total", "port" => port.clone()).absolute(st.ierrors);
        counter!("dataplane_port_tx_errors_total", "port" => port.clone()).absolute(st.oerrors);
        for (queue, &packets) in st.rx_queue_packets.iter().enumerate().take(*queues) {
            counter!("dataplane_port_rx_queue_packets_total", "port" => port.clone(), "queue" => queue.to_string())
                .absolute(packets);
        }
    }
    // At most `MAX_RULE_SERIES` rule names (then "_other"), plus "_default".
    for ((rule, action), packets) in state.workers.rule_packets() {
        counter!("dataplane_rule_packets_total", "rule" => rule, "action" => action.as_str()).absolute(packets);
    }
    for (rule, connections) in state.workers.rule_limited() {
        counter!("dataplane_rule_connections_limited_total", "rule" => rule).absolute(connections);
    }
    gauge!("dataplane_policy_generation").set(state.workers.generation() as f64);
    gauge!("dataplane_uptime_seconds").set(state.started.elapsed().as_secs_f64());
}

/// One series of the counter list.
fn record_counter(c: Counter, worker: &str, value: u64) {
    let def = c.def();
    let mut labels = vec![("worker", worker.to_owned())];
    labels.extend(def.label.map(|(name, v)| (name, v.to_owned())));
    match def.kind {
        Kind::Total => counter!(def.metric, &labels).absolute(value),
        Kind::Level => gauge!(def.metric, &labels).set(value as f64),
    }
}

/// Counts one apply by its HTTP status.
pub fn applied(status: u16) {
    counter!("dataplane_rule_applies_total", "status" => status.to_string()).increment(1);
}
