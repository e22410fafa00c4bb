//! One flow-table entry ([`FlowEntry`]): a connection's key, its verdict and the state its
//! packets update, in one cache line; and the idle timeouts the entries keep
//! ([`FlowTimeouts`] as configured, [`IdleTimes`] as stored).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::super::Verdict;
use super::FlowKey;
use crate::policy::decision::{named_rule, stored_rule, Decision, RuleId};
use crate::policy::Action;
use crate::tls::HelloReassembly;
use crate::wire::tcp_flags;

/// Minimal TCP state: enough to pick the idle timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// Seen from one side only (or a UDP flow).
    #[default]
    Opening,
    /// Packets seen in both directions.
    Established,
    /// FIN or RST seen.
    Closing,
}

/// One connection: the key and what a packet of a known flow reads, in one cache line. Its
/// ClientHello reassembly state (used only while pending) lives in a parallel array, so the
/// entries every packet reads take half the memory (and half the TLB reach).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct FlowEntry {
    pub(super) key: FlowKey,
    pub last_seen_ms: u64,
    /// The policy generation `action` and `rule` were decided by, its low 32 bits (a flow
    /// would have to idle through 2^32 policy updates to be taken as decided by the current
    /// one).
    generation: u32,
    /// The idle timeout of its protocol and state (`IdleTimes`), set when the state changes:
    /// the lookup's expiry test is then one comparison.
    idle_ms: u32,
    pub rule: u32,
    pub action: Action,
    pub state: TcpState,
    bits: u8,
    /// A limit rule decided it (`pipeline::limits`): a new generation keeps it limited while
    /// a limit rule of the new policy covers it. In the line's last spare byte.
    limited: bool,
}

const PENDING: u8 = 1;
const INITIATOR_IS_LO: u8 = 2;
const SEEN_LO_TO_HI: u8 = 4;
const SEEN_HI_TO_LO: u8 = 8;
const INSPECTED: u8 = 16;
/// The flow's reassembly state has its base sequence number (`on_syn` would change nothing):
/// a SYN of a pending flow need not read it.
const HELLO_BASE_KNOWN: u8 = 32;
/// Created by a mid-stream pickup (a TCP segment without SYN of a connection the table did
/// not know): its start was not seen, so client bytes that do not begin a ClientHello follow
/// `tls_fail`, and a new policy generation decides it as a pickup again.
const PICKED_UP: u8 = 64;
/// A decided UDP flow reading a second QUIC hello (see [`QUIC_WATCH`]): the server's datagrams
/// matter to it (a Retry). The bit a TCP flow uses for [`HELLO_BASE_KNOWN`].
const QUIC_READING: u8 = HELLO_BASE_KNOWN;
/// A UDP flow that TLS rules concern: each client datagram that begins with a QUIC long
/// header is looked at, even once the flow is decided. UDP datagrams are independent: a
/// client may send junk first (the flow decided as not QUIC) and its Initial next, or start a
/// second QUIC connection on the same ports; the server reads either.
const QUIC_WATCH: u8 = 128;

impl FlowEntry {
    pub(super) fn new(key: FlowKey, initiator_is_lo: bool, now_ms: u64, idle: &IdleTimes) -> FlowEntry {
        let bits = if initiator_is_lo { INITIATOR_IS_LO } else { 0 };
        let mut e = FlowEntry { key, last_seen_ms: now_ms, bits, ..FlowEntry::default() };
        e.idle_ms = idle.of(&e);
        e
    }

    /// Whether policy generation `generation` decided this flow.
    #[inline(always)]
    pub fn decided_by(&self, generation: u64) -> bool {
        self.generation == generation as u32
    }

    /// Whether it has been idle longer than its timeout at `now_ms` (`now_ms` past its
    /// deadline: the same test as the idle time against the timeout, a clock behind the entry
    /// included, in fewer instructions).
    #[inline(always)]
    pub(super) fn expired(&self, now_ms: u64) -> bool {
        now_ms > self.last_seen_ms.saturating_add(u64::from(self.idle_ms))
    }

    /// A limit rule decided this connection.
    pub fn limited(&self) -> bool {
        self.limited
    }

    pub fn set_limited(&mut self, limited: bool) {
        self.limited = limited;
    }

    /// Waiting for the ClientHello: packets pass, client payload feeds its reassembly state.
    pub fn pending(&self) -> bool {
        self.bits & PENDING != 0
    }

    /// True when the initiator is the key's `lo` end.
    pub fn initiator_is_lo(&self) -> bool {
        self.bits & INITIATOR_IS_LO != 0
    }

    /// The client's first payload was inspected (a ClientHello, or bytes that are not one):
    /// it cannot be inspected again.
    pub fn inspected(&self) -> bool {
        self.bits & INSPECTED != 0
    }

    pub fn set_inspected(&mut self) {
        self.bits |= INSPECTED;
    }

    /// Created by a mid-stream pickup (see [`PICKED_UP`]).
    pub fn picked_up(&self) -> bool {
        self.bits & PICKED_UP != 0
    }

    /// Marks a flow just created by a mid-stream pickup, whose initiator is the `lo` end
    /// when `initiator_is_lo` (a pickup may take the receiver of its first packet as the
    /// initiator; see `pipeline::pickup`).
    pub fn set_picked_up(&mut self, initiator_is_lo: bool) {
        self.bits |= PICKED_UP;
        self.set(INITIATOR_IS_LO, initiator_is_lo);
    }

