#!/usr/bin/env bash
# Create .venv and install PAR: `scripts/bootstrap.sh` installs what the platform needs (scripts/demo.sh),
# `scripts/bootstrap.sh --dev` also the test tools: the dev extra, pixell-sdk, the A2A TCK, the test
# kube-apiserver and etcd (Go builds). Idempotent: a second run only checks.
set -euo pipefail
dev=false
[ "${1:-}" = "--dev" ] && dev=true
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
# The platform alone keeps what a --dev run added (--inexact); --dev syncs exactly the lock with its extra.
if $dev; then stamp=.venv/.par-installed-dev; sync=(--extra dev); else stamp=.venv/.par-installed; sync=(--inexact); fi
if [ ! -f "$stamp" ] || [ uv.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing PAR and its locked dependencies into .venv (byte-compiled)"
  .venv/bin/uv sync --quiet --frozen "${sync[@]}" --compile-bytecode
  touch "$stamp"
fi
# PAR's own modules too (an editable install is not compiled by uv); up-to-date files are skipped.
.venv/bin/python -m compileall -q runtime gateway eventing serving registry cli >/dev/null
if ! $dev; then
  bash scripts/pixell-tools.sh kit  # par up --demo builds the examples with it
  exit 0
fi
bash scripts/pixell-tools.sh kit sdk
bash scripts/a2a-tck.sh install  # the A2A conformance kit's own pinned venv (tests/integration/runtime/test_a2a_tck.py)
bash scripts/kube-apiserver.sh
