#!/usr/bin/env bash
# The pure-Rust layers (everything but the DPDK layer and the workers: parsers, policy,
# pipeline, control plane, `classify`) checked for ARM64, the edge gateways' architecture,
# so x86-only code (intrinsics, `target_arch` assumptions) cannot creep in unnoticed. The DPDK
# layer needs DPDK's ARM64 headers for its bindings, which this machine does not have; its
# architecture-specific code is `dpdk/cycles.rs` (x86-64 and ARM64 paths under `cfg`).
# Needs the rustup target (added here) and a C cross compiler for ring's C code
# (gcc-aarch64-linux-gnu, installed by scripts/setup.sh); without either it says why and skips.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu

skip() { echo "SKIPPED: aarch64 check: $*"; exit 0; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  command -v rustup >/dev/null 2>&1 || skip "no rustup to add the $target target"
  rustup target add "$target" || skip "rustup target add $target failed (offline?)"
fi
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
  skip "no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
cargo check --target "$target" -p dataplane --no-default-features --all-targets
echo "aarch64: the pure-Rust layers check for $target"
