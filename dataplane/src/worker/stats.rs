//! The testpmd-style stats `dataplane run` prints: counters read at one instant
//! ([`Snapshot`]) and the table of ports and workers with their rates since the last one.

use std::fmt::Write as _;
use std::time::Instant;

use super::Runtime;
use crate::counters::{write_line, Counters, Owner};

/// Counters read at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    /// Per port, in config order (None when the device cannot tell).
    pub ports: Vec<Option<crate::dpdk::PortStats>>,
    /// Per worker, in worker order.
    pub workers: Vec<Counters>,
    /// The distributor's counters (software distribution).
    pub distributor: Option<Counters>,
}

impl Snapshot {
    pub(super) fn take(rt: &Runtime) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            ports: rt.ports.iter().map(|p| p.stats().ok()).collect(),
            workers: rt.workers.counters(),
            distributor: rt.distributor_info.as_ref().map(|(_, m)| m.counters()),
        }
    }
}

impl Runtime {
    pub(super) fn report(&self, title: &str, now: &Snapshot, prev: Option<&Snapshot>) -> String {
        let dt = prev.map_or(0.0, |p| now.at.duration_since(p.at).as_secs_f64());
        let rate = |cur: u64, old: Option<u64>| -> String {
            match old {
                Some(o) if dt > 0.0 => format!(" ({:.0} pps)", cur.saturating_sub(o) as f64 / dt),
                _ => String::new(),
            }
        };
        let mut s = String::new();
        let _ = writeln!(s, "######## {title} ########");
        for (k, (port, st)) in self.ports.iter().zip(&now.ports).enumerate() {
            let old = prev.and_then(|p| p.ports.get(k).copied().flatten());
            let _ = match st {
                Some(st) => writeln!(
                    s,
                    "  port {} ({}): ipackets {}{}  opackets {}{}  imissed {}  rx_nombuf {}  ierrors {}  oerrors {}",
                    port.id(),
                    port.name(),
                    st.ipackets,
                    rate(st.ipackets, old.map(|o| o.ipackets)),
                    st.opackets,
                    rate(st.opackets, old.map(|o| o.opackets)),
                    st.imissed,
                    st.rx_nombuf,
                    st.ierrors,
                    st.oerrors
                ),
                None => writeln!(s, "  port {} ({}): stats unavailable", port.id(), port.name()),
            };
        }
        let adopted = self.workers.adopted();
        for (k, c) in now.workers.iter().enumerate() {
            let mut line = String::new();
            write_line(&mut line, Owner::Worker, c, prev.and_then(|p| p.workers.get(k)), dt);
            let lcore = self.workers.lcores().get(k).copied().unwrap_or_default();
            let generation = adopted.get(k).copied().unwrap_or_default();
            let _ = writeln!(s, "  worker {k} (lcore {lcore}): {line}  generation {generation}");
        }
        if let (Some((lcore, _)), Some(c)) = (&self.distributor_info, &now.distributor) {
            let mut line = String::new();
            write_line(&mut line, Owner::Distributor, c, None, dt);
            let _ = writeln!(s, "  distributor (lcore {lcore}): {line}");
        }
        s
    }
}
