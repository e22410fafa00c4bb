//! What the end-to-end tests share above the namespaces: the servers, certificate and
//! namespaces of one test ([`Bench`]), a clean stop, and readers of the dataplane's stats
//! line and metrics.

use std::io::Write;

use super::gateway::{config, text, Line, NetGateway, Pmd};
use super::tools::{curl, Fetch, Pki, Servers};
use super::{skip_reason, Topology};

/// Printed past the test harness's capture, so a skip is seen in every run.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "{test}: SKIPPED: {why}");
}

/// Everything but the dataplane; torn down on Drop in reverse order of making.
pub struct Bench {
    _servers: Servers,
    pub pki: Pki,
    pub topo: Topology,
    pub dir: tempfile::TempDir,
}

impl Bench {
    pub fn new(test: &str, tag: &str) -> Option<Bench> {
        if let Some(why) = skip_reason() {
            skip(test, &why);
            return None;
        }
        let topo = match Topology::create(tag) {
            Ok(t) => t,
            Err(why) => {
                skip(test, &why);
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path());
        let servers = Servers::start(&topo, dir.path(), &pki);
        Some(Bench { _servers: servers, pki, topo, dir })
    }

    pub fn gateway(&self, pmd: Pmd, rules: &str) -> NetGateway {
        let cfg = config(self.dir.path(), &self.topo, pmd, rules);
        NetGateway::start(&self.topo, &cfg)
            .unwrap_or_else(|f| panic!("the dataplane exited with {:?}:\n{}", f.exit, f.text()))
    }

    pub fn https(&self, name: &str, max_s: u32) -> Fetch {
        curl(&self.topo, &format!("https://{name}/"), &self.pki, max_s)
    }

    pub fn http(&self, host: &str, max_s: u32) -> Fetch {
        curl(&self.topo, &format!("http://{host}/"), &self.pki, max_s)
    }
}

pub const ALLOWED_TIMEOUT_S: u32 = 30;
/// How long a client waits for what the dataplane cuts: well past a retransmission or two.
pub const BLOCKED_TIMEOUT_S: u32 = 5;

/// A TLS connection whose ClientHello was dropped: the TCP handshake completed, the TLS one
/// did not, nothing came back.
pub fn assert_cut_after_connect(f: &Fetch, what: &str) {
    assert_eq!(f.exit, 28, "{what}: curl should time out waiting for the TLS handshake: {f:?}");
    assert!(f.connected, "{what}: the TCP connection should open (only the hello is cut): {f:?}");
    assert_eq!((f.tls_done, f.status.as_str(), f.body.as_str()), (false, "000", ""), "{what}: {f:?}");
}

/// A connection the dataplane cuts from its first packet: no TCP connection at all. Over
/// IPv4 curl times out (28). Over IPv6 the blocked address's neighbour advertisements are
/// dropped too (their source is that address), so the client's stack gives up first with
/// "no route to host" (7).
pub fn assert_cut_before_connect(f: &Fetch, exit: i32, what: &str) {
    assert_eq!(f.exit, exit, "{what}: curl should fail to connect: {f:?}");
    assert_eq!((f.connected, f.status.as_str(), f.body.as_str()), (false, "000", ""), "{what}: {f:?}");
}

/// SIGTERM: exit 0 and no mbuf in use. Returns the worker's final stats line.
pub fn stop_clean(gw: NetGateway) -> String {
    let (code, lines) = gw.stop();
    let all = text(&lines);
    assert_eq!(code, Some(0), "the dataplane should exit 0 on SIGTERM:\n{all}");
    assert!(
        // The count may be followed by what it leaves out, e.g. "beyond the 4096 the af_xdp
        // driver keeps in its fill rings".
        lines.iter().any(|l| matches!(l, Line::Out(s) if s == "mbufs in use: 0" || s.starts_with("mbufs in use: 0 "))),
        "no `mbufs in use: 0` line:\n{all}"
    );
    lines
        .iter()
        .find_map(|l| match l {
            Line::Out(s) if s.trim_start().starts_with("worker 0 ") => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no final worker stats:\n{all}"))
}

/// The number after `key`, first met after the word `group` ("" for the line's start), in a
/// stats line: `rx 42  tx 42  drops policy 0 ... tls pending 0 decided 0 ...`.
pub fn stat(line: &str, group: &str, key: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = if group.is_empty() { 0 } else { words.iter().position(|w| *w == group).unwrap_or(words.len()) };
    let at = words.iter().skip(from).position(|w| *w == key).unwrap_or_else(|| panic!("{group} {key} in {line}"));
    words[from + at + 1].parse().unwrap()
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Packets the rule named `rule` decided, from the Prometheus text.
pub fn rule_packets(gw: &NetGateway, rule: &str) -> u64 {
    let (code, body) = gw.api("GET", "/metrics", None);
    assert_eq!(code, 200);
    let prefix = format!("dataplane_rule_packets_total{{rule=\"{rule}\"");
    body.lines().filter(|l| l.starts_with(&prefix)).map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum()
}

/// libbpf's words when the kernel will not load the XDP program AF_XDP needs (no CAP_BPF,
/// a locked-down or sandboxed kernel).
pub fn xdp_refused(text: &str) -> bool {
    text.contains("BPF program load failed: Operation not permitted")
        || text.contains("libxdp: Compatibility check for dispatcher program failed: Operation not permitted")
}

/// [`rule_packets`] once it reaches `want` (the control thread copies the counters into the
/// metrics a few times a second): polled for at most 5 s, then whatever it is.
pub fn rule_packets_when(gw: &NetGateway, rule: &str, want: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let n = rule_packets(gw, rule);
        if n == want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
