//! The control API end to end: the real binary on virtual devices with the API on loopback.

mod gateway;

use gateway::{call, config, eventually, json, write_traffic, Gateway};

const DROP_CLIENTS: &str = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata:\n  name: drop-clients\nspec:\n  cidrBlocks: [\"10.0.1.0/24\"]\n  action: DROP\n  reason: test\n";

/// (rx, tx, policy drops) of worker 0 from /v1/status.
fn counters(url: &str) -> (u64, u64, u64) {
    let s = json(&call("GET", &format!("{url}/v1/status"), None, None).1);
    let w = &s["workers"][0];
    (w["rx_packets"].as_u64().unwrap(), w["tx_packets"].as_u64().unwrap(), w["drops"]["policy"].as_u64().unwrap())
}

/// Counters over a quiet interval after an apply: (rx grown, tx grown, drops grown).
fn deltas(url: &str) -> (u64, u64, u64) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    let a = counters(url);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let b = counters(url);
    (b.0 - a.0, b.1 - a.1, b.2 - a.2)
}

#[test]
fn rule_updates_change_verdicts_and_invalid_sets_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    write_traffic(&traffic, 8);
    let gw = Gateway::start(&config(dir.path(), "ctl-api", &traffic, true, ""));
    let url = gw.url.clone();
    let rules = format!("{url}/v1/rules");

    // Generation 1, no rules: everything is forwarded.
    let (_, tx, drops) = deltas(&url);
    assert!(tx > 0 && drops == 0, "tx {tx} drops {drops}");
    let first = json(&call("GET", &rules, None, None).1);
    assert_eq!((first["generation"].as_u64(), first["rules"].as_array().map(Vec::len)), (Some(1), Some(0)));

    // A DROP rule: the answer comes once every worker runs it; from then on nothing passes.
    let (code, body) = call("PUT", &rules, Some(DROP_CLIENTS), None);
    assert_eq!(code, 200, "{body}");
    let applied = json(&body);
    assert_eq!((applied["generation"].as_u64(), applied["rules"].as_u64()), (Some(2), Some(1)));
    let digest = applied["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:") && applied["compile_ms"].is_number() && applied["activate_ms"].is_number());
    let (rx, tx, drops) = deltas(&url);
    assert!(rx > 0);
    assert_eq!((tx, drops), (0, rx), "every packet after the apply is dropped by policy");
    let status = json(&call("GET", &format!("{url}/v1/status"), None, None).1);
    assert_eq!(status["workers"][0]["generation"].as_u64(), Some(2));

    // Invalid: 422 naming the rule and field; generation 2 stays in force.
    let bad = DROP_CLIENTS.replace("10.0.1.0/24", "10.0.1.1/24");
    let (code, body) = call("PUT", &rules, Some(&bad), None);
    assert_eq!(code, 422);
    assert_eq!(
        json(&body),
        serde_json::json!({"errors": [{"rule": "drop-clients", "field": "spec.cidrBlocks[0]",
            "message": "host bits set in 10.0.1.1/24 (did you mean 10.0.1.0/24?)"}]})
    );
    let (rx, tx, drops) = deltas(&url);
    assert_eq!((tx, drops), (0, rx), "the old verdicts continue");
    let now = json(&call("GET", &rules, None, None).1);
    assert_eq!((now["generation"].as_u64(), now["digest"].as_str()), (Some(2), Some(digest.as_str())));

    // The same content again: a no-op answering the current generation.
    let (code, body) = call("PUT", &rules, Some(DROP_CLIENTS), None);
    assert_eq!((code, json(&body)["generation"].as_u64()), (200, Some(2)));
    // An older generation: 409.
    let (code, body) = call("PUT", &format!("{rules}?generation=1"), Some("[]"), None);
    assert_eq!(code, 409, "{body}");
    assert_eq!(json(&body)["generation"].as_u64(), Some(2));

    // DELETE: generation 3, traffic flows again.
    let (code, body) = call("DELETE", &format!("{rules}/drop-clients"), None, None);
    assert_eq!((code, json(&body)["generation"].as_u64()), (200, Some(3)), "{body}");
    let (rx, tx, drops) = deltas(&url);
    assert_eq!((tx, drops), (rx, 0));
    assert_eq!(call("DELETE", &format!("{rules}/drop-clients"), None, None).0, 404);

    // POST upserts: a chosen generation, then the same name replaced.
    let (code, body) = call("POST", &format!("{rules}?generation=10"), Some(DROP_CLIENTS), None);
    assert_eq!((code, json(&body)["generation"].as_u64(), json(&body)["rules"].as_u64()), (200, Some(10), Some(1)));
    let allow = DROP_CLIENTS.replace("action: DROP", "action: ALLOW");
    let (code, body) = call("POST", &rules, Some(&allow), None);
    assert_eq!((code, json(&body)["generation"].as_u64(), json(&body)["rules"].as_u64()), (200, Some(11), Some(1)));
    let active = json(&call("GET", &rules, None, None).1);
    assert_eq!(active["rules"][0]["spec"]["action"].as_str(), Some("ALLOW"));

    // /metrics: Prometheus text; the apply counts by status.
    let (code, text) = call("GET", &format!("{url}/metrics"), None, None);
    assert_eq!(code, 200);
    let metrics = parse_prometheus(&text);
    assert_eq!(metrics.get("dataplane_rule_applies_total{status=\"422\"}"), Some(&1.0));
    assert_eq!(metrics.get("dataplane_rule_applies_total{status=\"409\"}"), Some(&1.0));
    assert_eq!(metrics.get("dataplane_policy_generation"), Some(&11.0));
    let (code, rest) = gw.stop();
    assert_eq!(code, Some(0));
    assert!(rest.iter().any(|l| l == "mbufs in use: 0"), "{rest:?}");
}

