#!/usr/bin/env bash
# `cargo check` of the dataplane for ARM64, the edge gateways' architecture, so that x86-only
# code (intrinsics, `target_arch` assumptions) cannot creep in unnoticed:
#   1. the pure-Rust layers (`--no-default-features`: parsers, policy, pipeline, control plane);
#   2. everything, the DPDK layer and the workers included, against Debian's DPDK 22.11 ARM64
#      headers: libdpdk-dev:arm64 is downloaded with apt into a cache directory (apt's own
#      lists and status there, so the system's architectures and packages stay as they are),
#      unpacked, and given to the build by a pkg-config file of its cflags; bindgen reads the
#      ARM64 headers and the cross compiler builds the wrappers of DPDK's inline functions.
# Needs the rustup target (added here) and a C cross compiler for ring's and dpdk-sys's C code
# (gcc-aarch64-linux-gnu, installed by scripts/setup.sh). Without one of them it prints
# SKIPPED and why; step 2 alone skips the same way when the download fails (offline).
#   CACHE=dir (default ~/.cache/dataplane-aarch64) keeps the unpacked headers between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
cache="${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dataplane-aarch64}"

skip() { echo "SKIPPED: aarch64 check: $*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  if ! command -v rustup >/dev/null 2>&1; then skip "no rustup to add the $target target"; exit 0; fi
  if ! rustup target add "$target"; then skip "rustup target add $target failed (offline?)"; exit 0; fi
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
  skip "no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
  exit 0
fi

echo "-- aarch64 (1/2): the pure-Rust layers, --no-default-features --all-targets"
cargo check --target "$target" -p dataplane --no-default-features --all-targets

# DPDK's ARM64 headers: the package unpacked under $cache/root, once.
root="$cache/root"
if [ ! -e "$root/usr/include/aarch64-linux-gnu/dpdk/rte_config.h" ]; then
  mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/apt"
  : > "$cache/status"
  apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o "Dir::State::Lists=$cache/lists"
    -o "Dir::State::status=$cache/status" -o "Dir::Cache=$cache/apt" -o "Dir::Cache::archives=$cache/archives"
    -o APT::Sandbox::User=root)
  if ! apt-get "${apt_opts[@]}" update >"$cache/apt.log" 2>&1 ||
    ! (cd "$cache" && apt-get "${apt_opts[@]}" download libdpdk-dev:arm64 >>"$cache/apt.log" 2>&1); then
    skip "step 2 (the DPDK layer): could not download libdpdk-dev:arm64 (see $cache/apt.log)"
    exit 0
  fi
  rm -rf "$root"
  dpkg -x "$cache"/libdpdk-dev_*_arm64.deb "$root"
  rm -rf "$cache"/libdpdk-dev_*_arm64.deb "$cache/lists" "$cache/apt" "$cache/archives"
fi
# The cflags of the package's own libdpdk-libs.pc, without its Requires (other -dev packages
# for ARM64 that compiling against the headers does not need).
mkdir -p "$cache/pkgconfig"
cflags=$(sed -n 's/^Cflags: //p' "$root/usr/lib/aarch64-linux-gnu/pkgconfig/libdpdk-libs.pc" |
  sed "s#\${includedir}#$root/usr/include/dpdk#g")
version=$(sed -n 's/^Version: //p' "$root/usr/lib/aarch64-linux-gnu/pkgconfig/libdpdk-libs.pc")
cat > "$cache/pkgconfig/libdpdk.pc" <<EOF
Name: DPDK
Description: Debian's DPDK ARM64 headers, unpacked for a cross check (cflags only)
Version: $version
Cflags: $cflags
Libs: -L$root/usr/lib/aarch64-linux-gnu -lrte_eal
EOF
echo "-- aarch64 (2/2): everything, the DPDK layer against DPDK $version's ARM64 headers, --all-targets"
PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_LIBDIR="$cache/pkgconfig" \
  cargo check --target "$target" --workspace --all-targets
echo "aarch64: the workspace checks for $target (the pure-Rust layers alone, and with DPDK)"
