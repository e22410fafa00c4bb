//! What the classifier is asked ([`Query`], with what is known of the connection's TLS:
//! [`TlsView`], [`HelloFacts`]) and what it answers ([`Decision`]: an action and the rule, a
//! [`RuleId`], that gave it).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::rule::Action;
use crate::wire::IpPair;

/// Index of a rule in its policy's evaluation order.
pub type RuleId = u32;
/// A stored rule id that names no rule: the default action decided (ids stay 4 bytes).
pub const NO_RULE: RuleId = RuleId::MAX;

/// `rule` as a stored id: `NO_RULE` for `None` (the default action).
#[inline(always)]
pub const fn stored_rule(rule: Option<RuleId>) -> RuleId {
    match rule {
        Some(r) => r,
        None => NO_RULE,
    }
}

/// A stored rule id as the rule it names: `None` for `NO_RULE`.
#[inline(always)]
pub const fn named_rule(stored: RuleId) -> Option<RuleId> {
    if stored == NO_RULE {
        None
    } else {
        Some(stored)
    }
}

/// What the classifier is asked: a connection seen from its initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// `src` is the initiator, `dst` the responder.
    pub addrs: IpPair,
    pub protocol: u8,
    /// The responder's port; `None` when the packet has no ports.
    pub dst_port: Option<u16>,
    /// The packet's transport could not be read (extension chain, transport header cut short,
    /// ESP; see `wire::MalformedCause`): its protocol and ports are unknown. It is decided by
    /// what is known, never more leniently than a packet that is read: a rule without ports
    /// decides as usual; a DROP rule with ports may match, so it decides; an ALLOW rule with
    /// ports does not match. TLS predicates cannot be read either: a TLS DROP rule whose
    /// addresses (and ports, as above) match decides, a TLS ALLOW rule does not match. Such
    /// a query is never pending.
    pub transport_unknown: bool,
}

impl Query {
    /// A query about a packet whose transport was read.
    pub fn new(addrs: IpPair, protocol: u8, dst_port: Option<u16>) -> Query {
        Query { addrs, protocol, dst_port, transport_unknown: false }
    }

    /// Whether the connection's payload may hold a ClientHello: TCP (TLS) or UDP (QUIC),
    /// its ports read. A TLS rule applies to a connection of either when its `ports` allow
    /// it (or it has none).
    #[inline]
    pub fn may_carry_tls(&self) -> bool {
        (self.protocol == crate::wire::ip_proto::TCP || self.protocol == crate::wire::ip_proto::UDP)
            && self.dst_port.is_some()
            && !self.transport_unknown
    }
}

/// The verdict and the rule that gave it (`None`: the default action decided).
#[derive(Clone, Copy, Debug, Eq)]
pub struct Decision {
    pub action: Action,
    /// The deciding rule; for a pending decision, the TLS rule it waits for (see
    /// [`Decision::bound`]); `NO_RULE` for the default.
    rule: u32,
    /// A TLS rule ahead of every other match needs the ClientHello: packets pass until then.
    pub pending: bool,
}

/// Decisions are equal when they decide alike (a pending one's bound aside).
impl PartialEq for Decision {
    fn eq(&self, other: &Decision) -> bool {
        (self.action, self.rule(), self.pending) == (other.action, other.rule(), other.pending)
    }
}

impl Decision {
    pub fn new(action: Action, rule: Option<RuleId>) -> Decision {
        Decision { action, rule: stored_rule(rule), pending: false }
    }

    /// Undecided until the ClientHello is seen; its packets pass meanwhile.
    pub fn pending() -> Decision {
        Decision { action: Action::Allow, rule: NO_RULE, pending: true }
    }

    /// [`Decision::pending`], waiting for the ClientHello that TLS rule `rule` reads.
    pub(super) fn pending_at(rule: RuleId) -> Decision {
        Decision { action: Action::Allow, rule, pending: true }
    }

    pub fn rule(&self) -> Option<RuleId> {
        if self.pending {
            None
        } else {
            named_rule(self.rule)
        }
    }

    /// How far in evaluation order the rules were read: the rules before this id did not
    /// decide. The deciding rule; the TLS rule a pending connection waits for (when known);
    /// `NO_RULE` when the default decided. The limit rules ahead of it apply (`limits`).
    #[inline]
    pub fn bound(&self) -> RuleId {
        self.rule
    }
}

/// What is known of a connection's TLS when it is classified.
#[derive(Clone, Copy, Debug)]
pub enum TlsView<'a> {
    /// No client payload yet: it may still turn out to be TLS.
    Unknown,
    /// Not TLS (or TLS that could not be inspected, under `tls_fail = open`): TLS rules never match.
    NotTls,
    /// The complete ClientHello.
    Hello(&'a HelloFacts<'a>),
}

/// What a complete ClientHello tells the policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct HelloFacts<'a> {
    /// The (outer) SNI host name, as sent.
    pub server_name: Option<&'a str>,
    /// Highest offered version (wire value, e.g. 0x0304 for TLS 1.3).
    pub version: u16,
    /// JA3 as 32 lowercase hex digits, when the policy needs it ([`super::CompiledPolicy::needs_ja3`]).
    pub ja3: Option<&'a str>,
    /// JA4 string, when the policy needs it.
    pub ja4: Option<&'a str>,
}
