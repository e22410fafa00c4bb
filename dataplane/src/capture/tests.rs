//! The capture's query, filter, ring and pcap records, without DPDK.

use std::time::Duration;

use super::filter::{MAX_COUNT, MAX_SECONDS};
use super::ring::SNAP_LEN;
use super::stream::{self, Clock};
use super::{Filter, Request, Ring, Session, Tap, WorkerTap};
use crate::counters::{Counter, Counters};
use crate::pipeline::{Pipeline, PipelineConfig, Verdict};
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::wire::build;

fn request(query: &[(&str, &str)]) -> Result<Request, (String, String)> {
    Request::from_pairs(query.iter().copied()).map_err(|e| (e.field, e.message))
}

fn field_of(query: &[(&str, &str)]) -> String {
    request(query).unwrap_err().0
}

#[test]
fn the_query_reads_each_filter_and_bound() {
    let r = request(&[
        ("rule", "block-x"),
        ("verdict", "drop"),
        ("source", "10.1.0.0/16"),
        ("count", "5"),
        ("seconds", "2.5"),
    ])
    .unwrap();
    assert_eq!(
        r.filter,
        Filter {
            rule: Some("block-x".into()),
            verdict: Some(Action::Drop),
            source: Some("10.1.0.0/16".parse().unwrap())
        }
    );
    assert_eq!((r.count, r.seconds), (Some(5), Some(2.5)));
    // One address is its own prefix.
    let r = request(&[("source", "fd00::7"), ("seconds", "1")]).unwrap();
    assert_eq!(r.filter.source, Some("fd00::7/128".parse().unwrap()));
    assert_eq!(r.count, None);
    let r = request(&[("count", &MAX_COUNT.to_string())]).unwrap();
    assert_eq!(r.filter, Filter::default());
}

#[test]
fn a_bad_query_names_its_field() {
    assert_eq!(request(&[]).unwrap_err(), ("count".into(), "a capture needs a bound: count, seconds or both".into()));
    assert_eq!(field_of(&[("rule", "x")]), "count");
    assert_eq!(field_of(&[("verdict", "BLOCK"), ("count", "1")]), "verdict");
    assert_eq!(
        request(&[("source", "10.0.0.1/24"), ("count", "1")]).unwrap_err(),
        ("source".into(), "host bits set in 10.0.0.1/24 (did you mean 10.0.0.0/24?)".into())
    );
    assert_eq!(field_of(&[("source", "10.0.0.0/33"), ("count", "1")]), "source");
    assert_eq!(field_of(&[("source", "example.com"), ("count", "1")]), "source");
    assert_eq!(field_of(&[("count", "0")]), "count");
    assert_eq!(field_of(&[("count", &(MAX_COUNT + 1).to_string())]), "count");
    assert_eq!(field_of(&[("count", "-1")]), "count");
    assert_eq!(field_of(&[("seconds", "0")]), "seconds");
    assert_eq!(field_of(&[("seconds", &(MAX_SECONDS + 1.0).to_string())]), "seconds");
    assert_eq!(field_of(&[("seconds", "inf")]), "seconds");
    assert_eq!(field_of(&[("seconds", "NaN")]), "seconds");
    assert_eq!(field_of(&[("rule", ""), ("count", "1")]), "rule");
    assert_eq!(request(&[("count", "1"), ("count", "2")]).unwrap_err(), ("count".into(), "given twice".into()));
    assert_eq!(field_of(&[("count", "1"), ("port", "80")]), "port");
}

