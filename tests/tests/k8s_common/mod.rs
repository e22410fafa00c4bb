//! Shared by the Kubernetes-side tests: a self-signed certificate made at test time, an HTTPS
//! client that trusts it, and the real `dataplane webhook` process.
#![allow(dead_code)]

use dataplane_tests::dataplane_bin;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// A certificate for `localhost` and 127.0.0.1, written as PEM files into `dir`.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

pub fn make_cert(dir: &Path) -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    TestCert { cert, key, der: ck.cert.der().to_vec() }
}

/// An HTTPS client trusting only `der`; HTTP error statuses are answers, not errors.
pub fn agent(der: &[u8]) -> ureq::Agent {
    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![ureq::tls::Certificate::from_der(der).to_owned()]));
    ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `dataplane <args>` and wait for its `listening on <scheme>://ADDR` line; returns the
/// process and the base URL.
pub fn start_listening(args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(dataplane_bin()).args(args).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let proc = Proc(child);
    let line = lines.next().expect("the process printed nothing").unwrap();
    let url =
        line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (proc, url)
}

pub struct Webhook {
    pub proc: Proc,
    pub url: String,
    pub agent: ureq::Agent,
    pub cert_der: Vec<u8>,
}

pub fn start_webhook(dir: &Path, rules: Option<&Path>) -> Webhook {
    let cert = make_cert(dir);
    let mut args = vec![
        "webhook".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        cert.cert.display().to_string(),
        "--tls-key".into(),
        cert.key.display().to_string(),
    ];
    if let Some(r) = rules {
        args.push("--rules".into());
        args.push(r.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (proc, url) = start_listening(&args);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    Webhook { proc, url, agent: agent(&cert.der), cert_der: cert.der }
}

/// One raw HTTP/1.1 exchange over TLS: writes `head` (request line and headers, no body) and
/// returns everything the server sent until it closed the connection. For requests a normal
/// client cannot make, such as announcing a body over the limit without sending it.
pub fn raw_https(url: &str, der: &[u8], head: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("https://").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(der.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, std::net::TcpStream::connect(addr).unwrap());
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(out).unwrap()
}
