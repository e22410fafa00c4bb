//! The Debian package (scripts/package.sh, cargo-deb): built from the debug binary the tests
//! already have (no release build), its exact file list, control fields, conffiles and
//! maintainer scripts, then unpacked into a scratch root where the installed binary checks
//! the packaged rules and config, and systemd checks the packaged units.
//! Skipped, saying so, where cargo-deb or dpkg-deb is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use dataplane_tests::dataplane_bin;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).output().is_ok_and(|o| o.status.success())
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The package, built once for every test here; `None` (with the reason printed) where the
/// tools are missing.
struct Package {
    deb: PathBuf,
    /// The package unpacked (`dpkg-deb -x`): the files as they would be installed.
    root: PathBuf,
    _dir: tempfile::TempDir,
}

fn package() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Option<Package>> = OnceLock::new();
    PACKAGE
        .get_or_init(|| {
            if !runs("dpkg-deb", &["--version"]) {
                eprintln!("SKIP: dpkg-deb is missing (a Debian host has it)");
                return None;
            }
            if !runs("dpkg-shlibdeps", &["--version"]) {
                eprintln!("SKIP: dpkg-shlibdeps is missing (apt-get install dpkg-dev; scripts/setup.sh does it)");
                return None;
            }
            if !runs("cargo", &["deb", "--version"]) {
                eprintln!(
                    "SKIP: cargo-deb is missing (scripts/setup.sh installs it: cargo install cargo-deb --locked)"
                );
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("out");
            let built = Command::new(repo().join("scripts/package.sh"))
                .env("BIN", dataplane_bin())
                .env("OUT", &out)
                .env("FAST", "1")
                .output()
                .unwrap();
            assert!(built.status.success(), "scripts/package.sh failed:\n{}", text(&built));
            let arch =
                String::from_utf8(Command::new("dpkg").arg("--print-architecture").output().unwrap().stdout).unwrap();
            let deb = out.join(format!("dataplane_{}-1_{}.deb", env!("CARGO_PKG_VERSION"), arch.trim()));
            assert!(deb.exists(), "no {} after:\n{}", deb.display(), text(&built));
            let root = dir.path().join("root");
            let x = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).output().unwrap();
            assert!(x.status.success(), "{}", text(&x));
            Some(Package { deb, root, _dir: dir })
        })
        .as_ref()
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let o = Command::new("dpkg-deb").args(args).arg(deb).output().unwrap();
    assert!(o.status.success(), "dpkg-deb {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_package_holds_exactly_these_files() {
    let Some(p) = package() else { return };
    // "-rw-r--r-- 0/0 332 2026-12-02 00:00 ./etc/dataplane/hugepages.conf": mode, owner, path.
    let mut files: Vec<(String, String, String)> = dpkg_deb(&["-c"], &p.deb)
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string(), f[5].to_string())
        })
        .collect();
    files.sort_by(|a, b| a.2.cmp(&b.2));
    let file = |mode: &str, path: &str| (mode.to_string(), "0/0".to_string(), path.to_string());
    let (rw, rwx) = ("-rw-r--r--", "-rwxr-xr-x");
    assert_eq!(
        files,
        vec![
            file(rw, "./etc/dataplane/dataplane.toml"),
            file(rw, "./etc/dataplane/hugepages.conf"),
            file(rw, "./etc/dataplane/rules/example.yaml"),
            file(rwx, "./usr/bin/dataplane"),
            file(rwx, "./usr/lib/dataplane/reserve-hugepages"),
            file(rw, "./usr/lib/systemd/system/dataplane-hugepages.service"),
            file(rw, "./usr/lib/systemd/system/dataplane.service"),
            file(rw, "./usr/share/dataplane/kubernetes/crd.yaml"),
            file(rw, "./usr/share/dataplane/kubernetes/daemonset.yaml"),
            file(rw, "./usr/share/dataplane/kubernetes/webhook.yaml"),
            file(rw, "./usr/share/doc/dataplane/README.md"),
            file(rw, "./usr/share/doc/dataplane/copyright"),
            file(rw, "./usr/share/doc/dataplane/dataplane.toml.example"),
        ]
    );
    // What is shipped is what the repository has, byte for byte.
    for (packaged, source) in [
        ("usr/lib/systemd/system/dataplane.service", "config/systemd/dataplane.service"),
        ("usr/lib/systemd/system/dataplane-hugepages.service", "config/systemd/dataplane-hugepages.service"),
        ("usr/lib/dataplane/reserve-hugepages", "config/systemd/reserve-hugepages"),
        ("etc/dataplane/dataplane.toml", "config/appliance/dataplane.toml"),
        ("etc/dataplane/rules/example.yaml", "config/rules/example.yaml"),
        ("usr/share/dataplane/kubernetes/crd.yaml", "config/kubernetes/crd.yaml"),
    ] {
        assert_eq!(
            std::fs::read(p.root.join(packaged)).unwrap(),
            std::fs::read(repo().join(source)).unwrap(),
            "{packaged}"
        );
    }
}

