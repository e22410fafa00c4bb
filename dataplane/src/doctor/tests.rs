//! `doctor` on fake sysfs/procfs trees: the exact findings for each way a host can fall short.

use std::path::Path;

use super::eal::{self, KernelPort, KernelPortKind};
use super::{diagnose, tally, to_json, write_text, Finding, Host, Status};
use crate::worker::Config;

/// A fake host tree in a temporary directory.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn empty() -> Fake {
        Fake { dir: tempfile::tempdir().unwrap() }
    }

    /// A host with everything the config of [`config`] needs: 512 x 2 MB hugepages
    /// mounted, bpffs, CPUs 0-3 online with 2-3 isolated, an IOMMU, eth1 and eth2 (2 RX
    /// queues), and 0000:03:00.0 on vfio-pci.
    fn healthy() -> Fake {
        let f = Fake::empty();
        f.hugepages(2048, 512, 512).hugepages(1048576, 0, 0);
        f.mounts(&[HUGETLBFS_2M, BPFFS, "proc /proc proc rw,nosuid 0 0"]);
        f.file("/sys/devices/system/cpu/online", "0-3\n");
        f.file("/sys/devices/system/cpu/isolated", "2-3\n");
        f.dir("/sys/kernel/iommu_groups/0").dir("/sys/kernel/iommu_groups/1");
        f.iface("eth1", "up", 1).iface("eth2", "up", 2);
        f.dir("/sys/bus/pci/drivers/vfio-pci");
        f.pci("0000:03:00.0", Some("vfio-pci"), "0x8086", &[]);
        f
    }

    fn path(&self, abs: &str) -> std::path::PathBuf {
        self.dir.path().join(abs.trim_start_matches('/'))
    }

    fn file(&self, abs: &str, text: &str) -> &Fake {
        let p = self.path(abs);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    fn dir(&self, abs: &str) -> &Fake {
        std::fs::create_dir_all(self.path(abs)).unwrap();
        self
    }

    fn remove(&self, abs: &str) -> &Fake {
        let p = self.path(abs);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
        self
    }

    fn hugepages(&self, kb: u64, reserved: u64, free: u64) -> &Fake {
        let d = format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB");
        self.file(&format!("{d}/nr_hugepages"), &format!("{reserved}\n"));
        self.file(&format!("{d}/free_hugepages"), &format!("{free}\n"))
    }

    fn mounts(&self, lines: &[&str]) -> &Fake {
        self.file("/proc/mounts", &(lines.join("\n") + "\n"))
    }

    fn iface(&self, name: &str, operstate: &str, rx_queues: u32) -> &Fake {
        let d = format!("/sys/class/net/{name}");
        self.file(&format!("{d}/operstate"), &format!("{operstate}\n"));
        for q in 0..rx_queues {
            self.dir(&format!("{d}/queues/rx-{q}")).dir(&format!("{d}/queues/tx-{q}"));
        }
        self
    }

    /// A PCI device; `driver` as sysfs has it, a link into /sys/bus/pci/drivers.
    fn pci(&self, addr: &str, driver: Option<&str>, vendor: &str, ifaces: &[&str]) -> &Fake {
        let d = format!("/sys/bus/pci/devices/{addr}");
        self.file(&format!("{d}/vendor"), &format!("{vendor}\n"));
        self.dir("/sys/kernel/iommu_groups/7");
        std::os::unix::fs::symlink("../../../../kernel/iommu_groups/7", self.path(&format!("{d}/iommu_group")))
            .unwrap();
        if let Some(drv) = driver {
            self.dir(&format!("/sys/bus/pci/drivers/{drv}"));
            std::os::unix::fs::symlink(format!("../../../../bus/pci/drivers/{drv}"), self.path(&format!("{d}/driver")))
                .unwrap();
        }
        for i in ifaces {
            self.dir(&format!("{d}/net/{i}"));
        }
        self
    }

    fn host(&self) -> Host {
        Host::new(self.dir.path())
    }
}

const HUGETLBFS_2M: &str = "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0";
const BPFFS: &str = "bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0";

