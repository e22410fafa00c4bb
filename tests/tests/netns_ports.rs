//! `dataplane run` with AF_PACKET and AF_XDP ports on the host ends of two veth pairs, whose
//! other ends are in two network namespaces joined only by the dataplane; real TCP
//! connections (Python's sockets) between them.
//!
//! - Several workers on one interface: both directions of every connection reach one worker
//!   (the software distributor), counted from the final per-worker stats; the RSS config that
//!   would let AF_PACKET's fanout split connections is refused.
//! - An AF_XDP run stops cleanly: exit 0, and the mbuf count is exact.
//!
//! Runs as root with `ip`, `ethtool` and `python3`; otherwise each test prints why it skips.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane_tests::dataplane_bin;
use dataplane_tests::netns::{skip_reason, Netns, Veth};

const CLIENT_V4: &str = "10.78.0.1";
const SERVER_V4: &str = "10.78.0.2";
const ECHO_PORT: &str = "5001";

/// The client namespace (`a`, with `veth_a`) and the server namespace (`b`); the dataplane
/// forwards between `veth_a.host` and `veth_b.host`.
struct Topology {
    // Veths before namespaces: dropped first.
    veth_a: Veth,
    veth_b: Veth,
    a: Netns,
    b: Netns,
}

/// Two namespaces and veths named after `test` (a letter) and the process id, or None (with
/// the reason printed) where this machine cannot make them.
fn topology(test: char) -> Option<Topology> {
    if let Some(why) = skip_reason(&["python3"]) {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let tag = format!("pw{}{test}", std::process::id() % 100_000);
    let made = (|| -> Result<Topology, String> {
        let a = Netns::create(&format!("{tag}a"))?;
        let b = Netns::create(&format!("{tag}b"))?;
        let veth_a = Veth::create(&format!("{tag}ha"), &format!("{tag}pa"), &a, &format!("{CLIENT_V4}/24"))?;
        let veth_b = Veth::create(&format!("{tag}hb"), &format!("{tag}pb"), &b, &format!("{SERVER_V4}/24"))?;
        // What else crosses (ARP, IPv6 neighbour discovery) is not TCP or UDP: no flow.
        Ok(Topology { veth_a, veth_b, a, b })
    })();
    match made {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("SKIPPED: cannot make network namespaces and veth pairs here: {e}");
            None
        }
    }
}

/// The first two CPUs this process may run on (the same one twice on a one-CPU machine).
fn two_cpus() -> (u32, u32) {
    let list = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Cpus_allowed_list:")).map(|l| l[18..].trim().to_owned()))
        .unwrap_or_default();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let mut ends = part.split('-').filter_map(|n| n.trim().parse::<u32>().ok());
        if let Some(first) = ends.next() {
            cpus.extend(first..=ends.next().unwrap_or(first));
        }
    }
    let first = cpus.first().copied().unwrap_or(0);
    (first, cpus.get(1).copied().unwrap_or(first))
}

/// The config: the two veth host ends as ports of `driver` (`net_af_packet` with `qpairs`,
/// `net_af_xdp` with `queue_count`), `top` (top-level keys: distribution), then `workers`.
fn config(t: &Topology, prefix: &str, driver: &str, queues: u16, lcores: &str, top: &str, workers: &str) -> String {
    let count_arg = if driver == "net_af_packet" { "qpairs" } else { "queue_count" };
    let (pa, pb) = (format!("{driver}0"), format!("{driver}1"));
    format!(
        r#"eal = ["--no-huge", "--no-shconf", "--no-pci", "--file-prefix", "{prefix}-{pid}", "-m", "512", "--lcores", "{lcores}", "--vdev", "{pa},iface={ia},{count_arg}={queues}", "--vdev", "{pb},iface={ib},{count_arg}={queues}", "--log-level", "lib.eal:warning", "--no-telemetry"]
rules = []
stats_period = 0
{top}
[mempool]
size = 16383
[[ports]]
device = "{pa}"
rx_queues = {queues}
tx_queues = {queues}
[[ports]]
device = "{pb}"
rx_queues = {queues}
tx_queues = {queues}
[forward]
{pa} = "{pb}"
{pb} = "{pa}"
{workers}"#,
        pid = std::process::id(),
        ia = t.veth_a.host,
        ib = t.veth_b.host,
    )
}

