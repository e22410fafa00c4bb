//! The compiled policy against the plain reference scan: exact verdict and rule.

use super::compile::CompiledPolicy;
use super::decision::{Decision, HelloFacts, Query, TlsView};
use super::prepared::{changed_rules, Prepared};
use super::reference;
use super::rule::{Action, Direction, PortRange, Rule, RuleSet, TlsMatch};
use crate::wire::{ip_proto, IpPair};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn rule(
    name: &str,
    action: Action,
    priority: u16,
    direction: Direction,
    cidrs: &[&str],
    except: &[&str],
    ports: &[PortRange],
) -> Rule {
    Rule {
        name: name.into(),
        action,
        reason: format!("reason of {name}"),
        priority,
        direction,
        cidr_blocks: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        except: except.iter().map(|c| c.parse().unwrap()).collect(),
        ports: ports.to_vec(),
        tls: None,
        limit: None,
        source: "test".into(),
    }
}

fn v4(src: &str, dst: &str, protocol: u8, port: Option<u16>) -> Query {
    let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    Query::new(IpPair::V4 { src: s.into(), dst: d.into() }, protocol, port)
}

fn v6(src: &str, dst: &str, protocol: u8, port: Option<u16>) -> Query {
    let (s, d): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    Query::new(IpPair::V6 { src: s.into(), dst: d.into() }, protocol, port)
}

fn decided_by<'a>(policy: &'a CompiledPolicy, q: &Query) -> (Action, Option<&'a str>) {
    let d = policy.classify(q);
    (d.action, d.rule().map(|id| policy.rule(id).unwrap().name.as_str()))
}

#[test]
fn directions_excepts_ports_and_default() {
    let https = PortRange { protocol: ip_proto::TCP, first: 443, last: 443 };
    let rules = RuleSet::new(vec![
        rule("block-src", Action::Drop, 10, Direction::Ingress, &["192.168.211.0/24"], &[], &[]),
        rule("block-dst", Action::Drop, 10, Direction::Egress, &["203.0.113.128/25"], &[], &[]),
        rule("web-allow", Action::Allow, 20, Direction::Any, &["10.0.0.0/8"], &["10.9.0.0/16"], &[https]),
        rule("ten-drop", Action::Drop, 30, Direction::Any, &["10.0.0.0/8", "2001:db8::/32"], &[], &[]),
    ]);
    let p = CompiledPolicy::compile(rules, Action::Allow).unwrap();
    let tcp = ip_proto::TCP;
    assert_eq!(decided_by(&p, &v4("192.168.211.7", "8.8.8.8", tcp, Some(80))), (Action::Drop, Some("block-src")));
    // Ingress rules look at the source only.
    assert_eq!(decided_by(&p, &v4("8.8.8.8", "192.168.211.7", tcp, Some(80))), (Action::Allow, None));
    assert_eq!(decided_by(&p, &v4("8.8.8.8", "203.0.113.200", tcp, Some(80))), (Action::Drop, Some("block-dst")));
    assert_eq!(decided_by(&p, &v4("203.0.113.200", "8.8.8.8", tcp, Some(80))), (Action::Allow, None));
    assert_eq!(decided_by(&p, &v4("1.1.1.1", "10.1.2.3", tcp, Some(443))), (Action::Allow, Some("web-allow")));
    assert_eq!(decided_by(&p, &v4("1.1.1.1", "10.1.2.3", tcp, Some(80))), (Action::Drop, Some("ten-drop")));
    assert_eq!(decided_by(&p, &v4("1.1.1.1", "10.1.2.3", ip_proto::UDP, Some(443))), (Action::Drop, Some("ten-drop")));
    assert_eq!(decided_by(&p, &v4("1.1.1.1", "10.1.2.3", ip_proto::ICMP, None)), (Action::Drop, Some("ten-drop")));
    // The except removes 10.9/16 from web-allow only.
    assert_eq!(decided_by(&p, &v4("10.9.0.1", "1.1.1.1", tcp, Some(443))), (Action::Drop, Some("ten-drop")));
    assert_eq!(decided_by(&p, &v6("2001:db8::1", "2001:4860::8888", tcp, Some(443))), (Action::Drop, Some("ten-drop")));
    assert_eq!(decided_by(&p, &v6("2001:4860::1", "2001:4860::8888", tcp, Some(443))), (Action::Allow, None));
    let denied = CompiledPolicy::compile(RuleSet::default(), Action::Drop).unwrap();
    assert_eq!(denied.classify(&v4("1.2.3.4", "5.6.7.8", tcp, Some(1))), Decision::new(Action::Drop, None));
}

