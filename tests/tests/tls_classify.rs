//! `dataplane classify --json` on real and crafted ClientHello captures (tests/data/tls):
//! pending packets pass, the completing segment carries the verdict and the `tls` object,
//! and every later packet of a dropped connection is dropped. JA3/JA4 expectations come from
//! independent implementations (see tests/data/tls/README.md).

use dataplane_tests::{dataplane_bin, rule_yaml};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tls").join(name)
}

fn classify(rules: &str, pcap: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, rules).unwrap();
    let out = Command::new(dataplane_bin())
        .args(["classify", "--json", "--rules"])
        .arg(&path)
        .arg("--pcap")
        .arg(pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn pass(n: u64) -> Value {
    json!({"packet": n, "verdict": "ALLOW", "rule": null, "reason": null})
}

#[test]
fn a_post_quantum_hello_over_two_segments_in_either_order_is_dropped_on_completion() {
    let rules = rule_yaml("no-curl", "  action: DROP\n  reason: sni\n  tls: {serverNames: [\"*.example.com\"]}\n");
    let completed = json!({
        "packet": 5, "verdict": "DROP", "rule": "no-curl", "reason": "sni",
        "tls": {"sni": "curl.example.com", "alpn": ["h2", "http/1.1"], "version": "1.3", "ech": true,
                "ja3": "2b24c7ef88f77c3e03b2b51e5a1cb36f", "ja4": "t13d3113h2_e8f1e7e78f70_08edaaf7106f", "quic": false}
    });
    for file in ["pq_split.pcap", "pq_out_of_order.pcap"] {
        let lines = classify(&rules, &capture(file));
        assert_eq!(lines, vec![pass(1), pass(2), pass(3), pass(4), completed.clone()], "{file}");
    }
}

#[test]
fn every_packet_after_the_completing_segment_of_a_dropped_connection_is_dropped() {
    let rules = rule_yaml("old-or-gnutls", "  action: DROP\n  reason: r\n  tls: {serverNames: [gnutls.example.com]}\n");
    let lines = classify(&rules, &capture("gnutls.pcap"));
    assert_eq!(lines[..3], [pass(1), pass(2), pass(3)]);
    assert_eq!(lines[3]["tls"]["ja4"], "t13d291300_723694b0fccc_2cc26d266019");
    assert_eq!(lines[3]["tls"]["ja3"], "f35ce21b44ac0b87d3266294bb1b0e20");
    assert!(lines.len() > 5);
    for l in &lines[3..] {
        assert_eq!((l["verdict"].as_str(), l["rule"].as_str()), (Some("DROP"), Some("old-or-gnutls")), "{l}");
    }
}

#[test]
fn version_ja3_and_ja4_predicates_on_real_hellos() {
    let rules = rule_yaml("tls12", "  action: DROP\n  reason: v\n  tls: {versionBelow: \"1.3\"}\n")
        + &rule_yaml("python-ja3", "  action: DROP\n  reason: j3\n  tls: {ja3: [304734bb1c086c3453b387400cf83f11]}\n")
        + &rule_yaml(
            "curl-ja4",
            "  action: DROP\n  reason: j4\n  tls: {ja4: [t13d3112h2_e8f1e7e78f70_b26ce05bbdd6]}\n",
        );
    let decided = |file: &str| {
        let lines = classify(&rules, &capture(file));
        let hello = lines.iter().find(|l| l.get("tls").is_some()).expect("a hello").clone();
        (hello["verdict"].as_str().unwrap().to_string(), hello["rule"].as_str().map(str::to_string))
    };
    assert_eq!(decided("openssl_tls12.pcap"), ("DROP".into(), Some("tls12".into())));
    assert_eq!(decided("python.pcap"), ("DROP".into(), Some("python-ja3".into())));
    assert_eq!(decided("curl.pcap"), ("DROP".into(), Some("curl-ja4".into())));
    assert_eq!(decided("openssl_tls13_sni.pcap"), ("ALLOW".into(), None));
    assert_eq!(decided("two_records.pcap"), ("ALLOW".into(), None));
}