/// A bump in the wire over AF_PACKET (eth1) and AF_XDP (eth2, queues 0-1), and a NIC
/// forwarding to itself; main lcore on CPU 0, workers on CPUs 2 and 3.
fn config_with(eal: &[&str]) -> Config {
    let eal: Vec<String> = eal.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        r#"
eal = [{}]
[[ports]]
device = "net_af_packet0"
tx_queues = 2
[[ports]]
device = "net_af_xdp0"
tx_queues = 2
[[ports]]
device = "0000:03:00.0"
tx_queues = 2
[forward]
net_af_packet0 = "net_af_xdp0"
net_af_xdp0 = "net_af_packet0"
"0000:03:00.0" = "0000:03:00.0"
[[workers]]
lcore = 1
rx = [{{ port = "net_af_packet0", queue = 0 }}, {{ port = "net_af_xdp0", queue = 0 }}]
[[workers]]
lcore = 2
rx = [{{ port = "0000:03:00.0", queue = 0 }}]
"#,
        eal.join(", ")
    );
    Config::parse(&text).unwrap()
}

const EAL: [&str; 7] = [
    "--lcores",
    "0@0,1@2,2@3",
    "-a",
    "03:00.0",
    "--vdev",
    "net_af_packet0,iface=eth1",
    "--vdev=net_af_xdp0,iface=eth2,start_queue=0,queue_count=2",
];

fn config() -> Config {
    config_with(&EAL)
}

fn run(fake: &Fake, config: Option<&Config>) -> Vec<Finding> {
    diagnose(&fake.host(), config.map(|c| (Path::new("dp.toml"), c)))
}

/// (status, check, subject) of each finding, in order.
fn summary(findings: &[Finding]) -> Vec<(Status, &'static str, String)> {
    findings.iter().map(|f| (f.status, f.check, f.subject.clone())).collect()
}

fn only<'a>(findings: &'a [Finding], check: &str, subject: &str) -> &'a Finding {
    let matching: Vec<&Finding> = findings.iter().filter(|f| f.check == check && f.subject == subject).collect();
    assert_eq!(matching.len(), 1, "{check} {subject}: {findings:#?}");
    matching[0]
}

use Status::{Fail, Ok as Good, Warn};

#[test]
fn healthy_host_every_finding() {
    let fake = Fake::healthy();
    let findings = run(&fake, Some(&config()));
    assert_eq!(
        summary(&findings),
        vec![
            (Good, "config", "dp.toml".into()),
            (Good, "hugepages", "2048kB".into()),
            (Good, "hugepages", "1048576kB".into()),
            (Good, "hugetlbfs", "/dev/hugepages".into()),
            (Good, "bpffs", "/sys/fs/bpf".into()),
            (Good, "interface", "eth1 (net_af_packet0, AF_PACKET)".into()),
            (Good, "interface", "eth2 (net_af_xdp0, AF_XDP)".into()),
            (Good, "pci", "0000:03:00.0".into()),
            (Good, "iommu", "".into()),
            (Good, "cpus", "".into()),
        ]
    );
    assert_eq!(only(&findings, "config", "dp.toml").detail, "3 ports, 2 workers");
    assert_eq!(only(&findings, "hugepages", "2048kB").detail, "512 reserved (1024 MB), 512 free");
    assert_eq!(only(&findings, "interface", "eth2 (net_af_xdp0, AF_XDP)").detail, "present, operstate up, 2 RX queues");
    assert_eq!(only(&findings, "pci", "0000:03:00.0").detail, "held by vfio-pci");
    assert_eq!(only(&findings, "iommu", "").detail, "3 IOMMU groups");
    assert_eq!(only(&findings, "cpus", "").detail, "lcores 0@0 1@2 2@3 on online CPUs (0-3)");
    assert!(findings.iter().all(|f| f.fix.is_none()));
    assert_eq!(tally(&findings).fail, 0);
}

#[test]
fn no_hugepages_reserved_fails_with_the_fix() {
    let fake = Fake::healthy();
    fake.hugepages(2048, 0, 0);
    let findings = run(&fake, Some(&config()));
    let f = only(&findings, "hugepages", "2048kB");
    assert_eq!(f.status, Fail);
    assert_eq!(f.detail, "none reserved of any size");
    assert!(f.fix.as_deref().unwrap().starts_with("echo 256 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"));
    // The larger size with none reserved is not reported twice.
    assert!(findings.iter().all(|f| f.subject != "1048576kB"));
    assert_eq!(tally(&findings).fail, 1);
}

