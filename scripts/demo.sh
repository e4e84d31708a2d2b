#!/usr/bin/env bash
# The main job: set up a fresh machine and show two tenants with the same CIDR, isolated.
# Until `alkaid lab` exists this is the model-level demo (real control-plane logic, tables
# traced by the forwarding simulator); no root is needed for it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SKIP_SETUP:-}" ] && [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh
fi
exec cargo run --release --quiet -p alkaid-model --example two_tenants
