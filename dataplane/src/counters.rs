//! The one list of per-worker counters, after VPP's `foreach_acl_fa_error`: each row names a
//! counter once (its identifier, what it counts, how it reads) and everything else comes from
//! the list: the indexes ([`Counter`]), the worker's plain array ([`Counters`]), the stats
//! line ([`write_line`]), the Prometheus series and the status JSON (`control`).
//!
//! Adding a counter is one row in [`counters!`]'s invocation below, and an `add` where it
//! happens. Counters are plain integers written by one owner (a worker's loop, its pipeline,
//! its flow table); the control thread sums what the owners publish.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::wire::MalformedCause;
use std::fmt::Write as _;

/// How a counter reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A running total (Prometheus `counter`).
    Total,
    /// A level that goes up and down (Prometheus `gauge`).
    Level,
}

/// Who counts it: the stats line shows a worker's counters on its row and the distributor's
/// on the distributor's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Worker,
    Distributor,
    Both,
}

/// One row of the list.
#[derive(Clone, Copy, Debug)]
pub struct CounterDef {
    /// What it counts, for Prometheus' `# HELP`.
    pub help: &'static str,
    pub kind: Kind,
    pub owner: Owner,
    /// Prometheus metric (labelled by worker) and an optional label of its own.
    pub metric: &'static str,
    pub label: Option<(&'static str, &'static str)>,
    /// Key in the status JSON; a dot nests (`drops.policy`).
    pub json: &'static str,
    /// On the stats line: a group word and the key within it ("" shows the group's value
    /// right after the word), or `None` to leave it off the line.
    pub line: Option<(&'static str, &'static str)>,
    /// The stats line adds its rate since the last line.
    pub rate: bool,
}

impl CounterDef {
    const fn new(kind: Kind, json: &'static str, metric: &'static str, help: &'static str) -> CounterDef {
        CounterDef { help, kind, owner: Owner::Worker, metric, label: None, json, line: None, rate: false }
    }

    /// A running total.
    const fn total(json: &'static str, metric: &'static str, help: &'static str) -> CounterDef {
        CounterDef::new(Kind::Total, json, metric, help)
    }

    /// A level.
    const fn level(json: &'static str, metric: &'static str, help: &'static str) -> CounterDef {
        CounterDef::new(Kind::Level, json, metric, help)
    }

    const fn label(self, name: &'static str, value: &'static str) -> CounterDef {
        CounterDef { label: Some((name, value)), ..self }
    }

    const fn line(self, group: &'static str, key: &'static str) -> CounterDef {
        CounterDef { line: Some((group, key)), ..self }
    }

    const fn rate(self) -> CounterDef {
        CounterDef { rate: true, ..self }
    }

    const fn owner(self, owner: Owner) -> CounterDef {
        CounterDef { owner, ..self }
    }
}

/// Generates [`Counter`], [`COUNT`] and [`DEFS`] from one list of `Name => definition` rows.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident => $def:expr,)*) => {
        /// A worker counter: an index into [`Counters`] and [`DEFS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Counter {
            $($(#[$doc])* $name,)*
        }

        impl Counter {
            /// Every counter, in list order.
            pub const ALL: [Counter; COUNT] = [$(Counter::$name,)*];
        }

        /// How many counters there are.
        pub const COUNT: usize = [$(stringify!($name),)*].len();

        /// The definition of each counter, in list order.
        pub static DEFS: [CounterDef; COUNT] = [$($def,)*];
    };
}

/// The rows of a labelled family of series share their metric and help.
impl CounterDef {
    /// Packets dropped, by `cause` (on the stats line under `drops`).
    const fn dropped(json: &'static str, cause: &'static str) -> CounterDef {
        CounterDef::total(json, "dataplane_worker_dropped_packets_total", "Packets dropped, by cause")
            .label("cause", cause)
            .line("drops", cause)
    }

