//! A capture against traffic sent after it was armed: the dataplane between network
//! namespaces on AF_PACKET (`netns_common`), `dataplane capture` run in the gateway's
//! namespace, frames sent from the client's with a Python raw socket once the command says
//! the capture runs. The file must hold exactly the frames the filter keeps, byte for byte and
//! in the order sent, and tshark must read them the same.
//!
//! Needs root, `ip netns`, veth, python3 (tshark for its half); where something is missing
//! the test says why on stderr and skips.

mod netns_common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dataplane::wire::build::FrameBuilder;
use dataplane_tests::dataplane_bin;
use netns_common::bench::skip;
use netns_common::gateway::{config, text, Line, NetGateway, Pmd};
use netns_common::Topology;

const RULES: &str = "\
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: block-other}
spec: {cidrBlocks: [\"10.77.0.3/32\"], action: DROP}
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: block-other-v6}
spec: {cidrBlocks: [\"fd77::9/128\"], action: DROP}
";

/// Sends each frame, in order, out of the client namespace's eth0 (an AF_PACKET socket).
const SEND_PY: &str = "import socket, sys\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind((sys.argv[1], 0))\nfor h in sys.argv[2:]:\n    s.send(bytes.fromhex(h))\n";

fn send(topo: &Topology, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames.iter().map(|f| f.iter().map(|b| format!("{b:02x}")).collect()).collect();
    let out = topo.in_client("python3").args(["-c", SEND_PY, "eth0"]).args(&hex).output().unwrap();
    assert!(out.status.success(), "sending: {}", String::from_utf8_lossy(&out.stderr));
}

type Frames = Vec<Vec<u8>>;

fn v4(last: u8) -> [u8; 4] {
    [10, 77, 0, last]
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[1] = 0x77;
    a[15] = last;
    a
}

/// UDP frames from the client: `n` to each of 10.77.0.3 (block-other), 10.77.0.2 (allowed)
/// and fd77::9 (block-other-v6: an address no namespace has, so no stack sends from it and
/// only these frames are dropped), each with its own payload. `tag` keeps rounds apart.
fn traffic(tag: u8, n: u8) -> (Frames, Frames, Frames) {
    let b = FrameBuilder::new();
    let payload = |to: u8, i: u8| [tag, to, i].repeat(12);
    let (mut blocked, mut allowed, mut blocked6) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let port = 30000 + u16::from(tag) * 100 + u16::from(i);
        blocked.push(b.udp_v4(v4(1), v4(3), port, 9, &payload(3, i)));
        allowed.push(b.udp_v4(v4(1), v4(2), port, 9, &payload(2, i)));
        blocked6.push(b.udp_v6(v6(1), v6(9), port, 9, &payload(6, i)));
    }
    (blocked, allowed, blocked6)
}

/// Interleaves the three lists: a, b, c, a, b, c...
fn interleave(lists: [&[Vec<u8>]; 3]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..lists[0].len() {
        for l in lists {
            out.push(l[i].clone());
        }
    }
    out
}

/// `dataplane capture` in the gateway namespace, once it says the capture runs.
fn start_capture(topo: &Topology, gw: &NetGateway, args: &[&str], file: &Path) -> Child {
    let mut child = topo
        .gateway
        .command(&dataplane_bin().display().to_string())
        .args(["capture", "--control", &gw.url])
        .args(args)
        .arg("-w")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains(" running, writing "), "dataplane capture: {line}");
    child
}

/// Waits for the command to end: (its stdout, the frames of its file with their timestamps).
fn finish(mut child: Child, file: &Path) -> (String, Vec<(Duration, Vec<u8>)>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dataplane capture did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(file).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let mut frames = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        frames.push((p.timestamp, p.data.into_owned()));
    }
    (String::from_utf8_lossy(&out.stdout).into_owned(), frames)
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// tshark's reading of a file: one line per frame, `frame.len ip.dst|ipv6.dst udp.srcport`.
fn tshark(file: &Path) -> Vec<String> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "frame.len",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "udp.srcport",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// What tshark should print for `frames` (UDP from the client, see [`traffic`]).
fn expected_tshark(frames: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            let v6 = f[12..14] == [0x86, 0xdd];
            let (dst, sport) = if v6 {
                (format!("fd77::{}", f[14 + 39]), u16::from_be_bytes([f[54], f[55]]))
            } else {
                (format!("10.77.0.{}", f[14 + 19]), u16::from_be_bytes([f[34], f[35]]))
            };
            if v6 {
                format!("{},,{dst},{sport}", f.len())
            } else {
                format!("{},{dst},,{sport}", f.len())
            }
        })
        .collect()
}

