//! `dataplane bench` end to end: generated traffic replayed by net_pcap into the workers and
//! a net_null sink, without hugepages. Asserts the accounting, never the speed.

use std::process::Command;

use dataplane_tests::{dataplane_bin, rule_yaml};

fn bench(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(dataplane_bin()).arg("bench").args(args).output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}");
    (o.status.code(), stdout, stderr)
}

const EAL: [&str; 5] = ["--", "--no-huge", "--no-shconf", "-m", "512"];

/// Every packet received is accounted for: forwarded or dropped by cause; a rule dropping
/// UDP drops some of gen's mixed traffic and forwards the rest; the summary is one JSON
/// object on stdout, with the per-second lines on stderr; `--phases` splits the busy cycles
/// into the steps of the work on bursts.
#[test]
fn json_summary_accounts_for_every_packet() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    // Drop every UDP packet: gen's UDP flows are a known share of the traffic.
    std::fs::write(&rules, rule_yaml("no-udp", "  action: DROP\n  reason: test\n  ports: [{protocol: UDP}]\n"))
        .unwrap();
    let rules = rules.display().to_string();
    let mut args = vec![
        "--rules",
        &rules,
        "--packets",
        "4096",
        "--flows",
        "256",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--json",
        "--phases",
    ];
    args.extend(EAL);
    let (code, stdout, stderr) = bench(&args);
    assert_eq!(code, Some(0));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    let n = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {summary}"));
    assert_eq!(n("rules"), 1);
    assert_eq!(n("workers"), 1);
    assert_eq!(n("exit_code"), 0);
    assert!(n("total_rx") > 4096, "the capture was replayed more than once");
    assert_eq!(
        n("total_rx"),
        n("total_tx") + n("total_drop_policy") + n("total_drop_malformed") + n("total_drop_tx_full"),
        "every packet received is forwarded or dropped for a counted cause"
    );
    assert!(n("total_drop_policy") > 0 && n("total_tx") > 0);
    assert_eq!(n("total_drop_malformed"), 0);
    assert!(n("flows") <= 256 && n("flows") > 0);
    assert!(summary["rx_mpps"].as_f64().unwrap() > 0.0);
    assert!(summary["cycles_per_packet"].as_f64().unwrap() > 0.0);
    assert!(stderr.contains("Mpps"), "per-second lines go to stderr with --json");

    // Each step took time, and the steps cover the busy time between them: the busy span
    // only adds one TSC reading before the first step and one after the last.
    let busy = summary["cycles_per_packet"].as_f64().unwrap();
    let steps = ["receive", "parse", "resolve", "settle", "transmit"];
    let cycles: Vec<f64> = steps
        .iter()
        .map(|s| summary["phase_cycles"][s].as_f64().unwrap_or_else(|| panic!("phase_cycles.{s} missing in {summary}")))
        .collect();
    assert!(cycles.iter().all(|&c| c > 0.0), "{cycles:?}");
    let total: f64 = cycles.iter().sum();
    assert!(total <= busy && total >= 0.8 * busy, "steps {total} of busy {busy}");
}