    /// Fragments dropped, by `cause`: the same series as [`CounterDef::dropped`], left off
    /// the stats line (eight causes that are usually zero).
    const fn fragment_dropped(json: &'static str, cause: &'static str, key: &'static str) -> CounterDef {
        CounterDef::total(json, "dataplane_worker_dropped_packets_total", "Packets dropped, by cause")
            .label("cause", cause)
            .line("fragment_drops", key)
    }

    /// Packets by what the pipeline found in them.
    const fn packets(json: &'static str, kind: &'static str) -> CounterDef {
        CounterDef::total(json, "dataplane_worker_packets_total", "Packets by what the pipeline found")
            .label("kind", kind)
    }

    /// Connections by how their ClientHello went (on the stats line under `tls`).
    const fn tls(json: &'static str, outcome: &'static str) -> CounterDef {
        CounterDef::total(
            json,
            "dataplane_worker_tls_connections_total",
            "TLS connections, by how their ClientHello went",
        )
        .label("outcome", outcome)
        .line("tls", outcome)
    }

    /// QUIC connections by how the ClientHello of their Initials went (on the stats line
    /// under `quic`).
    const fn quic(json: &'static str, outcome: &'static str) -> CounterDef {
        CounterDef::total(
            json,
            "dataplane_worker_quic_connections_total",
            "UDP connections TLS rules concern, by how the ClientHello in their QUIC Initials went",
        )
        .label("outcome", outcome)
        .line("quic", outcome)
    }

    /// What REJECT rules did: replies sent by kind, rejected packets not answered by why
    /// (on the stats line under `rejects`).
    const fn reject(json: &'static str, outcome: &'static str) -> CounterDef {
        CounterDef::total(
            json,
            "dataplane_worker_rejects_total",
            "REJECT answers: replies sent by kind, rejected packets not answered by why",
        )
        .label("outcome", outcome)
        .line("rejects", outcome)
    }

    /// Packets that could not be read completely, by cause (`wire::MalformedCause`).
    const fn malformed(json: &'static str, cause: &'static str) -> CounterDef {
        CounterDef::total(
            json,
            "dataplane_worker_malformed_packets_total",
            "Packets that could not be read completely, by cause",
        )
        .label("cause", cause)
    }

    /// TSC cycles spent in one step of the work on bursts.
    const fn phase(json: &'static str, phase: &'static str) -> CounterDef {
        CounterDef::total(json, "dataplane_worker_phase_cycles_total", "TSC cycles per step of the work on bursts")
            .label("phase", phase)
    }
}

