#!/usr/bin/env bash
# The A2A 0.3 conformance kit (TCK, ../shared/a2a-tck or $A2A_TCK_DIR) in its own pinned venv:
#   scripts/a2a-tck.sh install                          # .cache/tools/a2a-tck (scripts/a2a-tck-requirements.txt)
#   scripts/a2a-tck.sh run SUT_URL CATEGORY REPORT.json # mandatory | quality | features, as run_tck.py selects them
# `run` copies the kit to a temporary folder (it writes reports and caches next to itself), runs its pytest
# against SUT_URL and writes pytest-json-report's REPORT.json; the exit status is pytest's.
# tests/integration/runtime/test_a2a_tck.py runs it against PAR's runtime serving tests/integration/runtime/tck-agent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TCK="${A2A_TCK_DIR:-$ROOT/../shared/a2a-tck}"
VENV="$ROOT/.cache/tools/a2a-tck"
REQUIREMENTS="$ROOT/scripts/a2a-tck-requirements.txt"
UV="$ROOT/.venv/bin/uv"

install() {
  local want; want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the A2A TCK's requirements into $VENV" >&2
    "$UV" venv --quiet --clear --python "$("$ROOT/.venv/bin/python" -c 'import sys; print(sys.executable)')" "$VENV"
    VIRTUAL_ENV="$VENV" "$UV" pip sync --quiet "$REQUIREMENTS"
    echo "$want" >"$VENV/.requirements"
  fi
}

case "${1:-}" in
  install)
    install
    ;;
  run)
    [ $# -eq 4 ] || { echo "usage: $0 run SUT_URL mandatory|quality|features REPORT.json" >&2; exit 2; }
    sut=$2 category=$3 report=$(realpath -m "$4")
    case "$category" in
      mandatory) selection=(tests/mandatory/ -m "mandatory_jsonrpc or mandatory_protocol") ;;
      quality) selection=(tests/optional/quality/) ;;
      features) selection=(tests/optional/features/) ;;
      *) echo "unknown category $category (mandatory, quality, features)" >&2; exit 2 ;;
    esac
    [ -f "$TCK/run_tck.py" ] || { echo "no A2A TCK at $TCK (set A2A_TCK_DIR)" >&2; exit 2; }
    install
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    cp -r "$TCK/." "$work/"
    chmod -R u+w "$work"
    cd "$work"
    "$VENV/bin/python" -m pytest "${selection[@]}" --sut-url="$sut" --test-scope=all --tb=short -q \
      -p no:cacheprovider --json-report --json-report-file="$report"
    ;;
  *)
    echo "usage: $0 install | run SUT_URL mandatory|quality|features REPORT.json" >&2
    exit 2
    ;;
esac