#[test]
fn transport_unknown_drop_rules_may_match_allow_rules_with_ports_do_not() {
    let tcp = |first, last| PortRange { protocol: ip_proto::TCP, first, last };
    let tls_drop = |name: &str, cidrs: &[&str], ports: &[PortRange]| Rule {
        tls: Some(TlsMatch {
            server_names: vec!["evil.example".into()],
            version_below: None,
            ja3: vec![],
            ja4: vec![],
        }),
        ..rule(name, Action::Drop, 5, Direction::Egress, cidrs, &[], ports)
    };
    let rules = RuleSet::new(vec![
        tls_drop("tls-drop", &["198.51.100.0/24"], &[tcp(443, 443)]),
        rule("allow-web", Action::Allow, 10, Direction::Egress, &["10.0.0.0/8"], &[], &[tcp(80, 80)]),
        rule("drop-ssh", Action::Drop, 20, Direction::Egress, &["10.0.0.0/8"], &[], &[tcp(22, 22)]),
        rule("allow-net", Action::Allow, 30, Direction::Egress, &["172.16.0.0/12"], &[], &[]),
        Rule { name: "any-allow-dns".into(), ..rule("", Action::Allow, 40, Direction::Any, &[], &[], &[tcp(53, 53)]) },
        Rule { name: "any-drop-smb".into(), ..rule("", Action::Drop, 50, Direction::Any, &[], &[], &[tcp(445, 445)]) },
    ]);
    let p = CompiledPolicy::compile(rules.clone(), Action::Allow).unwrap();
    let unknown = |dst: &str| Query { transport_unknown: true, ..v4("192.0.2.1", dst, ip_proto::TCP, None) };
    let cases = [
        // allow-web does not match (ports), drop-ssh may: it decides.
        ("10.1.2.3", (Action::Drop, Some("drop-ssh"))),
        // A TLS DROP rule whose addresses match decides: its hello cannot be read.
        ("198.51.100.7", (Action::Drop, Some("tls-drop"))),
        // An address-only rule decides as usual.
        ("172.16.0.1", (Action::Allow, Some("allow-net"))),
        // Elsewhere: the any-address ALLOW rule with ports does not match, the DROP one may.
        ("203.0.113.9", (Action::Drop, Some("any-drop-smb"))),
    ];
    for (dst, expected) in cases {
        assert_eq!(decided_by(&p, &unknown(dst)), expected, "{dst}");
        let (action, rule, pending) = reference::classify(&rules, Action::Allow, &unknown(dst));
        assert_eq!((action, rule.map(|r| r as u32), pending), (expected.0, p.classify(&unknown(dst)).rule(), false));
    }
    // Read, the same packets are decided by their ports.
    assert_eq!(
        decided_by(&p, &v4("192.0.2.1", "10.1.2.3", ip_proto::TCP, Some(80))),
        (Action::Allow, Some("allow-web"))
    );
    assert_eq!(decided_by(&p, &v4("192.0.2.1", "203.0.113.9", ip_proto::TCP, Some(53))).1, Some("any-allow-dns"));
}

#[test]
fn compile_stats_count_prefixes_and_classes() {
    let rules = RuleSet::new(vec![
        rule(
            "a",
            Action::Drop,
            1,
            Direction::Any,
            &["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"],
            &["10.1.2.0/24"],
            &[],
        ),
        rule("b", Action::Allow, 1, Direction::Any, &[], &[], &[]),
    ]);
    let p = CompiledPolicy::compile(rules, Action::Allow).unwrap();
    let s = p.stats();
    assert_eq!((s.rules, s.v4_prefixes, s.v6_prefixes), (2, 3, 1));
    // v4: {b} outside, {a} inside 10/8, {b} again inside the except (same lists as outside).
    assert_eq!((s.v4_classes, s.v6_classes), (2, 2));
}

// ---- property test against the reference ----