counters! {
    /// Packets received (by a worker from its queues or rings; by the distributor from RX).
    Rx => CounterDef::total("rx_packets", "dataplane_worker_rx_packets_total", "Packets received")
        .line("rx", "").rate().owner(Owner::Both),
    /// Packets the TX queue took.
    Tx => CounterDef::total("tx_packets", "dataplane_worker_tx_packets_total", "Packets transmitted")
        .line("tx", "").rate(),
    /// Packets dropped by a rule or the default action (malformed ones excepted).
    DropPolicy => CounterDef::dropped("drops.policy", "policy"),
    /// Malformed packets dropped (the default action is DROP).
    DropMalformed => CounterDef::dropped("drops.malformed", "malformed"),
    /// Packets allowed that the TX queue refused.
    DropTxFull => CounterDef::dropped("drops.tx_full", "tx_full"),
    /// Distributor only: packets a worker's ring had no room for.
    DropRingFull => CounterDef::dropped("drops.ring_full", "ring_full").owner(Owner::Distributor),
    /// Packets the pipeline decided.
    Packets => CounterDef::packets("packets.decided", "decided"),
    /// Frames whose headers are truncated or inconsistent.
    Malformed => CounterDef::packets("packets.malformed", "malformed"),
    /// Frames that are not IP (forwarded).
    NonIp => CounterDef::packets("packets.non_ip", "non_ip"),
    /// Flows held in the flow table.
    Flows => CounterDef::level("flows", "dataplane_worker_flows", "Flows in the flow table")
        .line("flows", ""),
    FlowsCreated => CounterDef::total("flows_created", "dataplane_worker_flows_created_total", "Flows created")
        .line("flows", "created"),
    /// Flows evicted to make room for a new one.
    Evictions => CounterDef::total("flow_evictions", "dataplane_worker_flow_evictions_total", "Flows evicted")
        .line("flows", "evictions"),
    /// Flows found expired (timed out) and freed.
    Expired => CounterDef::total("flows_expired", "dataplane_worker_flows_expired_total", "Flows expired")
        .line("flows", "expired"),
    /// TCP segments without SYN or RST of connections the flow table did not know (evicted,
    /// expired, asymmetric routing, a restart): mid-stream pickups, decided by `midstream`.
    Midstream => CounterDef::total("flows_midstream", "dataplane_worker_flows_midstream_total", "TCP segments of unknown connections picked up mid-stream")
        .line("flows", "midstream"),
    /// Packets decided without a flow entry: no entry of their connection's buckets could
    /// give way (each held a ClientHello in progress or a verdict decided by one).
    Untracked => CounterDef::total("flows_untracked", "dataplane_worker_flows_untracked_total", "Packets decided without a flow entry (none could give way)")
        .line("flows", "untracked"),
    /// Connections (and lone packets) looked up in the policy.
    Classified => CounterDef::total("classified", "dataplane_worker_classified_total", "Policy lookups"),
    /// Connections that waited for their ClientHello.
    TlsPending => CounterDef::tls("tls.pending", "pending"),
    /// Connections whose ClientHello completed and decided them.
    TlsDecided => CounterDef::tls("tls.decided", "decided"),
    /// Connections whose first client bytes were not TLS.
    TlsNotTls => CounterDef::tls("tls.not_tls", "not_tls"),
    /// Hellos that could not be inspected (invalid, over the bound, no buffer): `tls_fail` applied.
    TlsFailed => CounterDef::tls("tls.failed", "failed"),
    /// UDP connections that waited for a ClientHello in QUIC Initials.
    QuicPending => CounterDef::quic("quic.pending", "pending"),
    /// UDP connections whose QUIC ClientHello completed and decided them.
    QuicDecided => CounterDef::quic("quic.decided", "decided"),
    /// UDP connections whose first client datagram held no QUIC v1/v2 long header.
    QuicNotQuic => CounterDef::quic("quic.not_quic", "not_quic"),
    /// QUIC hellos that could not be read (no Initial opened, a frame other than PADDING, PING,
    /// ACK or CRYPTO, over the bound, no buffer, no hello within the datagram limit):
    /// `tls_fail` applied.
    QuicFailed => CounterDef::quic("quic.failed", "failed"),
    /// Client datagrams dropped alone while a hello was read (`tls::quic::Refusal`): an Initial
    /// of another connection on the same ports, or CRYPTO data that disagrees with what was read.
    QuicRefused => CounterDef::quic("quic.refused", "refused"),
    /// TSC cycles from the start of each poll that found packets to the start of the next
    /// (empty polls are not counted), so `BusyCycles / Rx` is the cost of one packet.
    BusyCycles => CounterDef::total("cycles.busy", "dataplane_worker_busy_cycles_total", "TSC cycles of polls that found packets"),
    /// TSC cycles in each step of the work on bursts (see `pipeline::Phase`); zero unless
    /// the worker times them (`bench --phases`).
    ReceiveCycles => CounterDef::phase("cycles.receive", "receive"),
    ParseCycles => CounterDef::phase("cycles.parse", "parse"),
    ResolveCycles => CounterDef::phase("cycles.resolve", "resolve"),
    SettleCycles => CounterDef::phase("cycles.settle", "settle"),
    TransmitCycles => CounterDef::phase("cycles.transmit", "transmit"),
    /// Malformed packets by cause (their sum is `Malformed`); the label is the cause's word.
    MalformedTruncatedL2 => CounterDef::malformed("malformed.truncated_l2", "truncated-l2"),
    MalformedVlanStack => CounterDef::malformed("malformed.vlan_stack", "vlan-stack"),
    MalformedTruncatedIp => CounterDef::malformed("malformed.truncated_ip", "truncated-ip"),
    MalformedBadIpHeader => CounterDef::malformed("malformed.bad_ip_header", "bad-ip-header"),
    MalformedExtChain => CounterDef::malformed("malformed.ext_chain", "ext-chain"),
    MalformedTruncatedL4 => CounterDef::malformed("malformed.truncated_l4", "truncated-l4"),
    MalformedBadL4Header => CounterDef::malformed("malformed.bad_l4_header", "bad-l4-header"),
    MalformedEncrypted => CounterDef::malformed("malformed.encrypted", "encrypted"),
    /// Fragments dropped by cause (see `pipeline::fragments`): a first fragment without the
    /// whole TCP/UDP header (RFC 1858/3128), a TCP fragment at offset 8, overlapping or
    /// duplicate bytes (the whole datagram, RFC 5722), an IPv6 first fragment without the
    /// whole header chain (RFC 7112), past 65535 bytes, over the held bounds, more pieces
    /// than remembered, held until the datagram's deadline.
    DropFragmentTiny => CounterDef::fragment_dropped("drops.fragment_tiny", "fragment_tiny", "tiny"),
    DropFragmentOffset => CounterDef::fragment_dropped("drops.fragment_offset", "fragment_offset", "offset"),
    DropFragmentOverlap => CounterDef::fragment_dropped("drops.fragment_overlap", "fragment_overlap", "overlap"),
    DropFragmentChain => CounterDef::fragment_dropped("drops.fragment_chain", "fragment_chain", "chain"),
    DropFragmentOversize => CounterDef::fragment_dropped("drops.fragment_oversize", "fragment_oversize", "oversize"),
    DropFragmentHeld => CounterDef::fragment_dropped("drops.fragment_held", "fragment_held", "held"),
    DropFragmentPieces => CounterDef::fragment_dropped("drops.fragment_pieces", "fragment_pieces", "pieces"),
    DropFragmentTimeout => CounterDef::fragment_dropped("drops.fragment_timeout", "fragment_timeout", "timeout"),
    /// Fragments held until their first fragment decided their datagram.
    FragmentsHeld => CounterDef::total("fragments.held", "dataplane_worker_fragments_held_total", "Fragments held for their first fragment")
        .line("fragments", "held"),
    /// Fragments held now.
    FragmentsHeldNow => CounterDef::level("fragments.held_now", "dataplane_worker_fragments_held", "Fragments held now"),
    /// Datagrams the fragment table tracks now.
    FragmentDatagrams => CounterDef::level("fragments.datagrams", "dataplane_worker_fragment_datagrams", "Fragmented datagrams tracked"),
    /// Datagrams forgotten to make room for a new one.
    FragmentEvictions => CounterDef::total("fragments.evictions", "dataplane_worker_fragment_evictions_total", "Fragmented datagrams evicted"),
    /// TCP RSTs sent for REJECT rules (to the sender, and to the receiver of a connection it
    /// holds: see `wire::reply`).
    RejectTcpRst => CounterDef::reject("rejects.tcp_rst", "tcp_rst"),
    /// ICMP and ICMPv6 administratively prohibited errors sent for REJECT rules.
    RejectIcmp => CounterDef::reject("rejects.icmp", "icmp"),
    /// Rejected packets over the rate (`[reject]`): dropped without an answer.
    RejectLimited => CounterDef::reject("rejects.limited", "limited"),
    /// Rejected packets never answered (ICMP errors, RSTs, multicast or broadcast, later
    /// fragments, unreadable).
    RejectSilent => CounterDef::reject("rejects.silent", "silent"),
    /// Replies written but not sent: no mbuf, the TX queue full, or no TX queue of this
    /// worker on the port the reply leaves by.
    RejectUnsent => CounterDef::reject("rejects.unsent", "unsent"),
    /// New connections a limit rule decided (their source over its `spec.limit`); per rule in
    /// `dataplane_rule_connections_limited_total`.
    LimitedConnections => CounterDef::total("limits.connections", "dataplane_worker_connections_limited_total", "New connections over a rule's per-source limit")
        .line("limits", "connections"),
    /// Limit buckets shared: a source whose table slot another active source held.
    LimitShared => CounterDef::total("limits.shared", "dataplane_worker_limit_slots_shared_total", "New connections counted in another source's limit bucket (table slot taken)")
        .line("limits", "shared"),
    /// Packets copied for a running capture (`GET /v1/capture`).
    CaptureCopied => CounterDef::total("capture.copied", "dataplane_worker_capture_copied_total", "Packets copied for a capture"),
    /// Packets a running capture's filter kept that found the worker's capture ring full: the
    /// copy is lost, the packet goes on as decided.
    CaptureMissed => CounterDef::total("capture.missed", "dataplane_worker_capture_missed_total", "Packets a capture kept but could not copy (its ring full)"),
}

