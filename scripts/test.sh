#!/usr/bin/env bash
# The test command: set up the machine, then format check, lints, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo clippy (no DPDK: the pure-Rust layers build alone)"
cargo clippy -p dataplane --no-default-features --all-targets -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace
