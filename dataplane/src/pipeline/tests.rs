//! The pipeline on crafted bursts: per-connection classification, initiator side, policy
//! generations, malformed and non-IP frames, flow table limits.

use super::flow::FlowTimeouts;
use super::flow::WAYS;
use super::{Pipeline, PipelineConfig, Verdict};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::wire::tcp_flags::{ACK, FIN, SYN};
use crate::wire::{build, MalformedCause};

const CLIENT: [u8; 4] = [192, 168, 1, 10];
const SERVER: [u8; 4] = [10, 0, 0, 5];

fn policy(yaml: &str, default: Action) -> CompiledPolicy {
    CompiledPolicy::compile(rule_set_from_str(yaml, "test").unwrap(), default).unwrap()
}

/// DROP connections initiated from 192.168.1.0/24 (ingress) to port 22 only.
fn ssh_block() -> CompiledPolicy {
    policy(
        "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: no-ssh}\nspec:\n  cidrBlocks: [\"192.168.1.0/24\"]\n  direction: ingress\n  ports: [{port: 22}]\n  action: DROP\n",
        Action::Allow,
    )
}

fn run(p: &mut Pipeline, policy: &CompiledPolicy, frames: &[Vec<u8>], now_ms: u64) -> Vec<Verdict> {
    let mut v = vec![Verdict::default(); frames.len()];
    p.process_burst(policy, frames, now_ms, &mut v);
    v
}

fn actions(v: &[Verdict]) -> Vec<Action> {
    v.iter().map(|v| v.action).collect()
}

#[test]
fn both_directions_get_the_initiators_verdict() {
    let policy = ssh_block();
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = vec![
        build::tcp_v4(CLIENT, SERVER, 40000, 22, SYN, 1, b""),
        build::tcp_v4(SERVER, CLIENT, 22, 40000, SYN | ACK, 9, b""),
        build::tcp_v4(CLIENT, SERVER, 40000, 22, ACK, 2, b"x"),
        // The server's reply matches no rule by itself (source 10/8, port 40000), yet it
        // belongs to the dropped connection.
        build::tcp_v4(SERVER, CLIENT, 22, 40000, ACK, 10, b"y"),
        build::tcp_v4(CLIENT, SERVER, 40001, 80, SYN, 1, b""),
    ];
    let v = run(&mut p, &policy, &frames, 0);
    assert_eq!(actions(&v), [Action::Drop, Action::Drop, Action::Drop, Action::Drop, Action::Allow]);
    assert_eq!(v[0].rule(), Some(0));
    assert_eq!(v[4].rule(), None);
    assert_eq!(p.flows.len(), 2);
    assert_eq!(p.counters.get(Counter::Classified), 5, "all five were flow misses in one burst");
    // Later bursts hit the flow table: no new classification.
    let v = run(&mut p, &policy, &frames[2..4], 1);
    assert_eq!(actions(&v), [Action::Drop, Action::Drop]);
    assert_eq!(p.counters.get(Counter::Classified), 5);
    assert_eq!(
        (p.counters.get(Counter::Packets), p.counters.get(Counter::DropPolicy), p.counters.get(Counter::DropMalformed)),
        (7, 6, 0)
    );
}

#[test]
fn a_syn_ack_seen_first_makes_its_destination_the_initiator() {
    let policy = ssh_block();
    let mut p = Pipeline::new(PipelineConfig::default());
    // Mid-capture start: the SYN was missed; the SYN-ACK comes from the server.
    let v = run(&mut p, &policy, &[build::tcp_v4(SERVER, CLIENT, 22, 40000, SYN | ACK, 9, b"")], 0);
    assert_eq!((v[0].action, v[0].rule()), (Action::Drop, Some(0)));
    // A plain ACK from the server is a mid-stream pickup: which end opened the connection is
    // unknown, so both ends are asked, and the DROP with the client as initiator wins.
    let mut p = Pipeline::new(PipelineConfig::default());
    let v = run(&mut p, &policy, &[build::tcp_v4(SERVER, CLIENT, 22, 40000, ACK, 9, b"")], 0);
    assert_eq!((v[0].action, v[0].rule()), (Action::Drop, Some(0)));
    assert_eq!(p.counters.get(Counter::Midstream), 1);
}

