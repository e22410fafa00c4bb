//! The host facts `doctor` reads from sysfs and procfs, all under one root directory, so
//! tests point it at a fake tree (the real host is `/`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use super::eal::cpu_list;

/// A root under which `/sys` and `/proc` are read.
#[derive(Clone, Debug)]
pub struct Host {
    root: PathBuf,
}

/// One size of hugepages (`/sys/kernel/mm/hugepages/hugepages-2048kB`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HugepageSize {
    pub kb: u64,
    pub reserved: u64,
    pub free: u64,
}

/// A line of `/proc/mounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub point: String,
    pub fstype: String,
    pub options: String,
}

/// A kernel network interface (`/sys/class/net/NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetInterface {
    /// `up`, `down`, `unknown` (veth and tun report that when up), ...
    pub operstate: String,
    /// The RX queues the kernel gives it (`queues/rx-N`).
    pub rx_queues: u32,
}

/// A PCI device (`/sys/bus/pci/devices/ADDR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// The driver bound to it, by name (`vfio-pci`, `ixgbe`...); `None` when unbound.
    pub driver: Option<String>,
    /// `0x15b3` and such.
    pub vendor: String,
    pub iommu_group: bool,
    /// Kernel interfaces it has (when a kernel driver holds it).
    pub interfaces: Vec<String>,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    /// `abs` (an absolute path on the host) under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    fn read(&self, abs: &str) -> Option<String> {
        std::fs::read_to_string(self.path(abs)).ok().map(|s| s.trim().to_string())
    }

    fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }

    /// The entries of a directory, sorted; empty when it cannot be read.
    fn list(&self, abs: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(abs))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The name a sysfs link points to (`.../driver` -> `vfio-pci`).
    fn link_name(&self, abs: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(abs)).ok()?;
        target.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// Every hugepage size the kernel offers, smallest first; `None` when the kernel has no
    /// hugepage support (no `/sys/kernel/mm/hugepages`).
    pub fn hugepages(&self) -> Option<Vec<HugepageSize>> {
        const DIR: &str = "/sys/kernel/mm/hugepages";
        if !self.exists(DIR) {
            return None;
        }
        let mut sizes: Vec<HugepageSize> = self
            .list(DIR)
            .iter()
            .filter_map(|name| {
                let kb = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
                let count = |f: &str| self.read(&format!("{DIR}/{name}/{f}")).and_then(|s| s.parse().ok());
                Some(HugepageSize {
                    kb,
                    reserved: count("nr_hugepages").unwrap_or(0),
                    free: count("free_hugepages").unwrap_or(0),
                })
            })
            .collect();
        sizes.sort_by_key(|s| s.kb);
        Some(sizes)
    }

    /// `/proc/mounts`; `None` when it cannot be read.
    pub fn mounts(&self) -> Option<Vec<Mount>> {
        let text = self.read("/proc/mounts")?;
        Some(
            text.lines()
                .filter_map(|line| {
                    let mut f = line.split_whitespace();
                    let (_device, point, fstype, options) = (f.next()?, f.next()?, f.next()?, f.next()?);
                    Some(Mount { point: unescape(point), fstype: fstype.to_string(), options: options.to_string() })
                })
                .collect(),
        )
    }

    /// `/sys/devices/system/cpu/online`; `None` when missing, the error when unreadable.
    pub fn cpus_online(&self) -> Option<Result<Vec<u32>, String>> {
        self.read("/sys/devices/system/cpu/online").map(|s| cpu_list(&s))
    }

    /// `/sys/devices/system/cpu/isolated` (the `isolcpus=` CPUs); empty when none or missing.
    pub fn cpus_isolated(&self) -> Vec<u32> {
        self.read("/sys/devices/system/cpu/isolated").and_then(|s| cpu_list(&s).ok()).unwrap_or_default()
    }

    pub fn net_interface(&self, name: &str) -> Option<NetInterface> {
        // A name with a slash would read elsewhere in sysfs.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let dir = format!("/sys/class/net/{name}");
        if !self.exists(&dir) {
            return None;
        }
        let rx_queues = self.list(&format!("{dir}/queues")).iter().filter(|q| q.starts_with("rx-")).count();
        Some(NetInterface {
            operstate: self.read(&format!("{dir}/operstate")).unwrap_or_else(|| "unknown".into()),
            rx_queues: u32::try_from(rx_queues).unwrap_or(u32::MAX),
        })
    }

    /// `addr` in the full sysfs form (see [`super::eal::pci_address`]).
    pub fn pci_device(&self, addr: &str) -> Option<PciDevice> {
        let dir = format!("/sys/bus/pci/devices/{addr}");
        if addr.contains('/') || !self.exists(&dir) {
            return None;
        }
        Some(PciDevice {
            driver: self.link_name(&format!("{dir}/driver")),
            vendor: self.read(&format!("{dir}/vendor")).unwrap_or_default(),
            iommu_group: self.exists(&format!("{dir}/iommu_group")),
            interfaces: self.list(&format!("{dir}/net")),
        })
    }

    /// How many IOMMU groups the kernel made (0: no IOMMU, or it is off).
    pub fn iommu_groups(&self) -> usize {
        self.list("/sys/kernel/iommu_groups").len()
    }

    /// vfio's unsafe no-IOMMU mode is on.
    pub fn vfio_noiommu(&self) -> bool {
        self.read("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode").is_some_and(|v| v == "Y" || v == "1")
    }

    /// The vfio-pci driver is loaded (built in or as a module).
    pub fn vfio_pci_loaded(&self) -> bool {
        self.exists("/sys/bus/pci/drivers/vfio-pci")
    }
}

/// `/proc/mounts` writes space, tab, newline and backslash in paths as octal escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = rest.get(i + 4..).unwrap_or_default();
            }
            None => {
                out.push('\\');
                rest = rest.get(i + 1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/mnt/huge\040pages"), "/mnt/huge pages");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
        assert_eq!(unescape(r"/odd\"), r"/odd\");
        assert_eq!(unescape("/dev/hugepages"), "/dev/hugepages");
    }
}