const RULES: &str = "\
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: block-a}
spec: {cidrBlocks: [\"198.51.100.0/24\"], action: DROP}
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: block-b}
spec: {cidrBlocks: [\"203.0.113.0/24\"], action: DROP}
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: refuse-c}
spec: {cidrBlocks: [\"192.0.2.0/24\"], action: REJECT}
";

const CLIENT: [u8; 4] = [10, 9, 0, 1];
const OTHER_CLIENT: [u8; 4] = [10, 8, 0, 1];

/// Frames to each rule's prefix, from two clients, and one the default allows; their
/// verdicts from the real pipeline.
fn decided() -> (CompiledPolicy, Vec<Vec<u8>>, Vec<Verdict>) {
    let policy = CompiledPolicy::compile(rule_set_from_str(RULES, "test").unwrap(), Action::Allow).unwrap();
    let frames = vec![
        build::udp_v4(CLIENT, [198, 51, 100, 1], 1000, 53, b"a"),
        build::udp_v4(CLIENT, [203, 0, 113, 1], 1001, 53, b"b"),
        build::udp_v4(OTHER_CLIENT, [198, 51, 100, 2], 1002, 53, b"c"),
        build::udp_v4(CLIENT, [192, 0, 2, 1], 1003, 53, b"d"),
        build::udp_v4(CLIENT, [10, 0, 0, 1], 1004, 53, b"e"),
        // Not IP: never from a source.
        build::FrameBuilder::new().ethernet(0x0806, &[0; 28]),
    ];
    let mut verdicts = vec![Verdict::default(); frames.len()];
    Pipeline::new(PipelineConfig::default()).process_burst(&policy, &frames, 0, &mut verdicts);
    (policy, frames, verdicts)
}

fn kept(filter: Filter) -> Vec<usize> {
    let (policy, frames, verdicts) = decided();
    (0..frames.len()).filter(|&i| filter.matches(&verdicts[i], &policy, &frames[i])).collect()
}

#[test]
fn the_filter_keeps_what_each_part_asks_and_all_parts_together() {
    let rule = |n: &str| Some(n.to_owned());
    assert_eq!(kept(Filter { rule: rule("block-a"), ..Filter::default() }), [0, 2]);
    assert_eq!(kept(Filter { rule: rule("refuse-c"), ..Filter::default() }), [3]);
    assert_eq!(kept(Filter { rule: rule("no-such-rule"), ..Filter::default() }), [] as [usize; 0]);
    assert_eq!(kept(Filter { verdict: Some(Action::Drop), ..Filter::default() }), [0, 1, 2]);
    assert_eq!(kept(Filter { verdict: Some(Action::Reject), ..Filter::default() }), [3]);
    assert_eq!(kept(Filter { verdict: Some(Action::Allow), ..Filter::default() }), [4, 5]);
    let source = |s: &str| Some(s.parse().unwrap());
    assert_eq!(kept(Filter { source: source("10.9.0.0/16"), ..Filter::default() }), [0, 1, 3, 4]);
    assert_eq!(kept(Filter { source: source("10.8.0.1/32"), ..Filter::default() }), [2]);
    assert_eq!(kept(Filter { source: source("::/0"), ..Filter::default() }), [] as [usize; 0]);
    assert_eq!(kept(Filter { rule: rule("block-a"), verdict: Some(Action::Drop), source: source("10.9.0.0/16") }), [0]);
    assert_eq!(kept(Filter::default()), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn a_full_ring_misses_the_copy_and_counts_it() {
    let (policy, frames, verdicts) = decided();
    let session = Session::new(7, Filter { verdict: Some(Action::Drop), ..Filter::default() }, 2, None);
    let mut counters = Counters::default();
    // Three drops in the burst, two slots: the third copy is missed.
    session.copy_burst(&frames, &verdicts, 0, &policy, 1234, &mut counters);
    assert_eq!((session.ring.copied(), session.ring.missed()), (2, 1));
    assert_eq!((counters.get(Counter::CaptureCopied), counters.get(Counter::CaptureMissed)), (2, 1));
    // The verdicts the packets go on with are untouched (the copy only reads them).
    let (_, _, again) = decided();
    assert_eq!(verdicts, again);
    let mut seen = Vec::new();
    assert_eq!(
        session.ring.drain(|r| {
            seen.push((r.tsc, r.len, r.data().to_vec()));
            true
        }),
        2
    );
    assert_eq!(
        seen,
        [(1234, frames[0].len() as u32, frames[0].clone()), (1234, frames[1].len() as u32, frames[1].clone())]
    );
    // Drained: the slots are free again. Packet 0 skipped (a held fragment), 1 and 2 copied.
    session.copy_burst(&frames, &verdicts, 0b1, &policy, 99, &mut counters);
    assert_eq!((session.ring.copied(), session.ring.missed()), (4, 1));
    let mut lens = Vec::new();
    session.ring.drain(|r| {
        lens.push(r.data().to_vec());
        true
    });
    assert_eq!(lens, [frames[1].clone(), frames[2].clone()]);
}

#[test]
fn a_long_frame_is_cut_at_the_snap_length_with_its_length_kept() {
    let ring = Ring::new(1);
    let frame: Vec<u8> = (0..SNAP_LEN + 100).map(|i| i as u8).collect();
    assert!(ring.copy(&frame, 5));
    assert!(!ring.copy(&frame, 6), "one slot, not drained");
    ring.drain(|r| {
        assert_eq!((r.len as usize, r.caplen as usize), (SNAP_LEN + 100, SNAP_LEN));
        assert_eq!(r.data(), &frame[..SNAP_LEN]);
        true
    });
    assert_eq!(ring.missed(), 1);
}

#[test]
fn the_worker_follows_arming_and_disarming() {
    let tap = Tap::default();
    let mut worker = WorkerTap::default();
    worker.follow(&tap);
    assert!(worker.session().is_none());
    assert_eq!(tap.adopted(), 0);
    let session = std::sync::Arc::new(Session::new(3, Filter::default(), 4, None));
    tap.arm(session.clone());
    assert_eq!(tap.adopted(), 0, "not before the worker's next loop");
    worker.follow(&tap);
    assert_eq!(worker.session().map(|s| s.id), Some(3));
    assert_eq!(tap.adopted(), 3);
    tap.disarm();
    worker.follow(&tap);
    assert!(worker.session().is_none());
    assert_eq!(tap.adopted(), 0);
    // The worker let go; the control side holds the last reference and frees it.
    assert_eq!(std::sync::Arc::strong_count(&session), 1);
}

#[test]
fn records_are_nanosecond_pcap_that_pcap_file_reads_back() {
    let ring = Ring::new(2);
    let a = build::udp_v4(CLIENT, [198, 51, 100, 1], 1000, 53, b"hello");
    let b = build::udp_v4(CLIENT, [198, 51, 100, 1], 1000, 53, b"again");
    // 1 GHz: a tick a nanosecond. Armed at TSC 1000 = 1_700_000_000.5 s.
    let clock = Clock::at(Duration::new(1_700_000_000, 500_000_000), 1000, 1_000_000_000);
    ring.copy(&a, 1000 + 1_250_000_007);
    // A burst received just before the clock's reading counts back.
    ring.copy(&b, 400);
    let mut file = stream::header();
    ring.drain(|r| {
        stream::write_record(&mut file, &clock, r);
        true
    });
    let mut reader = pcap_file::pcap::PcapReader::new(&file[..]).unwrap();
    assert_eq!(reader.header().ts_resolution, pcap_file::TsResolution::NanoSecond);
    assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
    assert_eq!(reader.header().snaplen, SNAP_LEN as u32);
    let p = reader.next_packet().unwrap().unwrap();
    assert_eq!(
        (p.timestamp, p.orig_len, &p.data[..]),
        (Duration::new(1_700_000_001, 750_000_007), a.len() as u32, &a[..])
    );
    let p = reader.next_packet().unwrap().unwrap();
    assert_eq!((p.timestamp, &p.data[..]), (Duration::new(1_700_000_000, 499_999_400), &b[..]));
    assert!(reader.next_packet().is_none());
}

#[test]
fn a_worker_stops_copying_at_the_count_without_counting_misses() {
    let (policy, frames, verdicts) = decided();
    // Three drops, a count of 2 and room for 2: both copied, the third neither copied nor
    // missed (the file could not hold it anyway).
    let session = Session::new(1, Filter { verdict: Some(Action::Drop), ..Filter::default() }, 2, Some(2));
    let mut counters = Counters::default();
    session.copy_burst(&frames, &verdicts, 0, &policy, 0, &mut counters);
    assert_eq!((session.ring.copied(), session.ring.missed()), (2, 0));
    assert_eq!((counters.get(Counter::CaptureCopied), counters.get(Counter::CaptureMissed)), (2, 0));
}