/// Prefixes drawn from a small universe so rules overlap, nest and share classes.
fn arb_v4_net() -> impl Strategy<Value = IpNet> {
    (0u32..64, 0u32..=255, 8u8..=32).prop_map(|(hi, lo, len)| {
        let addr = (10u32 << 24) | (hi << 16) | (lo << 8) | (lo & 0x0f);
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc())
    })
}

fn arb_v6_net() -> impl Strategy<Value = IpNet> {
    (0u128..16, 0u128..=255, 24u8..=128).prop_map(|(hi, lo, len)| {
        let addr = (0x2001_0db8u128 << 96) | (hi << 80) | (lo << 64) | lo;
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc())
    })
}

fn arb_rule(i: usize) -> impl Strategy<Value = Rule> {
    let nets = prop::collection::vec(prop_oneof![3 => arb_v4_net(), 1 => arb_v6_net()], 0..4);
    let ports = prop::collection::vec((prop_oneof![Just(ip_proto::TCP), Just(ip_proto::UDP)], 1u16..20, 0u16..5), 0..3);
    let direction = prop_oneof![Just(Direction::Ingress), Just(Direction::Egress), Just(Direction::Any)];
    let action = prop_oneof![Just(Action::Allow), Just(Action::Drop)];
    let tls = prop::option::weighted(
        0.3,
        (prop::collection::vec(0usize..NAMES.len(), 0..3), prop::option::of(0x0301u16..=0x0304)),
    );
    (nets, ports, direction, action, 0u16..4, prop::collection::vec((0usize..4, 1u8..12, any::<u128>()), 0..3), tls)
        .prop_map(move |(mut nets, ports, direction, action, priority, excepts, tls)| {
            nets.sort();
            nets.dedup();
            // Excepts are sub-prefixes of the rule's own blocks.
            let mut except: Vec<IpNet> = excepts
                .into_iter()
                .filter_map(|(which, extra, bits)| {
                    let block = *nets.get(which % nets.len().max(1))?;
                    let len = (block.prefix_len() + extra).min(block.max_prefix_len());
                    let net = match block {
                        IpNet::V4(b) => IpNet::V4(
                            Ipv4Net::new(
                                Ipv4Addr::from(u32::from(b.network()) | (bits as u32 & !u32::from(b.netmask()))),
                                len,
                            )
                            .ok()?
                            .trunc(),
                        ),
                        IpNet::V6(b) => IpNet::V6(
                            Ipv6Net::new(
                                Ipv6Addr::from(u128::from(b.network()) | (bits & !u128::from(b.netmask()))),
                                len,
                            )
                            .ok()?
                            .trunc(),
                        ),
                    };
                    Some(net)
                })
                .collect();
            except.sort();
            except.dedup();
            Rule {
                name: format!("r{i}"),
                action,
                reason: String::new(),
                priority,
                direction,
                cidr_blocks: nets,
                except,
                ports: ports
                    .into_iter()
                    .map(|(protocol, first, span)| PortRange { protocol, first, last: first + span })
                    .collect(),
                tls: tls.map(|(names, version_below)| {
                    let mut server_names: Vec<String> = names.into_iter().map(|i| NAMES[i].to_string()).collect();
                    server_names.sort();
                    server_names.dedup();
                    TlsMatch { server_names, version_below, ja3: vec![], ja4: vec![] }
                }),
                limit: None,
                source: "prop".into(),
            }
        })
}

fn arb_rules() -> impl Strategy<Value = Vec<Rule>> {
    (0usize..24).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>())
}

fn arb_query() -> impl Strategy<Value = Query> {
    let proto = prop_oneof![Just(ip_proto::TCP), Just(ip_proto::UDP), Just(ip_proto::ICMP)];
    let v4 = || (0u32..64, any::<u16>()).prop_map(|(hi, lo)| (10u32 << 24) | (hi << 16) | u32::from(lo));
    let v6 = || {
        (0u128..16, 0u128..=255, any::<u8>())
            .prop_map(|(hi, mid, lo)| (0x2001_0db8u128 << 96) | (hi << 80) | (mid << 64) | mid | (u128::from(lo) << 8))
    };
    let addrs = prop_oneof![
        3 => (v4(), v4()).prop_map(|(src, dst)| IpPair::V4 { src, dst }),
        1 => (v6(), v6()).prop_map(|(src, dst)| IpPair::V6 { src, dst }),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(src, dst)| IpPair::V4 { src, dst }),
    ];
    // One query in four has its transport unknown (as the pipeline asks it: no port).
    (addrs, proto, 1u16..25, 0u8..4).prop_map(|(addrs, protocol, port, unknown)| Query {
        addrs,
        protocol,
        dst_port: (protocol != ip_proto::ICMP && unknown != 0).then_some(port),
        transport_unknown: unknown == 0,
    })
}

