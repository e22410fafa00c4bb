//! `dataplane sync` (the real binary) against small fake gateways that speak the control API's
//! contract (`GET`/`PUT /v1/rules`, bearer token, `{"generation","digest"}`), validating each
//! pushed set with the dataplane's own parser. The fakes let these tests restart a gateway,
//! refuse a token or change a set by hand at exactly the moment wanted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

#[derive(Default)]
struct FakeState {
    generation: u64,
    digest: String,
    puts: u32,
}

struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The digest a real gateway reports: of the canonical form of the set.
fn digest_of(body: &str) -> Result<String, String> {
    let set = dataplane::policy::rule_set_from_str(body, "api").map_err(|e| e.to_string())?;
    Ok(dataplane::control::canonical::digest(&set))
}

impl Fake {
    fn start(addr: &str) -> Fake {
        Fake::start_with(addr, None)
    }

    /// `tls`: serve HTTPS with this certificate and key (DER).
    fn start_with(addr: &str, tls: Option<(Vec<u8>, Vec<u8>)>) -> Fake {
        let tls = tls.map(|(cert, key)| {
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![rustls::pki_types::CertificateDer::from(cert)],
                        rustls::pki_types::PrivateKeyDer::try_from(key).unwrap(),
                    )
                    .unwrap();
            Arc::new(config)
        });
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(FakeState { digest: digest_of("[]").unwrap(), ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                match &tls {
                    None => {
                        let _ = serve(conn, &st);
                    }
                    Some(config) => {
                        let Ok(server) = rustls::ServerConnection::new(config.clone()) else { continue };
                        let _ = serve(rustls::StreamOwned::new(server, conn), &st);
                    }
                }
            }
        });
        Fake { addr, state, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    fn digest(&self) -> String {
        self.state.lock().unwrap().digest.clone()
    }

    fn stop(mut self) -> SocketAddr {
        self.shutdown();
        self.addr
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(conn: impl Read + Write, state: &Mutex<FakeState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut length, mut auth) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => auth = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let (status, answer) = if auth != format!("Bearer {TOKEN}") {
        (401, r#"{"error":"unauthorized"}"#.to_string())
    } else if path != "/v1/rules" {
        (404, r#"{"error":"not found"}"#.to_string())
    } else if method == "GET" {
        let s = state.lock().unwrap();
        (200, format!(r#"{{"generation":{},"digest":"{}","rules":[]}}"#, s.generation, s.digest))
    } else if method == "PUT" {
        match digest_of(&body) {
            Ok(d) => {
                let mut s = state.lock().unwrap();
                s.generation += 1;
                s.digest = d;
                s.puts += 1;
                (200, format!(r#"{{"generation":{},"digest":"{}","rules":1}}"#, s.generation, s.digest))
            }
            Err(e) => (422, serde_json::json!({"errors": [{"rule": "", "field": "", "message": e}]}).to_string()),
        }
    } else {
        (405, "{}".to_string())
    };
    let conn = reader.get_mut();
    write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    conn.flush()
}

/// A sync process with its output as channels of lines.
struct Sync {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Wait for a line matching `pred` (the timeout is a safety net against a hung test, not a
/// measurement). Returns every line seen up to and including it.
fn wait_for(rx: &Receiver<String>, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => {
                let hit = pred(&l);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Err(e) => panic!("no matching line ({e}); saw {seen:#?}"),
        }
    }
}

fn rules_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("a.yaml"),
        dataplane_tests::rule_yaml("block-x", "  cidrBlocks: [192.168.211.0/24]\n  action: DROP\n  reason: x\n"),
    )
    .unwrap();
    std::fs::write(
        rules.join("b.json"),
        r#"[{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"allow-web"},"spec":{"ports":[{"port":443}],"action":"ALLOW"}}]"#,
    )
    .unwrap();
    rules
}

fn desired_digest() -> String {
    let docs = dataplane_tests::rule_yaml("block-x", "  cidrBlocks: [192.168.211.0/24]\n  action: DROP\n  reason: x\n")
        + &dataplane_tests::rule_yaml("allow-web", "  ports: [{port: 443}]\n  action: ALLOW\n");
    digest_of(&docs).unwrap()
}

fn sync(dir: &std::path::Path, gateways: &[String], extra: &[&str]) -> Sync {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut cmd = Command::new(dataplane_tests::dataplane_bin());
    cmd.arg("sync").arg("--rules").arg(dir.join("rules")).arg("--token-file").arg(&token);
    for g in gateways {
        cmd.args(["--gateway", g]);
    }
    cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (out, err) = (lines(child.stdout.take().unwrap()), lines(child.stderr.take().unwrap()));
    Sync { child, out, err }
}

#[test]
fn once_pushes_to_every_gateway_and_they_report_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    rules_dir(dir.path());
    let (a, b) = (Fake::start("127.0.0.1:0"), Fake::start("127.0.0.1:0"));
    let mut s = sync(dir.path(), &[a.url(), b.url()], &["--once"]);
    assert!(s.child.wait().unwrap().success());
    let out: Vec<String> = s.out.iter().collect();
    let want = desired_digest();
    let mut pushed: Vec<&String> = out.iter().filter(|l| l.starts_with("pushed ")).collect();
    pushed.sort();
    let mut expect = [a.url(), b.url()].map(|u| format!("pushed {u}: 2 rules, generation 1 digest {want}"));
    expect.sort();
    assert_eq!(pushed, expect.iter().collect::<Vec<_>>());
    assert_eq!(out.last().unwrap(), &format!("converged: 2 gateways at {want}"));
    assert_eq!((a.digest(), b.digest()), (want.clone(), want.clone()));

    // A fresh sync computes the digest locally: gateways already running the set are left
    // alone (no push, same generation).
    let mut s = sync(dir.path(), &[a.url(), b.url()], &["--once"]);
    assert!(s.child.wait().unwrap().success());
    let out: Vec<String> = s.out.iter().collect();
    assert!(!out.iter().any(|l| l.starts_with("pushed ")), "{out:?}");
    assert!(out.iter().any(|l| l.starts_with(&format!("in-sync {}: generation 1 digest {want}", a.url()))), "{out:?}");
    assert_eq!(a.state.lock().unwrap().generation, 1);
}

#[test]
fn a_gateway_down_at_first_converges_when_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    rules_dir(dir.path());
    let a = Fake::start("127.0.0.1:0");
    let b_addr = Fake::start("127.0.0.1:0").stop();
    let b_url = format!("http://{b_addr}");
    let mut s = sync(dir.path(), &[a.url(), b_url.clone()], &["--once", "--interval", "0.5", "--retries", "1000"]);
    wait_for(&s.err, |l| l.starts_with(&format!("unreachable {b_url}: GET /v1/rules: ")));
    let b = Fake::start(&b_addr.to_string());
    assert!(s.child.wait().unwrap().success());
    let want = desired_digest();
    assert_eq!((a.digest(), b.digest()), (want.clone(), want.clone()));
    let out: Vec<String> = s.out.iter().collect();
    assert_eq!(out.last().unwrap(), &format!("converged: 2 gateways at {want}"));
}

#[test]
fn drift_is_reported_and_put_back() {
    let dir = tempfile::tempdir().unwrap();
    rules_dir(dir.path());
    let (a, b) = (Fake::start("127.0.0.1:0"), Fake::start("127.0.0.1:0"));
    let s = sync(dir.path(), &[a.url(), b.url()], &["--interval", "0.2"]);
    let want = desired_digest();
    wait_for(&s.out, |l| l == format!("converged: 2 gateways at {want}"));
    let generation = a.state.lock().unwrap().generation;

    // Someone changes gateway a by hand.
    let by_hand = dataplane_tests::rule_yaml("other", "  action: DROP\n");
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let resp = agent
        .put(format!("{}/v1/rules", a.url()))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send(&by_hand)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let other = digest_of(&by_hand).unwrap();
    let seen = wait_for(&s.out, |l| l == format!("converged: 2 gateways at {want}"));
    let drift = format!(
        "drift {}: runs {other} (generation {}), desired {want} (was generation {generation})",
        a.url(),
        generation + 1
    );
    assert!(seen.contains(&drift), "{seen:#?}");
    assert!(
        seen.contains(&format!("pushed {}: 2 rules, generation {} digest {want}", a.url(), generation + 2)),
        "{seen:#?}"
    );
    assert_eq!(a.digest(), want);
    // b was never touched again.
    assert_eq!(b.state.lock().unwrap().puts, 1);

    // A change of the directory (a commit) is pushed everywhere.
    std::fs::write(
        dir.path().join("rules/c.yaml"),
        dataplane_tests::rule_yaml("late", "  priority: 5\n  action: DROP\n"),
    )
    .unwrap();
    let seen = wait_for(&s.out, |l| l.starts_with("converged: 2 gateways at ") && !l.ends_with(&want));
    assert!(seen.contains(&format!("desired: 3 rules changed in {}", dir.path().join("rules").display())), "{seen:#?}");
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), want);
}

#[test]
fn a_refused_token_does_not_converge_and_once_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    rules_dir(dir.path());
    let a = Fake::start("127.0.0.1:0");
    let token = dir.path().join("bad-token");
    std::fs::write(&token, "wrong").unwrap();
    let out = Command::new(dataplane_tests::dataplane_bin())
        .arg("sync")
        .arg("--rules")
        .arg(dir.path().join("rules"))
        .args(["--gateway", &a.url(), "--once", "--interval", "0.1", "--retries", "2", "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let url = a.url();
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!("failed {url}: GET /v1/rules: HTTP 401: {{\"error\":\"unauthorized\"}}; attempt 1, retry in 0.1s"),
            format!("failed {url}: GET /v1/rules: HTTP 401: {{\"error\":\"unauthorized\"}}; attempt 2, retry in 0.1s"),
            format!("not converged: {url} (2 failed attempts)"),
        ]
    );
    assert_eq!(a.state.lock().unwrap().puts, 0);
}

#[test]
fn an_invalid_checkout_is_never_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    std::fs::write(
        rules.join("bad.yaml"),
        dataplane_tests::rule_yaml("bad", "  cidrBlocks: [10.0.0.1/8]\n  action: DROP\n"),
    )
    .unwrap();
    let a = Fake::start("127.0.0.1:0");
    let out = Command::new(dataplane_tests::dataplane_bin())
        .arg("sync")
        .arg("--rules")
        .arg(&rules)
        .args(["--gateway", &a.url(), "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "sync: --rules: {}: bad: spec.cidrBlocks[0]: host bits set in 10.0.0.1/8 (did you mean 10.0.0.0/8?)\n",
            rules.join("bad.yaml").display()
        )
    );
    assert_eq!(a.state.lock().unwrap().puts, 0);
}

#[test]
fn https_gateways_are_trusted_through_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    rules_dir(dir.path());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).unwrap();
    let a = Fake::start_with("127.0.0.1:0", Some((ck.cert.der().to_vec(), ck.signing_key.serialize_der())));
    let ca_arg = ca.display().to_string();
    let mut s = sync(dir.path(), &[a.https_url()], &["--once", "--ca-file", &ca_arg]);
    assert!(s.child.wait().unwrap().success());
    assert_eq!(a.digest(), desired_digest());
    drop(s);

    // Without the CA the certificate is not trusted: no push, exit 1.
    let before = a.state.lock().unwrap().puts;
    let mut s = sync(dir.path(), &[a.https_url()], &["--once", "--interval", "0.1", "--retries", "1"]);
    assert_eq!(s.child.wait().unwrap().code(), Some(1));
    let err: Vec<String> = s.err.iter().collect();
    assert!(err[0].starts_with(&format!("unreachable {}: GET /v1/rules: ", a.https_url())), "{err:?}");
    assert_eq!(a.state.lock().unwrap().puts, before);
}