#[test]
fn hugepages_all_in_use_warn() {
    let fake = Fake::healthy();
    fake.hugepages(2048, 512, 0);
    let f = run(&fake, Some(&config()));
    let f = only(&f, "hugepages", "2048kB");
    assert_eq!((f.status, f.detail.as_str()), (Warn, "512 reserved, none free (another DPDK process holds them?)"));
}

#[test]
fn no_hugepage_support_fails() {
    let fake = Fake::healthy();
    fake.remove("/sys/kernel/mm/hugepages");
    let findings = run(&fake, None);
    let f = only(&findings, "hugepages", "");
    assert_eq!((f.status, f.detail.as_str()), (Fail, "the kernel offers none (no /sys/kernel/mm/hugepages)"));
}

#[test]
fn hugetlbfs_missing_or_wrong_size_or_huge_dir() {
    let fake = Fake::healthy();
    fake.mounts(&[BPFFS]);
    let findings = run(&fake, Some(&config()));
    let f = only(&findings, "hugetlbfs", "");
    assert_eq!((f.status, f.detail.as_str()), (Fail, "no hugetlbfs mounted: EAL finds no hugepages"));
    assert_eq!(
        f.fix.as_deref(),
        Some("mount -t hugetlbfs nodev /dev/hugepages (systemd: systemctl start dev-hugepages.mount)")
    );

    // 1 GB pages reserved, only a 2 MB mount: those pages are unusable.
    let fake = Fake::healthy();
    fake.hugepages(1048576, 4, 4);
    let findings = run(&fake, Some(&config()));
    let f = only(&findings, "hugetlbfs", "1048576kB");
    assert_eq!(f.status, Warn);
    assert_eq!(f.detail, "4 pages of 1G reserved but no hugetlbfs mount has pagesize=1G: EAL cannot use them");
    assert_eq!(only(&findings, "hugepages", "1048576kB").status, Good);

    // --huge-dir must name a hugetlbfs mount.
    let mut eal = EAL.to_vec();
    eal.extend(["--huge-dir", "/mnt/huge"]);
    let findings = run(&Fake::healthy(), Some(&config_with(&eal)));
    let f = only(&findings, "hugetlbfs", "/mnt/huge");
    assert_eq!((f.status, f.detail.as_str()), (Fail, "the config's --huge-dir is not a hugetlbfs mount"));
    eal.pop();
    eal.push("/dev/hugepages/");
    let findings = run(&Fake::healthy(), Some(&config_with(&eal)));
    assert_eq!(only(&findings, "hugetlbfs", "/dev/hugepages").detail, "mounted (--huge-dir), pagesize=2M");
}

#[test]
fn no_huge_needs_no_hugepages() {
    let fake = Fake::healthy();
    fake.remove("/sys/kernel/mm/hugepages").mounts(&[BPFFS]);
    let mut eal = EAL.to_vec();
    eal.push("--no-huge");
    let findings = run(&fake, Some(&config_with(&eal)));
    assert_eq!(only(&findings, "hugepages", "").status, Good);
    assert!(findings.iter().all(|f| f.check != "hugetlbfs"));
    assert_eq!(tally(&findings).fail, 0);
}

#[test]
fn bpffs_needed_only_for_af_xdp() {
    let fake = Fake::healthy();
    fake.mounts(&[HUGETLBFS_2M]);
    let f = run(&fake, Some(&config()));
    let f = only(&f, "bpffs", "");
    assert_eq!((f.status, f.detail.as_str()), (Fail, "not mounted; needed by the config's 1 net_af_xdp port"));
    assert_eq!(f.fix.as_deref(), Some("mount -t bpf bpf /sys/fs/bpf (systemd: systemctl start sys-fs-bpf.mount)"));

    let without_xdp = config_with(&["--lcores", "0@0,1@2,2@3", "-a", "03:00.0", "--vdev", "net_af_packet0,iface=eth1"]);
    let f = run(&fake, Some(&without_xdp));
    assert_eq!(only(&f, "bpffs", "").status, Good);
    // No config: a warning, AF_XDP might be wanted.
    let f = run(&fake, None);
    assert_eq!(only(&f, "bpffs", "").status, Warn);
}