#[test]
fn a_new_policy_generation_reclassifies_existing_flows() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let open = policy("[]", Action::Allow);
    let frames = [build::udp_v4(CLIENT, SERVER, 5000, 53, b"q"), build::udp_v4(SERVER, CLIENT, 53, 5000, b"a")];
    assert_eq!(actions(&run(&mut p, &open, &frames, 0)), [Action::Allow, Action::Allow]);
    let mut closed = policy("[]", Action::Drop);
    closed.set_generation(1);
    // The reply arrives first under the new policy; the flow still remembers who initiated.
    let v = run(&mut p, &closed, &frames[1..], 1);
    assert_eq!(actions(&v), [Action::Drop]);
    assert_eq!(p.flows.len(), 1);
}

#[test]
fn a_verdict_keeps_its_rule_as_a_word_and_shows_it_as_an_option() {
    let (default, ruled) = (Verdict::new(Action::Drop, None, None), Verdict::new(Action::Drop, Some(7), None));
    assert_eq!((default.rule(), default.rule_id()), (None, crate::policy::decision::NO_RULE));
    assert_eq!((ruled.rule(), ruled.rule_id()), (Some(7), 7));
    // `NO_RULE` given as a rule is the default: one representation for "no rule".
    assert_eq!(Verdict::new(Action::Drop, Some(crate::policy::decision::NO_RULE), None), default);
    assert_eq!(format!("{default:?}"), "Verdict { action: Drop, rule: None, malformed: None }");
    assert_eq!(format!("{ruled:?}"), "Verdict { action: Drop, rule: Some(7), malformed: None }");
}

#[test]
fn malformed_and_non_ip_frames() {
    let policy = policy("[]", Action::Drop);
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut truncated = build::tcp_v4(CLIENT, SERVER, 1, 2, SYN, 0, b"");
    truncated.truncate(30);
    let arp = build::FrameBuilder::new().ethernet(0x0806, &[0u8; 28]);
    let v = run(&mut p, &policy, &[truncated, arp], 0);
    assert_eq!(v[0], Verdict::new(Action::Drop, None, Some(MalformedCause::TruncatedIp)));
    assert_eq!(v[1], Verdict::new(Action::Allow, None, None));
    assert_eq!(
        (p.counters.get(Counter::Malformed), p.counters.get(Counter::NonIp), p.counters.get(Counter::DropMalformed)),
        (1, 1, 1)
    );
    assert_eq!((p.counters.get(Counter::DropPolicy), p.dropped()), (0, 1));
}

#[test]
fn icmp_is_classified_per_packet_by_address_and_lone_fragments_wait() {
    let policy = policy(
        "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: server-drop}\nspec:\n  cidrBlocks: [\"10.0.0.0/8\"]\n  direction: egress\n  action: DROP\n",
        Action::Allow,
    );
    let mut p = Pipeline::new(PipelineConfig::default());
    let fb = build::FrameBuilder::new();
    let frames = [
        build::icmp_v4(CLIENT, SERVER, 8, 0, b"ping"),
        build::icmp_v4(SERVER, CLIENT, 0, 0, b"pong"),
        fb.ipv4_fragment(CLIENT, SERVER, crate::wire::ip_proto::UDP, (100, false), b"tail of a datagram"),
        fb.ipv4_fragment(SERVER, CLIENT, crate::wire::ip_proto::UDP, (100, true), b"middle of a reply"),
    ];
    let v = run(&mut p, &policy, &frames, 0);
    // Per packet: to 10/8 dropped; from it (egress rule: destination only) allowed.
    assert_eq!(actions(&v[..2]), [Action::Drop, Action::Allow]);
    // Non-first fragments wait for their first fragment (`fragments_tests.rs`).
    let held: Vec<usize> = p
        .fragments
        .events()
        .iter()
        .filter_map(|e| match e {
            super::fragments::FragmentEvent::Held { packet, .. } => Some(*packet),
            super::fragments::FragmentEvent::Dropped { .. } => None,
        })
        .collect();
    assert_eq!(held, [2, 3]);
    assert_eq!(p.flows.len(), 0);
}

#[test]
fn a_full_table_evicts_the_stalest_and_keeps_forwarding() {
    let policy = ssh_block();
    // One bucket: capacity rounds up to one bucket of WAYS entries.
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 1, ..PipelineConfig::default() });
    assert_eq!(p.flows.capacity(), WAYS);
    let total = WAYS as u16 + 12;
    for port in 0..total {
        let v = run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 1000 + port, 22, SYN, 0, b"")], u64::from(port));
        assert_eq!(v[0].action, Action::Drop);
    }
    assert_eq!(p.flows.len(), WAYS);
    assert_eq!(p.flows.counters.get(Counter::FlowsCreated), u64::from(total));
    assert_eq!(p.flows.counters.get(Counter::Evictions), 12);
}

