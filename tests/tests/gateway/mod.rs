//! A real gateway for the control-plane tests: `dataplane run` on virtual devices (no
//! hugepages) with the control API on a free loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use dataplane::wire::build::tcp_v4;
use dataplane::wire::tcp_flags::{ACK, PSH, SYN};
use dataplane_tests::dataplane_bin;

/// Connections from 10.0.1.0/24 to 192.0.2.10:80, written to `path` (SYN, ACK, data each).
pub fn write_traffic(path: &Path, connections: u8) -> usize {
    let mut frames = Vec::new();
    for i in 0..connections {
        let client = [10, 0, 1, 10 + i];
        let port = 40000 + u16::from(i);
        frames.push(tcp_v4(client, [192, 0, 2, 10], port, 80, SYN, 100, &[]));
        frames.push(tcp_v4(client, [192, 0, 2, 10], port, 80, ACK, 101, &[]));
        frames.push(tcp_v4(client, [192, 0, 2, 10], port, 80, PSH | ACK, 101, b"GET / HTTP/1.1\r\n\r\n"));
    }
    let ts = |i: usize| Duration::from_micros(1_000_000 + i as u64 * 10);
    dataplane::pcap::write_all(path, frames.iter().enumerate().map(|(i, f)| (ts(i), f.as_slice()))).unwrap();
    frames.len()
}

/// The configuration of a gateway: `traffic` replayed forever (`infinite`) or once into
/// `out.pcap`, `extra` appended to the `[control]` section.
pub fn config(dir: &Path, prefix: &str, traffic: &Path, infinite: bool, extra: &str) -> PathBuf {
    let rx = if infinite {
        format!("net_pcap0,rx_pcap={},infinite_rx=1", traffic.display())
    } else {
        format!("net_pcap0,rx_pcap={}", traffic.display())
    };
    let empty = dir.join("empty.pcap");
    dataplane::pcap::write_all(&empty, std::iter::empty::<(Duration, &[u8])>()).unwrap();
    let tx = if infinite {
        "net_null0,no-rx=1".to_string()
    } else {
        format!("net_pcap1,rx_pcap={},tx_pcap={}", empty.display(), dir.join("out.pcap").display())
    };
    let tx_name = if infinite { "net_null0" } else { "net_pcap1" };
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let text = format!(
        r#"eal = ["--no-huge", "--no-shconf", "--no-pci", "--file-prefix", "{prefix}-{pid}", "-m", "256", "--lcores", "0@0,1@1", "--vdev", "{rx}", "--vdev", "{tx}", "--log-level", "lib.eal:warning", "--no-telemetry"]
stats_period = 0
rules = ["rules"]
[mempool]
size = 4095
[control]
listen = "127.0.0.1:0"
{extra}
[[ports]]
device = "net_pcap0"
[[ports]]
device = "{tx_name}"
[forward]
net_pcap0 = "{tx_name}"
{tx_name} = "net_pcap0"
[[workers]]
lcore = 1
rx = [{{ port = "net_pcap0" }}]
"#,
        pid = std::process::id()
    );
    let path = dir.join("dataplane.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running gateway: killed when dropped; its stdout lines arrive on `lines`.
pub struct Gateway {
    pub child: Child,
    pub url: String,
    pub lines: Receiver<String>,
    /// Stdout lines before the API line.
    pub head: Vec<String>,
}

impl Gateway {
    pub fn start(config: &Path) -> Gateway {
        let mut child = Command::new(dataplane_bin())
            .args(["run", "--config"])
            .arg(config)
            .args(["--duration", "120"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Killed by Drop if no API line comes.
        let mut gw = Gateway { child, url: String::new(), lines: rx, head: Vec::new() };
        loop {
            let line = gw.lines.recv_timeout(Duration::from_secs(60)).expect("no control API line");
            if let Some(url) = line.strip_prefix("control API listening on ") {
                gw.url = url.to_string();
                return gw;
            }
            gw.head.push(line);
        }
    }

    /// SIGTERM, then the exit code and the rest of stdout.
    pub fn stop(mut self) -> (Option<i32>, Vec<String>) {
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.try_iter().collect();
        (status.code(), rest)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

/// (status, body) of a request.
pub fn call(method: &str, url: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let a = agent();
    let with = |r: ureq::RequestBuilder<ureq::typestate::WithBody>| match token {
        Some(t) => r.header("Authorization", format!("Bearer {t}")),
        None => r,
    };
    let without = |r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| match token {
        Some(t) => r.header("Authorization", format!("Bearer {t}")),
        None => r,
    };
    let resp = match method {
        "GET" => without(a.get(url)).call(),
        "DELETE" => without(a.delete(url)).call(),
        "PUT" => with(a.put(url)).send(body.unwrap_or("")),
        "POST" => with(a.post(url)).send(body.unwrap_or("")),
        other => panic!("method {other}"),
    };
    let mut resp = resp.unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not reached within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
