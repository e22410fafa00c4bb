//! Prometheus metrics through `metrics` + `metrics-exporter-prometheus`, rendered by the API's
//! `GET /metrics` (no listener of the exporter's own).
//!
//! The recorder is local to the control plane (no global recorder). The main thread copies the
//! workers' published counters about once a second ([`Metrics::update`]) and sets the
//! Prometheus counters to those totals; nothing on the fast path touches `metrics`. Labels are
//! bounded: `worker` (index), `port` (device name from the config), `reason`, `action`,
//! `outcome`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Buckets of `dataplane_control_apply_seconds`.
const APPLY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The control plane's recorder and the handle that renders it.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let builder = PrometheusBuilder::new();
        // Only fails for an empty bucket list.
        let builder = builder.set_buckets(APPLY_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics { recorder, handle };
        m.with(describe_all);
        m
    }

    /// Runs `f` with this recorder as the `metrics` macros' recorder.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Counts an apply (`outcome`: applied, unchanged, invalid, conflict...) and its latency.
    pub fn record_apply(&self, outcome: &'static str, elapsed: Duration) {
        self.with(|| {
            counter!("dataplane_control_applies_total", "outcome" => outcome).increment(1);
            if outcome == "applied" {
                histogram!("dataplane_control_apply_seconds").record(elapsed.as_secs_f64());
            }
        });
    }

    /// Counts an API request refused for its credentials.
    pub fn record_unauthorized(&self) {
        self.with(|| counter!("dataplane_control_unauthorized_total").increment(1));
    }
}

fn describe_all() {
    for (name, help) in [
        ("dataplane_rx_packets_total", "Packets a worker received"),
        ("dataplane_tx_packets_total", "Packets a worker transmitted"),
        ("dataplane_dropped_packets_total", "Packets a worker dropped, by reason (policy, malformed, tx_full)"),
        ("dataplane_flows_created_total", "Connections a worker's flow table created"),
        ("dataplane_flow_evictions_total", "Connections evicted from a full flow-table bucket"),
        ("dataplane_flows_expired_total", "Connections expired by idle timeout"),
        ("dataplane_tls_failed_total", "ClientHellos that could not be inspected"),
        ("dataplane_classified_total", "Connections classified against the policy"),
        ("dataplane_busy_cycles_total", "TSC cycles a worker spent on bursts that carried packets"),
        ("dataplane_port_rx_packets_total", "Packets a port received (device counter)"),
        ("dataplane_port_tx_packets_total", "Packets a port transmitted (device counter)"),
        ("dataplane_port_rx_bytes_total", "Bytes a port received"),
        ("dataplane_port_tx_bytes_total", "Bytes a port transmitted"),
        ("dataplane_port_rx_missed_total", "Packets a port dropped because its RX queues were full"),
        ("dataplane_port_rx_errors_total", "Erroneous packets a port received"),
        ("dataplane_port_tx_errors_total", "Packets a port failed to transmit"),
        ("dataplane_port_rx_nombuf_total", "RX buffer allocation failures"),
        ("dataplane_distributor_rx_packets_total", "Packets the software distributor received"),
        ("dataplane_distributor_ring_full_drops_total", "Packets dropped because a worker's ring was full"),
        ("dataplane_control_applies_total", "Rule-set applies through the control plane, by outcome"),
        ("dataplane_control_unauthorized_total", "API requests refused for a missing or wrong token"),
    ] {
        describe_counter!(name, help);
    }
    for (name, help) in [
        ("dataplane_flows", "Connections in a worker's flow table"),
        ("dataplane_tls_pending", "Connections waiting for a complete ClientHello"),
        ("dataplane_worker_policy_generation", "Policy generation a worker runs"),
        ("dataplane_policy_generation", "Policy generation last published"),
        ("dataplane_policy_rules", "Rules in the active set, by action"),
        ("dataplane_port_link_up", "1 when a port's link is up"),
        ("dataplane_uptime_seconds", "Seconds since the workers started"),
    ] {
        describe_gauge!(name, help);
    }
    describe_histogram!(
        "dataplane_control_apply_seconds",
        Unit::Seconds,
        "From an apply request taken to every worker running the new generation and the state written"
    );
}

#[cfg(feature = "dpdk")]
mod update {
    use super::*;
    use crate::dpdk::{Link, PortStats};
    use crate::policy::{Action, Rule};
    use crate::worker::{counter as c, Snapshot};
    use metrics::gauge;

