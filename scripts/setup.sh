#!/usr/bin/env bash
# Idempotent machine setup: system packages the build needs, and 2 MB hugepages when possible.
# Safe to run again; says what it did. Missing hugepages are a warning, never a failure.
set -euo pipefail

HUGEPAGES="${HUGEPAGES:-1024}"
PACKAGES=(libdpdk-dev dpdk dpdk-dev libclang-dev pkg-config libpcap-dev)

say() { echo "setup: $*"; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "packages present: ${PACKAGES[*]}"
elif [ "$(id -u)" -eq 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/dataplane-setup-apt.log 2>&1; then
    say "apt-get update (package lists were stale or missing)"
    apt-get update >>/tmp/dataplane-setup-apt.log 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/dataplane-setup-apt.log 2>&1 || {
      say "ERROR: installing ${missing[*]} failed; see /tmp/dataplane-setup-apt.log"; exit 1; }
  fi
  say "installed: ${missing[*]}"
else
  say "ERROR: missing packages ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
  exit 1
fi
say "DPDK $(pkg-config --modversion libdpdk)"

# scapy: the independent dissector some tests check crafted frames against (they say so and
# skip that check when it is missing, e.g. offline).
if python3 -c "import scapy" 2>/dev/null; then
  say "scapy present"
elif python3 -m pip install -q scapy >/tmp/dataplane-setup-pip.log 2>&1; then
  say "installed: scapy (PyPI)"
else
  say "warning: could not install scapy; tests that dissect frames with it skip that check"
fi

# tshark: the independent dissector tests/tests/quic_captures.rs checks the QUIC captures
# against (it says so and uses the committed tests/data/quic/expected.json when missing).
# wireshark-common asks whether non-root users may capture: answered "no" beforehand.
if command -v tshark >/dev/null 2>&1; then
  say "tshark present"
elif [ "$(id -u)" -ne 0 ]; then
  say "warning: not root, tshark not installed; the QUIC capture test uses its committed expectations"
else
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  install_tshark() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark >>/tmp/dataplane-setup-apt.log 2>&1; }
  if install_tshark || { apt-get update >>/tmp/dataplane-setup-apt.log 2>&1 && install_tshark; }; then
    say "installed: tshark"
  else
    say "warning: could not install tshark (see /tmp/dataplane-setup-apt.log); the QUIC capture test uses its committed expectations"
  fi
fi

# The real stacks of tests/tests/netns_gateway.rs and scripts/gateway-demo.sh: namespaces and
# veths (iproute2, sysctl from procps), checksum offload off (ethtool), the clients and the
# servers (the tests say so and skip when one is missing).
E2E_PACKAGES=(iproute2 procps ethtool iputils-ping curl openssl python3)
e2e_missing=()
for p in "${E2E_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || e2e_missing+=("$p")
done
if [ ${#e2e_missing[@]} -eq 0 ]; then
  say "packages present: ${E2E_PACKAGES[*]}"
elif [ "$(id -u)" -ne 0 ]; then
  say "warning: not root, ${e2e_missing[*]} not installed; the network namespace tests skip"
else
  install_e2e() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${e2e_missing[@]}" >>/tmp/dataplane-setup-apt.log 2>&1; }
  if install_e2e || { apt-get update >>/tmp/dataplane-setup-apt.log 2>&1 && install_e2e; }; then
    say "installed: ${e2e_missing[*]}"
  else
    say "warning: could not install ${e2e_missing[*]} (see /tmp/dataplane-setup-apt.log); the network namespace tests skip"
  fi
fi

# The ARM64 cross C compiler: scripts/check-aarch64.sh checks the pure-Rust layers for the
# edge gateways' architecture, and ring (rustls, QUIC) compiles C code even for a check. It
# says so and skips that check when this cannot be installed.
if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && [ -e /usr/aarch64-linux-gnu/include/stdint.h ]; then
  say "aarch64 cross compiler present"
elif [ "$(id -u)" -ne 0 ]; then
  say "warning: not root, no aarch64 cross compiler; the aarch64 check skips"
else
  install_cross() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >>/tmp/dataplane-setup-apt.log 2>&1; }
  if install_cross || { apt-get update >>/tmp/dataplane-setup-apt.log 2>&1 && install_cross; }; then
    say "installed: gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
  else
    say "warning: could not install the aarch64 cross compiler (see /tmp/dataplane-setup-apt.log); the aarch64 check skips"
  fi
fi

# Hugepages: benchmarks want them; tests pass without (they run EAL with --no-huge).
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ "$(id -u)" -ne 0 ]; then
  say "warning: not root, hugepages left as they are"
elif [ ! -w "$hp" ]; then
  say "warning: cannot reserve 2 MB hugepages here ($hp not writable); tests run without them"
else
  if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    if mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null; then
      say "mounted hugetlbfs on /dev/hugepages"
    else
      say "warning: could not mount hugetlbfs on /dev/hugepages"
    fi
  fi
  have=$(cat "$hp")
  if [ "$have" -lt "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" > "$hp" 2>/dev/null || true
    have=$(cat "$hp")
  fi
  if [ "$have" -ge "$HUGEPAGES" ]; then
    say "hugepages: $have x 2 MB reserved"
  else
    say "warning: only $have of $HUGEPAGES 2 MB hugepages could be reserved; tests run without them"
  fi
fi

# bpffs: libxdp, under the af_xdp driver, keeps its XDP dispatcher's state there (without it,
# it complains and loads a single program, or fails on some kernels). Nothing else needs it.
if grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
  say "bpffs mounted on /sys/fs/bpf"
elif [ "$(id -u)" -ne 0 ]; then
  say "warning: not root, bpffs not mounted on /sys/fs/bpf; AF_XDP ports need it (mount -t bpf bpf /sys/fs/bpf)"
elif mkdir -p /sys/fs/bpf 2>/dev/null && mount -t bpf bpf /sys/fs/bpf 2>/dev/null; then
  say "mounted bpffs on /sys/fs/bpf"
else
  say "warning: could not mount bpffs on /sys/fs/bpf; AF_XDP ports may not start, AF_PACKET ones do"
fi

# The Debian package (scripts/package.sh, tests/tests/package.rs): cargo-deb from crates.io,
# dpkg-shlibdeps (dpkg-dev) for its library dependencies, systemd-analyze to verify the
# units. Each missing one is a warning: the package test then says what it skipped.
CARGO_DEB_VERSION=3.8.0
if cargo deb --version >/dev/null 2>&1; then
  say "cargo-deb present"
elif cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION" >/tmp/dataplane-setup-cargo-deb.log 2>&1; then
  say "installed: cargo-deb $CARGO_DEB_VERSION (crates.io)"
else
  say "warning: could not install cargo-deb (see /tmp/dataplane-setup-cargo-deb.log); the package test skips"
fi
for tool in dpkg-shlibdeps:dpkg-dev systemd-analyze:systemd; do
  cmd=${tool%%:*} pkg=${tool##*:}
  if command -v "$cmd" >/dev/null 2>&1; then
    say "$cmd present"
  elif [ "$(id -u)" -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >>/tmp/dataplane-setup-apt.log 2>&1 \
      || { apt-get update >>/tmp/dataplane-setup-apt.log 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >>/tmp/dataplane-setup-apt.log 2>&1; }; }; then
    say "installed: $pkg ($cmd)"
  else
    say "warning: $cmd missing ($pkg not installed); the package test skips what needs it"
  fi
done