impl Counter {
    /// The counter of packets malformed for `cause`.
    #[inline]
    pub const fn malformed(cause: MalformedCause) -> Counter {
        match cause {
            MalformedCause::TruncatedL2 => Counter::MalformedTruncatedL2,
            MalformedCause::VlanStack => Counter::MalformedVlanStack,
            MalformedCause::TruncatedIp => Counter::MalformedTruncatedIp,
            MalformedCause::BadIpHeader => Counter::MalformedBadIpHeader,
            MalformedCause::ExtChain => Counter::MalformedExtChain,
            MalformedCause::TruncatedL4 => Counter::MalformedTruncatedL4,
            MalformedCause::BadL4Header => Counter::MalformedBadL4Header,
            MalformedCause::Encrypted => Counter::MalformedEncrypted,
        }
    }

    /// Its row in [`DEFS`].
    pub fn def(self) -> &'static CounterDef {
        // Every `Counter` indexes `DEFS` (both come from the same list).
        DEFS.get(self as usize).unwrap_or(&FALLBACK)
    }
}

/// Never read: `Counter::def` cannot miss.
static FALLBACK: CounterDef = CounterDef::total("", "", "");

/// One owner's counters: plain integers, indexed by [`Counter`], written only by that owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct Counters([u64; COUNT]);