    /// What [`Metrics::update`] reads: the counters, the ports, the generations, the rules.
    pub struct View<'a> {
        pub snapshot: &'a Snapshot,
        /// Port names, in config order.
        pub ports: &'a [String],
        pub links: &'a [Option<Link>],
        pub adopted: &'a [u64],
        pub generation: u64,
        pub rules: &'a [Rule],
        pub uptime: Duration,
    }

    impl Metrics {
        /// Sets every counter and gauge to the values in `view`.
        pub fn update(&self, view: &View<'_>) {
            self.with(|| {
                for (k, w) in view.snapshot.workers.iter().enumerate() {
                    let worker = k.to_string();
                    let get = |i: usize| w.get(i).copied().unwrap_or(0);
                    let set =
                        |name: &'static str, i: usize| counter!(name, "worker" => worker.clone()).absolute(get(i));
                    set("dataplane_rx_packets_total", c::RX);
                    set("dataplane_tx_packets_total", c::TX);
                    for (reason, i) in
                        [("policy", c::DROP_POLICY), ("malformed", c::DROP_MALFORMED), ("tx_full", c::DROP_TX_FULL)]
                    {
                        counter!("dataplane_dropped_packets_total", "worker" => worker.clone(), "reason" => reason)
                            .absolute(get(i));
                    }
                    set("dataplane_flows_created_total", c::FLOWS_CREATED);
                    set("dataplane_flow_evictions_total", c::EVICTIONS);
                    set("dataplane_flows_expired_total", c::EXPIRED);
                    set("dataplane_tls_failed_total", c::TLS_FAILED);
                    set("dataplane_classified_total", c::CLASSIFIED);
                    set("dataplane_busy_cycles_total", c::BUSY_CYCLES);
                    gauge!("dataplane_flows", "worker" => worker.clone()).set(get(c::FLOWS) as f64);
                    gauge!("dataplane_tls_pending", "worker" => worker.clone()).set(get(c::TLS_PENDING) as f64);
                    let adopted = view.adopted.get(k).copied().unwrap_or(0);
                    gauge!("dataplane_worker_policy_generation", "worker" => worker).set(adopted as f64);
                }
                for (i, name) in view.ports.iter().enumerate() {
                    if let Some(Some(s)) = view.snapshot.ports.get(i) {
                        port_counters(name, s);
                    }
                    if let Some(Some(link)) = view.links.get(i) {
                        gauge!("dataplane_port_link_up", "port" => name.clone()).set(if link.up { 1.0 } else { 0.0 });
                    }
                }
                if let Some(d) = &view.snapshot.distributor {
                    let get = |i: usize| d.get(i).copied().unwrap_or(0);
                    counter!("dataplane_distributor_rx_packets_total").absolute(get(c::RX));
                    counter!("dataplane_distributor_ring_full_drops_total").absolute(get(c::DROP_RING_FULL));
                }
                gauge!("dataplane_policy_generation").set(view.generation as f64);
                for action in [Action::Allow, Action::Drop] {
                    let n = view.rules.iter().filter(|r| r.action == action).count();
                    gauge!("dataplane_policy_rules", "action" => action.as_str()).set(n as f64);
                }
                gauge!("dataplane_uptime_seconds").set(view.uptime.as_secs_f64());
            });
        }
    }

    fn port_counters(port: &str, s: &PortStats) {
        for (name, v) in [
            ("dataplane_port_rx_packets_total", s.ipackets),
            ("dataplane_port_tx_packets_total", s.opackets),
            ("dataplane_port_rx_bytes_total", s.ibytes),
            ("dataplane_port_tx_bytes_total", s.obytes),
            ("dataplane_port_rx_missed_total", s.imissed),
            ("dataplane_port_rx_errors_total", s.ierrors),
            ("dataplane_port_tx_errors_total", s.oerrors),
            ("dataplane_port_rx_nombuf_total", s.rx_nombuf),
        ] {
            counter!(name, "port" => port.to_owned()).absolute(v);
        }
    }
}

#[cfg(feature = "dpdk")]
pub use update::View;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_render_as_prometheus_text() {
        let m = Metrics::new();
        m.record_apply("applied", Duration::from_millis(3));
        m.record_apply("invalid", Duration::from_millis(1));
        m.record_apply("invalid", Duration::from_millis(1));
        let text = m.render();
        assert!(text.contains("# TYPE dataplane_control_applies_total counter"), "{text}");
        assert!(text.contains("dataplane_control_applies_total{outcome=\"applied\"} 1\n"), "{text}");
        assert!(text.contains("dataplane_control_applies_total{outcome=\"invalid\"} 2\n"), "{text}");
        assert!(text.contains("dataplane_control_apply_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("dataplane_control_apply_seconds_count 1\n"), "{text}");
    }
}
