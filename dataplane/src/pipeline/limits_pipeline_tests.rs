//! Limit rules through the pipeline: new connections take tokens, known flows and
//! re-decisions do not, priority order and fall-through, limited flows stay limited.

use super::{Pipeline, PipelineConfig, Verdict};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::wire::build;
use crate::wire::tcp_flags::{ACK, SYN};

const STORM: [u8; 4] = [198, 18, 0, 1];
const OTHER: [u8; 4] = [10, 1, 0, 1];
const SERVER: [u8; 4] = [192, 0, 2, 80];

fn doc(name: &str, spec: &str) -> String {
    format!("apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec:\n{spec}---\n")
}

/// `storm-limit` (priority 5): 198.18.0.0/15 to TCP 443, 2 a second, burst 3, DROP; then
/// `extra` rules; default ALLOW.
fn policy(extra: &str, generation: u64) -> CompiledPolicy {
    let text = doc(
        "storm-limit",
        "  cidrBlocks: [\"198.18.0.0/15\"]\n  direction: ingress\n  ports: [{port: 443}]\n  priority: 5\n  action: DROP\n  limit: {connectionsPerSecond: 2, burst: 3}\n",
    ) + extra;
    let mut p = CompiledPolicy::compile(rule_set_from_str(&text, "test").unwrap(), Action::Allow).unwrap();
    p.attach_hits(1);
    p.set_generation(generation);
    p
}

fn syn(src: [u8; 4], port: u16) -> Vec<u8> {
    build::tcp_v4(src, SERVER, port, 443, SYN, 1, b"")
}

fn ack(src: [u8; 4], port: u16) -> Vec<u8> {
    build::tcp_v4(src, SERVER, port, 443, ACK, 2, b"x")
}

fn run(p: &mut Pipeline, policy: &CompiledPolicy, frames: &[Vec<u8>], now_ms: u64) -> Vec<(Action, Option<u32>)> {
    let mut v = vec![Verdict::default(); frames.len()];
    p.process_burst(policy, frames, now_ms, &mut v);
    v.iter().map(|v| (v.action, v.rule())).collect()
}

const PASS: (Action, Option<u32>) = (Action::Allow, None);
const LIMITED: (Action, Option<u32>) = (Action::Drop, Some(0));

#[test]
fn new_connections_take_tokens_known_flows_do_not() {
    let policy = policy("", 1);
    let mut p = Pipeline::new(PipelineConfig::default());
    // Five new connections at once: the burst passes (to the default), two are limited.
    let syns: Vec<_> = (40000..40005).map(|port| syn(STORM, port)).collect();
    assert_eq!(run(&mut p, &policy, &syns, 0), [PASS, PASS, PASS, LIMITED, LIMITED]);
    // Their later packets keep their verdicts, and take no token: many of them, then a new
    // connection at the same time, still limited.
    let acks: Vec<_> = (40000..40005).cycle().take(20).map(|port| ack(STORM, port)).collect();
    let v = run(&mut p, &policy, &acks, 0);
    assert!(v.chunks(5).all(|c| c == [PASS, PASS, PASS, LIMITED, LIMITED]), "{v:?}");
    assert_eq!(run(&mut p, &policy, &[syn(STORM, 40005)], 0), [LIMITED]);
    // 2 a second: one token in 500 ms.
    assert_eq!(run(&mut p, &policy, &[syn(STORM, 40006), syn(STORM, 40007)], 500), [PASS, LIMITED]);
    // Another source, and a port the rule does not name: untouched.
    let others: Vec<_> = (50000..50005).map(|port| syn(OTHER, port)).collect();
    assert_eq!(run(&mut p, &policy, &others, 500), [PASS; 5]);
    let port_80 = build::tcp_v4(STORM, SERVER, 40100, 80, SYN, 1, b"");
    assert_eq!(run(&mut p, &policy, &[port_80], 500), [PASS]);
    assert_eq!(p.counters.get(Counter::LimitedConnections), 4);
    assert_eq!(policy.hits().total_limited(0), 4);
}

#[test]
fn priority_order_and_fall_through() {
    // A DROP rule ahead of the limit (priority 1) decides without taking tokens; an ALLOW
    // rule after it (priority 10) decides the connections that had a token.
    let drop_ahead = doc("block-one", "  cidrBlocks: [\"198.18.0.9/32\"]\n  priority: 1\n  action: DROP\n");
    let allow_after = doc("allow-storm", "  cidrBlocks: [\"198.18.0.0/15\"]\n  priority: 10\n  action: ALLOW\n");
    let policy = policy(&(drop_ahead + &allow_after), 1);
    let names: Vec<_> = policy.rule_set().rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["block-one", "storm-limit", "allow-storm"]);
    let mut p = Pipeline::new(PipelineConfig::default());
    let blocked: Vec<_> = (40000..40010).map(|port| syn([198, 18, 0, 9], port)).collect();
    assert_eq!(run(&mut p, &policy, &blocked, 0), [(Action::Drop, Some(0)); 10]);
    assert_eq!(p.counters.get(Counter::LimitedConnections), 0);
    let syns: Vec<_> = (40000..40005).map(|port| syn(STORM, port)).collect();
    let allowed = (Action::Allow, Some(2));
    let limited = (Action::Drop, Some(1));
    assert_eq!(run(&mut p, &policy, &syns, 0), [allowed, allowed, allowed, limited, limited]);
    // A second limit rule after the first: a connection takes a token of each in turn.
    let second = doc(
        "second-limit",
        "  cidrBlocks: [\"198.18.0.0/15\"]\n  priority: 6\n  action: REJECT\n  limit: {connectionsPerSecond: 1, burst: 1}\n",
    );
    let policy = self::policy(&second, 1);
    let mut p = Pipeline::new(PipelineConfig::default());
    let v = run(&mut p, &policy, &syns, 0);
    assert_eq!(v, [PASS, (Action::Reject, Some(1)), (Action::Reject, Some(1)), LIMITED, LIMITED]);
}

