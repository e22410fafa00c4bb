//! `dataplane gen --storm` end to end: the JSON summary says exactly what the capture holds,
//! and `classify` reads every packet of it.

use std::process::Command;

use dataplane_tests::{classify, dataplane_bin, rule_yaml};

fn gen(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(dataplane_bin()).arg("gen").args(args).output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Two storm sources (one IPv6, by its /64) at 50 SYNs/s and three normal sources at 2 TLS
/// connections/s for 3 s: 150 and 6 connections each; the packet counts of the summary add up
/// to the capture's, which `classify` reads whole. Storm options without `--storm`, and
/// `--storm` with the round-robin traffic's options, are refused.
#[test]
fn storm_summary_matches_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("storm.pcap");
    let out_arg = out.display().to_string();
    let (code, stdout, stderr) = gen(&[
        "--out",
        &out_arg,
        "--storm",
        "--storm-sources",
        "2",
        "--storm-ipv6",
        "1",
        "--storm-rate",
        "50",
        "--storm-connection",
        "syn",
        "--normal-sources",
        "3",
        "--normal-rate",
        "2",
        "--seconds",
        "3",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let sources: Vec<(String, bool, u64, u64)> = summary["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["storm"].as_bool().unwrap(),
                s["connections"].as_u64().unwrap(),
                s["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    let names: Vec<(&str, bool, u64)> = sources.iter().map(|(n, s, c, _)| (n.as_str(), *s, *c)).collect();
    assert_eq!(
        names,
        [
            ("198.18.0.1", true, 150),
            ("2001:db8:5:2::/64", true, 150),
            ("10.1.0.1", false, 6),
            ("10.1.0.2", false, 6),
            ("10.1.0.3", false, 6),
        ]
    );
    // A SYN each for the storm; handshake and hello (one or two segments) for the others.
    assert!(sources[..2].iter().all(|s| s.3 == 150), "{sources:?}");
    assert!(sources[2..].iter().all(|s| (24..=30).contains(&s.3)), "{sources:?}");
    let packets: u64 = sources.iter().map(|s| s.3).sum();
    assert_eq!(summary["packets"].as_u64(), Some(packets));
    assert_eq!(summary["connections"].as_u64(), Some(318));

    let rules = dir.path().join("none.yaml");
    std::fs::write(&rules, rule_yaml("unrelated", "  cidrBlocks: [\"203.0.113.0/24\"]\n  action: DROP\n")).unwrap();
    let o = classify(&[], &rules, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with(&format!("packets {packets}  allowed {packets}  dropped 0  malformed 0\n")), "{text}");

    let (code, _, stderr) = gen(&["--out", &out_arg, "--storm-rate", "5"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--storm"), "{stderr}");
    let (code, _, stderr) = gen(&["--out", &out_arg, "--storm", "--flows", "5"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let (code, _, stderr) = gen(&["--out", &out_arg, "--storm", "--storm-rate", "0"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim(), "gen: --storm-rate: 0 is not a rate between 0 (excluded) and 1000000 per second");
}
