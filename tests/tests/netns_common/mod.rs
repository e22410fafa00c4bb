//! Two network namespaces joined only by the dataplane, for the end-to-end tests with real
//! network stacks: a client namespace and a server namespace, each with one end of a veth
//! pair, whose other ends are the dataplane's two ports in a third, the gateway's.
//!
//! ```text
//!   [client] eth0 ==veth== to-client [gateway: dataplane] to-server ==veth== eth0 [server]
//!   10.77.0.1, fd77::1                                      10.77.0.2, .3, fd77::2, ::3
//! ```
//!
//! The gateway gets a namespace of its own because DPDK's AF_PACKET driver takes its fanout
//! group id from the process id and the interface index, and the kernel refuses a socket of
//! another interface in a group of the same id in one namespace (`could not set
//! PACKET_FANOUT ... Invalid argument`): dataplanes of concurrent tests collided in one.
//!
//! Everything made here is removed on Drop (also when a test panics); names carry the test
//! process id, so tests of one binary and of concurrent runs never share a name.
#![allow(dead_code)]

pub mod bench;
pub mod gateway;
pub mod tools;

use std::path::Path;
use std::process::{Command, Output};

use dataplane_tests::netns::{run, Netns};

pub const CLIENT_V4: &str = "10.77.0.1";
pub const SERVER_V4: &str = "10.77.0.2";
/// A second address of the server, the one the CIDR tests block.
pub const SERVER_V4_OTHER: &str = "10.77.0.3";
pub const CLIENT_V6: &str = "fd77::1";
pub const SERVER_V6: &str = "fd77::2";
pub const SERVER_V6_OTHER: &str = "fd77::3";

/// The dataplane's two ports, in the gateway namespace: towards the client and the server.
pub const CLIENT_PORT: &str = "to-client";
pub const SERVER_PORT: &str = "to-server";

/// Why these tests cannot run here, if they cannot: not root, or a tool missing. Creating
/// the namespaces and veths is the last check ([`Topology::create`]).
pub fn skip_reason() -> Option<String> {
    let why = dataplane_tests::netns::skip_reason(&["sysctl", "ping", "curl", "openssl", "python3", "timeout"])?;
    Some(if why.starts_with("missing tools") { format!("{why} (scripts/setup.sh installs them)") } else { why })
}

/// The three namespaces and two veth pairs; removed on Drop (a namespace's veth ends go with
/// it, and their peers with them).
pub struct Topology {
    pub client: Netns,
    pub server: Netns,
    /// Where the dataplane runs, with the gateway's ends of both veths.
    pub gateway: Netns,
}

impl Topology {
    /// Makes the namespaces, the veths and the addresses. `tag` (a letter or two) tells
    /// this test's namespaces from the other tests'. Err when the machine refuses
    /// namespaces or veths (the tests skip); any later step that fails is a test failure.
    pub fn create(tag: &str) -> Result<Topology, String> {
        remove_leftovers();
        let name = |role: &str| format!("dpe2e-{}-{tag}-{role}", std::process::id());
        let unavailable = |e: String| format!("network namespaces unavailable: {e}");
        let topo = Topology {
            client: Netns::create(&name("client")).map_err(unavailable)?,
            server: Netns::create(&name("server")).map_err(unavailable)?,
            gateway: Netns::create(&name("gw")).map_err(unavailable)?,
        };
        let gw = &topo.gateway.name;
        for (port, ns) in [(CLIENT_PORT, &topo.client), (SERVER_PORT, &topo.server)] {
            run("ip", &["link", "add", port, "netns", gw, "type", "veth", "peer", "name", "eth0", "netns", &ns.name])
                .map_err(|e| format!("veth pairs unavailable: {e}"))?;
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
        for port in [CLIENT_PORT, SERVER_PORT] {
            // The dataplane's ends carry no address: the gateway namespace's stack must not
            // answer or send (router solicitations...) on the wire.
            must(self.gateway.run("sysctl", &["-qw", &format!("net.ipv6.conf.{port}.disable_ipv6=1")]));
            must(self.gateway.run("ip", &["link", "set", port, "up"]));
        }
        let addresses = [
            (&self.client, vec![CLIENT_V4], vec![CLIENT_V6]),
            (&self.server, vec![SERVER_V4, SERVER_V4_OTHER], vec![SERVER_V6, SERVER_V6_OTHER]),
        ];
        for (ns, v4, v6) in addresses {
            for a in v4 {
                must(ns.run("ip", &["addr", "add", &format!("{a}/24"), "dev", "eth0"]));
            }
            // nodad: the addresses are usable at once, not after duplicate detection.
            for a in v6 {
                must(ns.run("ip", &["addr", "add", &format!("{a}/64"), "dev", "eth0", "nodad"]));
            }
            // Between two kernel stacks a veth leaves TCP and UDP checksums for the receiver
            // to fill in (CHECKSUM_PARTIAL). Read from an AF_PACKET socket, such a frame is
            // sent on by the dataplane with the checksum still unfilled, and the peer's stack
            // drops it. With transmit checksum offload off the sender computes them.
            must(ns.run("ethtool", &["-K", "eth0", "tx", "off"]));
            must(ns.run("ip", &["link", "set", "eth0", "up"]));
        }
    }

    /// `program` in the client namespace.
    pub fn in_client(&self, program: &str) -> Command {
        self.client.command(program)
    }

    /// `program` in the server namespace.
    pub fn in_server(&self, program: &str) -> Command {
        self.server.command(program)
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