/// The text summary without rules (nothing dropped), and bad arguments (exit 2, named).
#[test]
fn text_summary_and_bad_arguments() {
    let mut args = vec!["--packets", "2048", "--flows", "128", "--duration", "1.5", "--warmup", "0.5"];
    args.extend(EAL);
    let (code, stdout, _) = bench(&args);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("bench summary"), "{stdout}");
    assert!(stdout.contains("rules: 0"), "{stdout}");
    assert!(stdout.contains("dropped by policy 0"), "{stdout}");
    assert!(!stdout.contains("by step"), "steps are timed only when asked: {stdout}");

    let (code, _, stderr) = bench(&["--duration", "1", "--warmup", "2"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--warmup"), "{stderr}");
    let (code, _, stderr) = bench(&["--pcap", "/nonexistent.pcap"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent.pcap"), "{stderr}");
}

/// `gen --quic-ratio`: QUIC connections among the generated ones, reported on a line of their
/// own; a ratio out of range is refused by name (exit 2), by `gen` and by `bench`, which
/// generates its traffic the same way.
#[test]
fn gen_quic_ratio_and_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.pcap");
    let out_arg = out.display().to_string();
    let gen = |args: &[&str]| {
        let o = Command::new(dataplane_bin()).arg("gen").args(["--out", &out_arg]).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = gen(&["--packets", "64", "--flows", "16", "--quic-ratio", "1", "--seed", "3"]);
    assert_eq!(code, Some(0), "{stderr}");
    let summary: Vec<&str> = stdout.lines().collect();
    assert_eq!(summary.len(), 2, "{stdout}");
    assert!(summary[0].contains("16 flows (0 TCP, 16 UDP, "), "{stdout}");
    assert!(summary[1].starts_with("  of the UDP flows 16 QUIC, of which "), "{stdout}");
    assert!(summary[1].ends_with(", 16 with the whole first flight"), "{stdout}");

    for bad in ["1.5", "-0.5", "NaN"] {
        std::fs::remove_file(&out).unwrap_or(());
        let (code, _, stderr) = gen(&[&format!("--quic-ratio={bad}")]);
        assert_eq!(code, Some(2));
        assert_eq!(stderr.trim(), format!("gen: --quic-ratio: {bad} is not between 0 and 1"));
        assert!(!out.exists());
    }
    let (code, _, stderr) = bench(&["--quic-ratio", "2"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("bench: --quic-ratio: 2 is not between 0 and 1"), "{stderr}");
}

/// `--workers 2`: a distributor lcore spreads the replay over two workers. The summary gives
/// each worker's packets and rate: the packets sum exactly to the total received (measured and
/// over the run), the rates to the total rate, both workers get connections of gen's 256, and
/// every packet the distributor received reached a worker or was counted as refused by a full
/// ring (but for at most a ring's worth still on its way at the stop).
#[test]
fn two_workers_report_figures_that_sum_to_the_total() {
    let mut args = vec![
        "--workers",
        "2",
        "--cpus",
        "0,1",
        "--packets",
        "4096",
        "--flows",
        "256",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--json",
    ];
    args.extend(EAL);
    let (code, stdout, _) = bench(&args);
    assert_eq!(code, Some(0));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    let n = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {summary}"));
    let list = |k: &str| -> Vec<u64> {
        summary[k]
            .as_array()
            .unwrap_or_else(|| panic!("{k} missing in {summary}"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    assert_eq!(n("workers"), 2);
    let measured = list("rx_packets_per_worker");
    let total = list("total_rx_per_worker");
    assert_eq!(measured.len(), 2);
    assert_eq!(measured.iter().sum::<u64>(), n("rx_packets"), "{summary}");
    assert_eq!(total.iter().sum::<u64>(), n("total_rx"), "{summary}");
    assert!(total.iter().all(|&w| w > 0), "both workers got connections: {total:?}");
    assert!(n("total_rx") > 4096, "the capture was replayed more than once");
    assert_eq!(
        n("total_rx"),
        n("total_tx") + n("total_drop_policy") + n("total_drop_malformed") + n("total_drop_tx_full"),
        "every packet a worker received is forwarded or dropped for a counted cause"
    );

    let rates: Vec<f64> = summary["mpps_per_worker"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let rx_mpps = summary["rx_mpps"].as_f64().unwrap();
    assert_eq!(rates.len(), 2);
    assert!((rates.iter().sum::<f64>() - rx_mpps).abs() <= 1e-9 * rx_mpps.max(1.0), "{rates:?} against {rx_mpps}");
    assert!(summary["distributor_mpps"].as_f64().unwrap() > 0.0, "{summary}");

    let distributed = n("total_distributor_rx");
    let reached = n("total_rx") + n("total_drop_ring_full");
    assert!(distributed >= reached, "{distributed} received by the distributor, {reached} accounted for");
    // The two rings (1024 each by default) hold what has not reached a worker at the stop.
    assert!(distributed - reached <= 2 * 1024, "{distributed} received by the distributor, {reached} accounted for");
}
