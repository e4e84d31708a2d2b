#!/usr/bin/env bash
# Installs, idempotently, everything a fresh machine needs to build and test Alkaid:
# Debian packages (iproute2, ethtool, iperf3, etcd, LLVM 22 for bpf-linker), the rust-src
# component, and bpf-linker built against LLVM 22 (see ../shared/notes/toolchain.md).
# Safe to run again: every step checks first.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  # build
  build-essential pkg-config
  # bpf-linker against rustc's LLVM 22
  llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev
  # privileged tests and the lab
  iproute2 ethtool iputils-ping iperf3 netcat-openbsd tcpdump socat curl openssl
  # the store benchmark's peer
  etcd-server etcd-client
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "apt packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust 1.95 with rustup first" >&2
  exit 1
fi

for tc in stable nightly; do
  if rustup toolchain list | grep -q "^$tc"; then
    if ! rustup component list --toolchain "$tc" --installed 2>/dev/null | grep -q '^rust-src'; then
      log "adding rust-src to $tc"
      rustup component add rust-src --toolchain "$tc"
    fi
  fi
done

BPF_LINKER_VERSION=0.13.0
if ! bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"; then
  log "building bpf-linker $BPF_LINKER_VERSION against LLVM 22"
  LLVM_PREFIX="$(llvm-config-22 --prefix)" PATH="$(llvm-config-22 --bindir):$PATH" \
    cargo install bpf-linker --locked --version "$BPF_LINKER_VERSION" --no-default-features --features llvm-22 \
    || LLVM_PREFIX="$(llvm-config-22 --prefix)" PATH="$(llvm-config-22 --bindir):$PATH" \
    cargo install bpf-linker --version "$BPF_LINKER_VERSION" --no-default-features --features llvm-22
else
  log "bpf-linker $BPF_LINKER_VERSION present"
fi

# bpffs for pinned maps and links (the agent and the lab pin there).
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  log "mounting bpffs on /sys/fs/bpf"
  $SUDO mount -t bpf bpf /sys/fs/bpf || log "could not mount bpffs (not root?): privileged tests will be skipped"
fi

log "done"