/// A process killed (SIGKILL) on Drop unless it was waited for.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP echo server on ECHO_PORT in `ns`, running once it said so.
fn echo_server(ns: &Netns) -> Guard {
    const SERVER: &str = r#"
import socket, sys, threading
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=512)
print("listening", flush=True)
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
    let mut child = ns
        .command("python3")
        .args(["-c", SERVER, ECHO_PORT])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the echo server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("server stdout")).read_line(&mut line).expect("server output");
    assert_eq!(line.trim(), "listening");
    Guard(Some(child))
}

/// `connections` TCP connections from `ns` to the echo server, `parallel` at a time, each
/// sending 8 x 4 KB and reading every byte back; returns how many got all their bytes back.
fn echo_clients(ns: &Netns, connections: usize, parallel: usize) -> usize {
    const CLIENT: &str = r#"
import socket, sys, threading
host, port, n, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ok = []
gate = threading.Semaphore(par)
def one(i):
    with gate:
        try:
            s = socket.create_connection((host, port), timeout=30)
            msg = bytes([i % 256]) * 4096
            for _ in range(8):
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(65536)
                    if not chunk:
                        raise EOFError("closed early")
                    got += chunk
                if got != msg:
                    raise ValueError("echo differs")
            s.close()
            ok.append(i)
        except Exception as e:
            print("connection", i, "failed:", e, file=sys.stderr)
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(len(ok))
"#;
    let out = ns
        .command("python3")
        .args(["-c", CLIENT, SERVER_V4, ECHO_PORT, &connections.to_string(), &parallel.to_string()])
        .output()
        .expect("running the clients");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("the clients' count")
}

/// `dataplane run`, its stdout read by a thread; killed on Drop unless stopped.
struct Dataplane {
    child: Guard,
    started: Receiver<()>,
    stdout: Option<JoinHandle<String>>,
}

impl Dataplane {
    fn start(dir: &Path, text: &str) -> Dataplane {
        let path = dir.join("dataplane.toml");
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new(dataplane_bin())
            .args(["run", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting dataplane run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, started) = channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("running:") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Dataplane { child: Guard(Some(child)), started, stdout: Some(reader) }
    }

    /// Waits for "running:"; the process's output if it ended first or took over 60 s.
    fn running(self) -> Result<Dataplane, Output> {
        match self.started.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => Ok(self),
            Err(_) => Err(self.stop()),
        }
    }

    /// SIGTERM, then the exit status, stdout and stderr.
    fn stop(mut self) -> Output {
        let mut child = self.child.0.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let status = child.wait().expect("dataplane exit status");
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        eprintln!("--- dataplane stdout\n{stdout}--- dataplane stderr\n{stderr}");
        Output { status, stdout: stdout.into_bytes(), stderr: stderr.into_bytes() }
    }
}

/// The number after `key` on a stats line (`... created 7 ...`).
fn field(line: &str, key: &str) -> u64 {
    let mut words = line.split_whitespace();
    words.by_ref().find(|w| *w == key).unwrap_or_else(|| panic!("no {key:?} in {line:?}"));
    words.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
}

/// The final stats line of each worker.
fn worker_lines(stdout: &str) -> Vec<&str> {
    let finals = stdout.split("final stats").nth(1).expect("final stats");
    finals.lines().filter(|l| l.trim_start().starts_with("worker ")).collect()
}

