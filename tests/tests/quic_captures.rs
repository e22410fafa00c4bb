//! `dataplane classify --json` on real QUIC handshakes (tests/data/quic/*.pcap: an aioquic
//! client and server on loopback, made by `make_captures.py`), checked against an independent
//! dissector: tshark decrypts the client Initials itself, and what it reads in each ClientHello
//! (frame, client port, QUIC version, SNI, ALPN, JA3) is committed in `expected.json`
//! (`expected.py`), with JA4 from FoxIO's `ja4` tool. When tshark is installed, it is run again
//! here on every capture and must still read exactly the committed values.

use dataplane_tests::{classify_json, rule_yaml};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/quic").join(file)
}

/// What an independent reader saw of one ClientHello.
#[derive(Debug, PartialEq)]
struct Hello {
    /// The frame that completes the hello (1-based, as `classify`'s `packet`).
    frame: u64,
    client_port: u16,
    quic_version: u64,
    sni: String,
    alpn: Vec<String>,
    ja3: String,
    ja3_full: String,
    /// FoxIO's JA4, when `expected.py` had their tool (not from tshark, never compared live).
    ja4: Option<String>,
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data("expected.json")).unwrap()).unwrap()
}

/// The captures and their hellos, as `expected.json` records them.
fn committed() -> Vec<(String, Vec<Hello>)> {
    let e = expected();
    let captures = e["captures"].as_object().expect("captures");
    assert!(captures.len() >= 5, "{captures:?}");
    let text = |v: &Value| v.as_str().expect("a string").to_string();
    captures
        .iter()
        .map(|(file, hellos)| {
            let hellos = hellos
                .as_array()
                .expect("hellos")
                .iter()
                .map(|h| Hello {
                    frame: h["frame"].as_u64().unwrap(),
                    client_port: h["client_port"].as_u64().unwrap().try_into().unwrap(),
                    quic_version: h["quic_version"].as_u64().unwrap(),
                    sni: text(&h["sni"]),
                    alpn: h["alpn"].as_array().unwrap().iter().map(text).collect(),
                    ja3: text(&h["ja3"]),
                    ja3_full: text(&h["ja3_full"]),
                    ja4: h.get("ja4").and_then(Value::as_str).map(str::to_string),
                })
                .collect();
            (file.clone(), hellos)
        })
        .collect()
}

fn tshark_installed() -> bool {
    Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// tshark's reading of `pcap`, by the command `expected.py` runs (without JA4).
fn tshark_hellos(pcap: &Path) -> Vec<Hello> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-Y", "tls.handshake.type==1", "-T", "fields"]);
    cmd.args(["-E", "separator=/t", "-E", "aggregator=|"]);
    for f in [
        "frame.number",
        "udp.srcport",
        "quic.version",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "tls.handshake.ja3",
        "tls.handshake.ja3_full",
    ] {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [frame, port, version, sni, alpn, ja3, ja3_full] = f[..] else { panic!("tshark line {line:?}") };
            // A datagram of coalesced packets has a version per long-header packet.
            let quic_version = match version.split('|').next() {
                Some("0x00000001") => 1,
                Some("0x6b3343cf") => 2,
                other => panic!("QUIC version {other:?}"),
            };
            Hello {
                frame: frame.parse().unwrap(),
                client_port: port.parse().unwrap(),
                quic_version,
                sni: sni.to_string(),
                alpn: if alpn.is_empty() { vec![] } else { alpn.split('|').map(str::to_string).collect() },
                ja3: ja3.to_string(),
                ja3_full: ja3_full.to_string(),
                ja4: None,
            }
        })
        .collect()
}

/// `classify --json` with `rules` (YAML) over a capture here.
fn classify(rules: &str, file: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, rules).unwrap();
    classify_json(&[], &path, &data(file))
}

/// A rule that makes UDP 443 flows read their hellos but drops none of the captures' names.
fn reading_rules() -> String {
    rule_yaml(
        "nothing-here",
        "  action: DROP\n  reason: sni\n  ports: [{protocol: UDP, port: 443}]\n  tls: {serverNames: [\"*.invalid\"]}\n",
    )
}

