//! Packet capture through the control API and `dataplane capture`: the real binary replaying
//! a pcap forever on virtual devices, the API on loopback. Which packets a capture holds is
//! checked byte for byte against the frames replayed; the network-namespace test
//! (`netns_capture.rs`) checks a capture against traffic sent after it was armed.

mod gateway;

use std::collections::HashSet;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataplane::wire::build::tcp_v4;
use dataplane::wire::tcp_flags::{ACK, PSH, SYN};
use gateway::{agent, call, config, eventually, json, write_traffic, Gateway};

/// Clients 10.0.1.10 and .11 (`drop-some`) and .12 (`drop-one`) are dropped; .13 to .15 pass.
const RULES: &str = "\
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: drop-some}
spec: {cidrBlocks: [\"10.0.1.8/30\"], action: DROP}
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: drop-one}
spec: {cidrBlocks: [\"10.0.1.12/32\"], action: DROP}
";

/// The frames `write_traffic` wrote for the clients `clients` (last bytes of 10.0.1.x).
fn frames_of(clients: &[u8]) -> HashSet<Vec<u8>> {
    let mut out = HashSet::new();
    for &c in clients {
        let i = c - 10;
        let port = 40000 + u16::from(i);
        let client = [10, 0, 1, c];
        out.insert(tcp_v4(client, [192, 0, 2, 10], port, 80, SYN, 100, &[]));
        out.insert(tcp_v4(client, [192, 0, 2, 10], port, 80, ACK, 101, &[]));
        out.insert(tcp_v4(client, [192, 0, 2, 10], port, 80, PSH | ACK, 101, b"GET / HTTP/1.1\r\n\r\n"));
    }
    out
}

fn start(dir: &std::path::Path, prefix: &str, extra: &str) -> Gateway {
    let traffic = dir.join("in.pcap");
    write_traffic(&traffic, 6);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/r.yaml"), RULES).unwrap();
    Gateway::start(&config(dir, prefix, &traffic, true, extra))
}

/// `GET /v1/capture?query` to the end: (status, content type, capture id, body).
fn capture(url: &str, query: &str, token: Option<&str>) -> (u16, String, String, Vec<u8>) {
    let mut request = agent().get(format!("{url}/v1/capture?{query}"));
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let mut response = request.call().unwrap();
    let header = |k: &str| response.headers().get(k).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (kind, id) = (header("content-type"), header("x-capture-id"));
    let mut body = Vec::new();
    response.body_mut().as_reader().read_to_end(&mut body).unwrap();
    (response.status().as_u16(), kind, id, body)
}

/// The frames and timestamps of a pcap file's bytes (nanosecond resolution asserted).
fn packets(pcap: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    let mut reader = pcap_file::pcap::PcapReader::new(pcap).unwrap();
    assert_eq!(reader.header().ts_resolution, pcap_file::TsResolution::NanoSecond);
    assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        out.push((p.timestamp, p.data.into_owned()));
    }
    out
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

#[test]
fn a_capture_holds_only_what_its_filter_keeps_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cap-filter", "");
    let dropped_by_some = frames_of(&[10, 11]);
    let all: HashSet<Vec<u8>> = frames_of(&[10, 11, 12, 13, 14, 15]);

    // By rule: only drop-some's packets, the count exactly, stamped while it ran.
    let before = now();
    let (code, kind, id, body) = capture(&gw.url, "rule=drop-some&count=40", None);
    let after = now();
    assert_eq!((code, kind.as_str(), id.as_str()), (200, "application/vnd.tcpdump.pcap", "1"));
    let got = packets(&body);
    assert_eq!(got.len(), 40);
    for (ts, frame) in &got {
        assert!(dropped_by_some.contains(frame), "a frame drop-some did not drop: {frame:02x?}");
        assert!(*ts >= before && *ts <= after, "timestamp {ts:?} outside [{before:?}, {after:?}]");
    }
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "one worker: in order of arrival");
    let last = json(&call("GET", &format!("{}/v1/capture/last", gw.url), None, None).1);
    assert_eq!(
        (last["id"].as_u64(), last["captured"].as_u64(), last["ended"].as_str()),
        (Some(1), Some(40), Some("count"))
    );
    assert_eq!(last["rule"].as_str(), Some("drop-some"));

    // By verdict: every rule's drops, no allowed packet.
    let (code, _, _, body) = capture(&gw.url, "verdict=DROP&count=60", None);
    assert_eq!(code, 200);
    let got = packets(&body);
    assert_eq!(got.len(), 60);
    let dropped = frames_of(&[10, 11, 12]);
    assert!(got.iter().all(|(_, f)| dropped.contains(f)));
    assert!(got.iter().any(|(_, f)| frames_of(&[12]).contains(f)), "drop-one's packets too");
    // By source: one client's packets, allowed ones included; and with a verdict, none.
    let (_, _, _, body) = capture(&gw.url, "source=10.0.1.14/32&count=9", None);
    let got = packets(&body);
    assert_eq!(got.len(), 9);
    assert!(got.iter().all(|(_, f)| frames_of(&[14]).contains(f)));
    let (_, _, _, body) = capture(&gw.url, "source=10.0.1.14&verdict=DROP&seconds=0.5", None);
    assert_eq!(packets(&body).len(), 0, "client .14 is never dropped");
    let last = json(&call("GET", &format!("{}/v1/capture/last", gw.url), None, None).1);
    assert_eq!((last["captured"].as_u64(), last["ended"].as_str()), (Some(0), Some("seconds")));
    // No filter: any packet replayed.
    let (_, _, _, body) = capture(&gw.url, "count=30", None);
    assert!(packets(&body).iter().all(|(_, f)| all.contains(f)));

    // The per-worker counters show the copies.
    let status = json(&call("GET", &format!("{}/v1/status", gw.url), None, None).1);
    let copied = status["workers"][0]["capture"]["copied"].as_u64().unwrap();
    assert!(copied >= 40 + 60 + 9 + 30, "copied {copied}");
    let (code, rest) = gw.stop();
    assert_eq!(code, Some(0));
    assert!(rest.iter().any(|l| l == "mbufs in use: 0"), "{rest:?}");
}

#[test]
fn bad_captures_are_refused_naming_the_field_and_one_runs_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cap-refuse", "");
    let url = |q: &str| format!("{}/v1/capture{q}", gw.url);
    assert_eq!(call("GET", &url("/last"), None, None), (404, "{\"error\":\"no capture has ended yet\"}".into()));
    for (query, field) in [
        ("", "count"),
        ("?rule=drop-some", "count"),
        ("?verdict=BLOCK&count=1", "verdict"),
        ("?source=10.0.1.1/24&count=1", "source"),
        ("?count=0", "count"),
        ("?count=1000001", "count"),
        ("?seconds=3601", "seconds"),
        ("?seconds=1&port=80", "port"),
        ("?rule=no-such-rule&count=1", "rule"),
    ] {
        let (code, body) = call("GET", &url(query), None, None);
        assert_eq!((code, json(&body)["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
    let (_, body) = call("GET", &url("?rule=no-such-rule&count=1"), None, None);
    assert_eq!(json(&body)["error"], "rule: no rule named \"no-such-rule\" in the active set");

    // One at a time: a second capture while the first streams is 409.
    let mut first = agent().get(url("?verdict=DROP&seconds=60")).call().unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let mut head = [0u8; 24];
    first.body_mut().as_reader().read_exact(&mut head).unwrap();
    assert_eq!(head[..4], [0x4d, 0x3c, 0xb2, 0xa1], "nanosecond pcap, little endian");
    let (code, body) = call("GET", &url("?count=1"), None, None);
    assert_eq!((code, json(&body)["error"].as_str()), (409, Some("capture 1 is running; one capture at a time")));
    // The client goes away: the capture ends at its next write, and the next one may run.
    drop(first);
    let last = eventually(20, || {
        let (code, body) = call("GET", &url("/last"), None, None);
        (code == 200).then(|| json(&body))
    });
    assert_eq!((last["id"].as_u64(), last["ended"].as_str()), (Some(1), Some("client gone")));
    let (code, _, id, body) = capture(&gw.url, "count=1", None);
    assert_eq!((code, id.as_str(), packets(&body).len()), (200, "2", 1));
    drop(gw);
}

#[test]
fn a_configured_token_is_required_for_captures() {
    let dir = tempfile::tempdir().unwrap();
    let token = "correct-horse-battery-staple";
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let gw = start(dir.path(), "cap-token", "token_file = \"token\"");
    for path in ["/v1/capture?count=1", "/v1/capture/last"] {
        let u = format!("{}{path}", gw.url);
        assert_eq!(call("GET", &u, None, None), (401, "{\"error\":\"unauthorized\"}".into()), "{path}");
        assert_eq!(call("GET", &u, None, Some("correct-horse-battery-stapl")).0, 401, "{path}");
    }
    let (code, _, _, body) = capture(&gw.url, "count=2", Some(token));
    assert_eq!((code, packets(&body).len()), (200, 2));
    // The command line: without the token refused; with it saved.
    let file = dir.path().join("c.pcap");
    let cli = |extra: &[&str]| {
        std::process::Command::new(dataplane_tests::dataplane_bin())
            .args(["capture", "--control", &gw.url, "--count", "5", "-w"])
            .arg(&file)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = cli(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("capture refused (HTTP 401): unauthorized"));
    let out = cli(&["--token-file", &dir.path().join("token").display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(packets(&std::fs::read(&file).unwrap()).len(), 5);
}

#[test]
fn the_command_saves_a_file_tshark_reads_and_prints_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cap-cli", "");
    let file = dir.path().join("drops.pcap");
    let out = std::process::Command::new(dataplane_tests::dataplane_bin())
        .args(["capture", "--control", &gw.url, "--rule", "drop-one", "--count", "25", "-w"])
        .arg(&file)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.trim(), format!("capture 1 running, writing {}", file.display()));
    // Copies missed depend on how fast the replay outruns the drain: the line reports what
    // `/v1/capture/last` says.
    let last = json(&call("GET", &format!("{}/v1/capture/last", gw.url), None, None).1);
    let missed = last["missed"].as_u64().unwrap();
    assert_eq!(
        stdout.trim(),
        format!("capture 1: 25 packets captured, {missed} missed (ring full), ended by count, in {}", file.display())
    );
    let got = packets(&std::fs::read(&file).unwrap());
    assert_eq!(got.len(), 25);
    assert!(got.iter().all(|(_, f)| frames_of(&[12]).contains(f)));
    // Bad input is exit code 2 with the gateway's message.
    let out = std::process::Command::new(dataplane_tests::dataplane_bin())
        .args(["capture", "--control", &gw.url, "--verdict", "maybe", "--count", "1", "-w"])
        .arg(dir.path().join("x.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("capture refused (HTTP 400): verdict: \"maybe\" is not a verdict"));

    // An independent dissector reads the file: tshark, when installed.
    if !on_path("tshark") {
        eprintln!("SKIP the tshark half: tshark is not installed (scripts/setup.sh installs it)");
        return;
    }
    let fields = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&file)
        .args(["-T", "fields", "-e", "ip.src", "-e", "tcp.dstport", "-e", "frame.len"])
        .output()
        .unwrap();
    assert!(fields.status.success(), "{}", String::from_utf8_lossy(&fields.stderr));
    let lines: Vec<String> = String::from_utf8_lossy(&fields.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 25);
    let expected: HashSet<String> = frames_of(&[12]).iter().map(|f| format!("10.0.1.12\t80\t{}", f.len())).collect();
    assert!(lines.iter().all(|l| expected.contains(l)), "{lines:?}");
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}