/// Every sample line `name{labels} value`; panics on a line that is not Prometheus text.
fn parse_prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let ok_name =
            name.split('{').next().unwrap().chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        assert!(ok_name && (!name.contains('{') || name.ends_with('}')), "bad sample name {name:?}");
        out.insert(name.to_string(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {line:?}")));
    }
    out
}

#[test]
fn metrics_count_exactly_the_traffic_sent() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    let sent = write_traffic(&traffic, 6) as f64;
    // Clients 10.0.1.10..12 dropped (three connections of three packets each).
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let rule = DROP_CLIENTS.replace("10.0.1.0/24", "10.0.1.8/30").replace("name: drop-clients", "name: drop-some");
    let rule = format!("{rule}---\n{}", rule.replace("10.0.1.8/30", "10.0.1.12/32").replace("drop-some", "drop-one"));
    std::fs::write(dir.path().join("rules/r.yaml"), rule).unwrap();
    let gw = Gateway::start(&config(dir.path(), "ctl-metrics", &traffic, false, ""));
    let metrics = eventually(20, || {
        let m = parse_prometheus(&call("GET", &format!("{}/metrics", gw.url), None, None).1);
        (m.get("dataplane_worker_rx_packets_total{worker=\"0\"}") == Some(&sent)
            && m.get("dataplane_port_tx_packets_total{port=\"net_pcap1\"}").is_some_and(|&v| v > 0.0))
        .then_some(m)
    });
    let get = |k: &str| metrics.get(k).copied().unwrap_or_else(|| panic!("{k} missing"));
    assert_eq!(get("dataplane_worker_dropped_packets_total{worker=\"0\",cause=\"policy\"}"), 9.0);
    assert_eq!(get("dataplane_worker_dropped_packets_total{worker=\"0\",cause=\"malformed\"}"), 0.0);
    assert_eq!(get("dataplane_worker_tx_packets_total{worker=\"0\"}"), sent - 9.0);
    assert_eq!(get("dataplane_port_rx_packets_total{port=\"net_pcap0\"}"), sent);
    assert_eq!(get("dataplane_port_rx_queue_packets_total{port=\"net_pcap0\",queue=\"0\"}"), sent);
    assert_eq!(get("dataplane_port_tx_packets_total{port=\"net_pcap1\"}"), sent - 9.0);
    assert_eq!(get("dataplane_worker_flows{worker=\"0\"}"), 6.0);
    assert_eq!(get("dataplane_policy_generation"), 1.0);
    // Per rule: clients .10 and .11 by drop-some, .12 by drop-one, the rest by the default.
    assert_eq!(get("dataplane_rule_packets_total{rule=\"drop-some\",action=\"DROP\"}"), 6.0);
    assert_eq!(get("dataplane_rule_packets_total{rule=\"drop-one\",action=\"DROP\"}"), 3.0);
    assert_eq!(get("dataplane_rule_packets_total{rule=\"_default\",action=\"ALLOW\"}"), sent - 9.0);
}

