//! The checks: what the config (through its EAL arguments) needs, against what the host has.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::Path;

use super::eal::{self, EalNeeds, KernelPortKind};
use super::host::{Host, Mount};
use super::Finding;
use crate::worker::{plan, Config};

/// Mellanox/NVIDIA: its PMD drives the NIC beside the kernel driver (bifurcated), no
/// rebinding.
const VENDOR_MELLANOX: &str = "0x15b3";

/// Drivers DPDK's PCI PMDs work through.
const USERSPACE_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// Every check, in the order printed. Without a config, only what any DPDK host needs.
pub fn diagnose(host: &Host, config: Option<(&Path, &Config)>) -> Vec<Finding> {
    let needs = config.map(|(_, c)| eal::read(&c.eal));
    let mut findings = Vec::new();
    if let Some((path, c)) = config {
        findings.extend(check_config(path, c, needs.as_ref().map(|n| n.unreadable.as_slice()).unwrap_or_default()));
    }
    let mounts = host.mounts();
    match needs.as_ref() {
        Some(n) if n.no_huge => findings.push(Finding::ok(
            "hugepages",
            "",
            "not needed: the config's EAL arguments have --no-huge (memory from the heap; for tests, not for forwarding)",
        )),
        _ => {
            findings.extend(check_hugepages(host));
            findings.extend(check_hugetlbfs(host, mounts.as_deref(), needs.as_ref().and_then(|n| n.huge_dir.as_deref())));
        }
    }
    findings.push(check_bpffs(mounts.as_deref(), needs.as_ref()));
    if let Some(n) = needs.as_ref() {
        findings.extend(check_interfaces(host, n));
    }
    let pci = config.map(|(_, c)| pci_devices(c, needs.as_ref())).unwrap_or_default();
    let mut vfio_wanted = false;
    let no_pci = needs.as_ref().is_some_and(|n| n.no_pci);
    for addr in &pci {
        if no_pci {
            findings.push(Finding::fail(
                "pci",
                addr.clone(),
                "named in the config, but the EAL arguments have --no-pci: EAL will not see it",
                "remove --no-pci from the config's eal list",
            ));
            continue;
        }
        let (finding, wants_vfio) = check_pci(host, addr);
        findings.push(finding);
        vfio_wanted |= wants_vfio;
    }
    findings.extend(check_vfio(host, config.is_some(), vfio_wanted));
    findings.extend(check_cpus(host, config.map(|(_, c)| c), needs.as_ref()));
    findings
}

/// The config's plan (who polls what: every check that needs no DPDK), and EAL arguments
/// this reading could not follow.
fn check_config(path: &Path, config: &Config, unreadable: &[(String, String)]) -> Vec<Finding> {
    let subject = path.display().to_string();
    let mut findings = vec![match plan(config) {
        Ok(p) => Finding::ok(
            "config",
            subject.clone(),
            format!(
                "{}, {}{}",
                count(config.ports.len(), "port"),
                count(p.workers.len(), "worker"),
                if p.distributor.is_some() { ", software distribution" } else { "" }
            ),
        ),
        Err(e) => {
            Finding::fail("config", subject.clone(), e.to_string(), "correct the key named (see config/dataplane.toml)")
        }
    }];
    for (arg, why) in unreadable {
        findings.push(Finding::warn(
            "config",
            subject.clone(),
            format!("EAL argument `{arg}`: {why}; not checked"),
            "write it in DPDK's syntax (EAL will refuse it as it is)",
        ));
    }
    findings
}

/// A hugepage size in the form hugetlbfs shows it (`pagesize=2M`).
fn page_label(kb: u64) -> String {
    match kb {
        kb if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}G", kb >> 20),
        kb if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}M", kb >> 10),
        kb => format!("{kb}K"),
    }
}

/// Hugepages reserved, per size.
fn check_hugepages(host: &Host) -> Vec<Finding> {
    let Some(sizes) = host.hugepages() else {
        return vec![Finding::fail(
            "hugepages",
            "",
            "the kernel offers none (no /sys/kernel/mm/hugepages)",
            "a kernel built with CONFIG_HUGETLBFS",
        )];
    };
    let any_reserved = sizes.iter().any(|s| s.reserved > 0);
    let smallest = sizes.first().map(|s| s.kb).unwrap_or(2048);
    let mut findings = Vec::new();
    for s in &sizes {
        let subject = format!("{}kB", s.kb);
        let path = format!("/sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages", s.kb);
        // With none reserved at all, one FAIL (on the smallest size) says it.
        if s.reserved == 0 && !any_reserved && s.kb != smallest {
            continue;
        }
        findings.push(if s.reserved == 0 && any_reserved {
            Finding::ok("hugepages", subject, "none reserved (another size is)")
        } else if s.reserved == 0 {
            Finding::fail(
                "hugepages",
                subject,
                "none reserved of any size",
                format!(
                    "echo 256 > {path} (512 MB; the package's dataplane-hugepages.service does it at boot from /etc/dataplane/hugepages.conf), or hugepages=256 on the kernel command line"
                ),
            )
        } else if s.free == 0 {
            Finding::warn(
                "hugepages",
                subject,
                format!("{} reserved, none free (another DPDK process holds them?)", s.reserved),
                format!("stop the process using them (files in the hugetlbfs mount), or reserve more: echo {} > {path}", s.reserved * 2),
            )
        } else {
            Finding::ok("hugepages", subject, format!("{} reserved ({} MB), {} free", s.reserved, s.reserved * s.kb / 1024, s.free))
        });
    }
    findings
}

