//! Prometheus metrics through `metrics` + `metrics-exporter-prometheus`. The main thread
//! copies the workers' published counters into absolute counters a few times a second;
//! nothing on the fast path touches `metrics`. Labels are bounded: worker index, port name,
//! drop cause, TLS outcome, apply result, rule name (at most `MAX_RULE_SERIES`) and action.

use metrics::{counter, gauge};

use super::plane::Shared;
use crate::worker::{counter as c, Snapshot};

/// Records one snapshot of every counter. `rx_queues[i]`: how many RX queues port `i` has.
pub fn record(s: &Snapshot, ports: &[(u16, String)], rx_queues: &[usize], shared: &Shared) {
    for (k, w) in s.workers.iter().enumerate() {
        let worker = k.to_string();
        let get = |i: usize| w.get(i).copied().unwrap_or(0);
        counter!("dataplane_worker_rx_packets_total", "worker" => worker.clone()).absolute(get(c::RX));
        counter!("dataplane_worker_tx_packets_total", "worker" => worker.clone()).absolute(get(c::TX));
        for (cause, i) in [("policy", c::DROP_POLICY), ("malformed", c::DROP_MALFORMED), ("tx_full", c::DROP_TX_FULL)] {
            counter!("dataplane_worker_dropped_packets_total", "worker" => worker.clone(), "cause" => cause)
                .absolute(get(i));
        }
        for (outcome, i) in [
            ("pending", c::TLS_PENDING),
            ("decided", c::TLS_DECIDED),
            ("not_tls", c::TLS_NOT_TLS),
            ("failed", c::TLS_FAILED),
        ] {
            counter!("dataplane_worker_tls_connections_total", "worker" => worker.clone(), "outcome" => outcome)
                .absolute(get(i));
        }
        counter!("dataplane_worker_flows_created_total", "worker" => worker.clone()).absolute(get(c::FLOWS_CREATED));
        counter!("dataplane_worker_flow_evictions_total", "worker" => worker.clone()).absolute(get(c::EVICTIONS));
        gauge!("dataplane_worker_flows", "worker" => worker.clone()).set(get(c::FLOWS) as f64);
    }
    for (k, generation) in shared.workers.adopted().iter().enumerate() {
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
    for ((rule, action), packets) in shared.workers.rule_packets() {
        counter!("dataplane_rule_packets_total", "rule" => rule, "action" => action.as_str()).absolute(packets);
    }
    gauge!("dataplane_policy_generation").set(shared.workers.generation() as f64);
    gauge!("dataplane_uptime_seconds").set(shared.started.elapsed().as_secs_f64());
}

/// Counts one apply by its HTTP status.
pub fn applied(status: u16) {
    counter!("dataplane_rule_applies_total", "status" => status.to_string()).increment(1);
}