#[test]
fn a_restart_comes_back_with_the_last_applied_set() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    write_traffic(&traffic, 2);
    let cfg = config(dir.path(), "ctl-restart", &traffic, true, "state_dir = \"state\"");
    let gw = Gateway::start(&cfg);
    // The drop rule and 20 others: a whole set, written as the snapshot.
    let others: String = (0..20)
        .map(|i| {
            format!(
                "---\n{}",
                DROP_CLIENTS
                    .replace("drop-clients", &format!("other-{i}"))
                    .replace("10.0.1.0/24", &format!("10.9.{i}.0/24"))
            )
        })
        .collect();
    let (code, body) = call("PUT", &format!("{}/v1/rules", gw.url), Some(&format!("{DROP_CLIENTS}{others}")), None);
    assert_eq!(code, 200, "{body}");
    // One rule changed, one deleted: a journal line each (generations 3 and 4).
    let changed = DROP_CLIENTS.replace("drop-clients", "other-3").replace("10.0.1.0/24", "10.8.0.0/16");
    assert_eq!(call("POST", &format!("{}/v1/rules", gw.url), Some(&changed), None).0, 200);
    assert_eq!(call("DELETE", &format!("{}/v1/rules/other-7", gw.url), None, None).0, 200);
    let journal = std::fs::read_to_string(dir.path().join("state/rules.journal")).unwrap();
    assert_eq!(journal.lines().count(), 2, "{journal}");
    let before = json(&call("GET", &format!("{}/v1/rules", gw.url), None, None).1);
    assert_eq!(before["rules"].as_array().map(Vec::len), Some(20));
    assert_eq!(gw.stop().0, Some(0));

    let gw = Gateway::start(&cfg);
    assert!(gw.head.iter().any(|l| l.starts_with("control: restored generation 4 (sha256:")), "{:?}", gw.head);
    let after = json(&call("GET", &format!("{}/v1/rules", gw.url), None, None).1);
    assert_eq!(after, before);
    let (rx, tx, drops) = deltas(&gw.url);
    assert_eq!((tx, drops), (0, rx), "the restored rule drops the traffic");
    assert_eq!(gw.stop().0, Some(0));

    // A corrupt state file is reported; the config's rule files (none) are used.
    std::fs::write(dir.path().join("state/rules.json"), "{\"version\":1,\"generation\":").unwrap();
    let child = std::process::Command::new(dataplane_tests::dataplane_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&child.stderr).to_string();
    assert_eq!(child.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is corrupt") && stderr.contains("starting from the config's rule files"), "{stderr}");
    assert!(String::from_utf8_lossy(&child.stdout).contains("policy generation 1"));
}

#[test]
fn sighup_reloads_the_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    write_traffic(&traffic, 2);
    let gw = Gateway::start(&config(dir.path(), "ctl-hup", &traffic, true, ""));
    let generation = |url: &str| json(&call("GET", &format!("{url}/v1/rules"), None, None).1)["generation"].as_u64();
    assert_eq!(generation(&gw.url), Some(1));
    let hup = || {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &gw.child.id().to_string()])
            .status()
            .unwrap()
            .success())
    };
    let said = |needle: &str| loop {
        let line = gw.lines.recv_timeout(std::time::Duration::from_secs(30)).expect("no SIGHUP line");
        if line.starts_with(needle) {
            return line;
        }
    };
    let file = dir.path().join("rules/drop.yaml");
    std::fs::write(&file, DROP_CLIENTS).unwrap();
    hup();
    assert!(said("control: SIGHUP: generation 2 (sha256:").ends_with(", 1 rules)"));
    assert_eq!(generation(&gw.url), Some(2));
    let (rx, tx, drops) = deltas(&gw.url);
    assert_eq!((tx, drops), (0, rx), "the reloaded rule drops the traffic");

    // An invalid file changes nothing; once mended, the next SIGHUP applies it.
    std::fs::write(&file, DROP_CLIENTS.replace("10.0.1.0/24", "10.0.1.1/24")).unwrap();
    hup();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(generation(&gw.url), Some(2));
    std::fs::write(&file, DROP_CLIENTS.replace("DROP", "ALLOW")).unwrap();
    hup();
    said("control: SIGHUP: generation 3 (sha256:");
    let (rx, tx, drops) = deltas(&gw.url);
    assert_eq!((tx, drops), (rx, 0), "the mended rule allows the traffic");
    assert_eq!(gw.stop().0, Some(0));
}

