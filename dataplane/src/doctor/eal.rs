//! What the EAL arguments of a config ask of the host: hugepages or not, the kernel
//! interfaces behind `net_af_packet`/`net_af_xdp` devices, the PCI devices allowed, and the
//! CPU each lcore runs on. Read in DPDK's own syntax without starting EAL; an argument this
//! reading cannot follow is reported, never guessed.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

/// A `--vdev` that drives a kernel interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPort {
    /// The device name as given (`net_af_packet0`).
    pub device: String,
    pub kind: KernelPortKind,
    /// The `iface=` value; `None` when the argument has none (EAL would refuse it).
    pub iface: Option<String>,
    /// AF_XDP: `start_queue=` and `queue_count=` (defaults 0 and 1).
    pub start_queue: u32,
    pub queue_count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPortKind {
    AfPacket,
    AfXdp,
}

impl KernelPortKind {
    pub fn name(self) -> &'static str {
        match self {
            KernelPortKind::AfPacket => "AF_PACKET",
            KernelPortKind::AfXdp => "AF_XDP",
        }
    }
}

/// What the EAL arguments need from the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EalNeeds {
    /// `--no-huge`: memory from the heap, no hugepages needed.
    pub no_huge: bool,
    /// `--huge-dir`: the hugetlbfs mount EAL must use.
    pub huge_dir: Option<String>,
    /// `--no-pci`: no PCI bus scan.
    pub no_pci: bool,
    pub kernel_ports: Vec<KernelPort>,
    /// PCI addresses from `-a`/`--allow`, in the full `DDDD:BB:DD.F` form.
    pub pci: Vec<String>,
    /// Each lcore and the CPUs it may run on; empty when the arguments set no lcores (EAL
    /// then uses every CPU).
    pub lcores: BTreeMap<u32, Vec<u32>>,
    /// Arguments this reading could not follow: (argument, why).
    pub unreadable: Vec<(String, String)>,
}

/// Reads the EAL arguments (the config's `eal` list).
pub fn read(args: &[String]) -> EalNeeds {
    let mut needs = EalNeeds::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        // `--opt=value`, `--opt value`, `-xvalue` and `-x value` are all EAL syntax.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg.as_str(), None),
        };
        let (name, inline) = short_with_value(name, inline);
        let takes_value = matches!(name, "--vdev" | "-a" | "--allow" | "--lcores" | "-l" | "-c" | "--huge-dir");
        let value = match (takes_value, inline) {
            (false, _) => None,
            (true, Some(v)) => Some(v.to_string()),
            (true, None) => args.next().cloned(),
        };
        match (name, value) {
            ("--no-huge", _) => needs.no_huge = true,
            ("--no-pci", _) => needs.no_pci = true,
            ("--huge-dir", Some(v)) => needs.huge_dir = Some(v),
            ("--vdev", Some(v)) => match kernel_port(&v) {
                Ok(Some(port)) => needs.kernel_ports.push(port),
                Ok(None) => {}
                Err(e) => needs.unreadable.push((format!("--vdev {v}"), e)),
            },
            ("-a" | "--allow", Some(v)) => match pci_address(v.split(',').next().unwrap_or_default()) {
                Some(addr) => needs.pci.push(addr),
                None => needs.unreadable.push((format!("{name} {v}"), "not a PCI address".into())),
            },
            ("--lcores", Some(v)) => match lcore_map(&v) {
                Ok(map) => needs.lcores = map,
                Err(e) => needs.unreadable.push((format!("--lcores {v}"), e)),
            },
            ("-l", Some(v)) => match cpu_list(&v) {
                Ok(list) => needs.lcores = list.into_iter().map(|c| (c, vec![c])).collect(),
                Err(e) => needs.unreadable.push((format!("-l {v}"), e)),
            },
            ("-c", Some(v)) => match core_mask(&v) {
                Ok(list) => needs.lcores = list.into_iter().map(|c| (c, vec![c])).collect(),
                Err(e) => needs.unreadable.push((format!("-c {v}"), e)),
            },
            (n, None) if takes_value => needs.unreadable.push((n.to_string(), "no value follows".into())),
            _ => {}
        }
    }
    needs
}

