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
echo "== cargo check --target aarch64-unknown-linux-gnu (the edge gateways are ARM64)"
scripts/check-aarch64.sh
echo "== bash -n: the scripts parse (benchmarks and demos are not run here)"
for script in scripts/*.sh .ci/run; do
  bash -n "$script"
done
echo "== cargo test --workspace"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary, doc tests last).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