#[test]
fn interfaces_missing_down_or_short_of_queues() {
    let fake = Fake::healthy();
    fake.remove("/sys/class/net/eth1");
    fake.file("/sys/class/net/eth2/operstate", "down\n");
    let findings = run(&fake, Some(&config()));
    let f = only(&findings, "interface", "eth1 (net_af_packet0, AF_PACKET)");
    assert_eq!((f.status, f.detail.as_str()), (Fail, "no such interface (/sys/class/net)"));
    let f = only(&findings, "interface", "eth2 (net_af_xdp0, AF_XDP)");
    assert_eq!((f.status, f.detail.as_str()), (Warn, "present, link down"));
    assert_eq!(f.fix.as_deref(), Some("ip link set eth2 up (and check the cable or peer)"));

    let fake = Fake::healthy();
    fake.remove("/sys/class/net/eth2/queues/rx-1");
    let findings = run(&fake, Some(&config()));
    let f = only(&findings, "interface", "eth2 (net_af_xdp0, AF_XDP)");
    assert_eq!((f.status, f.detail.as_str()), (Fail, "AF_XDP queues 0..1 asked, the interface has 1 RX queue"));
    assert_eq!(f.fix.as_deref(), Some("ethtool -L eth2 combined 2, or lower start_queue/queue_count"));

    // A vdev without iface= cannot be checked against anything.
    let no_iface = config_with(&["--vdev", "net_af_packet0", "--vdev", "net_af_xdp0,iface=eth2"]);
    let f = run(&Fake::healthy(), Some(&no_iface));
    assert_eq!(only(&f, "interface", "net_af_packet0").detail, "AF_PACKET device without iface=");
}

#[test]
fn pci_devices_and_their_drivers() {
    // Missing.
    let fake = Fake::healthy();
    fake.remove("/sys/bus/pci/devices/0000:03:00.0");
    let f = run(&fake, Some(&config()));
    assert_eq!(only(&f, "pci", "0000:03:00.0").detail, "no such PCI device");
    assert_eq!(only(&f, "pci", "0000:03:00.0").status, Fail);

    // Unbound.
    let fake = Fake::healthy();
    fake.remove("/sys/bus/pci/devices/0000:03:00.0");
    fake.pci("0000:03:00.0", None, "0x8086", &[]);
    let f = run(&fake, Some(&config()));
    let p = only(&f, "pci", "0000:03:00.0");
    assert_eq!((p.status, p.detail.as_str()), (Fail, "no driver bound"));
    assert_eq!(p.fix.as_deref(), Some("modprobe vfio-pci && dpdk-devbind.py --bind=vfio-pci 0000:03:00.0"));

    // Held by a kernel driver: the interface goes down first.
    let fake = Fake::healthy();
    fake.remove("/sys/bus/pci/devices/0000:03:00.0");
    fake.pci("0000:03:00.0", Some("ixgbe"), "0x8086", &["enp3s0f0"]);
    let f = run(&fake, Some(&config()));
    let p = only(&f, "pci", "0000:03:00.0");
    assert_eq!(p.detail, "held by the kernel driver ixgbe (interfaces enp3s0f0): DPDK cannot drive it");
    assert_eq!(
        p.fix.as_deref(),
        Some("ip link set enp3s0f0 down; modprobe vfio-pci && dpdk-devbind.py --bind=vfio-pci 0000:03:00.0")
    );

    // Mellanox stays on its kernel driver (bifurcated), and wants no vfio.
    let fake = Fake::healthy();
    fake.remove("/sys/bus/pci/devices/0000:03:00.0");
    fake.pci("0000:03:00.0", Some("mlx5_core"), "0x15b3", &["enp3s0f0np0"]);
    fake.remove("/sys/kernel/iommu_groups");
    let f = run(&fake, Some(&config()));
    assert_eq!(only(&f, "pci", "0000:03:00.0").status, Good);
    let i = only(&f, "iommu", "");
    assert_eq!(
        (i.status, i.detail.as_str()),
        (Good, "no IOMMU groups; not needed (no PCI device for vfio-pci in the config)")
    );
}