#[test]
fn the_committed_expectations_are_what_tshark_reads() {
    if !tshark_installed() {
        eprintln!("tshark is not installed: the captures are checked against the committed expected.json only");
        return;
    }
    for (file, hellos) in committed() {
        let committed: Vec<Hello> = hellos.into_iter().map(|h| Hello { ja4: None, ..h }).collect();
        assert_eq!(tshark_hellos(&data(&file)), committed, "{file}: tshark now reads otherwise than expected.json");
    }
}

#[test]
fn every_hello_reads_as_tshark_reads_it() {
    let rules = reading_rules();
    let mut total = 0;
    for (file, hellos) in committed() {
        let lines = classify(&rules, &file);
        let seen: Vec<&Value> = lines.iter().filter(|l| l.get("tls").is_some()).collect();
        assert_eq!(seen.len(), hellos.len(), "{file}: {seen:?}");
        for (line, want) in seen.iter().zip(&hellos) {
            let what = format!("{file}, frame {}: {line}", want.frame);
            assert_eq!(line["packet"], want.frame, "{what}");
            assert_eq!(line["verdict"], "ALLOW", "{what}");
            let tls = &line["tls"];
            assert_eq!(tls["quic"], true, "{what}");
            assert_eq!(tls["quic_version"], want.quic_version, "{what}");
            assert_eq!(tls["sni"], want.sni.as_str(), "{what}");
            assert_eq!(tls["alpn"], json!(want.alpn), "{what}");
            assert_eq!(tls["version"], "1.3", "{what}");
            assert_eq!(tls["ech"], false, "{what}");
            assert_eq!(tls["ja3"], want.ja3.as_str(), "{what}");
            let ja4 = tls["ja4"].as_str().unwrap();
            assert!(ja4.starts_with("q13d"), "{what}");
            if let Some(theirs) = &want.ja4 {
                assert_eq!(ja4, theirs, "{what}: JA4");
            }
            total += 1;
        }
        // Every other packet passes; with a hello over several datagrams, the ones before it too.
        for l in &lines {
            assert_eq!(l["verdict"], "ALLOW", "{file}: {l}");
        }
    }
    assert_eq!(total, 10);
}

#[test]
fn the_captures_keep_their_cases() {
    // What the expectations record, checked here so that a regeneration keeps the cases.
    let hellos = committed();
    let of = |file: &str| &hellos.iter().find(|(f, _)| f == file).unwrap().1;
    let frames = |file: &str| of(file).iter().map(|h| (h.frame, h.client_port, h.quic_version)).collect::<Vec<_>>();
    assert_eq!(frames("aioquic_v1_names.pcap"), [(1, 50001, 1), (9, 50002, 1), (17, 50003, 1)]);
    // Two Initials, in order and swapped; three Initials.
    assert_eq!(frames("aioquic_v1_pq_two_initials.pcap"), [(2, 50011, 1)]);
    assert_eq!(frames("aioquic_v1_reordered.pcap"), [(2, 50011, 1)]);
    assert_eq!(frames("aioquic_v1_many_alpn.pcap"), [(3, 50021, 1)]);
    assert_eq!(of("aioquic_v1_many_alpn.pcap")[0].alpn.len(), 122);
    assert_eq!(frames("aioquic_v1_resumed.pcap"), [(1, 50041, 1), (8, 50042, 1)]);
    assert!(
        of("aioquic_v1_resumed.pcap")[1].ja3_full.ends_with("-57-42-41,23-24-29-30,"),
        "early_data, pre_shared_key"
    );
    assert_eq!(frames("aioquic_v2.pcap"), [(1, 50031, 2), (11, 50032, 2)]);
}

fn verdicts(lines: &[Value]) -> Vec<(u64, String, Option<String>)> {
    lines
        .iter()
        .map(|l| {
            let rule = l["rule"].as_str().map(str::to_string);
            (l["packet"].as_u64().unwrap(), l["verdict"].as_str().unwrap().to_string(), rule)
        })
        .collect()
}

/// Packets `1..=n`, those in `dropped` dropped by `rule`, the rest allowed.
fn want(n: u64, dropped: std::ops::RangeInclusive<u64>, rule: &str) -> Vec<(u64, String, Option<String>)> {
    (1..=n)
        .map(|p| {
            if dropped.contains(&p) {
                (p, "DROP".to_string(), Some(rule.to_string()))
            } else {
                (p, "ALLOW".to_string(), None)
            }
        })
        .collect()
}

