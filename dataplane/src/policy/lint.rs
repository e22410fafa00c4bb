//! Suspicious but valid rule sets: a rule that can never decide because an earlier rule
//! matches everything it matches (shadowed), rules with opposite actions whose CIDRs overlap
//! (the one evaluated first silently wins there), and a TLS DROP rule for HTTPS that QUIC
//! walks around (its ports TCP only). Used by the admission webhook to attach `warnings` to
//! an admitted rule, and by `rules check`.
//!
//! Both checks are conservative: a reported shadowing is certain (every connection the later
//! rule matches is matched by the earlier one); an unreported one may still exist (e.g. a rule
//! covered by the union of several earlier rules).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::rule::{Direction, PortRange, Rule, RuleSet, TlsMatch};
use crate::wire::ip_proto;
use ipnet::IpNet;
use std::fmt;

/// What kind of problem a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingKind {
    /// `rule` never decides: `other` comes first and matches everything `rule` matches.
    Shadowed,
    /// `rule` and `other` have opposite actions and overlapping CIDRs; `other` comes first.
    Overlap,
    /// `rule` drops by ClientHello on TCP port 443 and allows no UDP: HTTP/3 clients reach the
    /// same names over QUIC (UDP 443), which the rule does not concern. `other` is empty.
    TcpOnlyTls,
}

/// One suspicious rule, or pair of rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The rule evaluated later (the one that loses).
    pub rule: String,
    /// The rule evaluated first.
    pub other: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every finding of the set, in evaluation order of the later rule. Quadratic in the number
/// of rules: for review tools and tests; the webhook uses [`findings_for`].
pub fn findings(set: &RuleSet) -> Vec<Finding> {
    let rules = set.rules();
    let mut out = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        out.extend(check_rule(later));
        for earlier in rules.iter().take(j) {
            if let Some(f) = check_pair(earlier, later) {
                out.push(f);
            }
        }
    }
    out
}

/// The findings that involve the rule named `name` (as the earlier or the later rule): linear
/// in the size of the set.
pub fn findings_for(set: &RuleSet, name: &str) -> Vec<Finding> {
    let rules = set.rules();
    let Some(pos) = rules.iter().position(|r| r.name == name) else { return Vec::new() };
    let mut out: Vec<Finding> = rules.get(pos).and_then(|r| check_rule(r)).into_iter().collect();
    for (i, other) in rules.iter().enumerate() {
        let pair = match i.cmp(&pos) {
            std::cmp::Ordering::Less => rules.get(pos).and_then(|me| check_pair(other, me)),
            std::cmp::Ordering::Greater => rules.get(pos).and_then(|me| check_pair(me, other)),
            std::cmp::Ordering::Equal => None,
        };
        out.extend(pair);
    }
    out
}

/// A finding about `rule` alone.
fn check_rule(rule: &Rule) -> Option<Finding> {
    let tcp_only = !rule.ports.is_empty() && rule.ports.iter().all(|r| r.protocol == ip_proto::TCP);
    let https = rule.ports.iter().any(|r| r.contains(ip_proto::TCP, 443));
    (rule.action.denies() && rule.tls.is_some() && tcp_only && https).then(|| Finding {
        kind: FindingKind::TcpOnlyTls,
        rule: rule.name.clone(),
        other: String::new(),
        message: format!(
            "rule {:?} reads ClientHellos over TCP only: HTTP/3 clients reach the same names over QUIC \
             (UDP 443), which it does not inspect; add {{protocol: UDP, port: 443}} to its ports",
            rule.name
        ),
    })
}

