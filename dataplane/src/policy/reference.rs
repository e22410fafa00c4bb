//! The plain reference classifier: scan the rules in evaluation order. Slow and obviously
//! right; property tests hold the compiled policy to it.

use super::compile::Query;
use super::rule::{Action, RuleSet};
use crate::wire::IpPair;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The first rule (index in evaluation order) whose predicates all hold, or the default.
pub fn classify(rules: &RuleSet, default_action: Action, query: &Query) -> (Action, Option<usize>) {
    let (src, dst): (IpAddr, IpAddr) = match query.addrs {
        IpPair::V4 { src, dst } => (Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()),
        IpPair::V6 { src, dst } => (Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()),
    };
    for (i, rule) in rules.rules().iter().enumerate() {
        let by_source = rule.direction.matches_source() && rule.contains_address(src);
        let by_destination = rule.direction.matches_destination() && rule.contains_address(dst);
        if (by_source || by_destination) && rule.matches_transport(query.protocol, query.dst_port) {
            return (rule.action, Some(i));
        }
    }
    (default_action, None)
}
