#!/usr/bin/env bash
# Create .venv and install PAR with its dev tools. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtual environment .venv"
  "$PYTHON" -m venv .venv
fi
# uv (the version uv.lock pins) installs everything else exactly as locked: a fresh machine gets what CI
# tested. uv.lock is made with `uv lock` after a change to pyproject.toml's dependencies.
uv_version=$("$PYTHON" -c 'import tomllib; print(next(p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "uv"))')
if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$uv_version" ]; then
  echo "==> installing uv $uv_version"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi
# Byte-compiled at install: a machine may set PYTHONDONTWRITEBYTECODE, and then every process
# start (each scale-from-zero of an agent) would compile FastAPI, pydantic, ... from source again.
stamp=.venv/.par-installed-locked
if [ ! -f "$stamp" ] || [ uv.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing PAR and its locked dependencies into .venv (byte-compiled)"
  .venv/bin/uv sync --quiet --frozen --extra dev --compile-bytecode
  touch "$stamp"
fi
# PAR's own modules too (an editable install is not compiled by uv); up-to-date files are skipped.
.venv/bin/python -m compileall -q runtime gateway eventing serving registry cli >/dev/null
bash scripts/pixell-tools.sh
bash scripts/a2a-tck.sh install  # the A2A conformance kit's own pinned venv (tests/integration/runtime/test_a2a_tck.py)
bash scripts/kube-apiserver.sh