#[test]
fn a_configured_token_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    write_traffic(&traffic, 1);
    std::fs::write(dir.path().join("token"), "correct-horse-battery-staple\n").unwrap();
    let gw = Gateway::start(&config(dir.path(), "ctl-token", &traffic, true, "token_file = \"token\""));
    for path in ["/v1/rules", "/v1/status", "/metrics"] {
        let url = format!("{}{path}", gw.url);
        assert_eq!(call("GET", &url, None, None), (401, "{\"error\":\"unauthorized\"}".into()), "{path}");
        assert_eq!(call("GET", &url, None, Some("correct-horse-battery-stapl")).0, 401, "{path}");
        assert_eq!(call("GET", &url, None, Some("correct-horse-battery-staple")).0, 200, "{path}");
    }
    assert_eq!(call("PUT", &format!("{}/v1/rules", gw.url), Some(DROP_CLIENTS), None).0, 401);
    let status = json(&call("GET", &format!("{}/v1/status", gw.url), None, Some("correct-horse-battery-staple")).1);
    assert_eq!(status["generation"].as_u64(), Some(1), "the refused PUT changed nothing");

    // Listening beyond loopback without a token is a config error naming the key.
    let cfg = config(dir.path(), "ctl-token2", &traffic, true, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("127.0.0.1:0", "0.0.0.0:0");
    std::fs::write(&cfg, text).unwrap();
    let out = std::process::Command::new(dataplane_tests::dataplane_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("control.token_file: required"));
}

#[test]
fn rules_apply_prints_the_answer_or_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    write_traffic(&traffic, 1);
    let gw = Gateway::start(&config(dir.path(), "ctl-client", &traffic, true, ""));
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, DROP_CLIENTS).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, DROP_CLIENTS.replace("action: DROP", "action: DENY")).unwrap();
    let apply = |file: &std::path::Path| {
        std::process::Command::new(dataplane_tests::dataplane_bin())
            .args(["rules", "apply", "--control", &gw.url])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = apply(&good);
    assert_eq!(out.status.code(), Some(0));
    let answer = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!((answer["generation"].as_u64(), answer["rules"].as_u64()), (Some(2), Some(1)));
    let out = apply(&bad);
    // Rules the gateway finds invalid (422) are invalid input: exit 2, as `rules check` exits.
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "drop-clients: spec.action: unknown action \"DENY\" (expected ALLOW, DROP or REJECT)\nrejected (HTTP 422): 1 error(s)\n"
    );
}

/// Connection limits in the metrics and the status: six connections from one client against
/// a limit of burst 2 (one a second; the replay takes milliseconds): four limited, counted per
/// rule and per worker, their twelve packets dropped by the limit rule.
#[test]
fn limited_connections_are_counted_per_rule_and_worker() {
    use dataplane::wire::build::tcp_v4;
    use dataplane::wire::tcp_flags::{ACK, PSH, SYN};
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    let mut frames = Vec::new();
    for port in 40000..40006u16 {
        let (c, s) = ([10, 0, 1, 10], [192, 0, 2, 10]);
        frames.push(tcp_v4(c, s, port, 80, SYN, 100, &[]));
        frames.push(tcp_v4(c, s, port, 80, ACK, 101, &[]));
        frames.push(tcp_v4(c, s, port, 80, PSH | ACK, 101, b"GET / HTTP/1.1\r\n\r\n"));
    }
    let ts = |i: usize| std::time::Duration::from_micros(1_000_000 + i as u64 * 10);
    dataplane::pcap::write_all(&traffic, frames.iter().enumerate().map(|(i, f)| (ts(i), f.as_slice()))).unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let rule = DROP_CLIENTS.replace("name: drop-clients", "name: storm")
        + "  direction: ingress\n  limit: {connectionsPerSecond: 1, burst: 2}\n";
    std::fs::write(dir.path().join("rules/r.yaml"), rule).unwrap();
    let gw = Gateway::start(&config(dir.path(), "ctl-limits", &traffic, false, ""));
    let metrics = eventually(20, || {
        let m = parse_prometheus(&call("GET", &format!("{}/metrics", gw.url), None, None).1);
        (m.get("dataplane_worker_rx_packets_total{worker=\"0\"}") == Some(&18.0)
            && m.contains_key("dataplane_rule_connections_limited_total{rule=\"storm\"}"))
        .then_some(m)
    });
    let get = |k: &str| metrics.get(k).copied().unwrap_or_else(|| panic!("{k} missing"));
    assert_eq!(get("dataplane_rule_connections_limited_total{rule=\"storm\"}"), 4.0);
    assert_eq!(get("dataplane_worker_connections_limited_total{worker=\"0\"}"), 4.0);
    assert_eq!(get("dataplane_worker_limit_slots_shared_total{worker=\"0\"}"), 0.0);
    assert_eq!(get("dataplane_rule_packets_total{rule=\"storm\",action=\"DROP\"}"), 12.0);
    assert_eq!(get("dataplane_rule_packets_total{rule=\"_default\",action=\"ALLOW\"}"), 6.0);
    let status = json(&call("GET", &format!("{}/v1/status", gw.url), None, None).1);
    assert_eq!(status["rule_connections_limited"], serde_json::json!({"storm": 4}));
    assert_eq!(status["workers"][0]["limits"], serde_json::json!({"connections": 4, "shared": 0}));
}
