#!/usr/bin/env bash
# Runs every test Alkaid has: format check, clippy with -D warnings, and all test suites,
# including the privileged ones (network namespaces, XDP, BPF maps), which need root.
# Usage: scripts/test.sh            (as root; installs what is missing first)
#        SKIP_SETUP=1 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SKIP_SETUP:-}" ]; then
  bash scripts/setup.sh
fi
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
  echo "warning: not root: the privileged suites (XDP, network namespaces) will fail or skip" >&2
else
  # As root (CI) every privileged test must run: one that would skip fails instead, so a
  # missing setup step (bpffs, the eBPF object, a sibling binary) cannot pass as a skip.
  export ALKAID_REQUIRE_PRIVILEGED=1
fi

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (every suite, privileged included)"
# One build of every test binary first, so test time is not build time.
cargo test --workspace --locked --no-run
cargo test --workspace --locked --exclude alkaid-cli -- --test-threads "${TEST_THREADS:-2}"
# alkaid-cli: unit and fake-server tests, then the e2e suite. Each e2e case brings up its own
# lab (network namespaces, real operator/agent/CNI binaries from this target dir, built by the
# --no-run step above), so that binary runs one case at a time.
cargo test -p alkaid-cli --locked --lib --bins --test control
cargo test -p alkaid-cli --locked --test e2e -- --test-threads 1
# Issue 7's cross-check: a lab's tables equal topology-sim's prediction (also brings up a lab).
cargo test -p alkaid-cli --locked --test crosscheck -- --test-threads 1