#[test]
fn idle_flows_expire_and_closing_flows_expire_sooner() {
    let timeouts = FlowTimeouts { tcp_established_ms: 1000, tcp_transitory_ms: 100, udp_ms: 50 };
    let policy = ssh_block();
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 64, timeouts, ..PipelineConfig::default() });
    let syn = build::tcp_v4(CLIENT, SERVER, 40000, 80, SYN, 0, b"");
    let syn_ack = build::tcp_v4(SERVER, CLIENT, 80, 40000, SYN | ACK, 0, b"");
    run(&mut p, &policy, &[syn.clone(), syn_ack], 0);
    // Established: still there after 500 ms idle.
    run(&mut p, &policy, std::slice::from_ref(&syn), 500);
    assert_eq!(p.flows.counters.get(Counter::FlowsCreated), 1);
    // A FIN makes it transitory: 200 ms later it is gone and the next packet creates a new flow.
    run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 40000, 80, FIN | ACK, 5, b"")], 600);
    run(&mut p, &policy, &[syn], 800);
    assert_eq!((p.flows.counters.get(Counter::FlowsCreated), p.flows.counters.get(Counter::Expired)), (2, 1));
    let udp = build::udp_v4(CLIENT, SERVER, 7, 7, b"");
    run(&mut p, &policy, std::slice::from_ref(&udp), 1000);
    run(&mut p, &policy, &[udp], 1051);
    assert_eq!((p.flows.counters.get(Counter::FlowsCreated), p.flows.counters.get(Counter::Expired)), (4, 2));
}

#[test]
fn a_half_full_table_keeps_its_flows() {
    use super::flow::{FlowKey, FlowTable};
    use crate::wire::{ip_proto, IpPair, PacketSummary};
    let mut table = FlowTable::new(1 << 17, FlowTimeouts::default());
    let mut x: u64 = 1;
    for i in 0..(1u32 << 16) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let p = PacketSummary {
            addrs: IpPair::V4 { src: 0x0a00_0000 | (x >> 40) as u32, dst: 0xc000_0200 | (i & 0xff) },
            protocol: ip_proto::TCP,
            src_port: (x >> 16) as u16,
            dst_port: 443,
            has_ports: true,
            tcp_flags: 0,
            tcp_seq: 0,
            fragment: crate::wire::Fragment::None,
            payload_offset: 0,
            payload_len: 0,
            vlan_tags: 0,
        };
        let (key, _) = FlowKey::of(&p);
        if table.lookup(&key, table.hash(&key), 0).is_none() {
            table.insert(key, table.hash(&key), true, 0);
        }
    }
    // Two choices of 16-way buckets at load 0.5: a bucket pair overflows rarely. Under random
    // seeds, 10 fills of 60 evicted one flow and the others none (a mean of 0.17): more than
    // 4 evictions would take odds of about one in a million, or a hash that spreads badly.
    let evictions = table.counters.get(Counter::Evictions);
    assert!(evictions <= 4, "{evictions} evictions at half load");
}

#[test]
fn eviction_spares_dropped_connections_while_allowed_ones_remain() {
    let policy = ssh_block();
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 1, ..PipelineConfig::default() });
    // Answered connections (SYN, SYN-ACK), oldest first: one dropped SSH connection, then
    // allowed ones fill the bucket.
    let answered = |sport: u16, dport: u16| {
        [
            build::tcp_v4(CLIENT, SERVER, sport, dport, SYN, 0, b""),
            build::tcp_v4(SERVER, CLIENT, dport, sport, SYN | ACK, 0, b""),
        ]
    };
    run(&mut p, &policy, &answered(999, 22), 0);
    for port in 0..WAYS as u16 - 1 {
        run(&mut p, &policy, &answered(2000 + port, 80), 1 + u64::from(port));
    }
    // A new connection evicts the stalest allowed one, not the older dropped one.
    run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 3000, 80, SYN, 0, b"")], 100);
    assert_eq!(p.flows.counters.get(Counter::Evictions), 1);
    let created = p.flows.counters.get(Counter::FlowsCreated);
    let v = run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 999, 22, ACK, 1, b"x")], 101);
    assert_eq!((v[0].action, p.flows.counters.get(Counter::FlowsCreated)), (Action::Drop, created), "still known");
    run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 2000, 80, ACK, 1, b"x")], 102);
    assert_eq!(p.flows.counters.get(Counter::FlowsCreated), created + 1, "the stalest allowed one was evicted");
}

