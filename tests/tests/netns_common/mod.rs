//! Two network namespaces joined only by the dataplane, for the end-to-end tests with real
//! network stacks: a client namespace and a server namespace, each with one end of a veth
//! pair, whose other ends are the dataplane's two ports in a third, the gateway's.
//!
//! ```text
//!   [client] eth0 ==veth== to-client [gateway: dataplane] to-server ==veth== eth0 [server]
//!   10.77.0.1, fd77::1                                      10.77.0.2, .3, fd77::2, ::3
//! ```
//!
//! Everything made here is removed on Drop (also when a test panics); names carry the test
//! process id, so tests of one binary and of concurrent runs never share a name.
#![allow(dead_code)]

pub mod gateway;
pub mod tools;

use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const CLIENT_V4: &str = "10.77.0.1";
pub const SERVER_V4: &str = "10.77.0.2";
/// A second address of the server, the one the CIDR tests block.
pub const SERVER_V4_OTHER: &str = "10.77.0.3";
pub const CLIENT_V6: &str = "fd77::1";
pub const SERVER_V6: &str = "fd77::2";
pub const SERVER_V6_OTHER: &str = "fd77::3";

/// Why these tests cannot run here, if they cannot: not root, or a tool missing. Creating
/// the namespaces and veths is the last check ([`Topology::create`]).
pub fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces and veth pairs need CAP_NET_ADMIN".into());
    }
    let missing: Vec<&str> = ["ip", "sysctl", "ethtool", "ping", "curl", "openssl", "python3", "timeout"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        return Some(format!("missing tools {missing:?} (scripts/setup.sh installs them)"));
    }
    None
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
}

/// Runs `program args` to the end; Err with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{program} {} exited with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A command run inside namespace `ns`.
pub fn in_ns(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]).stdin(Stdio::null());
    cmd
}

/// The three namespaces and two veth pairs; removed on Drop.
pub struct Topology {
    pub client_ns: String,
    pub server_ns: String,
    /// Where the dataplane runs, with the host ends of both veths: its own namespace, so the
    /// kernel's AF_PACKET fanout groups (DPDK derives their ids from the process id and the
    /// interface index) of concurrent tests never meet.
    pub gateway_ns: String,
    made_ns: Vec<String>,
}

/// The dataplane's two ports, in the gateway namespace: towards the client and the server.
pub const CLIENT_PORT: &str = "to-client";
pub const SERVER_PORT: &str = "to-server";

impl Topology {
    /// Makes the namespaces, the veths and the addresses. `tag` (a letter or two) tells
    /// this test's namespaces from the other tests'. Err when the machine refuses
    /// namespaces or veths (the tests skip); any later step that fails is a test failure.
    pub fn create(tag: &str) -> Result<Topology, String> {
        remove_leftovers();
        let name = |role: &str| format!("dpe2e-{}-{tag}-{role}", std::process::id());
        let mut topo = Topology {
            client_ns: name("client"),
            server_ns: name("server"),
            gateway_ns: name("gw"),
            made_ns: Vec::new(),
        };
        for ns in [topo.client_ns.clone(), topo.server_ns.clone(), topo.gateway_ns.clone()] {
            run("ip", &["netns", "add", &ns]).map_err(|e| format!("network namespaces unavailable: {e}"))?;
            topo.made_ns.push(ns);
        }
        let gw = topo.gateway_ns.clone();
        for (port, ns) in [(CLIENT_PORT, &topo.client_ns), (SERVER_PORT, &topo.server_ns)] {
            run("ip", &["link", "add", port, "netns", &gw, "type", "veth", "peer", "name", "eth0", "netns", ns])
                .map_err(|e| format!("veth pairs unavailable: {e}"))?;
            // The dataplane's ends carry no address: the gateway namespace's stack must not
            // answer or send (router solicitations...) on the wire.
        }
        topo.configure();
        Ok(topo)
    }

    /// Addresses, offloads, links up; panics on a failure (the machine has namespaces and
    /// veths by now).
    fn configure(&self) {
        let must = |r: Result<Output, String>| {
            if let Err(e) = r {
                panic!("setting up the namespaces: {e}");
            }
        };
        let gw = &self.gateway_ns;
        for port in [CLIENT_PORT, SERVER_PORT] {
            // The dataplane's ends carry no address: the gateway namespace's stack must not
            // answer or send (router solicitations...) on the wire.
            must(in_ns_run(gw, "sysctl", &["-qw", &format!("net.ipv6.conf.{port}.disable_ipv6=1")]));
            must(run("ip", &["-n", gw, "link", "set", port, "up"]));
        }
        must(run("ip", &["-n", gw, "link", "set", "lo", "up"]));
        let addresses = [
            (&self.client_ns, vec![CLIENT_V4], vec![CLIENT_V6]),
            (&self.server_ns, vec![SERVER_V4, SERVER_V4_OTHER], vec![SERVER_V6, SERVER_V6_OTHER]),
        ];
        for (ns, v4, v6) in addresses {
            must(run("ip", &["-n", ns, "link", "set", "lo", "up"]));
            for a in v4 {
                must(run("ip", &["-n", ns, "addr", "add", &format!("{a}/24"), "dev", "eth0"]));
            }
            // nodad: the addresses are usable at once, not after duplicate detection.
            for a in v6 {
                must(run("ip", &["-n", ns, "addr", "add", &format!("{a}/64"), "dev", "eth0", "nodad"]));
            }
            // Between two kernel stacks a veth leaves TCP and UDP checksums for the receiver
            // to fill in (CHECKSUM_PARTIAL). Read from an AF_PACKET socket, such a frame is
            // sent on by the dataplane with the checksum still unfilled, and the peer's stack
            // drops it. With transmit checksum offload off the sender computes them.
            must(in_ns_run(ns, "ethtool", &["-K", "eth0", "tx", "off"]));
            must(run("ip", &["-n", ns, "link", "set", "eth0", "up"]));
        }
    }

    /// `program` in the client namespace.
    pub fn client(&self, program: &str) -> Command {
        in_ns(&self.client_ns, program)
    }

    /// `program` in the server namespace.
    pub fn server(&self, program: &str) -> Command {
        in_ns(&self.server_ns, program)
    }

    /// `program` in the gateway namespace.
    pub fn gateway(&self, program: &str) -> Command {
        in_ns(&self.gateway_ns, program)
    }
}

/// [`run`] inside namespace `ns`.
fn in_ns_run(ns: &str, program: &str, args: &[&str]) -> Result<Output, String> {
    run("ip", &[&["netns", "exec", ns, program], args].concat())
}

impl Drop for Topology {
    fn drop(&mut self) {
        // A namespace's veth ends go with it, and their peers with them.
        for ns in &self.made_ns {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Namespaces left by a test process that no longer runs (killed before its Drop ran).
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("dpe2e-").and_then(|r| r.split('-').next()) else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = run("ip", &["netns", "del", &name]);
        }
    }
}