impl Default for Counters {
    fn default() -> Self {
        Counters([0; COUNT])
    }
}

impl Counters {
    /// Counters read from `get` (the control thread's copy of what a worker published).
    pub fn from_fn(mut get: impl FnMut(Counter) -> u64) -> Counters {
        Counters(std::array::from_fn(|i| Counter::ALL.get(i).map_or(0, |&c| get(c))))
    }

    #[inline(always)]
    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c as usize).copied().unwrap_or(0)
    }

    /// Adds `n` (the index is a constant where this is inlined: no bounds check remains).
    #[inline(always)]
    pub fn add(&mut self, c: Counter, n: u64) {
        if let Some(v) = self.0.get_mut(c as usize) {
            *v = v.wrapping_add(n);
        }
    }

    /// Takes back `n` counted by mistake (a later step knows better).
    #[inline(always)]
    pub fn sub(&mut self, c: Counter, n: u64) {
        if let Some(v) = self.0.get_mut(c as usize) {
            *v = v.wrapping_sub(n);
        }
    }

    #[inline(always)]
    pub fn set(&mut self, c: Counter, n: u64) {
        if let Some(v) = self.0.get_mut(c as usize) {
            *v = n;
        }
    }

    /// Each counter with its value, in list order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().zip(self.0.iter()).map(|(&c, &v)| (c, v))
    }
}

impl std::ops::Add for Counters {
    type Output = Counters;

