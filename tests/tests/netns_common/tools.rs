//! The real clients and servers the tests drive: Python's threaded HTTP server (plain and
//! wrapped in `ssl`), a certificate from `openssl req`, curl, ping and `openssl s_client`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use super::{run, Topology, SERVER_V4};

/// What the servers serve at `/`: a client that got these bytes got them through the dataplane.
pub const PAGE: &str = "served through the dataplane\n";

/// The names the certificate holds; `--resolve` points each at the server.
pub const NAMES: [&str; 3] = ["allowed.test", "blocked.test", "shop.test"];

/// A self-signed certificate for [`NAMES`], made by `openssl req`.
pub struct Pki {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn create(dir: &Path) -> Pki {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let san = format!("subjectAltName={}", NAMES.map(|n| format!("DNS:{n}")).join(","));
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=allowed.test",
                "-addext",
                &san,
                "-keyout",
                &path(&key),
                "-out",
                &path(&cert),
            ],
        )
        .unwrap();
        Pki { cert, key }
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The server script: HTTP on port 80 and HTTPS on 443, both dual-stack and threaded. The
/// TLS handshake runs in the request's thread (not in accept), so a client whose hello the
/// dataplane dropped does not hold up the others; a stalled request ends after 20 s.
const SERVER_PY: &str = r#"
import http.server, socket, ssl, sys, threading
root, cert, key = sys.argv[1:4]
class Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 20
    def __init__(self, *a, **k): super().__init__(*a, directory=root, **k)
    def log_message(self, *a): pass
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    request_queue_size = 256
    daemon_threads = True
plain = Server(("::", 80), Handler)
tls = Server(("::", 443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
for s in (plain, tls): threading.Thread(target=s.serve_forever, daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"#;

/// The HTTP and HTTPS servers in the server namespace; killed on Drop.
pub struct Servers {
    child: Child,
}

impl Servers {
    /// Starts them and waits until both listen (the script says so once bound).
    pub fn start(topo: &Topology, dir: &Path, pki: &Pki) -> Servers {
        let root = dir.join("www");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), PAGE).unwrap();
        let script = dir.join("server.py");
        std::fs::write(&script, SERVER_PY).unwrap();
        let mut child = topo
            .in_server("python3")
            .arg(&script)
            .args([&root, &pki.cert, &pki.key])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let servers = Servers { child };
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("the servers did not start within 60 s");
        assert_eq!(line.trim(), "listening", "the server script failed (its stderr is above)");
        servers
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl did: its exit code, the HTTP status, whether the TCP connection opened and
/// the TLS handshake completed (from `-v`: curl leaves its timings at 0 when it gives up in
/// the handshake), the body.
#[derive(Debug)]
pub struct Fetch {
    pub exit: i32,
    pub status: String,
    pub connected: bool,
    pub tls_done: bool,
    pub body: String,
    pub stderr: String,
}

impl Fetch {
    /// The page came, complete.
    pub fn ok(&self) -> bool {
        self.exit == 0 && self.status == "200" && self.body == PAGE
    }
}

/// curl's command for `url` from the client namespace (with `--resolve` for the TLS names,
/// trusting `pki`), giving up after `max_s`.
pub fn curl_command(topo: &Topology, url: &str, pki: &Pki, max_s: u32) -> Command {
    let mut cmd = topo.in_client("curl");
    cmd.args(["-sS", "-v", "-g", "--max-time", &max_s.to_string(), "--cacert"]).arg(&pki.cert);
    for n in NAMES {
        cmd.args(["--resolve", &format!("{n}:443:{SERVER_V4}")]);
    }
    cmd.args(["-w", "\n%{http_code}", url]).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Reads a finished curl's output.
pub fn fetch_result(out: Output) -> Fetch {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Fetch {
        exit: out.status.code().unwrap_or(-1),
        status: status.trim().to_string(),
        connected: stderr.lines().any(|l| l.starts_with("* Connected to ")),
        tls_done: stderr.lines().any(|l| l.starts_with("* SSL connection using ")),
        body: body.to_string(),
        stderr,
    }
}

pub fn curl(topo: &Topology, url: &str, pki: &Pki, max_s: u32) -> Fetch {
    fetch_result(curl_command(topo, url, pki, max_s).output().unwrap())
}

/// `ping -c count -w deadline_s` from the client: the number of replies. Ping ends at the
/// count'th reply or at the deadline, whichever comes first.
pub fn ping(topo: &Topology, addr: &str, count: u32, deadline_s: u32) -> u32 {
    let out = topo
        .in_client("ping")
        .args(["-n", "-c", &count.to_string(), "-i", "0.2", "-w", &deadline_s.to_string(), addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "3 packets transmitted, 3 received, 0% packet loss, time 402ms"
    let received = text
        .lines()
        .find_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" received")).and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    assert_eq!(out.status.success(), received == count, "ping's exit code disagrees with its summary: {text}");
    // Shown with a failing test's output.
    eprintln!("ping {addr}: {text}");
    received
}

/// `openssl s_client` to the HTTPS server with `name` as SNI, verifying the certificate and
/// the name; at most `max_s` seconds. (completed handshake, output).
pub fn s_client(topo: &Topology, name: &str, pki: &Pki, max_s: u32) -> (bool, String) {
    let out = topo
        .in_client("timeout")
        .arg(max_s.to_string())
        .args(["openssl", "s_client", "-connect", &format!("{SERVER_V4}:443"), "-servername", name])
        .args(["-verify_hostname", name, "-verify_return_error", "-CAfile"])
        .arg(&pki.cert)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // With stdin at its end, s_client completes the handshake, prints the session and quits (0).
    let done = out.status.success() && text.contains("Verify return code: 0 (ok)");
    (done, text)
}