/// `-lVALUE`, `-aVALUE`, `-cVALUE`: a short option glued to its value.
fn short_with_value<'a>(name: &'a str, inline: Option<&'a str>) -> (&'a str, Option<&'a str>) {
    if inline.is_none() && name.len() > 2 && !name.starts_with("--") {
        for short in ["-a", "-l", "-c"] {
            if let Some(rest) = name.strip_prefix(short) {
                return (short, Some(rest));
            }
        }
    }
    (name, inline)
}

/// `net_af_packet0,iface=eth0,qpairs=2` or `net_af_xdp0,iface=eth0,start_queue=0,queue_count=2`;
/// `None` for other devices.
fn kernel_port(vdev: &str) -> Result<Option<KernelPort>, String> {
    let mut parts = vdev.split(',');
    let device = parts.next().unwrap_or_default().trim();
    let kind = if device.starts_with("net_af_packet") || device.starts_with("eth_af_packet") {
        KernelPortKind::AfPacket
    } else if device.starts_with("net_af_xdp") {
        KernelPortKind::AfXdp
    } else {
        return Ok(None);
    };
    let mut port = KernelPort { device: device.to_string(), kind, iface: None, start_queue: 0, queue_count: 1 };
    let number = |k: &str, v: &str| v.parse::<u32>().map_err(|_| format!("{k}={v} is not a number"));
    for kv in parts {
        match kv.split_once('=') {
            Some(("iface", v)) => port.iface = Some(v.to_string()),
            Some((k @ "start_queue", v)) => port.start_queue = number(k, v)?,
            Some((k @ "queue_count", v)) => port.queue_count = number(k, v)?,
            _ => {}
        }
    }
    Ok(Some(port))
}

/// `0000:01:00.0` or the short `01:00.0`, lower-cased to the sysfs form.
pub fn pci_address(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let full = if s.matches(':').count() == 1 { format!("0000:{s}") } else { s };
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let (domain, rest) = full.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    let function_ok = func.len() == 1 && func.bytes().all(|b| (b'0'..=b'7').contains(&b));
    (hex(domain, 4) && hex(bus, 2) && hex(dev, 2) && function_ok).then_some(full)
}

/// A Linux/DPDK CPU list: `0-3,5,7-8`.
pub fn cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let number = |t: &str| t.trim().parse::<u32>().map_err(|_| format!("{t:?} is not a CPU number"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b || b - a > 4096 {
                    return Err(format!("bad range {part:?}"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(number(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// `-c 0xf`: a hexadecimal mask of lcores (and CPUs of the same numbers).
fn core_mask(s: &str) -> Result<Vec<u32>, String> {
    let hex = s.trim().trim_start_matches("0x").trim_start_matches("0X");
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("not a hexadecimal core mask".into());
    }
    let mut cpus = Vec::new();
    for (i, digit) in hex.bytes().rev().enumerate() {
        let d = char::from(digit).to_digit(16).unwrap_or(0);
        for bit in 0..4 {
            if d & (1 << bit) != 0 {
                cpus.push(i as u32 * 4 + bit);
            }
        }
    }
    Ok(cpus)
}

/// `--lcores`: `lcores[@cpus][,lcores[@cpus]...]`, where each side is a number, a range
/// `a-b` or a group `(a,b-c)`. Without `@`, lcores run on the CPUs of their own numbers (a
/// group shares the group's CPUs).
fn lcore_map(s: &str) -> Result<BTreeMap<u32, Vec<u32>>, String> {
    let mut map = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (lcores, after) = set(rest)?;
        let (cpus, after) = match after.strip_prefix('@') {
            Some(a) => set(a)?,
            None => (lcores.clone(), after),
        };
        for &l in &lcores {
            map.insert(l, cpus.clone());
        }
        rest = match after.strip_prefix(',') {
            Some(r) => r,
            None if after.is_empty() => after,
            None => return Err(format!("unexpected {after:?}")),
        };
    }
    Ok(map)
}

/// One side of an `--lcores` element: `(a,b-c)`, `a-b` or `a`; returns the rest.
fn set(s: &str) -> Result<(Vec<u32>, &str), String> {
    if let Some(inner) = s.strip_prefix('(') {
        let end = inner.find(')').ok_or("unclosed (")?;
        let list = inner.get(..end).unwrap_or_default();
        return Ok((cpu_list(list)?, inner.get(end + 1..).unwrap_or_default()));
    }
    let end = s.find([',', '@']).unwrap_or(s.len());
    let (item, rest) = s.split_at(end);
    Ok((cpu_list(item)?, rest))
}