/// `earlier` comes before `later` in evaluation order.
fn check_pair(earlier: &Rule, later: &Rule) -> Option<Finding> {
    if covers(earlier, later) {
        let how = if earlier.action == later.action { "it is redundant" } else { "its action never applies" };
        return Some(Finding {
            kind: FindingKind::Shadowed,
            rule: later.name.clone(),
            other: earlier.name.clone(),
            message: format!(
                "rule {:?} is shadowed by {:?} (priority {}), which matches every connection it matches: {how}",
                later.name, earlier.name, earlier.priority
            ),
        });
    }
    if earlier.action != later.action
        && directions_meet(earlier.direction, later.direction)
        && transports_meet(&earlier.ports, &later.ports)
    {
        if let Some(net) = cidr_overlap(earlier, later) {
            return Some(Finding {
                kind: FindingKind::Overlap,
                rule: later.name.clone(),
                other: earlier.name.clone(),
                message: format!(
                    "rules {:?} ({}) and {:?} ({}) overlap on {net} with opposite actions; {:?} (priority {}) decides there",
                    earlier.name, earlier.action, later.name, later.action, earlier.name, earlier.priority
                ),
            });
        }
    }
    None
}

/// Whether `a` matches every connection `b` matches.
fn covers(a: &Rule, b: &Rule) -> bool {
    let direction = a.direction == Direction::Any || a.direction == b.direction;
    let transport = a.ports.is_empty()
        || (!b.ports.is_empty() && b.ports.iter().all(|r| a.ports.iter().any(|q| range_contains(q, r))));
    let tls = match (&a.tls, &b.tls) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(ta), Some(tb)) => tls_covers(ta, tb),
    };
    direction && transport && tls && addresses_cover(a, b)
}

fn range_contains(outer: &PortRange, inner: &PortRange) -> bool {
    outer.protocol == inner.protocol && outer.first <= inner.first && inner.last <= outer.last
}

/// Whether `a`'s addresses (blocks minus excepts) include all of `b`'s.
fn addresses_cover(a: &Rule, b: &Rule) -> bool {
    if a.cidr_blocks.is_empty() {
        // Validation only allows excepts inside blocks, so an any-address rule has none.
        return a.except.is_empty();
    }
    if b.cidr_blocks.is_empty() {
        return false;
    }
    b.cidr_blocks.iter().all(|bb| {
        a.cidr_blocks.iter().any(|ab| ab.contains(bb))
            // An address a excludes inside bb must be one b excludes too.
            && a.except.iter().filter(|e| nets_overlap(e, bb)).all(|e| b.except.iter().any(|be| be.contains(e)))
    })
}

fn tls_covers(a: &TlsMatch, b: &TlsMatch) -> bool {
    let names = a.server_names.is_empty()
        || (!b.server_names.is_empty()
            && b.server_names.iter().all(|n| a.server_names.iter().any(|p| name_pattern_covers(p, n))));
    let version = match (a.version_below, b.version_below) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(va), Some(vb)) => vb <= va,
    };
    let list = |x: &[String], y: &[String]| x.is_empty() || (!y.is_empty() && y.iter().all(|v| x.contains(v)));
    names && version && list(&a.ja3, &b.ja3) && list(&a.ja4, &b.ja4)
}

/// Whether pattern `p` matches every name pattern `n` matches (both normalised lowercase).
fn name_pattern_covers(p: &str, n: &str) -> bool {
    if p == n {
        return true;
    }
    match p.strip_prefix('*') {
        // `*.example.com` matches any name ending in `.example.com`, and so every name a
        // pattern `x.example.com` or `*.x.example.com` matches.
        Some(suffix) => n.ends_with(suffix) && n.len() > suffix.len(),
        None => false,
    }
}

fn directions_meet(a: Direction, b: Direction) -> bool {
    a == Direction::Any || b == Direction::Any || a == b
}

fn transports_meet(a: &[PortRange], b: &[PortRange]) -> bool {
    a.is_empty()
        || b.is_empty()
        || a.iter().any(|x| b.iter().any(|y| x.protocol == y.protocol && x.first <= y.last && y.first <= x.last))
}

fn nets_overlap(x: &IpNet, y: &IpNet) -> bool {
    x.contains(y) || y.contains(x)
}