fn block(name: &str, ports: &str) -> String {
    rule_yaml("block", &format!("  action: DROP\n  reason: sni\n{ports}  tls: {{serverNames: [\"{name}\"]}}\n"))
}

const UDP_443: &str = "  ports: [{protocol: UDP, port: 443}]\n";

#[test]
fn an_sni_rule_on_udp_443_drops_that_connection_from_its_completing_packet() {
    // aioquic_v1_names.pcap: alpha is packets 1-8 (client port 50001), beta 9-16 (50002),
    // gamma 17-24 (50003); each hello in the connection's first packet.
    let lines = classify(&block("beta.example.org", UDP_443), "aioquic_v1_names.pcap");
    assert_eq!(verdicts(&lines), want(24, 9..=16, "block"));
    assert_eq!(lines[8]["tls"]["sni"], "beta.example.org");
    assert_eq!(lines[8]["reason"], "sni");
    assert_eq!(lines[0]["tls"]["sni"], "alpha.example.com");
    assert_eq!(lines[16]["tls"]["sni"], "www.gamma.example.net");

    // A wildcard: one of three.
    let lines = classify(&block("*.example.net", UDP_443), "aioquic_v1_names.pcap");
    assert_eq!(verdicts(&lines), want(24, 17..=24, "block"));

    // The hello over two Initials (packets 1 and 2 of 10), in either order: the first datagram
    // passes (pending), the second completes the hello and is dropped, with the rest.
    for file in ["aioquic_v1_pq_two_initials.pcap", "aioquic_v1_reordered.pcap"] {
        let lines = classify(&block("big.example.com", UDP_443), file);
        assert_eq!(verdicts(&lines), want(10, 2..=10, "block"), "{file}");
        assert_eq!(lines[1]["tls"]["sni"], "big.example.com", "{file}");
    }

    // Three Initials (packets 1-3 of 12).
    let lines = classify(&block("alpn.example.com", UDP_443), "aioquic_v1_many_alpn.pcap");
    assert_eq!(verdicts(&lines), want(12, 3..=12, "block"));

    // QUIC v2: v2.example.net is packets 1-9 (port 50031), big-v2 10-19 (50032, two Initials).
    let lines = classify(&block("big-v2.example.net", UDP_443), "aioquic_v2.pcap");
    assert_eq!(verdicts(&lines), want(19, 11..=19, "block"));
    assert_eq!(lines[10]["tls"]["quic_version"], 2);
    let lines = classify(&block("v2.example.net", UDP_443), "aioquic_v2.pcap");
    assert_eq!(verdicts(&lines), want(19, 1..=9, "block"));
}

#[test]
fn ja3_and_ja4_rules_on_udp_443_tell_the_hellos_apart() {
    let rule =
        |what: &str| rule_yaml("fingerprint", &format!("  action: DROP\n  reason: fp\n{UDP_443}  tls: {{{what}}}\n"));
    // The resumption (packets 8-15; its Initial carries 0-RTT data too) differs from the full
    // handshake before it (1-7) by two extensions, early_data and pre_shared_key: its own JA4
    // (FoxIO's ja4 tool) and JA3 (tshark).
    let lines = classify(&rule("ja4: [q13d0310h3_55b375c5d22e_43a52939c45c]"), "aioquic_v1_resumed.pcap");
    assert_eq!(verdicts(&lines), want(15, 8..=15, "fingerprint"));
    let lines = classify(&rule("ja3: [03a7d247df95a12cc70c33a4bae548bf]"), "aioquic_v1_resumed.pcap");
    assert_eq!(verdicts(&lines), want(15, 8..=15, "fingerprint"));
    // gamma's two cipher suites (packets 17-24).
    let lines = classify(&rule("ja4: [q13d0208h3_88d8eb61a8ee_a06176d7f541]"), "aioquic_v1_names.pcap");
    assert_eq!(verdicts(&lines), want(24, 17..=24, "fingerprint"));
}

#[test]
fn an_sni_rule_on_tcp_443_only_leaves_quic_unread() {
    let lines = classify(&block("beta.example.org", "  ports: [{port: 443}]\n"), "aioquic_v1_names.pcap");
    assert_eq!(verdicts(&lines), want(24, 0..=0, "block"), "packet 0 does not exist: all pass");
    assert!(lines.iter().all(|l| l.get("tls").is_none()), "{lines:?}");
}