/// A hugetlbfs mount for EAL (the one `--huge-dir` names), and one for each size reserved.
fn check_hugetlbfs(host: &Host, mounts: Option<&[Mount]>, huge_dir: Option<&str>) -> Vec<Finding> {
    let Some(mounts) = mounts else {
        return vec![Finding::warn("hugetlbfs", "", "cannot read /proc/mounts", "run doctor where /proc is mounted")];
    };
    let huge: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "hugetlbfs").collect();
    let pagesize =
        |m: &Mount| m.options.split(',').find_map(|o| o.strip_prefix("pagesize=")).unwrap_or("?").to_string();
    if let Some(dir) = huge_dir {
        let dir = dir.trim_end_matches('/');
        return vec![match huge.iter().find(|m| m.point == dir) {
            Some(m) => Finding::ok("hugetlbfs", dir, format!("mounted (--huge-dir), pagesize={}", pagesize(m))),
            None => Finding::fail(
                "hugetlbfs",
                dir,
                "the config's --huge-dir is not a hugetlbfs mount",
                format!("mkdir -p {dir} && mount -t hugetlbfs nodev {dir}"),
            ),
        }];
    }
    if huge.is_empty() {
        return vec![Finding::fail(
            "hugetlbfs",
            "",
            "no hugetlbfs mounted: EAL finds no hugepages",
            "mount -t hugetlbfs nodev /dev/hugepages (systemd: systemctl start dev-hugepages.mount)",
        )];
    }
    let mut findings: Vec<Finding> = huge
        .iter()
        .map(|m| Finding::ok("hugetlbfs", m.point.clone(), format!("mounted, pagesize={}", pagesize(m))))
        .collect();
    for s in host.hugepages().unwrap_or_default().iter().filter(|s| s.reserved > 0) {
        let label = page_label(s.kb);
        if !huge.iter().any(|m| pagesize(m) == label) {
            findings.push(Finding::warn(
                "hugetlbfs",
                format!("{}kB", s.kb),
                format!("{} pages of {label} reserved but no hugetlbfs mount has pagesize={label}: EAL cannot use them", s.reserved),
                format!("mkdir -p /dev/hugepages{label} && mount -t hugetlbfs -o pagesize={label} nodev /dev/hugepages{label}"),
            ));
        }
    }
    findings
}

/// bpffs, which AF_XDP ports need (libbpf pins the XDP program's maps there).
fn check_bpffs(mounts: Option<&[Mount]>, needs: Option<&EalNeeds>) -> Finding {
    let xdp = needs.map(|n| n.kernel_ports.iter().filter(|p| p.kind == KernelPortKind::AfXdp).count());
    let fix = "mount -t bpf bpf /sys/fs/bpf (systemd: systemctl start sys-fs-bpf.mount)";
    let Some(mounts) = mounts else {
        return Finding::warn("bpffs", "", "cannot read /proc/mounts", "run doctor where /proc is mounted");
    };
    match (mounts.iter().find(|m| m.fstype == "bpf"), xdp) {
        (Some(m), _) => Finding::ok("bpffs", m.point.clone(), "mounted"),
        (None, Some(n)) if n > 0 => Finding::fail(
            "bpffs",
            "",
            format!("not mounted; needed by the config's {}", count(n, "net_af_xdp port")),
            fix,
        ),
        (None, Some(_)) => Finding::ok("bpffs", "", "not mounted; not needed (no net_af_xdp port in the config)"),
        (None, None) => Finding::warn("bpffs", "", "not mounted; AF_XDP ports (net_af_xdp) need it", fix),
    }
}

