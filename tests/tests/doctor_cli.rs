//! `dataplane doctor` as a command: the table, `--json`, and the exit codes (0 with only OK
//! and WARN, 1 with a FAIL, 2 when the config cannot be read), on a fake host tree.

use std::path::Path;
use std::process::{Command, Output};

use dataplane_tests::dataplane_bin;

/// A host with 2 MB hugepages mounted, bpffs, CPUs 0-1 (1 isolated) and eth0.
fn fake_host(root: &Path) {
    let put = |abs: &str, content: &str| {
        let f = root.join(abs);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, content).unwrap();
    };
    put("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "64\n");
    put("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "60\n");
    put(
        "proc/mounts",
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\nbpf /sys/fs/bpf bpf rw,relatime,mode=700 0 0\n",
    );
    put("sys/devices/system/cpu/online", "0-1\n");
    put("sys/devices/system/cpu/isolated", "1\n");
    put("sys/class/net/eth0/operstate", "up\n");
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/0")).unwrap();
}

/// A bump in the wire between eth0 and `second` over AF_PACKET.
fn config(dir: &Path, second: &str) -> std::path::PathBuf {
    let path = dir.join("dp.toml");
    std::fs::write(
        &path,
        format!(
            r#"eal = ["--lcores", "0@0,1@1", "--vdev", "net_af_packet0,iface=eth0", "--vdev", "net_af_packet1,iface={second}"]
[[ports]]
device = "net_af_packet0"
[[ports]]
device = "net_af_packet1"
[forward]
net_af_packet0 = "net_af_packet1"
net_af_packet1 = "net_af_packet0"
[[workers]]
lcore = 1
rx = [{{ port = "net_af_packet0", queue = 0 }}, {{ port = "net_af_packet1", queue = 0 }}]
"#
        ),
    )
    .unwrap();
    path
}

fn doctor(host: &Path, args: &[&str]) -> Output {
    Command::new(dataplane_bin()).arg("doctor").arg("--host-root").arg(host).args(args).output().unwrap()
}

#[test]
fn all_ok_exits_0_and_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    fake_host(dir.path());
    let config = config(dir.path(), "eth0");
    let o = doctor(dir.path(), &["--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let expected = format!(
        "\
OK    config     {}: 2 ports, 1 worker
OK    hugepages  2048kB: 64 reserved (128 MB), 60 free
OK    hugetlbfs  /dev/hugepages: mounted, pagesize=2M
OK    bpffs      /sys/fs/bpf: mounted
OK    interface  eth0 (net_af_packet0, AF_PACKET): present, operstate up, 0 RX queues
OK    interface  eth0 (net_af_packet1, AF_PACKET): present, operstate up, 0 RX queues
OK    iommu      1 IOMMU group
OK    cpus       lcores 0@0 1@1 on online CPUs (0-1)
8 OK, 0 WARN, 0 FAIL
",
        config.display()
    );
    assert_eq!(out, expected);
}

#[test]
fn a_fail_exits_1_and_json_says_why() {
    let dir = tempfile::tempdir().unwrap();
    fake_host(dir.path());
    let config = config(dir.path(), "eth9");
    let o = doctor(dir.path(), &["--json", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["ok"].as_u64(), report["warn"].as_u64(), report["fail"].as_u64()), (Some(7), Some(0), Some(1)));
    let fail: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["status"] == "FAIL").collect();
    assert_eq!(fail.len(), 1);
    assert_eq!(fail[0]["check"], "interface");
    assert_eq!(fail[0]["subject"], "eth9 (net_af_packet1, AF_PACKET)");
    assert_eq!(fail[0]["detail"], "no such interface (/sys/class/net)");
    assert_eq!(
        fail[0]["fix"],
        "create it, or correct iface= of net_af_packet1 in the config's eal list (ip -br link lists them)"
    );
}

#[test]
fn an_unreadable_config_exits_2_and_the_host_is_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    fake_host(dir.path());
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "eal = []\nworkerz = 1\n").unwrap();
    let o = doctor(dir.path(), &["--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8(o.stdout).unwrap();
    let first = out.lines().next().unwrap();
    assert!(first.starts_with(&format!("FAIL  config     {}: ", bad.display())), "{out}");
    assert!(first.contains("workerz"), "{out}");
    assert!(out.contains("OK    hugepages  2048kB: 64 reserved (128 MB), 60 free\n"), "{out}");
    assert!(out.ends_with("5 OK, 0 WARN, 1 FAIL\n"), "{out}");
}

#[test]
fn without_a_config_only_the_host_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    fake_host(dir.path());
    std::fs::write(dir.path().join("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "0\n").unwrap();
    let o = doctor(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with("FAIL  hugepages  2048kB: none reserved of any size\n"), "{out}");
    assert!(out.ends_with("4 OK, 0 WARN, 1 FAIL\n"), "{out}");
}
