//! The plain reference classifier: scan the rules in evaluation order. Slow and obviously
//! right; property tests hold the compiled policy to it.

use super::decision::{Query, TlsView};
use super::rule::{Action, RuleSet, TlsMatch};
use crate::wire::{ip_proto, IpPair};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the reference decides: the action, the rule (index in evaluation order), and whether
/// the connection is pending its ClientHello.
pub type RefDecision = (Action, Option<usize>, bool);

/// The first rule whose predicates all hold, or the default, before any payload is seen.
pub fn classify(rules: &RuleSet, default_action: Action, query: &Query) -> RefDecision {
    // TCP may carry TLS, UDP QUIC.
    let tls = if (query.protocol == ip_proto::TCP || query.protocol == ip_proto::UDP)
        && query.dst_port.is_some()
        && !query.transport_unknown
    {
        TlsView::Unknown
    } else {
        TlsView::NotTls
    };
    classify_tls(rules, default_action, query, tls)
}

/// The first rule whose predicates all hold given what is known of the connection's TLS.
///
/// A query whose transport is unknown (`Query::transport_unknown`): a rule's ports and TLS
/// predicates may hold for a DROP rule and do not for an ALLOW rule; `tls` is not read.
pub fn classify_tls(rules: &RuleSet, default_action: Action, query: &Query, tls: TlsView<'_>) -> RefDecision {
    let (src, dst): (IpAddr, IpAddr) = match query.addrs {
        IpPair::V4 { src, dst } => (Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()),
        IpPair::V6 { src, dst } => (Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()),
    };
    for (i, rule) in rules.rules().iter().enumerate() {
        // Limit rules decide apart (`pipeline::limits`), never here.
        if rule.limit.is_some() {
            continue;
        }
        let by_source = rule.direction.matches_source() && rule.contains_address(src);
        let by_destination = rule.direction.matches_destination() && rule.contains_address(dst);
        if !(by_source || by_destination) {
            continue;
        }
        if query.transport_unknown {
            // Ports and ClientHello unknown: they may match a DROP rule, not an ALLOW rule.
            if (rule.ports.is_empty() && rule.tls.is_none()) || rule.action.denies() {
                return (rule.action, Some(i), false);
            }
            continue;
        }
        if !rule.matches_transport(query.protocol, query.dst_port) {
            continue;
        }
        if let Some(m) = &rule.tls {
            match tls {
                TlsView::Unknown => return (Action::Allow, None, true),
                TlsView::NotTls => continue,
                TlsView::Hello(h) if !hello_matches(m, h) => continue,
                TlsView::Hello(_) => {}
            }
        }
        return (rule.action, Some(i), false);
    }
    (default_action, None, false)
}

fn hello_matches(m: &TlsMatch, h: &super::decision::HelloFacts<'_>) -> bool {
    let name = h.server_name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let name_ok = m.server_names.is_empty()
        || name.as_deref().is_some_and(|n| {
            m.server_names.iter().any(|p| match p.strip_prefix("*.") {
                Some(suffix) => n.len() > suffix.len() + 1 && n.ends_with(&format!(".{suffix}")),
                None => p == n,
            })
        });
    name_ok
        && m.version_below.is_none_or(|v| h.version < v)
        && (m.ja3.is_empty() || h.ja3.is_some_and(|j| m.ja3.iter().any(|x| x == j)))
        && (m.ja4.is_empty() || h.ja4.is_some_and(|j| m.ja4.iter().any(|x| x == j)))
}
