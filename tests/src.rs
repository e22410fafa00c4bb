//! Helpers shared by the end-to-end tests in `tests/tests/`.

use std::path::PathBuf;
use std::process::Command;

/// The `dataplane` binary of this workspace, built on first use if `cargo test` did not.
pub fn dataplane_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/dataplane
    let profile_dir = exe.parent().and_then(|p| p.parent()).expect("target profile dir").to_path_buf();
    let bin = profile_dir.join("dataplane");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "dataplane", "--bin", "dataplane"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building the dataplane binary failed");
    }
    bin
}

/// A rule document in the Kubernetes resource format.
pub fn rule_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata:\n  name: {name}\nspec:\n{spec}---\n")
}
