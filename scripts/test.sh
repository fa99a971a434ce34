#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -k apkg).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/bootstrap.sh --dev
bash scripts/kafka.sh
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy"
.venv/bin/mypy --follow-imports=silent runtime gateway eventing serving registry cli
echo "==> pytest"
exec .venv/bin/pytest "$@"