#[test]
fn a_new_generation_takes_no_token_and_limited_flows_stay_limited() {
    let first = policy("", 1);
    let mut p = Pipeline::new(PipelineConfig::default());
    let syns: Vec<_> = (40000..40005).map(|port| syn(STORM, port)).collect();
    assert_eq!(run(&mut p, &first, &syns, 0), [PASS, PASS, PASS, LIMITED, LIMITED]);
    // The same rules as generation 2, 500 ms later (one token earned): every flow is decided
    // again, and keeps its verdict; none takes a token, so the new connection after them
    // still finds the one token earned.
    let second = policy("", 2);
    let acks: Vec<_> = (40000..40005).map(|port| ack(STORM, port)).collect();
    assert_eq!(run(&mut p, &second, &acks, 500), [PASS, PASS, PASS, LIMITED, LIMITED]);
    assert_eq!(run(&mut p, &second, &[syn(STORM, 40005), syn(STORM, 40006)], 500), [PASS, LIMITED]);
    assert_eq!(p.counters.get(Counter::LimitedConnections), 3);
    // Generation 3 without the limit rule: the limited flows are decided by the others.
    let text = doc("unrelated", "  cidrBlocks: [\"203.0.113.0/24\"]\n  action: DROP\n");
    let mut third = CompiledPolicy::compile(rule_set_from_str(&text, "t").unwrap(), Action::Allow).unwrap();
    third.set_generation(3);
    assert_eq!(run(&mut p, &third, &acks, 600), [PASS; 5]);
    // Generation 4 with the limit back: flows allowed under generation 3 are not limited
    // (they are not new); a new connection is.
    let fourth = policy("", 4);
    assert_eq!(run(&mut p, &fourth, &acks, 600), [PASS; 5]);
    assert_eq!(run(&mut p, &fourth, &[syn(STORM, 40007)], 600), [LIMITED]);
}

#[test]
fn packets_without_an_entry_each_count() {
    // A TLS rule after the limit (so that new connections wait for their hello, and the
    // limit rule ahead of it still applies), and a one-bucket table held by connections whose
    // hellos were read (they may not give way): every later SYN goes without an entry, and each
    // counts as a new connection.
    let tls = doc(
        "tls-names",
        "  ports: [{port: 443}]\n  priority: 20\n  action: DROP\n  tls: {serverNames: [\"bad.example\"]}\n",
    );
    let policy = policy(&tls, 1);
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 1, ..PipelineConfig::default() });
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
    let hello = crate::tls::build::client_hello_record("good.example", false, &mut rng);
    // A table of one bucket: 16 entries.
    for port in 50000..50000 + super::flow::WAYS as u16 {
        let held = [
            syn(OTHER, port),
            build::tcp_v4(SERVER, OTHER, 443, port, SYN | ACK, 7, b""),
            build::tcp_v4(OTHER, SERVER, port, 443, ACK, 2, &hello),
        ];
        assert_eq!(run(&mut p, &policy, &held, 0), [PASS; 3]);
    }
    let syns: Vec<_> = (40000..40006).map(|port| syn(STORM, port)).collect();
    let v = run(&mut p, &policy, &syns, 0);
    assert_eq!(p.counters.get(Counter::Untracked), 6);
    // Three take a token and fall through (to an untracked pending decision, which drops:
    // `pickup::untracked`), three are limited by the rule.
    let untracked = (Action::Drop, None);
    assert_eq!(v, [untracked, untracked, untracked, LIMITED, LIMITED, LIMITED]);
    assert_eq!(p.counters.get(Counter::LimitedConnections), 3);
}

#[test]
fn a_pickup_dropped_by_midstream_takes_no_token() {
    // An ALLOW limit rule (connections over the limit allowed, the others on to a DROP rule)
    // must not reopen what `midstream = drop` drops; with `decide`, pickups are new
    // connections like SYNs.
    let text = doc(
        "allow-over",
        "  cidrBlocks: [\"198.18.0.0/15\"]\n  priority: 5\n  action: ALLOW\n  limit: {connectionsPerSecond: 1, burst: 1}\n",
    ) + &doc("drop-rest", "  cidrBlocks: [\"198.18.0.0/15\"]\n  priority: 6\n  action: DROP\n");
    let mut policy = CompiledPolicy::compile(rule_set_from_str(&text, "t").unwrap(), Action::Allow).unwrap();
    policy.attach_hits(1);
    let acks: Vec<_> = (40000..40003).map(|port| ack(STORM, port)).collect();
    let mut p = Pipeline::new(PipelineConfig { midstream: super::Midstream::Drop, ..PipelineConfig::default() });
    assert_eq!(run(&mut p, &policy, &acks, 0), [(Action::Drop, None); 3]);
    assert_eq!(p.counters.get(Counter::LimitedConnections), 0);
    let mut p = Pipeline::new(PipelineConfig::default());
    let over = (Action::Allow, Some(0));
    assert_eq!(run(&mut p, &policy, &acks, 0), [(Action::Drop, Some(1)), over, over]);
    assert_eq!(p.counters.get(Counter::LimitedConnections), 2);
}
