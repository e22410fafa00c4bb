//! The control API end to end: the real binary on DPDK virtual devices (net_pcap, net_null,
//! no hugepages) with the API on loopback. The config says `listen = "127.0.0.1:0"` and the
//! binary prints the address it bound (`control: listening on http://127.0.0.1:PORT`).
//!
//! No assertion depends on timing: waits poll the API until a condition holds (with a
//! generous deadline that only turns a hang into a failure).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::wire::build::udp_v4;
use dataplane_tests::{dataplane_bin, rule_yaml};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let ts = |i: usize| Duration::from_micros(1_000_000 + i as u64 * 10);
    dataplane::pcap::write_all(path, frames.iter().enumerate().map(|(i, f)| (ts(i), f.as_slice()))).unwrap();
}

/// A config: net_pcap0 reads `input` (forever when `infinite`) into the net_null0 sink.
fn config(prefix: &str, input: &Path, infinite: bool, rules: &[&Path], control: &str) -> String {
    let vdev = format!("net_pcap0,rx_pcap={}{}", input.display(), if infinite { ",infinite_rx=1" } else { "" });
    let eal: Vec<String> = [
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--file-prefix",
        &format!("{prefix}-{}", std::process::id()),
        "-m",
        "512",
        "--lcores",
        "0@0,1@1",
        "--vdev",
        &vdev,
        "--vdev",
        "net_null0,no-rx=1",
        "--log-level",
        "lib.eal:warning",
        "--no-telemetry",
    ]
    .iter()
    .map(|s| format!("{s:?}"))
    .collect();
    let rules: Vec<String> = rules.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    format!(
        r#"eal = [{}]
stats_period = 0
rules = [{}]
[control]
listen = "127.0.0.1:0"
{control}
[[ports]]
device = "net_pcap0"
[[ports]]
device = "net_null0"
[forward]
net_pcap0 = "net_null0"
net_null0 = "net_pcap0"
[[workers]]
lcore = 1
rx = [{{ port = "net_pcap0" }}, {{ port = "net_null0" }}]
"#,
        eal.join(", "),
        rules.join(", ")
    )
}

