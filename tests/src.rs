//! Helpers shared by the end-to-end tests in `tests/tests/`.

#[path = "src/netns.rs"]
pub mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `dataplane` binary of this workspace. `cargo test -p dataplane-tests` does not build
/// another package's binary, so the first call builds it (a no-op when it is up to date).
pub fn dataplane_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/dataplane
        let profile_dir = exe.parent().and_then(|p| p.parent()).expect("target profile dir").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "dataplane", "--bin", "dataplane"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building the dataplane binary failed");
        profile_dir.join("dataplane")
    })
    .clone()
}

/// A rule document in the Kubernetes resource format.
pub fn rule_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata:\n  name: {name}\nspec:\n{spec}---\n")
}

/// `dataplane classify ARGS --rules RULES --pcap PCAP`, run to the end.
pub fn classify(args: &[&str], rules: &Path, pcap: &Path) -> std::process::Output {
    Command::new(dataplane_bin())
        .arg("classify")
        .args(args)
        .arg("--rules")
        .arg(rules)
        .arg("--pcap")
        .arg(pcap)
        .output()
        .expect("running dataplane classify")
}

/// `classify --json ARGS`: the command must succeed; each line parsed.
pub fn classify_json(args: &[&str], rules: &Path, pcap: &Path) -> Vec<serde_json::Value> {
    let out = classify(&[&["--json"], args].concat(), rules, pcap);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
