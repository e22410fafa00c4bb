//! `dataplane classify` and `dataplane rules check`: the real binary on crafted captures.

use dataplane::pcap::write_all;
use dataplane::wire::build;
use dataplane::wire::tcp_flags::{ACK, SYN};
use dataplane_tests::{dataplane_bin, rule_yaml};
use std::process::Command;
use std::time::Duration;

const CLIENT: [u8; 4] = [192, 168, 211, 9];
const OTHER: [u8; 4] = [172, 16, 0, 4];
const SERVER: [u8; 4] = [10, 0, 0, 5];

fn write_rules(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("rules.yaml");
    let text = rule_yaml(
        "block-x",
        "  cidrBlocks: [\"192.168.211.0/24\"]\n  direction: ingress\n  action: DROP\n  reason: \"exploit \\\"source\\\"\"\n",
    ) + &rule_yaml("allow-web", "  priority: 2000\n  ports: [{port: 80}]\n  action: ALLOW\n  reason: web\n");
    std::fs::write(&path, text).unwrap();
    path
}

fn capture(dir: &std::path::Path) -> std::path::PathBuf {
    let frames = [
        build::tcp_v4(CLIENT, SERVER, 40000, 80, SYN, 1, b""),
        build::tcp_v4(SERVER, CLIENT, 80, 40000, SYN | ACK, 7, b""),
        build::tcp_v4(OTHER, SERVER, 40001, 80, SYN, 1, b""),
        build::udp_v4(OTHER, SERVER, 5353, 53, b"query"),
        {
            let mut f = build::tcp_v4(OTHER, SERVER, 40002, 80, ACK, 1, b"");
            f.truncate(40); // cut inside the IPv4 header
            f
        },
        build::udp_v4(SERVER, OTHER, 53, 5353, b"answer"),
    ];
    let path = dir.join("in.pcap");
    write_all(&path, frames.iter().enumerate().map(|(i, f)| (Duration::from_millis(i as u64), f.as_slice()))).unwrap();
    path
}

#[test]
fn json_lines_give_exact_verdicts_rules_and_reasons_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, pcap) = (write_rules(dir.path()), capture(dir.path()));
    let out = Command::new(dataplane_bin())
        .args(["classify", "--json", "--default-action", "DROP", "--rules"])
        .arg(&rules)
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = [
        r#"{"packet":1,"verdict":"DROP","rule":"block-x","reason":"exploit \"source\""}"#,
        r#"{"packet":2,"verdict":"DROP","rule":"block-x","reason":"exploit \"source\""}"#,
        r#"{"packet":3,"verdict":"ALLOW","rule":"allow-web","reason":"web"}"#,
        r#"{"packet":4,"verdict":"DROP","rule":null,"reason":null}"#,
        r#"{"packet":5,"verdict":"DROP","rule":null,"reason":null,"malformed":true}"#,
        r#"{"packet":6,"verdict":"DROP","rule":null,"reason":null}"#,
    ];
    let expected: Vec<serde_json::Value> = expected.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, expected);
}

#[test]
fn summary_counts_packets_and_hits_per_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, pcap) = (write_rules(dir.path()), capture(dir.path()));
    let out = Command::new(dataplane_bin())
        .args(["classify", "--rules"])
        .arg(&rules)
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "packets 6  allowed 4  dropped 2  malformed 1\n  rule block-x: 2\n  rule allow-web: 1\n  default (ALLOW): 3\n"
    );
}

#[test]
fn rules_check_reports_every_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        rule_yaml("block-x", "  cidrBlocks: [\"10.0.0.0/8\", \"10.0.0.1/24\"]\n  action: DROP\n")
            + &rule_yaml("y", "  action: REJECT\n"),
    )
    .unwrap();
    let out = Command::new(dataplane_bin()).args(["rules", "check"]).arg(&path).output().unwrap();
    // Invalid rules are invalid input, as for `run`: exit 2.
    assert_eq!(out.status.code(), Some(2));
    let p = path.display();
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "{p}: block-x: spec.cidrBlocks[1]: host bits set in 10.0.0.1/24 (did you mean 10.0.0.0/24?)\n\
             {p}: y: spec.action: unknown action \"REJECT\" (expected ALLOW or DROP)\nrejected: 2 error(s)\n"
        )
    );
    // `classify` reads its rules the same way, with the same exit code.
    let pcap = capture(dir.path());
    let out = Command::new(dataplane_bin())
        .args(["classify", "--rules"])
        .arg(&path)
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rules_check_accepts_the_example_rules() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules");
    let out = Command::new(dataplane_bin()).args(["rules", "check"]).arg(&examples).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ok: 5 rules, 4 IPv4 and 2 IPv6 prefixes"), "{text}");
}

#[test]
fn a_file_that_is_not_a_pcap_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_rules(dir.path());
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"definitely not a capture").unwrap();
    let out = Command::new(dataplane_bin())
        .args(["classify", "--rules"])
        .arg(&rules)
        .arg("--pcap")
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().starts_with("classify: "));
}

/// A flow table too large to allocate is refused with the option named (it aborted the
/// process on the allocation before), and so is an empty one.
#[test]
fn a_flow_capacity_out_of_range_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_rules(dir.path());
    let pcap = capture(dir.path());
    for flows in ["100000000000", "67108865", "0"] {
        let out = Command::new(dataplane_bin())
            .args(["classify", "--flows", flows, "--rules"])
            .arg(&rules)
            .arg("--pcap")
            .arg(&pcap)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--flows") && stderr.contains("from 1 to 67108864"), "{stderr}");
    }
}

mod fragments_common;

/// Issue 18's fragment evasions (`nmap -f`, overlaps, out of order, orphans) through
/// `classify --json`: every fragment gets its datagram's verdict, the refused ones name their
/// cause, held ones are printed in file order once their datagram is decided (the orphan at
/// the end of the capture).
#[test]
fn fragments_get_their_datagrams_verdict_and_name_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, fragments_common::drop_445()).unwrap();
    let (frames, _) = fragments_common::capture();
    let pcap = dir.path().join("in.pcap");
    write_all(&pcap, frames.iter().enumerate().map(|(i, f)| (Duration::from_millis(i as u64), f.bytes.as_slice())))
        .unwrap();
    let out = Command::new(dataplane_bin())
        .args(["classify", "--json", "--rules"])
        .arg(&rules)
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected: Vec<serde_json::Value> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut line = serde_json::json!({
                "packet": i + 1,
                "verdict": f.verdict,
                "rule": f.rule,
                "reason": f.rule.map(|_| "smb"),
            });
            if let Some(cause) = f.cause {
                line["malformed"] = cause.into();
            }
            line
        })
        .collect();
    assert_eq!(lines, expected);
    // The summary counts the same.
    let out = Command::new(dataplane_bin())
        .args(["classify", "--rules"])
        .arg(&rules)
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let dropped = frames.iter().filter(|f| f.verdict == "DROP").count();
    let malformed = frames.iter().filter(|f| f.cause.is_some()).count();
    assert!(
        text.contains(&format!(
            "packets {}  allowed {}  dropped {dropped}  malformed {malformed}",
            frames.len(),
            frames.len() - dropped
        )),
        "{text}"
    );
}