/// The kernel interfaces behind `net_af_packet`/`net_af_xdp` devices.
fn check_interfaces(host: &Host, needs: &EalNeeds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for port in &needs.kernel_ports {
        let kind = port.kind.name();
        let Some(iface) = port.iface.as_deref() else {
            findings.push(Finding::fail(
                "interface",
                port.device.clone(),
                format!("{kind} device without iface="),
                format!("--vdev {},iface=NAME", port.device),
            ));
            continue;
        };
        let subject = format!("{iface} ({}, {kind})", port.device);
        let Some(dev) = host.net_interface(iface) else {
            findings.push(Finding::fail(
                "interface",
                subject,
                "no such interface (/sys/class/net)",
                format!(
                    "create it, or correct iface= of {} in the config's eal list (ip -br link lists them)",
                    port.device
                ),
            ));
            continue;
        };
        let last_queue = u64::from(port.start_queue) + u64::from(port.queue_count);
        findings.push(
            if port.kind == KernelPortKind::AfXdp && dev.rx_queues > 0 && last_queue > u64::from(dev.rx_queues) {
                Finding::fail(
                    "interface",
                    subject,
                    format!(
                        "AF_XDP queues {}..{} asked, the interface has {}",
                        port.start_queue,
                        last_queue.saturating_sub(1),
                        count(dev.rx_queues as usize, "RX queue")
                    ),
                    format!("ethtool -L {iface} combined {last_queue}, or lower start_queue/queue_count"),
                )
            } else if dev.operstate == "down" {
                Finding::warn(
                    "interface",
                    subject,
                    "present, link down",
                    format!("ip link set {iface} up (and check the cable or peer)"),
                )
            } else {
                Finding::ok(
                    "interface",
                    subject,
                    format!("present, operstate {}, {}", dev.operstate, count(dev.rx_queues as usize, "RX queue")),
                )
            },
        );
    }
    findings
}

/// The PCI devices the config names: `-a`/`--allow` and ports named by PCI address.
fn pci_devices(config: &Config, needs: Option<&EalNeeds>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let from_eal = needs.map(|n| n.pci.clone()).unwrap_or_default();
    let from_ports = config.ports.iter().filter_map(|p| eal::pci_address(&p.device));
    from_eal.into_iter().chain(from_ports).filter(|a| seen.insert(a.clone())).collect()
}

/// One PCI device: present, and held by a driver DPDK can use. Returns the finding and
/// whether the device wants vfio-pci (bound to it, or to be).
fn check_pci(host: &Host, addr: &str) -> (Finding, bool) {
    let Some(dev) = host.pci_device(addr) else {
        let finding = Finding::fail(
            "pci",
            addr,
            "no such PCI device",
            "lspci -D lists them; correct -a/--allow or ports[].device in the config",
        );
        return (finding, false);
    };
    let bind = format!("dpdk-devbind.py --bind=vfio-pci {addr}");
    match dev.driver.as_deref() {
        None => (Finding::fail("pci", addr, "no driver bound", format!("modprobe vfio-pci && {bind}")), true),
        Some(d) if USERSPACE_DRIVERS.contains(&d) => {
            (Finding::ok("pci", addr, format!("held by {d}")), d == "vfio-pci")
        }
        Some(d) if dev.vendor == VENDOR_MELLANOX => {
            (Finding::ok("pci", addr, format!("held by {d}; the mlx5 PMD works beside the kernel driver")), false)
        }
        Some(d) => {
            let ifaces = if dev.interfaces.is_empty() {
                String::new()
            } else {
                format!(" (interfaces {})", dev.interfaces.join(", "))
            };
            let down: String = dev.interfaces.iter().map(|i| format!("ip link set {i} down; ")).collect();
            let finding = Finding::fail(
                "pci",
                addr,
                format!("held by the kernel driver {d}{ifaces}: DPDK cannot drive it"),
                format!("{down}modprobe vfio-pci && {bind}"),
            );
            (finding, true)
        }
    }
}

/// vfio-pci wants the driver loaded and an IOMMU (or vfio's unsafe no-IOMMU mode).
fn check_vfio(host: &Host, have_config: bool, vfio_wanted: bool) -> Vec<Finding> {
    let groups = host.iommu_groups();
    let iommu_fix = "intel_iommu=on iommu=pt (or amd_iommu=on) on the kernel command line, and the IOMMU (VT-d/AMD-Vi) on in the firmware";
    let mut findings = Vec::new();
    if vfio_wanted && !host.vfio_pci_loaded() {
        findings.push(Finding::fail(
            "vfio",
            "vfio-pci",
            "the driver is not loaded",
            "modprobe vfio-pci (and vfio-pci in /etc/modules-load.d/)",
        ));
    }
    findings.push(if groups > 0 {
        Finding::ok("iommu", "", count(groups, "IOMMU group"))
    } else if host.vfio_noiommu() {
        Finding::warn(
            "iommu",
            "",
            "no IOMMU; vfio runs in its unsafe no-IOMMU mode (devices can DMA anywhere)",
            iommu_fix,
        )
    } else if vfio_wanted {
        Finding::fail(
            "iommu",
            "",
            "no IOMMU groups: vfio-pci cannot take the config's PCI devices",
            format!("{iommu_fix}; without an IOMMU: modprobe vfio enable_unsafe_noiommu_mode=1"),
        )
    } else if have_config {
        Finding::ok("iommu", "", "no IOMMU groups; not needed (no PCI device for vfio-pci in the config)")
    } else {
        Finding::warn(
            "iommu",
            "",
            "no IOMMU groups: NICs cannot be bound to vfio-pci (AF_XDP and AF_PACKET ports still work)",
            iommu_fix,
        )
    });
    findings
}