    /// Whether every packet of this flow takes the entry's verdict as it is: it awaits no
    /// ClientHello and watches for no QUIC Initial (one test for both).
    #[inline(always)]
    pub fn verdict_holds(&self) -> bool {
        self.bits & (PENDING | QUIC_WATCH) == 0
    }

    /// A UDP flow: its ClientHello, if any, comes in QUIC Initials.
    #[inline]
    pub fn is_udp(&self) -> bool {
        self.key.protocol() == crate::wire::ip_proto::UDP
    }

    /// A UDP flow that TLS rules concern (see [`QUIC_WATCH`]).
    #[inline(always)]
    pub fn watches_quic(&self) -> bool {
        self.bits & QUIC_WATCH != 0
    }

    /// A decided UDP flow reading a second QUIC hello (see [`QUIC_READING`]).
    #[inline(always)]
    pub fn reads_quic(&self) -> bool {
        self.bits & QUIC_READING != 0 && self.is_udp()
    }

    pub fn set_reads_quic(&mut self, on: bool) {
        self.set(QUIC_READING, on);
    }

    pub fn set_watches_quic(&mut self, on: bool) {
        self.set(QUIC_WATCH, on);
    }

    /// A packet from the responder was seen (an answer: a SYN-ACK, a reply).
    pub fn responder_seen(&self) -> bool {
        let from_responder = if self.initiator_is_lo() { SEEN_HI_TO_LO } else { SEEN_LO_TO_HI };
        self.bits & from_responder != 0
    }

    /// The client's SYN was seen: gives this flow's `hello` its base sequence number unless
    /// it has one. Reads `hello` only the first time.
    #[inline]
    pub fn on_client_syn(&mut self, hello: &mut HelloReassembly, syn_seq: u32) {
        if self.bits & HELLO_BASE_KNOWN == 0 {
            hello.on_syn(syn_seq);
            self.note_hello_base(hello);
        }
    }

    /// Records whether this flow's `hello` has its base sequence number; call after feeding it.
    #[inline]
    pub fn note_hello_base(&mut self, hello: &HelloReassembly) {
        self.set(HELLO_BASE_KNOWN, hello.base_seq().is_some());
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    /// The verdict for a packet of this flow, which is not pending (what `decision` gives
    /// then, without building the decision first).
    #[inline(always)]
    pub fn verdict(&self) -> Verdict {
        Verdict { action: self.action, rule: self.rule, malformed: None }
    }

    pub fn decision(&self) -> Decision {
        if self.pending() {
            return Decision::pending();
        }
        Decision::new(self.action, self.rule())
    }

    /// The deciding rule (`NO_RULE` stored for the default action).
    #[inline(always)]
    fn rule(&self) -> Option<RuleId> {
        named_rule(self.rule)
    }

    pub fn set_decision(&mut self, d: Decision, generation: u64) {
        self.action = d.action;
        self.rule = stored_rule(d.rule());
        self.set(PENDING, d.pending);
        self.generation = generation as u32;
    }

    /// Update state for a packet of this flow travelling lo->hi when `forward`; `flags` are
    /// its TCP flags (0 for other protocols, as in [`crate::wire::PacketSummary::tcp_flags`]).
    /// A change of state sets the idle timeout of the new one (from `idle`).
    #[inline(always)]
    pub fn observe(&mut self, forward: bool, flags: u8, now_ms: u64, idle: &IdleTimes) {
        self.last_seen_ms = now_ms;
        self.bits |= if forward { SEEN_LO_TO_HI } else { SEEN_HI_TO_LO };
        if flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
            if self.state != TcpState::Closing {
                self.state = TcpState::Closing;
                self.idle_ms = idle.of(self);
            }
        } else if self.state == TcpState::Opening
            && self.bits & (SEEN_LO_TO_HI | SEEN_HI_TO_LO) == SEEN_LO_TO_HI | SEEN_HI_TO_LO
        {
            self.state = TcpState::Established;
            self.idle_ms = idle.of(self);
        }
    }
}

/// Idle timeouts, in milliseconds. Defaults follow VPP's session timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    pub tcp_established_ms: u64,
    pub tcp_transitory_ms: u64,
    pub udp_ms: u64,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        FlowTimeouts { tcp_established_ms: 7_440_000, tcp_transitory_ms: 240_000, udp_ms: 300_000 }
    }
}

/// The idle timeouts as the entries keep them: by protocol and state, in milliseconds up to
/// `u32::MAX` (49.7 days; a longer timeout is taken as that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleTimes {
    /// Other protocols, TCP not established, TCP established.
    by_class: [u32; 3],
}

impl IdleTimes {
    pub fn new(t: FlowTimeouts) -> IdleTimes {
        let ms = |t: u64| u32::try_from(t).unwrap_or(u32::MAX);
        IdleTimes { by_class: [ms(t.udp_ms), ms(t.tcp_transitory_ms), ms(t.tcp_established_ms)] }
    }

    /// The timeout of `e`'s protocol and state.
    #[inline]
    fn of(&self, e: &FlowEntry) -> u32 {
        let tcp = e.key.protocol() == crate::wire::ip_proto::TCP;
        let class = usize::from(tcp) + usize::from(tcp & (e.state == TcpState::Established));
        self.by_class.get(class).copied().unwrap_or(0)
    }
}

impl Default for IdleTimes {
    fn default() -> Self {
        IdleTimes::new(FlowTimeouts::default())
    }
}
