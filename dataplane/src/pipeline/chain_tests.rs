//! Packets the parser cannot read completely, through the pipeline: the IPv6 chains a Linux
//! receiver accepts decided by their ports (the bypasses of issue 18), packets whose transport
//! is unknown decided by what is known, frames with a broken IP header by `malformed`.

use super::{MalformedAction, Pipeline, PipelineConfig, Verdict};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::wire::build::{self, FrameBuilder};
use crate::wire::ipv6_ext::next_header::{DEST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};
use crate::wire::ipv6_ext::MAX_EXT_HEADERS;
use crate::wire::tcp_flags::SYN;
use crate::wire::{ip_proto, MalformedCause};

const CLIENT: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Inside `blocked`'s DROP cidrBlocks.
const BLOCKED: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
/// Inside `web`'s ALLOW (port 443) cidrBlocks.
const WEB: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

/// `blocked`: DROP to 2001:db8:b::/48, port 22 only; `web`: ALLOW to 2001:db8:a::/48 port 443;
/// default DROP.
fn policy() -> CompiledPolicy {
    let doc = |name: &str, spec: &str| {
        format!("---\napiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec:\n{spec}")
    };
    let yaml = doc(
        "blocked",
        "  cidrBlocks: [\"2001:db8:b::/48\"]\n  direction: egress\n  ports: [{port: 22}]\n  action: DROP\n",
    ) + &doc(
        "web",
        "  cidrBlocks: [\"2001:db8:a::/48\"]\n  direction: egress\n  ports: [{port: 443}]\n  action: ALLOW\n",
    );
    CompiledPolicy::compile(rule_set_from_str(&yaml, "test").unwrap(), Action::Allow).unwrap()
}

/// A TCP SYN from `CLIENT` to `dst`:`port` behind the extension headers `kinds`.
fn behind(kinds: &[u8], dst: [u8; 16], port: u16) -> Vec<u8> {
    let mut p = build::ipv6_ext_chain(kinds, ip_proto::TCP);
    p.extend(build::tcp_segment_v6(CLIENT, dst, 40000, port, SYN, 1, b""));
    FrameBuilder::new().ipv6(CLIENT, dst, kinds.first().copied().unwrap_or(ip_proto::TCP), &p)
}

fn run(config: PipelineConfig, policy: &CompiledPolicy, frames: &[Vec<u8>]) -> (Vec<Verdict>, Pipeline) {
    let mut p = Pipeline::new(config);
    let mut v = vec![Verdict::default(); frames.len()];
    p.process_burst(policy, frames, 0, &mut v);
    (v, p)
}

const fn verdict(action: Action, rule: Option<u32>, malformed: Option<MalformedCause>) -> Verdict {
    Verdict::new(action, rule, malformed)
}

#[test]
fn the_two_bypasses_are_dropped_by_the_rule() {
    let policy = policy();
    let frames = [
        behind(&[DEST_OPTS; 8], BLOCKED, 22),
        behind(&[DEST_OPTS; 9], BLOCKED, 22),
        behind(&[DEST_OPTS; 20], BLOCKED, 22),
        behind(&[HOP_BY_HOP, ROUTING, FRAGMENT], BLOCKED, 22),
        // The same chains to another port: the DROP rule does not match (its port).
        behind(&[DEST_OPTS; 20], BLOCKED, 80),
        behind(&[HOP_BY_HOP, ROUTING, FRAGMENT], WEB, 443),
    ];
    let (v, p) = run(PipelineConfig::default(), &policy, &frames);
    let drop = verdict(Action::Drop, Some(0), None);
    assert_eq!(v, [drop, drop, drop, drop, verdict(Action::Allow, None, None), verdict(Action::Allow, Some(1), None)]);
    assert_eq!((p.counters.get(Counter::Malformed), p.flows.len()), (0, 3), "three connections");
}

#[test]
fn a_transport_unknown_is_decided_by_what_is_known() {
    let policy = policy();
    let too_long = [DEST_OPTS; MAX_EXT_HEADERS + 1];
    let truncated_tcp = |dst: [u8; 16]| {
        let mut f = behind(&[HOP_BY_HOP], dst, 443);
        let cut = f.len() - 8;
        f.truncate(cut);
        let payload_len = (cut - 54) as u16;
        f[18..20].copy_from_slice(&payload_len.to_be_bytes());
        f
    };
    let frames = [
        // To the DROP rule's addresses: its port may be 22, so it drops, whatever the port.
        behind(&too_long, BLOCKED, 80),
        truncated_tcp(BLOCKED),
        // To the ALLOW rule's addresses: its port cannot be known to be 443, so it does not
        // match; the default (ALLOW here) decides.
        behind(&too_long, WEB, 443),
        truncated_tcp(WEB),
    ];
    let (v, p) = run(PipelineConfig::default(), &policy, &frames);
    let (chain, l4) = (Some(MalformedCause::ExtChain), Some(MalformedCause::TruncatedL4));
    assert_eq!(
        v,
        [
            verdict(Action::Drop, Some(0), chain),
            verdict(Action::Drop, Some(0), l4),
            verdict(Action::Allow, None, chain),
            verdict(Action::Allow, None, l4),
        ]
    );
    assert_eq!(p.counters.get(Counter::Malformed), 4);
    assert_eq!(p.counters.get(Counter::MalformedExtChain), 2);
    assert_eq!(p.counters.get(Counter::MalformedTruncatedL4), 2);
    assert_eq!((p.counters.get(Counter::DropPolicy), p.counters.get(Counter::DropMalformed)), (2, 0));
    assert_eq!(p.flows.len(), 0, "no flow for a packet whose ports are unknown");
}

#[test]
fn a_broken_ip_header_is_dropped_unless_configured_otherwise() {
    let policy = policy();
    let mut bad_length = behind(&[], WEB, 443);
    bad_length[18..20].copy_from_slice(&4000u16.to_be_bytes());
    let frames = [
        behind(&[], WEB, 443)[..50].to_vec(),
        bad_length,
        FrameBuilder::new().ethernet(0x0806, &[0u8; 28]),
        behind(&[DEST_OPTS; 3], BLOCKED, 22)[..10].to_vec(),
    ];
    let (v, p) = run(PipelineConfig::default(), &policy, &frames);
    let causes = [MalformedCause::TruncatedIp, MalformedCause::BadIpHeader];
    assert_eq!(v[0], verdict(Action::Drop, None, Some(causes[0])));
    assert_eq!(v[1], verdict(Action::Drop, None, Some(causes[1])));
    assert_eq!(v[2], verdict(Action::Allow, None, None), "ARP passes");
    assert_eq!(v[3], verdict(Action::Drop, None, Some(MalformedCause::TruncatedL2)));
    assert_eq!((p.counters.get(Counter::DropMalformed), p.dropped()), (3, 3));
    let config = PipelineConfig { malformed: MalformedAction::Default, ..PipelineConfig::default() };
    let (v, p) = run(config, &policy, &frames);
    assert_eq!(v[0], verdict(Action::Allow, None, Some(causes[0])), "the default action (ALLOW)");
    assert_eq!(v[1], verdict(Action::Allow, None, Some(causes[1])));
    assert_eq!((p.counters.get(Counter::Malformed), p.counters.get(Counter::DropMalformed)), (3, 0));
}
