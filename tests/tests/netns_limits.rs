//! Connection limits at a real pace: a `gen --storm` capture sent over a veth at its own
//! timestamps (a Python AF_PACKET sender in the client namespace) into `dataplane run` on
//! AF_PACKET (`netns_common`). Each storm source then gets about `burst + rate x seconds` SYNs
//! through (within 10%), as `classify` computes offline on the same capture.
//!
//! Needs root, `ip netns`, veth and the tools `scripts/setup.sh` installs; where something is
//! missing the test says why on stderr and skips.

mod netns_common;

use std::process::Command;

use dataplane_tests::{dataplane_bin, rule_yaml};
use netns_common::bench::{stat, stop_clean, Bench};
use netns_common::gateway::Pmd;

/// Sends the frames of a pcap file out of `eth0` at their timestamps (relative to the first),
/// then prints the largest lateness in milliseconds.
const PACED_SENDER: &str = r#"
import socket, struct, sys, time
data = open(sys.argv[1], "rb").read()
# Either byte order (the magic number says which); microsecond timestamps.
order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
frames, at = [], 24
while at + 16 <= len(data):
    sec, usec, incl, _ = struct.unpack(order + "IIII", data[at:at + 16])
    frames.append((sec + usec / 1e6, data[at + 16:at + 16 + incl]))
    at += 16 + incl
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
t0, start, late = frames[0][0], time.monotonic() + 0.2, 0.0
for ts, frame in frames:
    due = start + ts - t0
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    late = max(late, time.monotonic() - due)
    s.send(frame)
print(f"{late * 1000:.1f}")
"#;

#[test]
fn a_paced_storm_is_limited_at_the_rate() {
    let Some(bench) = Bench::new("a_paced_storm_is_limited_at_the_rate", "lm") else { return };
    // Two storm sources at 100 SYNs a second for 3 s, two normal ones at 2 a second.
    let pcap = bench.dir.path().join("storm.pcap");
    let gen = Command::new(dataplane_bin())
        .args(["gen", "--out"])
        .arg(&pcap)
        .args(["--storm", "--storm-sources", "2", "--storm-rate", "100", "--storm-connection", "syn"])
        .args(["--normal-sources", "2", "--normal-rate", "2", "--normal-connection", "syn", "--seconds", "3"])
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", String::from_utf8_lossy(&gen.stderr));
    let rules = rule_yaml(
        "syn-limit",
        "  ports: [{port: 443}]\n  action: DROP\n  limit: {connectionsPerSecond: 20, burst: 10}\n",
    );
    let gw = bench.gateway(Pmd::AfPacket, &rules);
    let sent = bench.topo.in_client("python3").args(["-c", PACED_SENDER]).arg(&pcap).output().unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let late_ms: f64 = String::from_utf8_lossy(&sent.stdout).trim().parse().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let line = stop_clean(gw);
    let limited = stat(&line, "limits", "connections");
    // 600 storm SYNs; each source passes 10 + 20 x 3 = 70 (the normal sources, 2 a second,
    // never reach their limit).
    let passed = 600 - limited as i64;
    eprintln!("paced storm: {passed} storm SYNs passed of 600 (expected 140), sender at most {late_ms} ms late");
    assert!((126..=154).contains(&passed), "{passed} passed, expected 140 within 10%: {line}");
    // Every SYN is a connection of its own; the stacks' own frames (ARP, IPv6 neighbour
    // discovery) may add to rx but open no TCP flow to port 443.
    assert_eq!(stat(&line, "", "created"), 612, "{line}");
    assert!(stat(&line, "", "rx") >= 612, "{line}");
}
