//! Top talkers end to end: a handshake storm built here (a few sources opening many
//! connections among normal clients) replayed once through the real gateway, then
//! `GET /v1/top` and `dataplane top --once` list the storm's sources first, with exact counts
//! (one worker, fewer sources than the sketch holds: the sketch is exact).

mod gateway;

use std::process::Command;

use dataplane::tls::build::client_hello_record;
use dataplane::wire::build::{tcp_v4, tcp_v6};
use dataplane::wire::tcp_flags::{ACK, PSH, SYN};
use dataplane_tests::dataplane_bin;
use gateway::{call, config, eventually, json, Gateway};
use rand::rngs::SmallRng;
use rand::SeedableRng;

const SERVER: [u8; 4] = [192, 0, 2, 10];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const TOKEN: &str = "top-secret-token";

/// Rules: 10.9.0.2 dropped by address; a TLS rule (matching no name sent) so that every
/// connection to 443 has its ClientHello read.
const RULES: &str = "apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata:
  name: drop-storm-b
spec:
  cidrBlocks: [\"10.9.0.2/32\"]
  action: DROP
  reason: storm
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata:
  name: drop-blocked-name
spec:
  ports: [{port: 443}]
  tls: {serverNames: [\"blocked.example\"]}
  action: DROP
  reason: test
";

/// The storm and the normal clients, each connection a SYN then its ClientHello:
/// - 10.9.0.1: 300 connections naming storm.example;
/// - 10.9.0.2: 200 connections to port 80 (SYN only), all dropped by address (to 443 they
///   would await their ClientHello, which the TLS rule asks for, before the drop);
/// - 2001:db8:1:2::1..100: one connection each naming v6.example (one /64: one source);
/// - 10.0.1.1..40: one connection each naming www.example.
fn storm() -> Vec<Vec<u8>> {
    let mut rng = SmallRng::seed_from_u64(21);
    let mut frames = Vec::new();
    let mut hello_v4 = |frames: &mut Vec<Vec<u8>>, client: [u8; 4], port: u16, sni: &str| {
        frames.push(tcp_v4(client, SERVER, port, 443, SYN, 100, &[]));
        frames.push(tcp_v4(client, SERVER, port, 443, PSH | ACK, 101, &client_hello_record(sni, false, &mut rng)));
    };
    for i in 0..300u16 {
        hello_v4(&mut frames, [10, 9, 0, 1], 20000 + i, "storm.example");
    }
    for i in 0..40u8 {
        hello_v4(&mut frames, [10, 0, 1, 1 + i], 30000, "www.example");
    }
    for i in 0..200u16 {
        frames.push(tcp_v4([10, 9, 0, 2], SERVER, 20000 + i, 80, SYN, 100, &[]));
    }
    let mut rng = SmallRng::seed_from_u64(6);
    for i in 1..=100u8 {
        let mut client = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        client[15] = i;
        frames.push(tcp_v6(client, SERVER6, 40000, 443, SYN, 100, &[]));
        let hello = client_hello_record("v6.example", false, &mut rng);
        frames.push(tcp_v6(client, SERVER6, 40000, 443, PSH | ACK, 101, &hello));
    }
    frames
}

/// (address, count, error) of each row.
fn rows(v: &serde_json::Value) -> Vec<(String, u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["address"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap(), r["error"].as_u64().unwrap())
        })
        .collect()
}

fn top_cli(url: &str, token: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(dataplane_bin())
        .args(["top", "--control", url, "--token-file"])
        .arg(token)
        .args(args)
        .output()
        .unwrap();
    eprintln!("--- top {args:?}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn a_storms_sources_come_first_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("in.pcap");
    let frames = storm();
    dataplane::pcap::write_all(
        &traffic,
        frames.iter().enumerate().map(|(i, f)| (std::time::Duration::from_micros(i as u64), f.as_slice())),
    )
    .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let cfg = config(dir.path(), "top-storm", &traffic, false, "token_file = \"token\"");
    std::fs::write(dir.path().join("rules/rules.yaml"), RULES).unwrap();
    let gw = Gateway::start(&cfg);
    let get = |query: &str| call("GET", &format!("{}/v1/top{query}", gw.url), None, Some(TOKEN));

    // The counts reach the API within about a second of the last packet.
    let sent = frames.len() as u64;
    eventually(20, || {
        let s = json(&call("GET", &format!("{}/v1/status", gw.url), None, Some(TOKEN)).1);
        (s["workers"][0]["rx_packets"].as_u64() == Some(sent)).then_some(())
    });
    let connections = eventually(10, || {
        let (code, body) = get("?by=connections&limit=4");
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        (v.as_array().unwrap().first().map(|r| r["count"].as_u64()) == Some(Some(300))
            && v[2]["count"].as_u64() == Some(100))
        .then_some(v)
    });
    assert_eq!(
        rows(&connections),
        vec![
            ("10.9.0.1".into(), 300, 0),
            ("10.9.0.2".into(), 200, 0),
            ("2001:db8:1:2::/64".into(), 100, 0),
            ("10.0.1.1".into(), 1, 0),
        ]
    );
    assert!(connections[0]["rate"].as_f64().is_some_and(|r| r >= 0.0), "{connections}");
    assert!(connections[0].get("snis").is_none());

    let (code, body) = get("?by=hellos&limit=3");
    assert_eq!(code, 200);
    let hellos = json(&body);
    assert_eq!(
        rows(&hellos),
        vec![("10.9.0.1".into(), 300, 0), ("2001:db8:1:2::/64".into(), 100, 0), ("10.0.1.1".into(), 1, 0)]
    );
    assert_eq!(hellos[0]["snis"], serde_json::json!([{"name": "storm.example", "count": 300}]));
    assert_eq!(hellos[1]["snis"], serde_json::json!([{"name": "v6.example", "count": 100}]));
    assert_eq!(hellos[2]["snis"], serde_json::json!([{"name": "www.example", "count": 1}]));

    let (code, body) = get("?by=drops");
    assert_eq!(code, 200);
    assert_eq!(rows(&json(&body)), vec![("10.9.0.2".into(), 200, 0)]);
    // The whole ranking by default: 43 sources (two storms, the /64, 40 clients), 10 shown.
    assert_eq!(json(&get("").1).as_array().map(Vec::len), Some(10));

    // Bad queries: 400 naming the field; no token: 401.
    let bad = |q: &str| {
        let (code, body) = get(q);
        (code, json(&body)["error"].as_str().unwrap().to_string())
    };
    assert_eq!(bad("?by=bytes"), (400, "by: expected connections, hellos or drops, not \"bytes\"".into()));
    assert_eq!(bad("?limit=1000"), (400, "limit: expected a number from 1 to 128, not \"1000\"".into()));
    assert_eq!(bad("?by=drops&order=asc"), (400, "order: unknown query field (expected by or limit)".into()));
    assert_eq!(call("GET", &format!("{}/v1/top", gw.url), None, None).0, 401);

    // The command: the table once, the JSON once, the same refusals.
    let out = top_cli(&gw.url, &token, &["--once", "--limit", "3"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["ADDRESS", "CONNECTIONS", "±", "RATE/s"]);
    let firsts: Vec<(&str, &str, &str)> = lines[1..].iter().map(|l| (l[0], l[1], l[2])).collect();
    assert_eq!(firsts, [("10.9.0.1", "300", "0"), ("10.9.0.2", "200", "0"), ("2001:db8:1:2::/64", "100", "0")]);
    let out = top_cli(&gw.url, &token, &["--json", "--by", "drops"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(rows(&json(&String::from_utf8_lossy(&out.stdout))), vec![("10.9.0.2".into(), 200, 0)]);
    let out = top_cli(&gw.url, &token, &["--once", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "HTTP 400: limit: expected a number from 1 to 128, not \"0\"\n");
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "nope").unwrap();
    let out = top_cli(&gw.url, &wrong, &["--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "HTTP 401: unauthorized\n");

    let (code, _) = gw.stop();
    assert_eq!(code, Some(0));
}

/// `dataplane gen --storm` (two storm sources, one of them a rotating IPv6 /64, among three
/// normal ones) replayed once: the ranking by connections is gen's own summary, in its order.
#[test]
fn a_generated_storm_is_ranked_as_gen_counted_it() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("storm.pcap");
    let out = Command::new(dataplane_bin())
        .args(["gen", "--out"])
        .arg(&traffic)
        .args(["--storm", "--storm-sources", "2", "--storm-ipv6", "1", "--storm-rate", "50"])
        .args(["--storm-connection", "tls", "--normal-sources", "3", "--normal-rate", "2", "--seconds", "3", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&String::from_utf8_lossy(&out.stdout));
    let expected: Vec<(String, u64, u64)> = summary["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["source"].as_str().unwrap().to_string(), s["connections"].as_u64().unwrap(), 0))
        .collect();
    assert_eq!(expected[0], ("198.18.0.1".to_string(), 150, 0));
    assert_eq!(expected[1], ("2001:db8:5:2::/64".to_string(), 150, 0));
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let gw = Gateway::start(&config(dir.path(), "top-gen", &traffic, false, "token_file = \"token\""));
    let sent = summary["packets"].as_u64().unwrap();
    eventually(20, || {
        let s = json(&call("GET", &format!("{}/v1/status", gw.url), None, Some(TOKEN)).1);
        (s["workers"][0]["rx_packets"].as_u64() == Some(sent)).then_some(())
    });
    let ranked = eventually(10, || {
        let v = json(&call("GET", &format!("{}/v1/top?by=connections", gw.url), None, Some(TOKEN)).1);
        (rows(&v).iter().map(|r| r.1).sum::<u64>() == summary["connections"].as_u64().unwrap()).then_some(v)
    });
    assert_eq!(rows(&ranked), expected);
    let out = top_cli(&gw.url, &token, &["--once", "--limit", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let firsts: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split_whitespace().take(3).collect()).collect();
    assert_eq!(firsts, [["198.18.0.1", "150", "0"], ["2001:db8:5:2::/64", "150", "0"]]);

    // The live view: the screen cleared and the table redrawn, once a second.
    let mut live = Command::new(dataplane_bin())
        .args(["top", "--control", &gw.url, "--limit", "1", "--token-file"])
        .arg(&token)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = live.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Until a third screen starts, so the first two are whole (or the view is killed).
        while seen.windows(4).filter(|w| w == b"\x1b[2J").count() < 3 {
            match std::io::Read::read(&mut stdout, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    live.kill().unwrap();
    live.wait().unwrap();
    let screens = reader.join().unwrap();
    let frames: Vec<&str> = screens.split("\x1b[H\x1b[2J").filter(|f| !f.is_empty()).collect();
    assert!(frames.len() >= 2, "{screens:?}");
    for frame in &frames[..2] {
        let lines: Vec<&str> = frame.lines().collect();
        assert_eq!(lines[0], format!("{} by connections (every 1 s, Ctrl-C to quit)", gw.url));
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["ADDRESS", "CONNECTIONS", "±", "RATE/s"]);
        assert_eq!(lines[2].split_whitespace().take(3).collect::<Vec<_>>(), ["198.18.0.1", "150", "0"]);
    }
}