#[test]
fn pci_devices_with_no_pci_fail() {
    let mut eal = EAL.to_vec();
    eal.push("--no-pci");
    let f = run(&Fake::healthy(), Some(&config_with(&eal)));
    let p = only(&f, "pci", "0000:03:00.0");
    assert_eq!(p.status, Fail);
    assert_eq!(p.detail, "named in the config, but the EAL arguments have --no-pci: EAL will not see it");
}

#[test]
fn vfio_needs_its_driver_and_an_iommu() {
    let fake = Fake::healthy();
    fake.remove("/sys/kernel/iommu_groups");
    let f = run(&fake, Some(&config()));
    let i = only(&f, "iommu", "");
    assert_eq!((i.status, i.detail.as_str()), (Fail, "no IOMMU groups: vfio-pci cannot take the config's PCI devices"));

    fake.file("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n");
    let f = run(&fake, Some(&config()));
    assert_eq!(only(&f, "iommu", "").status, Warn);

    // Unbound device, vfio-pci not loaded.
    let fake = Fake::healthy();
    fake.remove("/sys/bus/pci/devices/0000:03:00.0").remove("/sys/bus/pci/drivers/vfio-pci");
    fake.pci("0000:03:00.0", None, "0x8086", &[]);
    let f = run(&fake, Some(&config()));
    let v = only(&f, "vfio", "vfio-pci");
    assert_eq!((v.status, v.detail.as_str()), (Fail, "the driver is not loaded"));

    // Without a config, no IOMMU is a warning.
    let fake = Fake::healthy();
    fake.remove("/sys/kernel/iommu_groups");
    assert_eq!(only(&run(&fake, None), "iommu", "").status, Warn);
}

#[test]
fn lcores_on_offline_cpus_or_missing() {
    let fake = Fake::healthy();
    fake.file("/sys/devices/system/cpu/online", "0-2\n");
    let f = run(&fake, Some(&config()));
    let c = only(&f, "cpus", "lcore 2");
    assert_eq!((c.status, c.detail.as_str()), (Fail, "runs on CPU 3, not online (online: 0-2)"));
    assert_eq!(
        c.fix.as_deref(),
        Some("correct --lcores in the config's eal list, or bring the CPU online: echo 1 > /sys/devices/system/cpu/cpu3/online")
    );
    assert!(f.iter().all(|x| !(x.check == "cpus" && x.subject.is_empty())), "no all-online line: {f:#?}");

    // workers[1].lcore 2 without an EAL lcore.
    let mut eal = EAL.to_vec();
    eal[1] = "0@0,1@2";
    let f = run(&Fake::healthy(), Some(&config_with(&eal)));
    let c = only(&f, "cpus", "lcore 2");
    assert_eq!(c.detail, "workers[1].lcore is not among the EAL lcores (0,1)");

    // Workers on CPUs the kernel schedules on.
    let fake = Fake::healthy();
    fake.file("/sys/devices/system/cpu/isolated", "\n");
    let f = run(&fake, Some(&config()));
    let c = only(&f, "cpus", "isolation");
    assert_eq!(c.status, Warn);
    assert_eq!(c.fix.as_deref(), Some("isolcpus=2,3 nohz_full=2,3 rcu_nocbs=2,3 on the kernel command line"));

    // No lcore option: EAL takes every CPU.
    let f = run(&Fake::healthy(), Some(&config_with(&EAL[2..])));
    assert_eq!(only(&f, "cpus", "").detail, "no --lcores/-l/-c: EAL takes an lcore on each of the 4 online CPUs (0-3)");
}

