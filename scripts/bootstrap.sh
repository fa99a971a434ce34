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
# Byte-compiled at install: a machine may set PYTHONDONTWRITEBYTECODE, and then every process
# start (each scale-from-zero of an agent) would compile FastAPI, pydantic, ... from source again.
stamp=.venv/.par-installed-compiled
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing PAR and its dependencies into .venv (byte-compiled)"
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet --compile-bytecode -e '.[dev]'
  touch "$stamp"
fi
# PAR's own modules too (an editable install is not compiled by uv); up-to-date files are skipped.
.venv/bin/python -m compileall -q runtime gateway eventing serving registry cli >/dev/null
bash scripts/pixell-tools.sh
bash scripts/kube-apiserver.sh