/// The first overlap of the two rules' CIDRs that neither rule excepts, as the smaller net.
/// Rules without CIDRs (any address) are not CIDR overlaps.
fn cidr_overlap(a: &Rule, b: &Rule) -> Option<IpNet> {
    for x in &a.cidr_blocks {
        for y in &b.cidr_blocks {
            let common = if x.contains(y) {
                *y
            } else if y.contains(x) {
                *x
            } else {
                continue;
            };
            let excepted = a.except.iter().chain(&b.except).any(|e| e.contains(&common));
            if !excepted {
                return Some(common);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::rule_set_from_str;

    fn set(docs: &[(&str, &str)]) -> RuleSet {
        let text: String = docs
            .iter()
            .map(|(name, spec)| {
                format!(
                    "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata:\n  name: {name}\nspec:\n{spec}\n---\n"
                )
            })
            .collect();
        rule_set_from_str(&text, "test").unwrap()
    }

    fn kinds(f: &[Finding]) -> Vec<(FindingKind, &str, &str)> {
        f.iter().map(|f| (f.kind, f.rule.as_str(), f.other.as_str())).collect()
    }

    #[test]
    fn covered_cidr_with_same_ports_is_shadowed() {
        let s = set(&[
            ("wide", "  priority: 10\n  cidrBlocks: [10.0.0.0/8]\n  ports: [{port: 443}]\n  action: DROP"),
            ("narrow", "  priority: 20\n  cidrBlocks: [10.1.0.0/16]\n  ports: [{port: 443}]\n  action: ALLOW"),
        ]);
        let f = findings(&s);
        assert_eq!(kinds(&f), vec![(FindingKind::Shadowed, "narrow", "wide")]);
        assert_eq!(
            f[0].message,
            "rule \"narrow\" is shadowed by \"wide\" (priority 10), which matches every connection it matches: \
             its action never applies"
        );
        assert_eq!(findings_for(&s, "narrow"), f);
        assert_eq!(findings_for(&s, "wide"), f);
    }

    #[test]
    fn same_action_shadowing_is_redundant() {
        let s = set(&[
            ("a", "  priority: 10\n  action: DROP"),
            ("b", "  priority: 20\n  cidrBlocks: [2001:db8::/32]\n  direction: egress\n  action: DROP"),
        ]);
        let f = findings(&s);
        assert_eq!(kinds(&f), vec![(FindingKind::Shadowed, "b", "a")]);
        assert!(f[0].message.ends_with("it is redundant"), "{}", f[0].message);
    }

    #[test]
    fn narrower_ports_direction_or_tls_do_not_shadow() {
        let s = set(&[
            ("ports", "  priority: 1\n  cidrBlocks: [10.0.0.0/8]\n  ports: [{port: 443}]\n  action: DROP"),
            ("ingress", "  priority: 2\n  cidrBlocks: [10.0.0.0/8]\n  direction: ingress\n  action: DROP"),
            (
                "tls",
                "  priority: 3\n  cidrBlocks: [10.0.0.0/8]\n  tls: {serverNames: ['*.example.com']}\n  action: DROP",
            ),
            ("except", "  priority: 4\n  cidrBlocks: [10.0.0.0/8]\n  except: [10.9.0.0/16]\n  action: DROP"),
            ("later", "  priority: 5\n  cidrBlocks: [10.9.0.0/24]\n  action: DROP"),
        ]);
        assert_eq!(findings(&s), vec![]);
    }

    #[test]
    fn wider_ports_and_tls_patterns_shadow() {
        let s = set(&[
            ("range", "  priority: 1\n  ports: [{port: 1, endPort: 1024}]\n  tls: {serverNames: ['*.example.com']}\n  action: DROP"),
            ("one", "  priority: 2\n  cidrBlocks: [10.0.0.0/8]\n  ports: [{port: 443}]\n  tls: {serverNames: [a.example.com, '*.b.example.com'], versionBelow: '1.2'}\n  action: DROP"),
            ("udp", "  priority: 3\n  ports: [{protocol: UDP, port: 443}]\n  tls: {serverNames: [a.example.com]}\n  action: DROP"),
            ("apex", "  priority: 4\n  ports: [{port: 443}]\n  tls: {serverNames: [example.com]}\n  action: DROP"),
        ]);
        assert_eq!(
            kinds(&findings(&s)),
            vec![
                (FindingKind::TcpOnlyTls, "range", ""),
                (FindingKind::TcpOnlyTls, "one", ""),
                (FindingKind::Shadowed, "one", "range"),
                (FindingKind::TcpOnlyTls, "apex", ""),
            ]
        );
    }

    #[test]
    fn except_of_the_later_rule_restores_coverage() {
        let s = set(&[
            ("a", "  priority: 1\n  cidrBlocks: [10.0.0.0/8]\n  except: [10.1.2.0/24]\n  action: DROP"),
            ("b", "  priority: 2\n  cidrBlocks: [10.1.0.0/16]\n  except: [10.1.0.0/17]\n  action: ALLOW"),
        ]);
        assert_eq!(kinds(&findings(&s)), vec![(FindingKind::Shadowed, "b", "a")]);
    }

    #[test]
    fn overlapping_cidrs_with_opposite_actions() {
        let s = set(&[
            ("allow-narrow", "  priority: 10\n  cidrBlocks: [10.1.0.0/16]\n  ports: [{port: 22}]\n  action: ALLOW"),
            ("drop-wide", "  priority: 20\n  cidrBlocks: [10.0.0.0/8]\n  action: DROP"),
            ("drop-other-port", "  priority: 30\n  cidrBlocks: [10.0.0.0/8]\n  ports: [{port: 80}]\n  action: DROP"),
            ("allow-v6", "  priority: 40\n  cidrBlocks: ['2001:db8::/32']\n  action: ALLOW"),
        ]);
        let f = findings(&s);
        // drop-other-port is shadowed by drop-wide (before its overlap with allow-narrow,
        // whose port 22 it does not share anyway).
        assert_eq!(
            kinds(&f),
            vec![
                (FindingKind::Overlap, "drop-wide", "allow-narrow"),
                (FindingKind::Shadowed, "drop-other-port", "drop-wide")
            ]
        );
        assert_eq!(
            f[0].message,
            "rules \"allow-narrow\" (ALLOW) and \"drop-wide\" (DROP) overlap on 10.1.0.0/16 with opposite actions; \
             \"allow-narrow\" (priority 10) decides there"
        );
        assert_eq!(kinds(&findings_for(&s, "allow-v6")), vec![]);
    }

    #[test]
    fn an_excepted_overlap_is_the_intended_hole() {
        let s = set(&[
            ("drop", "  priority: 10\n  cidrBlocks: [10.20.0.0/16]\n  except: [10.20.99.0/24]\n  action: DROP"),
            ("allow", "  priority: 20\n  cidrBlocks: [10.20.99.0/24]\n  action: ALLOW"),
        ]);
        assert_eq!(findings(&s), vec![]);
    }

    #[test]
    fn a_tls_drop_rule_for_https_over_tcp_only_is_walked_around_by_quic() {
        let s = set(&[
            ("tcp-only", "  priority: 1\n  ports: [{port: 443}]\n  tls: {serverNames: [a.example]}\n  action: DROP"),
            ("both", "  priority: 2\n  ports: [{port: 443}, {protocol: UDP, port: 443}]\n  tls: {serverNames: [b.example]}\n  action: DROP"),
            ("no-ports", "  priority: 3\n  tls: {serverNames: [c.example]}\n  action: DROP"),
            ("allow", "  priority: 4\n  ports: [{port: 443}]\n  tls: {serverNames: [d.example]}\n  action: ALLOW"),
            ("other-port", "  priority: 5\n  ports: [{port: 8443}]\n  tls: {serverNames: [e.example]}\n  action: DROP"),
        ]);
        let f = findings(&s);
        assert_eq!(kinds(&f), vec![(FindingKind::TcpOnlyTls, "tcp-only", "")]);
        assert_eq!(
            f[0].message,
            "rule \"tcp-only\" reads ClientHellos over TCP only: HTTP/3 clients reach the same names over QUIC \
             (UDP 443), which it does not inspect; add {protocol: UDP, port: 443} to its ports"
        );
        assert_eq!(findings_for(&s, "tcp-only"), f);
        assert_eq!(findings_for(&s, "both"), vec![]);
    }

    #[test]
    fn example_rules_are_clean() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rules/example.yaml")).unwrap();
        assert_eq!(findings(&rule_set_from_str(&text, "example").unwrap()), vec![]);
    }
}
