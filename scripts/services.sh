#!/usr/bin/env bash
# Install the servers the integration tests start for themselves (PostgreSQL, Redis) and the
# load generators the benchmarks use, shellcheck, and the browser the console's tests drive (Chromium +
# chromedriver, headless). Debian packages; needs root (or sudo). Idempotent.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)  # tests/unit/cluster lints the shell scripts
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "==> installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts the packaged services; the tests run their own instances on free ports.
  $SUDO systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
fi
