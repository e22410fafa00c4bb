//! `dataplane run` in the gateway namespace, between the other two: its two ports on the
//! gateway's ends of the veths, through `net_af_packet` or `net_af_xdp`, without hugepages,
//! the control API on a free port of the gateway namespace's loopback (reached with curl in
//! that namespace).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use dataplane_tests::dataplane_bin;

use super::{Topology, CLIENT_PORT, SERVER_PORT};

/// The DPDK driver of the two ports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pmd {
    AfPacket,
    AfXdp,
}

impl Pmd {
    fn driver(self) -> &'static str {
        match self {
            Pmd::AfPacket => "net_af_packet",
            Pmd::AfXdp => "net_af_xdp",
        }
    }
}

/// Writes the config (and `rules`, the initial rule documents) into `dir`.
pub fn config(dir: &Path, topo: &Topology, pmd: Pmd, rules: &str) -> PathBuf {
    let rules_dir = dir.join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    if !rules.is_empty() {
        std::fs::write(rules_dir.join("rules.yaml"), rules).unwrap();
    }
    let d = pmd.driver();
    let (c, s) = (format!("{d}0"), format!("{d}1"));
    let text = format!(
        r#"eal = ["--no-huge", "--no-shconf", "--no-pci", "--file-prefix", "{prefix}", "-m", "256", "--lcores", "0@0,1@1", "--vdev", "{c},iface={cif}", "--vdev", "{s},iface={sif}", "--log-level", "lib.eal:warning", "--no-telemetry"]
stats_period = 0
rules = ["rules"]
[mempool]
size = 8191
[control]
listen = "127.0.0.1:0"
[[ports]]
device = "{c}"
[[ports]]
device = "{s}"
[forward]
{c} = "{s}"
{s} = "{c}"
[[workers]]
lcore = 1
rx = [{{ port = "{c}" }}, {{ port = "{s}" }}]
"#,
        prefix = topo.gateway.name,
        cif = CLIENT_PORT,
        sif = SERVER_PORT,
    );
    let path = dir.join("dataplane.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A line the dataplane printed, and where.
#[derive(Debug, Clone)]
pub enum Line {
    Out(String),
    Err(String),
}

/// A running dataplane; killed on Drop.
pub struct NetGateway {
    child: Child,
    namespace: String,
    pub url: String,
    lines: Receiver<Line>,
    /// Every line read so far.
    pub seen: Vec<Line>,
}

/// How a start ended without an API: the exit code and every line printed.
#[derive(Debug)]
pub struct StartFailure {
    pub exit: Option<i32>,
    pub lines: Vec<Line>,
}

impl StartFailure {
    pub fn text(&self) -> String {
        text(&self.lines)
    }
}

pub fn text(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| match l {
            Line::Out(s) => format!("out: {s}\n"),
            Line::Err(s) => format!("err: {s}\n"),
        })
        .collect()
}

fn forward<R: Read + Send + 'static>(from: R, tx: Sender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}

impl NetGateway {
    /// Starts `dataplane run` and waits for its control API line (printed once the ports
    /// are started and the workers run), at most 90 s. Err when it exits before.
    pub fn start(topo: &Topology, config: &Path) -> Result<NetGateway, StartFailure> {
        let mut child = topo
            .gateway
            .command(&dataplane_bin().display().to_string())
            .args(["run", "--config"])
            .arg(config)
            .args(["--duration", "600"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = channel();
        forward(child.stdout.take().unwrap(), tx.clone(), Line::Out);
        forward(child.stderr.take().unwrap(), tx, Line::Err);
        let mut gw =
            NetGateway { child, namespace: topo.gateway.name.clone(), url: String::new(), lines: rx, seen: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            match gw.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Line::Out(s) = &line {
                        if let Some(url) = s.strip_prefix("control API listening on ") {
                            gw.url = url.to_string();
                        }
                    }
                    gw.seen.push(line);
                    if !gw.url.is_empty() {
                        return Ok(gw);
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = gw.child.try_wait() {
                        // The output threads end with the process: read what is left.
                        gw.seen.extend(gw.lines.iter());
                        return Err(StartFailure { exit: status.code(), lines: std::mem::take(&mut gw.seen) });
                    }
                }
            }
        }
        panic!("no control API line within 90 s:\n{}", text(&gw.seen));
    }

    /// `METHOD path` on the control API, with `body` if any: (HTTP status, body).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace, "curl"]);
        cmd.args(["-sS", "--max-time", "60", "-X", method, "-w", "\n%{http_code}"]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/yaml", "--data-binary", b]);
        }
        let out = cmd.arg(format!("{}{path}", self.url)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "curl {method} {path}: {}", String::from_utf8_lossy(&out.stderr));
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// SIGTERM, then the exit code (at most 60 s later) and every line printed.
    pub fn stop(mut self) -> (Option<i32>, Vec<Line>) {
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the dataplane did not exit within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        // The output threads end at EOF, once the process has exited.
        let rest: Vec<Line> = self.lines.iter().collect();
        let mut all = std::mem::take(&mut self.seen);
        all.extend(rest);
        (status.code(), all)
    }
}

impl Drop for NetGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