    /// Adds counter by counter: owners count disjoint counters, so the sum is each one's value.
    fn add(mut self, other: Counters) -> Counters {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_add(b);
        }
        self
    }
}

/// Writes the stats line's counters of `owner` (`rx 10 (5 pps)  tx 10  drops policy 0 ...`):
/// each group's word once, then its keys and values in list order. `prev` and `seconds`
/// give the rates of the counters that show one.
pub fn write_line(out: &mut String, owner: Owner, now: &Counters, prev: Option<&Counters>, seconds: f64) {
    let mut group = "";
    for (c, value) in now.iter() {
        let def = c.def();
        let Some((g, key)) = def.line else { continue };
        if def.owner != owner && def.owner != Owner::Both {
            continue;
        }
        if g != group {
            let _ = write!(out, "{}{g}", if group.is_empty() && out.is_empty() { "" } else { "  " });
            group = g;
        }
        if !key.is_empty() {
            let _ = write!(out, " {key}");
        }
        let _ = write!(out, " {value}");
        if let Some(old) = prev.filter(|_| def.rate && seconds > 0.0) {
            let _ = write!(out, " ({:.0} pps)", value.saturating_sub(old.get(c)) as f64 / seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_gives_each_counter_one_row_and_distinct_series() {
        assert_eq!(Counter::ALL.len(), DEFS.len());
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        let mut series = std::collections::HashSet::new();
        let mut json = std::collections::HashSet::new();
        for d in &DEFS {
            assert!(series.insert((d.metric, d.label)), "{} {:?} twice", d.metric, d.label);
            assert!(json.insert(d.json), "{} twice", d.json);
            assert!(d.metric.starts_with("dataplane_worker_"));
            assert_eq!(d.kind == Kind::Total, d.metric.ends_with("_total"), "{}", d.metric);
        }
    }

    #[test]
    fn the_stats_line_reads_as_before() {
        let mut now = Counters::default();
        for (i, c) in Counter::ALL.iter().enumerate() {
            now.set(*c, i as u64 + 1);
        }
        let mut prev = now;
        prev.set(Counter::Rx, 0);
        let mut line = String::new();
        write_line(&mut line, Owner::Worker, &now, Some(&prev), 0.5);
        assert_eq!(
            line,
            "rx 1 (2 pps)  tx 2 (0 pps)  drops policy 3 malformed 4 tx_full 5  flows 10 created 11 evictions 12 \
             expired 13 midstream 14 untracked 15  tls pending 17 decided 18 not_tls 19 failed 20  \
             quic pending 21 decided 22 not_quic 23 failed 24 refused 25  \
             fragment_drops tiny 40 offset 41 overlap 42 chain 43 oversize 44 held 45 pieces 46 timeout 47  \
             fragments held 48  rejects tcp_rst 52 icmp 53 limited 54 silent 55 unsent 56  \
             limits connections 57 shared 58"
        );
        let mut line = String::new();
        write_line(&mut line, Owner::Distributor, &now, None, 0.0);
        assert_eq!(line, "rx 1  drops ring_full 6");
    }

    #[test]
    fn each_malformed_cause_has_its_row_labelled_by_its_word() {
        let mut seen = std::collections::HashSet::new();
        for cause in MalformedCause::ALL {
            let c = Counter::malformed(cause);
            assert!(seen.insert(c), "{cause} shares a row");
            assert_eq!(c.def().metric, "dataplane_worker_malformed_packets_total");
            assert_eq!(c.def().label, Some(("cause", cause.as_str())));
        }
    }

    #[test]
    fn sums_and_reads() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        a.add(Counter::Rx, 3);
        b.add(Counter::Flows, 2);
        b.add(Counter::Rx, 1);
        let s = a + b;
        assert_eq!((s.get(Counter::Rx), s.get(Counter::Flows), s.get(Counter::Tx)), (4, 2, 0));
        assert_eq!(Counters::from_fn(|c| s.get(c)), s);
    }
}
