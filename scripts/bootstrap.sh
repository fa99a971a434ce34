#!/usr/bin/env bash
# Create .venv and install PAR with its dev tools. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtual environment .venv"
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  echo "==> installing uv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
fi
stamp=.venv/.par-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing PAR and its dependencies into .venv"
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
bash scripts/pixell-tools.sh