#[test]
fn embryonic_connections_give_way_first() {
    let policy = ssh_block();
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 1, ..PipelineConfig::default() });
    // Fifteen answered connections, then the newest entry: a SYN nobody answered.
    for port in 0..WAYS as u16 - 1 {
        let syn = build::tcp_v4(CLIENT, SERVER, 2000 + port, 80, SYN, 0, b"");
        run(&mut p, &policy, &[syn, build::tcp_v4(SERVER, CLIENT, 80, 2000 + port, SYN | ACK, 0, b"")], 0);
    }
    run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 5000, 80, SYN, 0, b"")], 50);
    // A new connection takes the unanswered SYN's entry, though it is the newest.
    run(&mut p, &policy, &[build::udp_v4(CLIENT, SERVER, 5353, 53, b"q")], 100);
    assert_eq!(p.flows.counters.get(Counter::Evictions), 1);
    let created = p.flows.counters.get(Counter::FlowsCreated);
    run(&mut p, &policy, &[build::tcp_v4(SERVER, CLIENT, 80, 2000, ACK, 1, b"")], 101);
    assert_eq!(p.flows.counters.get(Counter::FlowsCreated), created, "the stalest answered one is still known");
    // The SYN's retransmission creates it again (and evicts the stalest answered one).
    run(&mut p, &policy, &[build::tcp_v4(CLIENT, SERVER, 5000, 80, SYN, 0, b"")], 102);
    assert_eq!(p.flows.counters.get(Counter::FlowsCreated), created + 1);
    assert_eq!(p.counters.get(Counter::Untracked), 0);
}

/// `frames` in one call (chunks of `MAX_BURST`), as a worker's burst ([`run`]), at `now_ms`:
/// the action and rule of each.
pub(super) fn in_one_burst(
    p: &mut Pipeline,
    policy: &CompiledPolicy,
    frames: &[Vec<u8>],
    now_ms: u64,
) -> Vec<(Action, Option<u32>)> {
    run(p, policy, frames, now_ms).iter().map(|v| (v.action, v.rule())).collect()
}

/// Each frame in a burst of its own (as packets trickle in on a real link), at `now_ms`: the
/// action and rule of each. Shared by the pipeline's test modules.
pub(super) fn one_per_burst(
    p: &mut Pipeline,
    policy: &CompiledPolicy,
    frames: &[Vec<u8>],
    now_ms: u64,
) -> Vec<(Action, Option<u32>)> {
    frames.iter().flat_map(|f| in_one_burst(p, policy, std::slice::from_ref(f), now_ms)).collect()
}

/// Resolve settles a chunk's leading run of known flows as it looks them up, before a later
/// packet of the chunk creates a flow: the run's packets refresh their entries first, so the
/// creation evicts the stalest of the others, as one packet at a time would.
#[test]
fn known_flows_settled_in_resolve_are_seen_before_a_later_packet_creates_a_flow() {
    let policy = ssh_block();
    let to_ssh = |port: u16| build::tcp_v4(CLIENT, SERVER, port, 22, SYN, 0, b"");
    let fill = |p: &mut Pipeline| {
        // One bucket of WAYS flows, created one millisecond apart: 1000 is the stalest.
        for port in 0..WAYS as u16 {
            run(p, &policy, &[to_ssh(1000 + port)], u64::from(port));
        }
    };
    // Known 1000, new 2000 (the bucket is full: one flow gives way), 1000 again, known 1001.
    let burst = [to_ssh(1000), to_ssh(2000), to_ssh(1000), to_ssh(1001)];
    let now = 100;
    let mut in_burst = Pipeline::new(PipelineConfig { flow_capacity: 1, ..PipelineConfig::default() });
    fill(&mut in_burst);
    let verdicts = run(&mut in_burst, &policy, &burst, now);
    let mut alone = Pipeline::new(PipelineConfig { flow_capacity: 1, ..PipelineConfig::default() });
    fill(&mut alone);
    let one_by_one: Vec<Verdict> =
        burst.iter().flat_map(|f| run(&mut alone, &policy, std::slice::from_ref(f), now)).collect();

    assert_eq!(actions(&verdicts), vec![Action::Drop; 4]);
    assert_eq!(verdicts, one_by_one);
    // 1000 was refreshed by the first packet, so 2000 took 1001's way; 1000's second packet
    // found its flow, and 1001 came back in the way of 1002.
    for p in [&in_burst, &alone] {
        assert_eq!(p.flows.counters.get(Counter::FlowsCreated), WAYS as u64 + 2);
        assert_eq!(p.flows.counters.get(Counter::Evictions), 2);
        assert_eq!(p.flows.len(), WAYS);
    }
    assert_eq!(in_burst.totals().get(Counter::DropPolicy), alone.totals().get(Counter::DropPolicy));
}
