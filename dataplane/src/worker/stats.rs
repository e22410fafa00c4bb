//! The testpmd-style stats `dataplane run` prints: counters read at one instant
//! ([`Snapshot`]) and the table of ports and workers with their rates since the last one.

use std::fmt::Write as _;
use std::time::Instant;

use super::{counter, Runtime};

/// Counters read at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    /// Per port, in config order (None when the device cannot tell).
    pub ports: Vec<Option<crate::dpdk::PortStats>>,
    /// Per worker, indexes in [`counter`].
    pub workers: Vec<[u64; counter::COUNT]>,
    /// The distributor's counters (software distribution).
    pub distributor: Option<[u64; counter::COUNT]>,
}

impl Snapshot {
    pub(super) fn take(rt: &Runtime) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            ports: rt.ports.iter().map(|p| p.stats().ok()).collect(),
            workers: rt.workers.counters(),
            distributor: rt.distributor_info.as_ref().map(|(_, s)| std::array::from_fn(|i| s.counter(i))),
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
            let old = prev.and_then(|p| p.workers.get(k));
            let _ = writeln!(
                s,
                "  worker {k} (lcore {}): rx {}{}  tx {}{}  drops policy {} malformed {} tx_full {}  flows {} created {} evictions {} expired {}  tls pending {} decided {} not_tls {} failed {}  generation {}",
                self.workers.lcores().get(k).copied().unwrap_or_default(),
                c[counter::RX],
                rate(c[counter::RX], old.map(|o| o[counter::RX])),
                c[counter::TX],
                rate(c[counter::TX], old.map(|o| o[counter::TX])),
                c[counter::DROP_POLICY],
                c[counter::DROP_MALFORMED],
                c[counter::DROP_TX_FULL],
                c[counter::FLOWS],
                c[counter::FLOWS_CREATED],
                c[counter::EVICTIONS],
                c[counter::EXPIRED],
                c[counter::TLS_PENDING],
                c[counter::TLS_DECIDED],
                c[counter::TLS_NOT_TLS],
                c[counter::TLS_FAILED],
                adopted.get(k).copied().unwrap_or_default(),
            );
        }
        if let Some((lcore_id, shared)) = &self.distributor_info {
            let _ = writeln!(
                s,
                "  distributor (lcore {lcore_id}): rx {}  drops ring_full {}",
                shared.counter(counter::RX),
                shared.counter(counter::DROP_RING_FULL)
            );
        }
        s
    }
}
