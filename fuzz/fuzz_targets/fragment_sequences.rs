//! State-machine fuzzing of the fragment table through the pipeline: an arbitrary sequence of
//! fragments of a few datagrams (any offsets, lengths, flags, families, protocols), raw frames
//! and clock steps, cut into bursts. No panic; a held id is never handed out twice while held;
//! every release names a held id; the held and tracked counts stay within their bounds; at the
//! end of the input everything held is released.
#![no_main]

use dataplane::pipeline::fragments::{FragmentConfig, FragmentEvent};
use dataplane::pipeline::{Pipeline, PipelineConfig, Verdict};
use dataplane::policy::{rule_set_from_str, Action, CompiledPolicy};
use dataplane::wire::build::{tcp_segment_v4, tcp_segment_v6};
use dataplane::wire::fragment_build::{ipv4_fragments, ipv6_fragments, Piece};
use libfuzzer_sys::fuzz_target;

const RULES: &str = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: no-smb}\nspec: {action: DROP, ports: [{protocol: TCP, port: 445}]}\n";
const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const A6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn frame(op: &[u8; 5]) -> Vec<u8> {
    let [what, start, len, flags, data] = *op;
    let (dport, v6, udp, more) = (if flags & 1 == 0 { 445 } else { 80 }, flags & 2 != 0, flags & 4 != 0, flags & 8 != 0);
    let ident = u16::from(what & 3);
    let payload = vec![data; usize::from(data & 63)];
    let seg = if v6 { tcp_segment_v6(A6, B6, 1000, dport, 2, 1, &payload) } else { tcp_segment_v4(A, B, 1000, dport, 2, 1, &payload) };
    let start = usize::from(start) * 8;
    let piece = Piece { start, end: start + usize::from(len), more };
    let data = if start < seg.len() { seg } else { vec![data; start + usize::from(len)] };
    let protocol = if udp { 17 } else { 6 };
    let mut frames = if v6 {
        ipv6_fragments(A6, B6, protocol, u32::from(ident), &data, &[piece])
    } else {
        ipv4_fragments(A, B, protocol, ident, &data, &[piece])
    };
    frames.pop().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(rules) = rule_set_from_str(RULES, "fuzz") else { return };
    let Ok(policy) = CompiledPolicy::compile(rules, Action::Allow) else { return };
    let config = FragmentConfig { table_size: 4, timeout_ms: 50, held_per_datagram: 3, held_per_worker: 5 };
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 64, fragments: config, ..PipelineConfig::default() });
    let mut held: Vec<bool> = vec![false; p.fragments.held_capacity()];
    let mut burst: Vec<Vec<u8>> = Vec::new();
    let mut now = 0u64;
    let mut rest = data;
    let run = |p: &mut Pipeline, burst: &mut Vec<Vec<u8>>, now: u64, held: &mut Vec<bool>| {
        let mut v = vec![Verdict::default(); burst.len()];
        p.process_burst(&policy, burst, now, &mut v);
        for e in p.fragments.events() {
            if let FragmentEvent::Held { packet, id } = *e {
                assert!(packet < burst.len());
                assert!(!std::mem::replace(&mut held[id.index()], true), "id handed out twice");
            }
        }
        p.fragments.drain_released(|r| assert!(std::mem::take(&mut held[r.id.index()]), "released but not held"));
        let (datagrams, now_held) = p.fragments.levels();
        assert!(datagrams <= 4 && now_held <= 5);
        assert_eq!(now_held as usize, held.iter().filter(|h| **h).count());
        burst.clear();
    };
    while let [op, tail @ ..] = rest {
        rest = tail;
        match op % 8 {
            // A burst boundary.
            0 => run(&mut p, &mut burst, now, &mut held),
            // The clock moves.
            1 => now += u64::from(op / 8),
            // Raw bytes as a frame.
            2 => {
                let n = usize::from(op / 8).min(rest.len());
                burst.push(rest[..n].to_vec());
                rest = &rest[n..];
            }
            // A fragment.
            _ => {
                let Some((f, tail)) = rest.split_first_chunk::<5>() else { break };
                rest = tail;
                burst.push(frame(f));
            }
        }
    }
    run(&mut p, &mut burst, now, &mut held);
    p.flush_fragments();
    p.fragments.drain_released(|r| assert!(std::mem::take(&mut held[r.id.index()])));
    assert!(held.iter().all(|h| !h));
    assert_eq!(p.fragments.levels(), (0, 0));
});