/// `1 worker`, `2 workers`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn cpu_text(cpus: &[u32]) -> String {
    cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The CPUs of the EAL lcores online, the workers' lcores among them, and the workers' CPUs
/// kept from the scheduler.
fn check_cpus(host: &Host, config: Option<&Config>, needs: Option<&EalNeeds>) -> Vec<Finding> {
    let online = match host.cpus_online() {
        Some(Ok(cpus)) => cpus,
        Some(Err(e)) => {
            return vec![Finding::warn(
                "cpus",
                "",
                format!("cannot read /sys/devices/system/cpu/online: {e}"),
                "check sysfs",
            )]
        }
        None => {
            return vec![Finding::warn(
                "cpus",
                "",
                "no /sys/devices/system/cpu/online",
                "run doctor where /sys is mounted",
            )]
        }
    };
    let online_text = host_cpu_ranges(&online);
    let (Some(config), Some(needs)) = (config, needs) else {
        return vec![Finding::ok("cpus", "", format!("{} online ({online_text})", online.len()))];
    };
    if needs.lcores.is_empty() {
        return vec![Finding::ok(
            "cpus",
            "",
            format!(
                "no --lcores/-l/-c: EAL takes an lcore on each of the {} online CPUs ({online_text})",
                online.len()
            ),
        )];
    }
    let mut findings = Vec::new();
    let mut all_online = true;
    for (lcore, cpus) in &needs.lcores {
        let offline: Vec<u32> = cpus.iter().copied().filter(|c| online.binary_search(c).is_err()).collect();
        if !offline.is_empty() {
            all_online = false;
            let fix = offline
                .iter()
                .map(|c| format!("echo 1 > /sys/devices/system/cpu/cpu{c}/online"))
                .collect::<Vec<_>>()
                .join("; ");
            findings.push(Finding::fail(
                "cpus",
                format!("lcore {lcore}"),
                format!("runs on CPU {}, not online (online: {online_text})", cpu_text(&offline)),
                format!("correct --lcores in the config's eal list, or bring the CPU online: {fix}"),
            ));
        }
    }
    let mut worker_lcores: Vec<(String, u32)> =
        config.workers.iter().enumerate().map(|(i, w)| (format!("workers[{i}].lcore"), w.lcore)).collect();
    if let Some(d) = config.distributor_lcore {
        worker_lcores.push(("distributor_lcore".into(), d));
    }
    let lcore_ids: Vec<u32> = needs.lcores.keys().copied().collect();
    for (key, lcore) in &worker_lcores {
        if !needs.lcores.contains_key(lcore) {
            all_online = false;
            findings.push(Finding::fail(
                "cpus",
                format!("lcore {lcore}"),
                format!("{key} is not among the EAL lcores ({})", cpu_text(&lcore_ids)),
                "add it to --lcores in the config's eal list",
            ));
        }
    }
    if all_online {
        let map: Vec<String> = needs.lcores.iter().map(|(l, c)| format!("{l}@{}", cpu_text(c))).collect();
        findings.push(Finding::ok("cpus", "", format!("lcores {} on online CPUs ({online_text})", map.join(" "))));
    }
    let isolated = host.cpus_isolated();
    let busy: BTreeSet<u32> = worker_lcores
        .iter()
        .filter_map(|(_, l)| needs.lcores.get(l))
        .flatten()
        .copied()
        .filter(|c| isolated.binary_search(c).is_err())
        .collect();
    if !busy.is_empty() {
        let cpus = cpu_text(&busy.into_iter().collect::<Vec<_>>());
        findings.push(Finding::warn(
            "cpus",
            "isolation",
            format!(
                "worker CPUs {cpus} are not isolated: the kernel may run other tasks there (latency spikes, drops)"
            ),
            format!("isolcpus={cpus} nohz_full={cpus} rcu_nocbs={cpus} on the kernel command line"),
        ));
    }
    findings
}

/// `0-3,6` from a sorted list.
fn host_cpu_ranges(cpus: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut iter = cpus.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    parts.join(",")
}
