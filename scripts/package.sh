#!/usr/bin/env bash
# Builds the Debian package (dataplane/Cargo.toml, [package.metadata.deb]) with cargo-deb:
# the binary, the systemd units, the appliance config and example rules under /etc/dataplane,
# the Kubernetes manifests. Prints the .deb's path last.
#
#   scripts/package.sh                 release build, then the package in target/debian/
#   BIN=path scripts/package.sh        package that binary as it is, no build (the package
#                                      test uses the debug binary the tests built)
#   OUT=dir                            where the .deb goes (default target/debian)
#   FAST=1                             quicker, larger compression
#
# Needs cargo-deb (scripts/setup.sh installs it: cargo install cargo-deb --locked) and
# dpkg-shlibdeps (dpkg-dev) for the library dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version >/dev/null 2>&1; then
  echo "package: cargo-deb is missing: cargo install cargo-deb --locked --version $CARGO_DEB_VERSION (scripts/setup.sh does it)" >&2
  exit 1
fi
OUT="${OUT:-target/debian}"
mkdir -p "$OUT"
args=(-p dataplane -o "$OUT" --strip)
[ "${FAST:-0}" = 1 ] && args+=(--fast)

if [ -n "${BIN:-}" ]; then
  [ -x "$BIN" ] || { echo "package: BIN=$BIN is not an executable" >&2; exit 1; }
  # cargo-deb takes binaries from <target dir>/release/: a scratch target dir holding only
  # this one, so nothing is built and no other build is disturbed.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir "$stage/release"
  cp "$BIN" "$stage/release/dataplane"
  CARGO_TARGET_DIR="$stage" cargo deb "${args[@]}" --no-build
else
  cargo deb "${args[@]}" --locked
fi
