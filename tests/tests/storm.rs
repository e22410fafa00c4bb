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

/// A limit of 50 new connections a second (burst 20) on every source of TCP 443, over a
/// generated storm: four storm sources (one IPv6 /64 whose every connection comes from another
/// address) opening 200 a second for 5 s, eight normal sources opening 2 a second. On the
/// capture's clock, each storm source gets about 20 + 50 x 5 = 270 connections through (within
/// 10%), the rest limited; the normal sources none limited. The summary's counts agree with
/// the packets' lines.
#[test]
fn classify_limits_a_storm_at_the_configured_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("storm.pcap");
    let (code, _, stderr) = gen(&[
        "--out",
        &out.display().to_string(),
        "--storm",
        "--storm-sources",
        "4",
        "--storm-ipv6",
        "1",
        "--storm-rate",
        "200",
        "--storm-connection",
        "syn",
        "--normal-sources",
        "8",
        "--normal-rate",
        "2",
        "--seconds",
        "5",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let rules = dir.path().join("limit.yaml");
    std::fs::write(
        &rules,
        rule_yaml(
            "syn-limit",
            "  ports: [{port: 443}]\n  action: DROP\n  limit: {connectionsPerSecond: 50, burst: 20}\n",
        ),
    )
    .unwrap();
    let lines = dataplane_tests::classify_json(&[], &rules, &out);
    let frames = dataplane::pcap::read_all(&out).unwrap();
    assert_eq!(lines.len(), frames.len());
    // Per source (an IPv6 one by its /64): (SYNs passed, SYNs limited, other packets limited).
    let mut by_source: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    for (line, frame) in lines.iter().zip(&frames) {
        let Ok(dataplane::wire::Parsed::Ip(p)) = dataplane::wire::parse_frame(&frame.data) else { panic!() };
        let source = match p.addrs {
            dataplane::wire::IpPair::V4 { src, .. } => std::net::Ipv4Addr::from(src).to_string(),
            dataplane::wire::IpPair::V6 { src, .. } => format!("{}/64", std::net::Ipv6Addr::from(src >> 64 << 64)),
        };
        let limited = line["limited"] == true;
        assert_eq!(limited, line["verdict"] == "DROP", "{line}");
        if limited {
            assert_eq!(line["rule"], "syn-limit", "{line}");
        }
        let row = by_source.entry(source).or_default();
        let syn = p.tcp_flags == dataplane::wire::tcp_flags::SYN;
        match (syn, limited) {
            (true, false) => row.0 += 1,
            (true, true) => row.1 += 1,
            (false, l) => row.2 += u64::from(l),
        }
    }
    let storm: Vec<_> =
        by_source.iter().filter(|(s, _)| s.starts_with("198.18.") || s.starts_with("2001:db8:5:")).collect();
    assert_eq!(storm.len(), 4, "{by_source:?}");
    for (source, (passed, limited, _)) in &storm {
        assert_eq!(passed + limited, 1000, "{source}");
        assert!((243..=297).contains(passed), "{source}: {passed} passed, expected 270 within 10%");
    }
    let normal: Vec<_> = by_source.iter().filter(|(s, _)| s.starts_with("10.1.")).collect();
    assert_eq!(normal.len(), 8, "{by_source:?}");
    // Normal sources: 10 connections each (handshake and hello), none limited. Server
    // packets count as the server's, and are never limited either.
    for (source, (passed, limited, others)) in &normal {
        assert_eq!((*passed, *limited, *others), (10, 0, 0), "{source}");
    }
    // The summary without --json: the same totals.
    let o = classify(&[], &rules, &out);
    let text = String::from_utf8_lossy(&o.stdout);
    let limited: u64 = storm.iter().map(|(_, r)| r.1).sum();
    assert!(text.contains(&format!("connections limited {limited}\n")), "{text}");
    assert!(text.contains(&format!("({limited} connections limited)")), "{text}");
}
