//! `dataplane sync` against two real gateways (`dataplane run` on virtual devices with the
//! control API on loopback): they converge to one digest, a restarted one converges once it
//! is back, a set changed by hand is put back.

mod gateway;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use dataplane_tests::{dataplane_bin, rule_yaml};
use gateway::{call, config, json, write_traffic, Gateway};

/// A gateway on a fixed port (so that it can come back at the same URL).
fn gateway_config(dir: &Path, name: &str, port: u16) -> std::path::PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let traffic = d.join("in.pcap");
    write_traffic(&traffic, 2);
    let cfg = config(&d, &format!("sync-{name}"), &traffic, true, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn desired(dir: &Path) -> std::path::PathBuf {
    let rules = dir.join("desired");
    std::fs::create_dir_all(&rules).unwrap();
    let text = rule_yaml("block-a", "  cidrBlocks: [\"198.51.100.0/24\"]\n  action: DROP\n  reason: a\n")
        + &rule_yaml("allow-b", "  cidrBlocks: [\"10.0.1.0/24\"]\n  action: ALLOW\n  priority: 10\n");
    std::fs::write(rules.join("rules.yaml"), text).unwrap();
    rules
}

fn digest(url: &str) -> (u64, String) {
    let v = json(&call("GET", &format!("{url}/v1/rules"), None, None).1);
    (v["generation"].as_u64().unwrap(), v["digest"].as_str().unwrap().to_string())
}

struct Sync {
    child: Child,
    out: Receiver<String>,
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sync(rules: &Path, gateways: &[&str], extra: &[&str]) -> Sync {
    let mut cmd = Command::new(dataplane_bin());
    cmd.arg("sync").arg("--rules").arg(rules);
    for g in gateways {
        cmd.args(["--gateway", g]);
    }
    let mut child = cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // stdout (pushed, in-sync, drift, converged) and stderr (unreachable, failed) as one stream.
    let (tx, out) = channel();
    let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
    let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
    for stream in [stdout, stderr] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
    }
    Sync { child, out }
}

/// Waits for a line of `s` starting with `prefix` (60 s at most); returns it.
fn wait_line(s: &Sync, prefix: &str) -> String {
    loop {
        let l = s.out.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no line {prefix:?}"));
        if l.starts_with(prefix) {
            return l;
        }
    }
}

#[test]
fn two_gateways_converge_and_stay_converged() {
    let dir = tempfile::tempdir().unwrap();
    let rules = desired(dir.path());
    let (pa, pb) = (free_port(), free_port());
    let (ca, cb) = (gateway_config(dir.path(), "a", pa), gateway_config(dir.path(), "b", pb));
    let a = Gateway::start(&ca);
    let b = Gateway::start(&cb);
    let (ua, ub) = (a.url.clone(), b.url.clone());

    // --once: both run the desired set, one digest.
    let mut once = sync(&rules, &[&ua, &ub], &["--once"]);
    assert!(once.child.wait().unwrap().success());
    let (ga, da) = digest(&ua);
    let (gb, db) = (digest(&ub).0, digest(&ub).1);
    assert_eq!(da, db);
    assert_eq!((ga, gb), (2, 2));
    let converged: Vec<String> = once.out.try_iter().collect();
    assert_eq!(converged.last(), Some(&format!("converged: 2 gateways at {da}")), "{converged:?}");

    // Watching: B restarts (no state dir: it comes back with its config's rules, none).
    let watch = sync(&rules, &[&ua, &ub], &["--interval", "0.2", "--retries", "1000"]);
    wait_line(&watch, "converged: 2 gateways");
    assert_eq!(b.stop().0, Some(0));
    wait_line(&watch, &format!("unreachable {ub}"));
    let b = Gateway::start(&cb);
    assert_eq!(digest(&ub).0, 1);
    wait_line(&watch, &format!("pushed {ub}"));
    wait_line(&watch, &format!("converged: 2 gateways at {da}"));
    assert_eq!(digest(&ub).1, da);

    // Someone changes A by hand: drift is reported and A is put back.
    let other = rule_yaml("by-hand", "  cidrBlocks: [\"10.0.1.0/24\"]\n  action: DROP\n");
    assert_eq!(call("PUT", &format!("{ua}/v1/rules"), Some(&other), None).0, 200);
    assert_ne!(digest(&ua).1, da);
    let drift = wait_line(&watch, &format!("drift {ua}: runs "));
    assert!(drift.contains(&format!("desired {da}")), "{drift}");
    wait_line(&watch, &format!("converged: 2 gateways at {da}"));
    assert_eq!(digest(&ua).1, da);
    drop(watch);
    assert_eq!(a.stop().0, Some(0));
    assert_eq!(b.stop().0, Some(0));
}