/// Server name patterns the property test draws from, and names hellos carry.
const NAMES: [&str; 5] = ["a.example.com", "*.example.com", "example.com", "*.b.test", "x.a.b.test"];
const HELLO_NAMES: [&str; 7] =
    ["a.example.com", "example.com", "z.y.example.com", "b.test", "q.b.test", "x.a.b.test", "other.org"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn compiled_policy_equals_reference_scan(rules in arb_rules(), queries in prop::collection::vec(arb_query(), 1..100), default_drop in any::<bool>()) {
        let default = if default_drop { Action::Drop } else { Action::Allow };
        let set = RuleSet::new(rules);
        let policy = CompiledPolicy::compile(set.clone(), default).unwrap();
        let mut bulk = vec![Decision::new(Action::Allow, None); queries.len()];
        policy.classify_bulk(&queries, &mut bulk);
        for (q, b) in queries.iter().zip(&bulk) {
            let (action, rule, pending) = reference::classify(&set, default, q);
            let expected = if pending { Decision::pending() } else { Decision::new(action, rule.map(|r| r as u32)) };
            prop_assert_eq!(policy.classify(q), expected, "query {:?}", q);
            prop_assert_eq!(*b, expected, "bulk, query {:?}", q);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn tls_classification_equals_reference_scan(
        rules in arb_rules(),
        queries in prop::collection::vec((arb_query(), 0usize..9, 0x0300u16..=0x0304), 1..60),
    ) {
        let set = RuleSet::new(rules);
        let policy = CompiledPolicy::compile(set.clone(), Action::Allow).unwrap();
        for (q, view, version) in &queries {
            let facts = HelloFacts { server_name: HELLO_NAMES.get(*view).copied(), version: *version, ja3: None, ja4: None };
            let tls = match view {
                7 => TlsView::Unknown,
                8 => TlsView::NotTls,
                _ => TlsView::Hello(&facts),
            };
            let (action, rule, pending) = reference::classify_tls(&set, Action::Allow, q, tls);
            let d = policy.classify_tls(q, tls);
            prop_assert_eq!((d.action, d.rule(), d.pending), (action, rule.map(|r| r as u32), pending), "query {:?} tls {:?}", q, tls);
        }
    }
}

#[test]
fn tls_rules_pend_until_the_hello_then_decide_on_sni_version_and_fingerprints() {
    let tls = |names: &[&str], below: Option<u16>, ja3: &[&str], ja4: &[&str]| {
        Some(TlsMatch {
            server_names: names.iter().map(|s| s.to_string()).collect(),
            version_below: below,
            ja3: ja3.iter().map(|s| s.to_string()).collect(),
            ja4: ja4.iter().map(|s| s.to_string()).collect(),
        })
    };
    let mut rules = vec![
        rule("bad-sni", Action::Drop, 10, Direction::Any, &[], &[], &[]),
        rule("old-tls", Action::Drop, 20, Direction::Any, &[], &[], &[]),
        rule("bad-ja3", Action::Drop, 30, Direction::Any, &[], &[], &[]),
        rule("good-ja4", Action::Allow, 40, Direction::Any, &[], &[], &[]),
        rule(
            "no-ssh",
            Action::Drop,
            50,
            Direction::Any,
            &[],
            &[],
            &[PortRange { protocol: ip_proto::TCP, first: 22, last: 22 }],
        ),
    ];
    rules[0].tls = tls(&["*.bad.example", "evil.test"], None, &[], &[]);
    rules[1].tls = tls(&[], Some(0x0303), &[], &[]);
    rules[2].tls = tls(&[], None, &["e7d705a3286e19ea42f587b344ee6865"], &[]);
    rules[3].tls = tls(&[], None, &[], &["t13d1516h2_8daaf6152771_02713d6af862"]);
    let p = CompiledPolicy::compile(RuleSet::new(rules), Action::Drop).unwrap();
    assert!(p.needs_ja3() && p.needs_ja4() && p.has_tls_rules());
    let q = v4("10.0.0.1", "10.0.0.2", ip_proto::TCP, Some(443));
    // Before the hello: pending, packets pass.
    assert_eq!(p.classify(&q), Decision::pending());
    // Not TLS: TLS rules never match; the default decides.
    assert_eq!(p.classify_tls(&q, TlsView::NotTls), Decision::new(Action::Drop, None));
    // UDP may be QUIC, whose Initials carry a hello: these TLS rules have no ports, so they
    // concern it too. ICMP is never pending.
    let udp = v4("10.0.0.1", "10.0.0.2", ip_proto::UDP, Some(443));
    assert_eq!(p.classify(&udp), Decision::pending());
    assert_eq!(p.classify_tls(&udp, TlsView::NotTls), Decision::new(Action::Drop, None));
    assert_eq!(p.classify(&v4("10.0.0.1", "10.0.0.2", ip_proto::ICMP, None)), Decision::new(Action::Drop, None));
    let name = |h: HelloFacts<'_>| {
        let d = p.classify_tls(&q, TlsView::Hello(&h));
        (d.action, d.rule().map(|id| p.rule(id).unwrap().name.clone()))
    };
    let hello = HelloFacts {
        server_name: Some("www.ok.example"),
        version: 0x0304,
        ja3: Some("00000000000000000000000000000000"),
        ja4: Some("t13d1516h2_8daaf6152771_02713d6af862"),
    };
    assert_eq!(name(hello), (Action::Allow, Some("good-ja4".into())));
    assert_eq!(
        name(HelloFacts { server_name: Some("A.B.Bad.Example."), ..hello }),
        (Action::Drop, Some("bad-sni".into()))
    );
    assert_eq!(
        name(HelloFacts { server_name: Some("bad.example"), ..hello }),
        (Action::Allow, Some("good-ja4".into()))
    );
    assert_eq!(name(HelloFacts { version: 0x0302, ..hello }), (Action::Drop, Some("old-tls".into())));
    assert_eq!(
        name(HelloFacts { ja3: Some("e7d705a3286e19ea42f587b344ee6865"), ..hello }),
        (Action::Drop, Some("bad-ja3".into()))
    );
    assert_eq!(name(HelloFacts { ja4: None, ..hello }), (Action::Drop, None));
    // A non-TLS rule ahead of every TLS rule decides at once, without waiting for a hello.
    assert_eq!(p.classify(&v4("10.0.0.1", "10.0.0.2", ip_proto::TCP, Some(22))), Decision::pending());
}

proptest! {
    /// `RuleSet` sorts flat keys (priority, action, the name's first eight bytes); the order
    /// must be the plain one: `precedence_key`, names compared as strings. Names are drawn
    /// from a small alphabet so that long shared prefixes and prefix-of-another names occur.
    #[test]
    fn rule_set_order_equals_sort_by_precedence_key(
        specs in prop::collection::vec(("[ab.-]{0,12}", 0u16..3, any::<bool>()), 0..40),
    ) {
        let mut seen = std::collections::HashSet::new();
        let rules: Vec<Rule> = specs
            .iter()
            .filter(|(name, ..)| seen.insert(name.clone()))
            .map(|(name, priority, drop)| {
                let action = if *drop { Action::Drop } else { Action::Allow };
                rule(name, action, *priority, Direction::Any, &[], &[], &[])
            })
            .collect();
        let mut expected: Vec<&Rule> = rules.iter().collect();
        expected.sort_by(|a, b| a.precedence_key().cmp(&b.precedence_key()));
        let expected: Vec<&str> = expected.iter().map(|r| r.name.as_str()).collect();
        let set = RuleSet::new(rules.clone());
        let got: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
        prop_assert_eq!(got, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// A set changed by upserts and deletes, prepared by splicing the old set's preparation,
    /// is prepared exactly as from scratch, and its policy decides as the reference scan.
    #[test]
    fn spliced_preparation_equals_fresh_one(
        rules in arb_rules(),
        upserts in prop::collection::vec((0usize..30).prop_flat_map(arb_rule), 0..4),
        deletes in prop::collection::vec(0usize..30, 0..3),
        queries in prop::collection::vec(arb_query(), 1..40),
    ) {
        let old = RuleSet::new(rules);
        let mut seen = std::collections::HashSet::new();
        let upserts: Vec<Rule> = upserts.into_iter().filter(|r| seen.insert(r.name.clone())).collect();
        let mut new = old.upserted(upserts);
        for d in deletes {
            if let Some(smaller) = new.without(&format!("r{d}")) {
                new = smaller;
            }
        }
        let spliced = Prepared::of(&old).updated_within(&old, &new, usize::MAX);
        prop_assert_eq!(&spliced, &Prepared::of(&new));
        let policy = CompiledPolicy::compile_prepared(new.clone(), &spliced, Action::Drop).unwrap();
        for q in &queries {
            let (action, rule, pending) = reference::classify(&new, Action::Drop, q);
            let expected = if pending { Decision::pending() } else { Decision::new(action, rule.map(|r| r as u32)) };
            prop_assert_eq!(policy.classify(q), expected, "query {:?}", q);
        }
    }
}

#[test]
fn splice_matches_rules_by_pointer() {
    let old = RuleSet::new(
        (0..8).map(|i| rule(&format!("r{i}"), Action::Drop, 5, Direction::Any, &["10.0.0.0/8"], &[], &[])).collect(),
    );
    // Same names and content, other allocations: nothing is shared, the diff gives up.
    let copy = RuleSet::new(old.rules().iter().map(|r| (**r).clone()).collect());
    assert_eq!(changed_rules(&old, &copy), Some(16));
    assert_eq!(Prepared::of(&old).updated(&old, &copy), Prepared::of(&copy));
    // One rule replaced (moving to the front) and one deleted: three changes, spliced.
    let one = old.upserted(vec![rule("r3", Action::Allow, 1, Direction::Any, &["10.1.0.0/16"], &[], &[])]);
    let two = one.without("r6").unwrap();
    assert_eq!(changed_rules(&old, &two), Some(3));
    assert_eq!(two.rules()[0].name, "r3");
    assert_eq!(Prepared::of(&old).updated_within(&old, &two, 3), Prepared::of(&two));
}

/// Which TLS rules concern QUIC: one whose ports allow UDP, or that has none; not one
/// restricted to TCP.
#[test]
fn a_tls_rule_concerns_quic_when_its_ports_allow_udp() {
    let tls = Some(TlsMatch {
        server_names: vec!["blocked.example".to_string()],
        version_below: None,
        ja3: vec![],
        ja4: vec![],
    });
    let port = |protocol| PortRange { protocol, first: 443, last: 443 };
    let cases: [(&[PortRange], bool); 4] = [
        (&[], true),
        (&[port(ip_proto::UDP)], true),
        (&[port(ip_proto::TCP), port(ip_proto::UDP)], true),
        (&[port(ip_proto::TCP)], false),
    ];
    for (ports, concerns_quic) in cases {
        let mut r = rule("sni", Action::Drop, 10, Direction::Any, &[], &[], ports);
        r.tls = tls.clone();
        let p = CompiledPolicy::compile(RuleSet::new(vec![r]), Action::Allow).unwrap();
        let udp = v4("10.0.0.1", "10.0.0.2", ip_proto::UDP, Some(443));
        let hello = HelloFacts { server_name: Some("blocked.example"), version: 0x0304, ja3: None, ja4: None };
        let (pending, dropped) = if concerns_quic {
            (Decision::pending(), Decision::new(Action::Drop, Some(0)))
        } else {
            (Decision::new(Action::Allow, None), Decision::new(Action::Allow, None))
        };
        assert_eq!(p.classify(&udp), pending, "{ports:?}");
        assert_eq!(p.classify_tls(&udp, TlsView::Hello(&hello)), dropped, "{ports:?}");
        // Another UDP port is not covered by these port lists.
        if !ports.is_empty() {
            let dns = v4("10.0.0.1", "10.0.0.2", ip_proto::UDP, Some(53));
            assert_eq!(p.classify(&dns), Decision::new(Action::Allow, None), "{ports:?}");
        }
    }
}