#[test]
fn config_plan_errors_and_unreadable_eal_arguments() {
    let mut eal = EAL.to_vec();
    eal.extend(["--lcores", "0@x", "-a", "zz:00.0"]);
    // The second --lcores is unreadable, the first stands.
    let f = run(&Fake::healthy(), Some(&config_with(&eal)));
    let warns: Vec<&str> =
        f.iter().filter(|x| x.check == "config" && x.status == Warn).map(|x| x.detail.as_str()).collect();
    assert_eq!(
        warns,
        vec![
            "EAL argument `--lcores 0@x`: \"x\" is not a CPU number; not checked",
            "EAL argument `-a zz:00.0`: not a PCI address; not checked"
        ]
    );
    let mut bad_plan = config();
    bad_plan.workers[1].lcore = 1;
    let f = run(&Fake::healthy(), Some(&bad_plan));
    assert_eq!(only(&f, "config", "dp.toml").status, Fail);
}

#[test]
fn the_report_as_text_and_json() {
    let fake = Fake::healthy();
    fake.remove("/sys/class/net/eth1");
    let findings = run(&fake, Some(&config()));
    let mut text = Vec::new();
    write_text(&mut text, &findings).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(
            "FAIL  interface  eth1 (net_af_packet0, AF_PACKET): no such interface (/sys/class/net)\n                 fix: create it"
        ),
        "{text}"
    );
    assert!(text.ends_with("9 OK, 0 WARN, 1 FAIL\n"), "{text}");
    let json = to_json(Some(Path::new("dp.toml")), &findings);
    assert_eq!(json["fail"], 1);
    assert_eq!(json["ok"], 9);
    assert_eq!(json["config"], "dp.toml");
    let fail = &json["findings"].as_array().unwrap().iter().find(|f| f["status"] == "FAIL").unwrap();
    assert_eq!(fail["check"], "interface");
    assert_eq!(fail["subject"], "eth1 (net_af_packet0, AF_PACKET)");
}

#[test]
fn eal_arguments_read_in_dpdk_syntax() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let n =
        eal::read(&args(&["--lcores=(0-1)@0,2@(1,3-4),5", "-a0000:81:00.1,rxq_cqe_comp_en=0", "--allow", "82:00.0"]));
    let lcores: Vec<(u32, Vec<u32>)> = n.lcores.into_iter().collect();
    assert_eq!(lcores, vec![(0, vec![0]), (1, vec![0]), (2, vec![1, 3, 4]), (5, vec![5])]);
    assert_eq!(n.pci, vec!["0000:81:00.1", "0000:82:00.0"]);
    assert!(n.unreadable.is_empty());

    assert_eq!(eal::read(&args(&["-l", "0-2,4"])).lcores.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 4]);
    assert_eq!(eal::read(&args(&["-c", "0x15"])).lcores.keys().copied().collect::<Vec<_>>(), vec![0, 2, 4]);
    assert_eq!(eal::read(&args(&["-l3"])).lcores.keys().copied().collect::<Vec<_>>(), vec![3]);

    let n = eal::read(&args(&[
        "--vdev",
        "net_af_xdp1,iface=ens1,start_queue=2,queue_count=4",
        "--vdev",
        "net_null0",
        "--no-huge",
    ]));
    assert_eq!(
        n.kernel_ports,
        vec![KernelPort {
            device: "net_af_xdp1".into(),
            kind: KernelPortKind::AfXdp,
            iface: Some("ens1".into()),
            start_queue: 2,
            queue_count: 4
        }]
    );
    assert!(n.no_huge);

    let n = eal::read(&args(&["--vdev", "net_af_xdp0,iface=e,queue_count=many", "--lcores", "1@(2", "-l"]));
    let bad: Vec<&str> = n.unreadable.iter().map(|(_, why)| why.as_str()).collect();
    assert_eq!(bad, vec!["queue_count=many is not a number", "unclosed (", "no value follows"]);

    assert_eq!(eal::pci_address("0000:AF:00.7").as_deref(), Some("0000:af:00.7"));
    assert_eq!(eal::pci_address("af:00.8"), None);
    assert_eq!(eal::pci_address("net_pcap0"), None);
    assert_eq!(eal::cpu_list("3-1"), Err("bad range \"3-1\"".into()));
}

#[test]
fn sysfs_names_cannot_leave_the_tree() {
    let fake = Fake::healthy();
    assert!(fake.host().net_interface("../../../proc").is_none());
    assert!(fake.host().net_interface("..").is_none());
    assert!(fake.host().pci_device("../devices").is_none());
}