/// Two workers behind the software distributor on two AF_PACKET ports with two queue pairs
/// each: every one of 64 echo connections is created as a flow on exactly one worker (the
/// flows created add up to the connections, and no worker picked one up mid-stream, which a
/// reply reaching the other worker would be), both workers get some, and every byte comes
/// back.
#[test]
fn software_distribution_keeps_each_connection_on_one_worker() {
    let Some(t) = topology('s') else { return };
    let dir = tempfile::tempdir().unwrap();
    let (c0, c1) = two_cpus();
    let top = "distribution = \"software\"\ndistributor_lcore = 3";
    let workers = "[[workers]]\nlcore = 1\n[[workers]]\nlcore = 2\n";
    let text = config(&t, "pws", "net_af_packet", 2, &format!("0@{c0},1@{c1},2@{c1},3@{c0}"), top, workers);
    let _server = echo_server(&t.b);
    let dp = Dataplane::start(dir.path(), &text)
        .running()
        .unwrap_or_else(|o| panic!("the dataplane did not start: {}", String::from_utf8_lossy(&o.stderr)));
    const CONNECTIONS: usize = 64;
    let echoed = echo_clients(&t.a, CONNECTIONS, 8);
    let out = dp.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(echoed, CONNECTIONS, "connections that got every byte back");
    let workers = worker_lines(&stdout);
    assert_eq!(workers.len(), 2, "{stdout}");
    let created: Vec<u64> = workers.iter().map(|l| field(l, "created")).collect();
    let midstream: Vec<u64> = workers.iter().map(|l| field(l, "midstream")).collect();
    assert_eq!(created.iter().sum::<u64>(), CONNECTIONS as u64, "flows created per worker: {created:?}");
    assert_eq!(midstream, [0, 0], "mid-stream pickups per worker");
    assert!(created.iter().all(|&c| c > 0), "both workers get connections: {created:?}");
    assert!(stdout.lines().any(|l| l == "mbufs in use: 0"), "{stdout}");
}

/// RSS distribution with two workers each polling one queue of both AF_PACKET ports: the
/// driver's fanout (with rollover) would split connections, so the run is refused before
/// any port starts, naming the key.
#[test]
fn af_packet_queues_split_between_rss_workers_are_refused() {
    let Some(t) = topology('r') else { return };
    let dir = tempfile::tempdir().unwrap();
    let (c0, c1) = two_cpus();
    let rest = "[[workers]]\nlcore = 1\nrx = [{ port = \"net_af_packet0\", queue = 0 }, { port = \"net_af_packet1\", queue = 0 }]\n\
                [[workers]]\nlcore = 2\nrx = [{ port = \"net_af_packet0\", queue = 1 }, { port = \"net_af_packet1\", queue = 1 }]\n";
    let text = config(&t, "pwr", "net_af_packet", 2, &format!("0@{c0},1@{c1},2@{c1}"), "", rest);
    let path = dir.path().join("dataplane.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(dataplane_bin()).args(["run", "--duration", "1", "--config"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config error: ports[0].rx_queues: 2 RX queues of net_af_packet0 (driver net_af_packet) polled by 2 workers"),
        "{stderr}"
    );
    assert!(stderr.contains("distribution = \"software\""), "{stderr}");
}

/// One worker on two AF_XDP ports: connections are echoed, and SIGTERM ends the run with exit
/// 0 and an exact count: nothing in use beyond the 2048 mbufs per port the driver keeps in its
/// fill ring (measured at setup). Skips, saying why, where the kernel refuses AF_XDP sockets.
#[test]
fn af_xdp_run_stops_with_an_exact_mbuf_count() {
    let Some(t) = topology('x') else { return };
    let dir = tempfile::tempdir().unwrap();
    let (c0, c1) = two_cpus();
    let rest = "[[workers]]\nlcore = 1\nrx = [{ port = \"net_af_xdp0\" }, { port = \"net_af_xdp1\" }]\n";
    let text = config(&t, "pwx", "net_af_xdp", 1, &format!("0@{c0},1@{c1}"), "", rest);
    let _server = echo_server(&t.b);
    let dp = match Dataplane::start(dir.path(), &text).running() {
        Ok(dp) => dp,
        Err(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The driver's own words when the kernel refuses the socket or the interface.
            if stderr.contains("Failed to create xsk socket") || stderr.contains("failed to initialize net_af_xdp") {
                eprintln!("SKIPPED: this kernel refuses AF_XDP sockets on veth: {stderr}");
                return;
            }
            panic!("the dataplane did not start: {stderr}");
        }
    };
    let echoed = echo_clients(&t.a, 16, 4);
    let out = dp.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(echoed, 16, "connections that got every byte back");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.lines().any(|l| l == "mbufs in use: 0 beyond the 4096 the af_xdp driver keeps in its fill rings"),
        "{stdout}"
    );
    let workers = worker_lines(&stdout);
    assert_eq!(field(workers[0], "created"), 16, "{stdout}");
}
