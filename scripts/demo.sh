#!/usr/bin/env bash
# The main job: set up .venv and the pixell tools, then run the whole platform on this machine with
# the example agents deployed (`par up --demo`): registry, gateway on $PORT (8080), the broker, and
# agents that start on the first request and stop when idle. Ctrl-C stops everything.
#   curl -XPOST localhost:8080/invoke -H 'Host: demo-agent.default.127.0.0.1.sslip.io' \
#        -H "Authorization: Bearer $(cat ~/.par/admin.key)" -H 'content-type: application/json' -d '{"x":1}'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/par up --demo --port "${PORT:-8080}" --data-dir "${PAR_DATA_DIR:-$HOME/.par}"
