#!/usr/bin/env bash
# The main job, for now: set up .venv and the pixell tools, build the demo agent with pixell-kit,
# and serve it with the single-agent runtime on $PORT (default 8080). Ctrl-C stops it.
#   curl -s localhost:8080/readyz
#   curl -s -XPOST localhost:8080/invoke -H 'content-type: application/json' -d '{"x":1}'
#   curl -s localhost:8080/api/hello
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
out=.cache/demo
rm -rf "$out" && mkdir -p "$out"
echo "==> building examples/demo-agent with pixell-kit"
.cache/tools/pixell-kit/bin/pixell build -p examples/demo-agent -o "$out" >/dev/null
apkg=$(ls "$out"/*.apkg)
echo "==> serving $apkg on port ${PORT:-8080}"
exec .venv/bin/par runtime serve "$apkg" --port "${PORT:-8080}"
