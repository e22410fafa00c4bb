//! Network namespaces and veth pairs for tests that need real network stacks, removed on Drop
//! (also when a test panics). Small on purpose: create a namespace, a veth pair with one end in
//! it and an address, run a command inside; everything through `ip` (iproute2) and `ethtool`.

use std::process::{Command, Output, Stdio};

/// Why namespace tests cannot run here (not root, a tool missing), or None. Creating the
/// namespace is the last check: [`Netns::create`] fails where the kernel refuses.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and veth pairs need CAP_NET_ADMIN".into());
    }
    let on_path =
        |t: &str| std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
    let missing: Vec<&str> = ["ip", "ethtool"].iter().chain(tools).copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!("missing tools {missing:?}"))
    }
}

/// Runs `program args` to the end; Err with its stderr when it fails.
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

/// A network namespace, deleted on Drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `ip netns add name`, with its loopback up.
    pub fn create(name: &str) -> Result<Netns, String> {
        // A namespace left by an earlier run that was killed: remove it first.
        let _ = run("ip", &["netns", "del", name]);
        run("ip", &["netns", "add", name])?;
        let ns = Netns { name: name.to_owned() };
        ns.run("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `program` to be run inside the namespace (`ip netns exec`), stdin closed.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).stdin(Stdio::null());
        cmd
    }

    /// Runs `program args` inside the namespace to the end.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// A veth pair: `host` stays in the test's namespace, `peer` moves into a [`Netns`] with an
/// address. Deleting the host end on Drop deletes both.
#[derive(Debug)]
pub struct Veth {
    pub host: String,
    pub peer: String,
}

impl Veth {
    /// Creates the pair (names of at most 15 bytes), moves `peer` into `ns` with `cidr`
    /// (e.g. `10.0.0.1/24`), brings both ends up, and turns off TX checksum offload on both:
    /// a veth otherwise hands frames on with the checksum left for a NIC to fill, which
    /// AF_PACKET and AF_XDP ports forward as they are (wrong).
    pub fn create(host: &str, peer: &str, ns: &Netns, cidr: &str) -> Result<Veth, String> {
        let _ = run("ip", &["link", "del", host]);
        run("ip", &["link", "add", host, "type", "veth", "peer", "name", peer])?;
        let veth = Veth { host: host.to_owned(), peer: peer.to_owned() };
        run("ip", &["link", "set", peer, "netns", &ns.name])?;
        ns.run("ip", &["addr", "add", cidr, "dev", peer])?;
        for (inside, args) in [(false, ["link", "set", host, "up"]), (true, ["link", "set", peer, "up"])] {
            if inside {
                ns.run("ip", &args)?;
            } else {
                run("ip", &args)?;
            }
        }
        run("ethtool", &["-K", host, "tx", "off"])?;
        ns.run("ethtool", &["-K", peer, "tx", "off"])?;
        Ok(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.host]);
    }
}