#[test]
fn af_packet_captures_exactly_the_packets_a_rule_dropped_while_it_ran() {
    let test = "af_packet_captures_exactly_the_packets_a_rule_dropped_while_it_ran";
    if let Some(why) = dataplane_tests::netns::skip_reason(&["python3"]) {
        return skip(test, &why);
    }
    let topo = match Topology::create("cap") {
        Ok(t) => t,
        Err(why) => return skip(test, &why),
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &topo, Pmd::AfPacket, RULES);
    let gw = NetGateway::start(&topo, &cfg)
        .unwrap_or_else(|f| panic!("the dataplane exited with {:?}:\n{}", f.exit, f.text()));
    let with_tshark = on_path("tshark");
    if !with_tshark {
        skip(test, "tshark is not installed: its half of the checks is left out (scripts/setup.sh installs it)");
    }

    // Traffic before the capture runs is not in it.
    let (early, _, _) = traffic(1, 3);
    send(&topo, &early);

    // 1. By rule, bounded by seconds: exactly block-other's drops, in the order sent.
    let file = dir.path().join("rule.pcap");
    let child = start_capture(&topo, &gw, &["--rule", "block-other", "--seconds", "3"], &file);
    let sent_at = now();
    let (blocked, allowed, blocked6) = traffic(2, 5);
    send(&topo, &interleave([&blocked, &allowed, &blocked6]));
    let (stdout, got) = finish(child, &file);
    let sent_until = now();
    let frames: Vec<Vec<u8>> = got.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(frames, blocked, "the capture holds exactly block-other's drops, byte for byte");
    assert!(got.iter().all(|(ts, _)| *ts >= sent_at && *ts <= sent_until), "stamped while sent");
    assert!(stdout.contains(": 5 packets captured, 0 missed (ring full), ended by seconds"), "{stdout}");
    if with_tshark {
        assert_eq!(tshark(&file), expected_tshark(&blocked));
    }

    // 2. By verdict, bounded by count: both rules' drops (IPv4 and IPv6), nothing allowed.
    let file = dir.path().join("verdict.pcap");
    let child = start_capture(&topo, &gw, &["--verdict", "DROP", "--count", "8", "--seconds", "20"], &file);
    let (blocked, allowed, blocked6) = traffic(3, 4);
    let sent = interleave([&blocked, &allowed, &blocked6]);
    send(&topo, &sent);
    let (stdout, got) = finish(child, &file);
    let drops: Vec<Vec<u8>> = sent.iter().filter(|f| !allowed.contains(f)).cloned().collect();
    let frames: Vec<Vec<u8>> = got.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(frames, drops, "the first 8 drops, v4 and v6");
    assert!(stdout.contains(": 8 packets captured, 0 missed (ring full), ended by count"), "{stdout}");
    if with_tshark {
        assert_eq!(tshark(&file), expected_tshark(&drops));
    }

    // 3. By source: the client's IPv4 packets, allowed and dropped alike.
    let file = dir.path().join("source.pcap");
    let child = start_capture(&topo, &gw, &["--source", "10.77.0.1/32", "--seconds", "3"], &file);
    let (blocked, allowed, blocked6) = traffic(4, 3);
    send(&topo, &interleave([&blocked, &allowed, &blocked6]));
    let (_, got) = finish(child, &file);
    let frames: Vec<Vec<u8>> = got.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(
        frames,
        interleave([&blocked, &allowed, &blocked6]).into_iter().filter(|f| f[12..14] == [8, 0]).collect::<Vec<_>>()
    );
    if with_tshark {
        assert_eq!(tshark(&file).len(), 6);
    }

    // Capturing changed no verdict: every allowed frame was forwarded, every other dropped.
    let (code, lines) = gw.stop();
    assert_eq!(code, Some(0), "{}", text(&lines));
    let stats = lines
        .iter()
        .find_map(|l| match l {
            Line::Out(s) if s.trim_start().starts_with("worker 0 ") => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no final worker stats:\n{}", text(&lines)));
    // Sent: 3 early (dropped), then rounds of 5, 4 and 3 to each of three addresses, one of
    // which is allowed. The namespaces' own stacks may add a few frames (IPv6 neighbour and
    // router messages), which are forwarded.
    let (rx, tx, drops) = (stat(&stats, "worker", "rx"), stat(&stats, "worker", "tx"), stat(&stats, "drops", "policy"));
    assert_eq!(drops, 3 + 2 * (5 + 4 + 3), "{stats}");
    assert!(tx >= 5 + 4 + 3 && rx == tx + drops, "{stats}");
}

/// The number after `key`, first met after the word `group`, in a stats line.
fn stat(line: &str, group: &str, key: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = words.iter().position(|w| *w == group).unwrap_or(words.len());
    let at = words.iter().skip(from).position(|w| *w == key).unwrap_or_else(|| panic!("{group} {key} in {line}"));
    words[from + at + 1].parse().unwrap()
}