/// A running `dataplane run`: its API address and everything it printed so far.
struct Dataplane {
    child: Child,
    url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(r: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Dataplane {
    fn start(dir: &Path, config: &str) -> Dataplane {
        let path = dir.join("dataplane.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(dataplane_bin())
            .args(["run", "--config"])
            .arg(&path)
            .args(["--duration", "300"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        let mut dp = Dataplane { child, url: String::new(), stdout, stderr };
        let line = dp.wait_line("running:");
        assert!(line.starts_with("running:"), "{line}");
        let listening = dp.wait_line("control: listening on http://");
        dp.url = listening.trim_start_matches("control: listening on ").to_string();
        dp
    }

    fn wait_line(&mut self, prefix: &str) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self.stdout.lock().unwrap().iter().find(|l| l.starts_with(prefix)) {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before {prefix:?}: {:?} {:?}", self.stdout.lock(), self.stderr.lock());
            }
            assert!(t.elapsed() < DEADLINE, "no {prefix:?} in {:?}", self.stdout.lock());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; asserts a clean exit; returns stdout.
    fn stop(mut self) -> String {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        // The reader threads end with the pipes.
        let t = Instant::now();
        while !self.stdout.lock().unwrap().iter().any(|l| l.starts_with("mbufs in use")) && t.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = self.stdout.lock().unwrap().join("\n");
        eprintln!("--- stdout\n{out}\n--- stderr\n{}", self.stderr.lock().unwrap().join("\n"));
        assert_eq!(status.code(), Some(0));
        assert!(out.contains("mbufs in use: 0"), "{out}");
        out
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (status, body) of a request.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut r = match (method, body) {
        ("GET", _) => {
            let req = a.get(url);
            let req = if let Some(h) = &auth { req.header("Authorization", h) } else { req };
            req.call()
        }
        ("DELETE", _) => {
            let req = a.delete(url);
            let req = if let Some(h) = &auth { req.header("Authorization", h) } else { req };
            req.call()
        }
        (m, b) => {
            let req = if m == "PUT" { a.put(url) } else { a.post(url) };
            let req = if let Some(h) = &auth { req.header("Authorization", h) } else { req };
            req.send(b.unwrap_or(""))
        }
    }
    .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Worker 0's (rx, tx, drops policy, generation) from /v1/status.
fn worker0(url: &str, token: Option<&str>) -> (u64, u64, u64, u64) {
    let (s, body) = call("GET", &format!("{url}/v1/status"), token, None);
    assert_eq!(s, 200, "{body}");
    let w = &json(&body)["workers"][0];
    let n = |v: &Value| v.as_u64().unwrap();
    (n(&w["rx"]), n(&w["tx"]), n(&w["drops"]["policy"]), n(&w["generation"]))
}

/// Polls worker 0's counters until `rx` has moved past `after` (a publication made after
/// the call), returns them.
fn next_counters(url: &str, after: u64) -> (u64, u64, u64, u64) {
    let t = Instant::now();
    loop {
        let c = worker0(url, None);
        if c.0 > after {
            return c;
        }
        assert!(t.elapsed() < DEADLINE, "traffic stopped at rx {after}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Counters read after two more publications than `after`: each of them whole, and made
/// after the call (a read may see one counter of a publication and the next counter of the
/// one before; the second publication settles that).
fn settled(url: &str, after: u64) -> (u64, u64, u64, u64) {
    let first = next_counters(url, after);
    next_counters(url, first.0)
}

fn drop_rule(name: &str, cidr: &str) -> String {
    rule_yaml(name, &format!("  cidrBlocks: [\"{cidr}\"]\n  action: DROP\n  reason: test\n"))
}

/// One UDP flow from 10.1.0.1, replayed forever.
fn flow_pcap(dir: &Path) -> PathBuf {
    let frames: Vec<Vec<u8>> =
        (0..4).map(|i| udp_v4([10, 1, 0, 1], [192, 0, 2, 1], 4000, 53, format!("q{i}").as_bytes())).collect();
    let p = dir.join("flow.pcap");
    write_pcap(&p, &frames);
    p
}

/// A rule applied through the API changes the verdicts on traffic at once (the answer
/// comes after every worker runs it); an invalid set is 422, names the field, and the
/// old verdicts continue; an empty set forwards again.
#[test]
fn api_rules_change_verdicts_and_invalid_sets_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = flow_pcap(dir.path());
    let dp = Dataplane::start(dir.path(), &config("ctl-verdicts", &input, true, &[], ""));
    let url = dp.url.clone();

    // No rules: everything forwarded.
    let c = next_counters(&url, 0);
    assert_eq!((c.2, c.3), (0, 1));
    assert!(c.1 > 0);

    let (s, body) = call("PUT", &format!("{url}/v1/rules"), None, Some(&drop_rule("block-net", "10.1.0.0/16")));
    assert_eq!(s, 200, "{body}");
    let applied = json(&body);
    assert_eq!(applied["generation"], 2);
    assert_eq!(applied["rules"], 1);
    assert_eq!(applied["unchanged"], false);
    assert!(applied["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(applied["compile_ms"].as_f64().is_some() && applied["activate_ms"].as_f64().is_some());
    // Every worker already runs generation 2.
    let s0 = worker0(&url, None);
    assert_eq!(s0.3, 2);
    // From the first publication after the answer on, nothing is forwarded.
    let s1 = settled(&url, s0.0);
    let s2 = next_counters(&url, s1.0);
    assert_eq!(s2.1, s1.1, "forwarded after the DROP rule was active");
    assert!(s2.2 > s1.2);

    // The same content again: a no-op at the same generation.
    let (s, body) = call("PUT", &format!("{url}/v1/rules"), None, Some(&drop_rule("block-net", "10.1.0.0/16")));
    assert_eq!(s, 200);
    assert_eq!(json(&body)["generation"], 2);
    assert_eq!(json(&body)["unchanged"], true);

    // Invalid: 422 with the rule, field and message; nothing changes.
    let bad = rule_yaml("allow-all", "  action: ALLOW\n  priority: 1\n")
        + &rule_yaml("bad", "  cidrBlocks: [\"10.0.0.0/8\", \"10.1.0.1/16\"]\n  action: DROP\n");
    let (s, body) = call("PUT", &format!("{url}/v1/rules"), None, Some(&bad));
    assert_eq!(s, 422, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!({"errors": [{
            "rule": "bad",
            "field": "spec.cidrBlocks[1]",
            "message": "host bits set in 10.1.0.1/16 (did you mean 10.1.0.0/16?)"
        }]})
    );
    let s3 = settled(&url, s2.0);
    let s4 = next_counters(&url, s3.0);
    assert_eq!(s4.3, 2);
    assert_eq!(s4.1, s2.1, "the old verdicts continue");
    assert!(s4.2 > s3.2);
    let (s, body) = call("GET", &format!("{url}/v1/rules"), None, None);
    assert_eq!(s, 200);
    let active = json(&body);
    assert_eq!(active["generation"], 2);
    assert_eq!(active["digest"], applied["digest"]);
    assert_eq!(active["rules"][0]["metadata"]["name"], "block-net");
    assert_eq!(active["rules"].as_array().unwrap().len(), 1);

    // An older generation is a conflict.
    let (s, body) = call("PUT", &format!("{url}/v1/rules?generation=1"), None, Some(""));
    assert_eq!((s, json(&body)["generation"].clone()), (409, serde_json::json!(2)));

    // Upsert an ALLOW ahead of it, then delete both: each a new generation.
    let allow = rule_yaml("allow-first", "  cidrBlocks: [\"10.1.0.0/24\"]\n  action: ALLOW\n  priority: 1\n");
    let (s, body) = call("POST", &format!("{url}/v1/rules"), None, Some(&allow));
    assert_eq!(s, 200, "{body}");
    assert_eq!((json(&body)["generation"].clone(), json(&body)["rules"].clone()), (3.into(), 2.into()));
    let s5 = worker0(&url, None);
    let s6 = settled(&url, s5.0);
    let s7 = next_counters(&url, s6.0);
    assert!(s7.1 > s6.1, "the ALLOW rule forwards again");
    assert_eq!(s7.2, s6.2);
    let (s, _) = call("DELETE", &format!("{url}/v1/rules/no-such-rule"), None, None);
    assert_eq!(s, 404);
    let (s, body) = call("DELETE", &format!("{url}/v1/rules/allow-first"), None, None);
    assert_eq!((s, json(&body)["generation"].clone()), (200, 4.into()));
    let (s, body) = call("DELETE", &format!("{url}/v1/rules/block-net?generation=9"), None, None);
    assert_eq!((s, json(&body)["generation"].clone(), json(&body)["rules"].clone()), (200, 9.into(), 0.into()));
    assert_eq!(worker0(&url, None).3, 9);

    let out = dp.stop();
    assert!(out.contains("generation 9"), "{out}");
}

/// The last applied set survives a restart; a corrupt state file is reported and the
/// config's rule files are used instead.
#[test]
fn restart_comes_back_with_the_last_applied_set() {
    let dir = tempfile::tempdir().unwrap();
    let input = flow_pcap(dir.path());
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, drop_rule("from-config", "10.9.0.0/16")).unwrap();
    let state = dir.path().join("state");
    let control = format!("state_dir = {:?}", state.display().to_string());
    let cfg = config("ctl-restart", &input, true, &[&rules], &control);

    let dp = Dataplane::start(dir.path(), &cfg);
    let (s, body) = call("GET", &format!("{}/v1/rules", dp.url), None, None);
    assert_eq!(s, 200);
    assert_eq!(json(&body)["rules"][0]["metadata"]["name"], "from-config");
    let set = drop_rule("api-a", "10.1.0.0/16") + &drop_rule("api-b", "2001:db8::/32");
    let (s, body) = call("PUT", &format!("{}/v1/rules?generation=5", dp.url), None, Some(&set));
    assert_eq!(s, 200, "{body}");
    let applied = json(&body);
    assert_eq!(applied["generation"], 5);
    dp.stop();

    let mut dp = Dataplane::start(dir.path(), &cfg);
    let line = dp.wait_line("control: loaded generation");
    assert!(line.starts_with("control: loaded generation 5 (2 rules, sha256:"), "{line}");
    let (s, body) = call("GET", &format!("{}/v1/rules", dp.url), None, None);
    assert_eq!(s, 200);
    let active = json(&body);
    assert_eq!(active["generation"], 5);
    assert_eq!(active["digest"], applied["digest"]);
    let names: Vec<&str> =
        active["rules"].as_array().unwrap().iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api-a", "api-b"]);
    // The workers run it: the flow is dropped.
    let c = next_counters(&dp.url, 0);
    assert_eq!((c.1, c.3), (0, 5));
    dp.stop();

    // A torn state file: reported, the config's rules are used, nothing crashes.
    let file = state.join("rules.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 2]).unwrap();
    let dp = Dataplane::start(dir.path(), &cfg);
    let (s, body) = call("GET", &format!("{}/v1/rules", dp.url), None, None);
    assert_eq!(s, 200);
    let active = json(&body);
    assert_eq!(active["generation"], 1);
    assert_eq!(active["rules"][0]["metadata"]["name"], "from-config");
    let err = dp.stderr.lock().unwrap().join("\n");
    assert!(err.contains(&format!("control: state file {} is corrupt (", file.display())), "{err}");
    assert!(err.contains("using the config's rule files"), "{err}");
    dp.stop();
}

/// With a token configured, a missing or wrong one is 401 on every endpoint and changes
/// nothing; the right one works, also through `dataplane rules apply --token-file`.
#[test]
fn wrong_or_missing_token_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let input = flow_pcap(dir.path());
    let token = "t0ken-for-the-control-api-0123456789";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let control = format!("token_file = {:?}", token_file.display().to_string());
    let dp = Dataplane::start(dir.path(), &config("ctl-token", &input, true, &[], &control));
    let url = &dp.url;
    let rule = drop_rule("block-net", "10.1.0.0/16");
    for t in [None, Some("wrong-token-wrong-token-wrong"), Some(&token[1..])] {
        for (m, path, body) in [
            ("GET", "/v1/status", None),
            ("GET", "/v1/rules", None),
            ("GET", "/metrics", None),
            ("PUT", "/v1/rules", Some(rule.as_str())),
            ("POST", "/v1/rules", Some(rule.as_str())),
            ("DELETE", "/v1/rules/x", None),
        ] {
            let (s, b) = call(m, &format!("{url}{path}"), t, body);
            assert_eq!(s, 401, "{m} {path} with {t:?}: {b}");
            assert_eq!(json(&b), serde_json::json!({"error": "missing or invalid bearer token"}));
        }
    }
    let (s, body) = call("GET", &format!("{url}/v1/rules"), Some(token), None);
    assert_eq!(s, 200);
    assert_eq!(json(&body)["generation"], 1);

    let rules = dir.path().join("r.yaml");
    std::fs::write(&rules, &rule).unwrap();
    let apply = |args: &[&str]| {
        let o = Command::new(dataplane_bin())
            .args(["rules", "apply", "--control", url])
            .args(args)
            .arg(&rules)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = apply(&[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("refused (401)"), "{err}");
    let (code, out, err) = apply(&["--token-file", token_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let answer = json(&out);
    assert_eq!((answer["generation"].clone(), answer["rules"].clone()), (2.into(), 1.into()));
    // 422 through the client: exit 1, each error on a line.
    std::fs::write(&rules, drop_rule("bad", "10.1.0.1/16")).unwrap();
    let (code, _, err) = apply(&["--token-file", token_file.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad: spec.cidrBlocks[0]: host bits set in 10.1.0.1/16 (did you mean 10.1.0.0/16?)"), "{err}");
    assert!(err.contains("rejected (422): 1 error(s)"), "{err}");
    let metrics = call("GET", &format!("{url}/metrics"), Some(token), None).1;
    assert!(metrics.contains("dataplane_control_unauthorized_total 19\n"), "{metrics}");
    dp.stop();
}

/// Parses the Prometheus text format strictly: `# HELP`/`# TYPE` lines, samples
/// `name{label="value",...} number`. Returns samples by `name{labels}`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, value) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            assert!(name.starts_with("dataplane_"), "{line}");
            if kind == "TYPE" {
                assert!(["counter", "gauge", "histogram", "summary"].contains(&value), "{line}");
                types.insert(name.to_string(), value.to_string());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).unwrap();
            for pair in inner.split(',') {
                let (k, v) = pair.split_once('=').unwrap();
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(types.contains_key(name) || types.contains_key(family), "sample before its TYPE: {line}");
        if types.get(name).is_some_and(|t| t == "counter") {
            assert!(name.ends_with("_total"), "{line}");
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

/// `/metrics` parses as Prometheus text and its counters equal the traffic sent.
#[test]
fn metrics_parse_and_count_the_traffic_sent() {
    let dir = tempfile::tempdir().unwrap();
    // 30 packets of 10 flows: those from 10.1.0.0/16 are dropped by the config's rule.
    let mut frames = Vec::new();
    for i in 0..30u8 {
        let src = if i % 10 < 4 { [10, 1, 0, i % 10] } else { [10, 2, 0, i % 10] };
        frames.push(udp_v4(src, [192, 0, 2, 1], 4000 + u16::from(i % 10), 53, &[i; 20]));
    }
    let (sent, dropped) = (30.0, 12.0);
    let input = dir.path().join("in.pcap");
    write_pcap(&input, &frames);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, drop_rule("block-net", "10.1.0.0/16")).unwrap();
    let dp = Dataplane::start(dir.path(), &config("ctl-metrics", &input, false, &[&rules], ""));

    let t = Instant::now();
    let samples = loop {
        let (s, text) = call("GET", &format!("{}/metrics", dp.url), None, None);
        assert_eq!(s, 200);
        let samples = parse_prometheus(&text);
        if samples.get("dataplane_port_rx_packets_total{port=\"net_pcap0\"}") == Some(&sent)
            && samples.get("dataplane_rx_packets_total{worker=\"0\"}") == Some(&sent)
            && samples.get("dataplane_port_tx_packets_total{port=\"net_null0\"}") == Some(&(sent - dropped))
        {
            break samples;
        }
        assert!(t.elapsed() < DEADLINE, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let get = |k: &str| *samples.get(k).unwrap_or_else(|| panic!("no {k} in {samples:?}"));
    assert_eq!(get("dataplane_tx_packets_total{worker=\"0\"}"), sent - dropped);
    assert_eq!(get("dataplane_dropped_packets_total{worker=\"0\",reason=\"policy\"}"), dropped);
    assert_eq!(get("dataplane_dropped_packets_total{worker=\"0\",reason=\"malformed\"}"), 0.0);
    assert_eq!(get("dataplane_dropped_packets_total{worker=\"0\",reason=\"tx_full\"}"), 0.0);
    assert_eq!(get("dataplane_port_tx_packets_total{port=\"net_null0\"}"), sent - dropped);
    assert_eq!(get("dataplane_port_rx_packets_total{port=\"net_null0\"}"), 0.0);
    assert_eq!(get("dataplane_flows_created_total{worker=\"0\"}"), 10.0);
    assert_eq!(get("dataplane_policy_generation"), 1.0);
    assert_eq!(get("dataplane_worker_policy_generation{worker=\"0\"}"), 1.0);
    assert_eq!(get("dataplane_policy_rules{action=\"DROP\"}"), 1.0);
    assert_eq!(get("dataplane_policy_rules{action=\"ALLOW\"}"), 0.0);
    assert_eq!(get("dataplane_port_link_up{port=\"net_pcap0\"}"), 1.0);
    let out = dp.stop();
    assert!(out.contains(&format!("rx {sent}  tx {}  drops policy {dropped}", sent - dropped)), "{out}");
}

/// `[control]` errors name the key and nothing starts (exit 2).
#[test]
fn bad_control_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = flow_pcap(dir.path());
    for (i, (control, needle)) in [
        (
            "listen = \"10.0.0.1:9090\"",
            "control.token_file: required when control.listen (10.0.0.1:9090) is not a loopback address",
        ),
        ("listen = \"localhost\"", "control.listen: \"localhost\" is not an address and port"),
        ("tls_cert = \"c.pem\"", "control.tls_key: required with control.tls_cert"),
        ("token_file = \"missing\"", "control.token_file: reading"),
        ("max_body_bytes = 10", "control.max_body_bytes: 10 is out of range"),
        ("lisen = \"127.0.0.1:0\"", "control.lisen"),
    ]
    .into_iter()
    .enumerate()
    {
        // The test's own `listen` comes first; TOML refuses a second one, so replace it.
        let cfg = config(&format!("ctl-bad{i}"), &input, true, &[], control);
        let cfg = if control.starts_with("listen") { cfg.replace("listen = \"127.0.0.1:0\"\n", "") } else { cfg };
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, cfg).unwrap();
        let o = Command::new(dataplane_bin())
            .args(["run", "--config"])
            .arg(&path)
            .args(["--duration", "0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(!String::from_utf8_lossy(&o.stdout).contains("running:"));
    }
}