#[test]
fn control_fields_conffiles_and_maintainer_scripts() {
    let Some(p) = package() else { return };
    let field = |name: &str| {
        dpkg_deb(&["-f"], &p.deb).lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    assert_eq!(field("Package").as_deref(), Some("dataplane"));
    assert_eq!(field("Version").as_deref(), Some(concat!(env!("CARGO_PKG_VERSION"), "-1")));
    assert_eq!(field("Section").as_deref(), Some("net"));
    let depends = field("Depends").unwrap();
    let depends: Vec<&str> = depends.split(", ").map(|d| d.split(' ').next().unwrap()).collect();
    // What the binary links (dpkg-shlibdeps) and the plugins EAL loads, which no linker sees.
    for lib in [
        "librte-eal23",
        "librte-ethdev23",
        "librte-mempool23",
        "librte-lpm23",
        "librte-mempool-ring23",
        "librte-net-af-packet23",
    ] {
        assert!(depends.contains(&lib), "{lib} not in {depends:?}");
    }
    assert_eq!(field("Recommends").as_deref(), Some("dpdk, librte-net-af-xdp23"));

    let control = tempfile::tempdir().unwrap();
    let e = Command::new("dpkg-deb").arg("-e").arg(&p.deb).arg(control.path()).output().unwrap();
    assert!(e.status.success(), "{}", text(&e));
    let read = |f: &str| std::fs::read_to_string(control.path().join(f)).unwrap();
    assert_eq!(
        read("conffiles"),
        "/etc/dataplane/dataplane.toml\n/etc/dataplane/hugepages.conf\n/etc/dataplane/rules/example.yaml\n"
    );
    // Not enabled or started on install (the config names placeholder interfaces); kept
    // enabled across upgrades if the admin enabled it, restarted after an upgrade, stopped
    // on removal.
    let postinst = read("postinst");
    assert!(postinst.contains("if deb-systemd-helper --quiet was-enabled dataplane.service; then"), "{postinst}");
    assert!(postinst.contains("systemctl --system daemon-reload"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-invoke try-restart dataplane-hugepages.service dataplane.service"),
        "{postinst}"
    );
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    assert!(read("prerm").contains("deb-systemd-invoke stop dataplane-hugepages.service dataplane.service"));
    assert!(read("postrm").contains("deb-systemd-helper purge dataplane.service"));
}

#[test]
fn the_installed_binary_runs_on_the_packaged_config_and_rules() {
    let Some(p) = package() else { return };
    let bin = p.root.join("usr/bin/dataplane");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), concat!("dataplane ", env!("CARGO_PKG_VERSION"), "\n"));

    let check = Command::new(&bin).args(["rules", "check"]).arg(p.root.join("etc/dataplane/rules")).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("ok: 5 rules, "), "{}", text(&check));

    // The packaged config: state where the unit's StateDirectory is, rules beside it.
    let config_path = p.root.join("etc/dataplane/dataplane.toml");
    let config = dataplane::worker::Config::load(&config_path).unwrap();
    let control = config.control.as_ref().unwrap();
    assert_eq!(control.state_dir.as_deref(), Some(Path::new("/var/lib/dataplane")));
    assert_eq!(control.listen, "127.0.0.1:9090");
    assert_eq!(config.rule_paths(config_path.parent().unwrap()), vec![p.root.join("etc/dataplane/rules")]);
    dataplane::worker::plan(&config).unwrap();

    // doctor on the packaged config, against a host that has what it names (eth0, eth1,
    // hugepages, CPUs 0-1, the worker CPU isolated): every item OK.
    let host = tempfile::tempdir().unwrap();
    let put = |abs: &str, content: &str| {
        let f = host.path().join(abs);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, content).unwrap();
    };
    put("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "256\n");
    put("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "256\n");
    put("proc/mounts", "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n");
    put("sys/devices/system/cpu/online", "0-1\n");
    put("sys/devices/system/cpu/isolated", "1\n");
    put("sys/class/net/eth0/operstate", "up\n");
    put("sys/class/net/eth1/operstate", "up\n");
    let doctor = Command::new(&bin)
        .args(["doctor", "--json", "--config"])
        .arg(&config_path)
        .arg("--host-root")
        .arg(host.path())
        .output()
        .unwrap();
    assert_eq!(doctor.status.code(), Some(0), "{}", text(&doctor));
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(
        (report["ok"].as_u64(), report["warn"].as_u64(), report["fail"].as_u64()),
        (Some(8), Some(0), Some(0)),
        "{report:#}"
    );
    let config_finding = &report["findings"][0];
    assert_eq!(config_finding["check"], "config");
    assert_eq!(config_finding["detail"], "2 ports, 1 worker");
}

#[test]
fn the_packaged_units_pass_systemd_analyze_verify() {
    let Some(p) = package() else { return };
    let unit_dir = p.root.join("usr/lib/systemd/system");
    let unit = std::fs::read_to_string(unit_dir.join("dataplane.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/dataplane run --config /etc/dataplane/dataplane.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "StateDirectory=dataplane",
        "Requires=dataplane-hugepages.service",
        "RequiresMountsFor=/dev/hugepages",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing from dataplane.service");
    }
    if !runs("systemd-analyze", &["--version"]) {
        eprintln!("SKIP: systemd-analyze is missing (apt-get install systemd); the units were not verified");
        return;
    }
    // verify wants every command to exist: point the units at the unpacked files.
    let units = tempfile::tempdir().unwrap();
    let root = p.root.display().to_string();
    let mut paths = Vec::new();
    for name in ["dataplane.service", "dataplane-hugepages.service"] {
        let text = std::fs::read_to_string(unit_dir.join(name))
            .unwrap()
            .replace("/usr/bin/dataplane", &format!("{root}/usr/bin/dataplane"))
            .replace("/usr/lib/dataplane/", &format!("{root}/usr/lib/dataplane/"));
        let path = units.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let verify = Command::new("systemd-analyze").arg("verify").args(&paths).output().unwrap();
    // verify exits 0 on keys it ignores, but names them: any output is a finding.
    assert!(verify.status.success() && text(&verify).is_empty(), "systemd-analyze verify:\n{}", text(&verify));
}

#[test]
fn reserve_hugepages_reserves_and_refuses() {
    let script = repo().join("config/systemd/reserve-hugepages");
    let sys = tempfile::tempdir().unwrap();
    let nr = sys.path().join("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
    std::fs::create_dir_all(nr.parent().unwrap()).unwrap();
    std::fs::write(&nr, "0\n").unwrap();
    let run = |env: &[(&str, &str)]| {
        Command::new(&script).env("SYSFS", sys.path()).envs(env.iter().copied()).output().unwrap()
    };

    let o = run(&[("HUGEPAGES", "4")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&nr).unwrap().trim(), "4");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "reserve-hugepages: 4 x 2048 kB hugepages reserved\n");
    // Never fewer than reserved already.
    std::fs::write(&nr, "16\n").unwrap();
    assert_eq!(run(&[("HUGEPAGES", "4")]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&nr).unwrap().trim(), "16");
    // A size the kernel lacks, and values that are not numbers.
    let o = run(&[("HUGEPAGES", "4"), ("HUGEPAGE_KB", "1048576")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("this kernel has no 1048576 kB hugepages"), "{}", text(&o));
    assert_eq!(run(&[("HUGEPAGES", "many")]).status.code(), Some(2));
    let o = run(&[("HUGEPAGES", "0")]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "reserve-hugepages: HUGEPAGES=0, left as it is\n");
}

/// Two veth pairs for the packaged config's eth0 and eth1, removed on drop.
struct VethPairs {
    names: Vec<String>,
}

impl VethPairs {
    /// `<prefix>a0`-`<prefix>a1` and `<prefix>b0`-`<prefix>b1`, all up; `None` (with the
    /// reason printed) when they cannot be made.
    fn make(prefix: &str) -> Option<VethPairs> {
        let mut pairs = VethPairs { names: Vec::new() };
        for side in ["a", "b"] {
            let (outer, inner) = (format!("{prefix}{side}0"), format!("{prefix}{side}1"));
            let add = Command::new("ip").args(["link", "add", &outer, "type", "veth", "peer", "name", &inner]).output();
            match add {
                Ok(o) if o.status.success() => pairs.names.push(outer.clone()),
                Ok(o) => {
                    eprintln!("SKIP: cannot create a veth pair (root and the veth module needed): {}", text(&o).trim());
                    return None;
                }
                Err(e) => {
                    eprintln!("SKIP: no `ip` command ({e})");
                    return None;
                }
            }
            for name in [&outer, &inner] {
                assert!(runs("ip", &["link", "set", name, "up"]), "ip link set {name} up");
            }
        }
        Some(pairs)
    }
}

impl Drop for VethPairs {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["link", "del", name]).output();
        }
    }
}

/// The packaged config as shipped, only its interfaces, state directory, control port and
/// EAL file prefix changed: it starts both AF_PACKET ports, forwards what arrives on eth0
/// out of eth1 (ARP from the kernel), and stops with exit 0 and no mbuf in use.
#[test]
fn the_packaged_config_forwards_on_veth() {
    let Some(p) = package() else { return };
    let prefix = format!("pk{}", std::process::id() % 100_000);
    let Some(_veth) = VethPairs::make(&prefix) else { return };
    let (a0, a1, b1) = (format!("{prefix}a0"), format!("{prefix}a1"), format!("{prefix}b1"));
    let dir = tempfile::tempdir().unwrap();
    let packaged = std::fs::read_to_string(p.root.join("etc/dataplane/dataplane.toml")).unwrap();
    let config = packaged
        .replace("net_af_packet0,iface=eth0", &format!("net_af_packet0,iface={a1}"))
        .replace("net_af_packet1,iface=eth1", &format!("net_af_packet1,iface={b1}"))
        .replace("\"/var/lib/dataplane\"", &format!("{:?}", dir.path().join("state")))
        .replace("127.0.0.1:9090", "127.0.0.1:0")
        .replace("\"--file-prefix\", \"dataplane\"", &format!("\"--file-prefix\", \"{prefix}\""));
    assert_eq!(config.matches(&prefix).count(), 3, "every substitution took:\n{config}");
    let config_path = dir.path().join("dataplane.toml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::os::unix::fs::symlink(p.root.join("etc/dataplane/rules"), dir.path().join("rules")).unwrap();

    if !runs("ping", &["-V"]) {
        eprintln!("SKIP: no ping (iputils-ping) to send ARP through the dataplane");
        return;
    }
    // Without hugepages, so the test runs where none are reserved. The duration leaves room
    // for a slow start: the ARP is sent once the ports run.
    let mut run = Command::new(p.root.join("usr/bin/dataplane"))
        .args(["run", "--config"])
        .arg(&config_path)
        .args(["--duration", "6", "--", "--no-huge", "--no-shconf", "-m", "256"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (running_tx, running_rx) = std::sync::mpsc::channel();
    let reader = {
        let stdout = run.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
                if line.starts_with("running: ") {
                    let _ = running_tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    };
    let started = running_rx.recv_timeout(std::time::Duration::from_secs(30)).is_ok();
    if started {
        // ARP requests out of a0 (no one answers) reach the dataplane's eth0 side.
        assert!(runs("ip", &["addr", "add", "10.254.77.1/24", "dev", &a0]));
        let _ = Command::new("ping").args(["-c", "3", "-i", "0.3", "-W", "1", "-I", &a0, "10.254.77.2"]).output();
    }
    let out = run.wait_with_output().unwrap();
    let stdout = reader.join().unwrap();
    assert!(started, "no `running:` line:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("running: 1 worker(s) on lcores [1], distribution Rss, 2 port(s), policy generation 1"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("mbufs in use: 0"), "{stdout}");
    // Final stats: what port 0 (eth0's side) received, port 1 sent.
    let final_stats = stdout.split("final stats").nth(1).unwrap();
    let count = |port: &str, key: &str| -> u64 {
        let line = final_stats.lines().find(|l| l.trim_start().starts_with(port)).unwrap();
        let after = line.split(&format!("{key} ")).nth(1).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    let received = count("port 0 (net_af_packet0)", "ipackets");
    assert!(received >= 1, "nothing received from {a0}:\n{stdout}");
    assert!(count("port 1 (net_af_packet1)", "opackets") >= received, "{stdout}");
}
