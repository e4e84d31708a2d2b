#!/usr/bin/env bash
# The main job: on a fresh machine, set up, bring up a real lab cluster (droplets in network
# namespaces with real agents and XDP, three operator replicas in a Raft group), create two
# tenants whose VPCs use the same CIDR (cli/examples/two-tenants.yaml), start pods, and print
# a connectivity matrix: each tenant reaches its own pods, never the other's.
#
# Usage (as root):  scripts/demo.sh            # leaves the lab up; `alkaid --lab demo lab down` removes it
#                   scripts/demo.sh --down     # tears the lab down at the end
#                   DROPLETS=4 scripts/demo.sh
#                   SKIP_BUILD=1 ALKAID_BIN_DIR=... scripts/demo.sh   # use binaries already built
# Without root it falls back to the model-level demo (tables traced by the forwarding simulator).
set -euo pipefail
cd "$(dirname "$0")/.."
DOWN=""; [ "${1:-}" = "--down" ] && DOWN=1
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: the lab needs network namespaces and XDP; running the model-level demo instead" >&2
  exec cargo run --release --quiet -p alkaid-model --example two_tenants
fi
if [ -z "${SKIP_SETUP:-}" ]; then bash scripts/setup.sh; fi
export PATH="$HOME/.cargo/bin:$PATH"

BIN="${ALKAID_BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}"
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "==> building alkaid, alkaid-operator, alkaid-agent, alkaid-cni"
  cargo build --quiet -p alkaid-cli -p alkaid-operator -p alkaid-agent
fi
alkaid() { "$BIN/alkaid" --lab "${LAB:-demo}" "$@"; }

echo "==> alkaid lab up --droplets ${DROPLETS:-3}"
alkaid lab up --droplets "${DROPLETS:-3}"

echo; echo "==> two tenants, both 10.0.0.0/16 with a 10.0.1.0/24 subnet"
alkaid apply -f cli/examples/two-tenants.yaml
alkaid get vpcs
alkaid get subnets -o wide

echo; echo "==> pods: one per tenant on each droplet (same pod IPs in both tenants)"
PODS=()
declare -A IP
n="${DROPLETS:-3}"; [ "$n" -gt 3 ] && n=3
for tenant in blue green; do
  for i in $(seq 1 "$n"); do
    p="$tenant-$i"
    if ! alkaid lab status -o json | grep -q "\"name\": \"$p\""; then
      alkaid lab pod add "$p" --droplet "d$i" --vpc "$tenant" --subnet "$tenant-a" >/dev/null
    fi
    IP[$p]=$(alkaid lab pod list -o json | tr -d '\n ' | sed -E "s/.*\"ip\":\"([0-9.]+)\",\"mac\":\"[^\"]*\",\"name\":\"$p\".*/\1/")
    alkaid lab serve "$p" >/dev/null 2>&1 || true   # already serving on a re-run
    PODS+=("$p")
  done
done
alkaid lab pod list

echo; echo "==> connectivity matrix: row = sender, column = the address of that pod; cell = who answered"
echo "    (ping, then a TCP echo that replies with the answering pod's name)"
printf '%-9s' "from\\to"; for t in "${PODS[@]}"; do printf '%-18s' "$t(${IP[$t]})"; done; echo
bad=0
for f in "${PODS[@]}"; do
  printf '%-9s' "$f"
  for t in "${PODS[@]}"; do
    ping="-"; alkaid lab exec "$f" -- ping -c1 -W1 "${IP[$t]}" >/dev/null 2>&1 && ping="ping"
    who=$(alkaid lab probe --from "$f" tcp "${IP[$t]}" --timeout-ms 1000 2>/dev/null || echo "none")
    cell="$ping/$who"
    # Same tenant: the addressed pod must answer. Other tenant: the address is the same as a
    # pod of our own tenant, which must be the one answering - never the other tenant's.
    if [ "${f%%-*}" != "${who%%-*}" ]; then cell="$cell!!"; bad=1; fi
    if [ "${f%%-*}" = "${t%%-*}" ] && [ "$who" != "$t" ]; then cell="$cell!!"; bad=1; fi
    printf '%-18s' "$cell"
  done
  echo
done
echo
if [ "$bad" -eq 0 ]; then
  echo "RESULT: every pod reached every pod of its own tenant, and no packet crossed tenants"
  echo "        (blue-N and green-N share an IP: each sender reached its own tenant's pod)."
else
  echo "RESULT: FAILED: cells marked !! reached the wrong pod" >&2
fi
echo; echo "==> a droplet's BPF maps now (every row keyed by VNI): alkaid --lab ${LAB:-demo} lab tables d1"
alkaid lab tables d1 | head -20
if [ -n "$DOWN" ]; then
  alkaid lab down
else
  echo; echo "The lab is still up. Try: $BIN/alkaid --lab ${LAB:-demo} lab status"
  echo "Remove everything with:  $BIN/alkaid --lab ${LAB:-demo} lab down"
fi
exit "$bad"
